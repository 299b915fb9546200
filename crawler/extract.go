// Link extraction: Extract reads an HTML body with the streaming tokenizer
// of golang.org/x/net/html (no DOM is built) and returns the page's title,
// language, robots directives and outlinks, with every link resolved and
// normalized by internal/urlnorm. (The package documentation is in
// worker.go.)

package crawler

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Limits applied by Extract.
const (
	// MaxLinksPerPage is the number of links Extract keeps per page; further
	// links are counted in Extracted.Skipped.
	MaxLinksPerPage = 10000
	// MaxAnchorBytes is the maximum length of an anchor text (or alt text).
	MaxAnchorBytes = 256
	// MaxTitleBytes is the maximum length of a page title.
	MaxTitleBytes = 512
)

// Extracted is what Extract found on a page.
type Extracted struct {
	// Title is the text of the first <title> outside <svg>, whitespace-folded,
	// valid UTF-8, at most MaxTitleBytes.
	Title string
	// Lang is the lang attribute of <html>, trimmed and lowercased.
	Lang string
	// NoFollow and NoIndex come from <meta name=robots|linkgraph> or the
	// X-Robots-Tag header. They are page flags: NoFollow is not copied into
	// the links' Rel.
	NoFollow, NoIndex bool
	// Links are the page's outlinks in order of first appearance, each with
	// an absolute normalized http(s) URL, never the page URL itself, without
	// duplicates (same URL, type, anchor and rel), at most MaxLinksPerPage.
	Links []*linkgraphv1.OutLink
	// Skipped counts hrefs that did not resolve to a valid http(s) URL, plus
	// links dropped because of MaxLinksPerPage.
	Skipped int
}

// IsHTML reports whether a response with this Content-Type should be parsed
// for links: text/html and application/xhtml+xml only. When the header is
// empty, the type is sniffed from the first bytes of body with
// http.DetectContentType.
func IsHTML(contentType string, body []byte) bool {
	ct := strings.TrimSpace(contentType)
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	return strings.EqualFold(ct, "text/html") || strings.EqualFold(ct, "application/xhtml+xml")
}

// Extract parses an HTML body and returns the page's title, language, robots
// directives and outlinks. contentType is the response's Content-Type (used
// for the charset), xRobotsTag the values of its X-Robots-Tag headers, and
// page the normalized page URL (from urlnorm.Parse; must not be nil).
//
// Extract never fails: whatever cannot be parsed is ignored, and hrefs that
// do not resolve to a valid http(s) URL are counted in Skipped. All strings
// in the result are valid UTF-8.
func Extract(body []byte, contentType string, xRobotsTag []string, page *url.URL) *Extracted {
	ex := &extractor{out: &Extracted{}}
	ex.out.NoFollow, ex.out.NoIndex = parseXRobotsTag(xRobotsTag)
	ex.tokenize(toUTF8(body, contentType))
	ex.resolve(page)
	return ex.out
}

// toUTF8 transcodes body to UTF-8 when its charset (from Content-Type, BOM or
// <meta charset> prescan) is anything else. With no declaration at all the
// HTML spec's fallback is windows-1252, but a body that is valid UTF-8 is
// far more likely UTF-8 today, so it is kept as is.
func toUTF8(body []byte, contentType string) []byte {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if enc == nil || name == "utf-8" || (!certain && name == "windows-1252" && utf8.Valid(body)) {
		return body
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		// Decoders substitute U+FFFD rather than fail; keep the bytes we
		// have if one fails anyway.
		return body
	}
	return out
}

// pendingLink is a link as found in the document. URLs are resolved only at
// the end, because a <base href> after the link still applies to it.
type pendingLink struct {
	href   string
	typ    linkgraphv1.LinkType
	anchor string
	rel    []string
}

// extractor holds the state of one Extract call.
type extractor struct {
	out   *Extracted
	links []pendingLink

	baseSeen bool // the first <base href> was seen; later ones are ignored
	baseHref string
	langSeen bool

	titleSeen bool // only the first <title> counts
	inTitle   bool // the next text token is the first title's text
	title     folder
	svgDepth  int // <title> inside <svg> is not the document title

	// The open <a href>, whose descendant text is collected.
	inAnchor  bool
	anchorIdx int // index in links
	anchor    folder
	hasImg    bool
	imgAlt    string // folded alt of the first <img> with a non-empty one

	scratch folder // for alt attributes
}

// tokenize runs the tokenizer over the whole (UTF-8) body and collects the
// pending links, title, language and meta directives.
func (ex *extractor) tokenize(body []byte) {
	z := html.NewTokenizer(bytes.NewReader(body))
	skipText := false // the next text token is the content of <script>/<style>
	var nameBuf [maxTagName]byte
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// io.EOF or a read error: both just end the document.
			ex.finishTitle()
			ex.closeAnchor()
			return

		case html.TextToken:
			if skipText || (!ex.inTitle && !ex.inAnchor) {
				break // Text() unescapes; skip it when nobody wants the text
			}
			text := z.Text()
			if ex.inTitle {
				ex.title.write(text)
			}
			if ex.inAnchor {
				ex.anchor.write(text)
			}

		case html.StartTagToken, html.SelfClosingTagToken:
			// HTML ignores the self-closing flag on non-void elements, so
			// "<a/>" opens an <a> like "<a>" does.
			ex.finishTitle()
			skipText = ex.startTag(z, tt, rawTagName(z.Raw(), &nameBuf))

		case html.EndTagToken:
			ex.finishTitle()
			switch string(rawTagName(z.Raw(), &nameBuf)) {
			case "a":
				ex.closeAnchor()
			case "svg":
				if ex.svgDepth > 0 {
					ex.svgDepth--
				}
			}
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			skipText = false
		}
	}
}

// maxTagName is the length of the longest tag name startTag handles.
const maxTagName = len("noscript")

// rawTagName returns the lowercased name of the tag in raw ("<Name ...>" or
// "</Name ...>"), written into buf, or nil for names longer than buf: none
// of those matter here. It replaces Tokenizer.TagName, which allocates a
// copy of the name for every tag.
func rawTagName(raw []byte, buf *[maxTagName]byte) []byte {
	raw = bytes.TrimPrefix(raw, []byte("<"))
	raw = bytes.TrimPrefix(raw, []byte("/"))
	n := 0
	for _, c := range raw {
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '/' || c == '>' {
			break
		}
		if n == len(buf) {
			return nil
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	return buf[:n]
}

// startTag handles a start tag and reports whether the text token that
// follows it must be ignored (raw text of <script> and <style>).
func (ex *extractor) startTag(z *html.Tokenizer, tt html.TokenType, name []byte) (skipText bool) {
	switch string(name) {
	case "a":
		// A new <a> closes the open one, as the HTML parser does.
		ex.closeAnchor()
		at := readAttrs(z)
		if !at.has(attrHref) {
			return false
		}
		ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_A, "", parseRel(at.rel))
		ex.inAnchor, ex.anchorIdx = true, len(ex.links)-1
		ex.anchor.reset(MaxAnchorBytes)
		ex.hasImg, ex.imgAlt = false, ""

	case "img":
		if !ex.inAnchor {
			return false
		}
		ex.hasImg = true
		if ex.imgAlt == "" {
			ex.imgAlt = ex.fold(readAttrs(z).alt, MaxAnchorBytes)
		}

	case "area":
		at := readAttrs(z)
		if at.has(attrHref) {
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_AREA, ex.fold(at.alt, MaxAnchorBytes), parseRel(at.rel))
		}

	case "frame":
		if at := readAttrs(z); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_FRAME, "", nil)
		}

	case "iframe":
		if at := readAttrs(z); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_IFRAME, "", nil)
		}

	case "link":
		at := readAttrs(z)
		if !at.has(attrHref) {
			return false
		}
		rel := parseRel(at.rel)
		switch {
		case slices.Contains(rel, "canonical"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_CANONICAL, "", rel)
		case slices.Contains(rel, "alternate"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_ALTERNATE, "", rel)
		}

	case "meta":
		ex.meta(readAttrs(z))

	case "base":
		if ex.baseSeen {
			return false
		}
		if at := readAttrs(z); at.has(attrHref) {
			ex.baseSeen, ex.baseHref = true, at.href
		}

	case "html":
		if ex.langSeen {
			return false
		}
		if at := readAttrs(z); at.has(attrLang) {
			ex.langSeen = true
			ex.out.Lang = strings.ToLower(strings.Trim(strings.ToValidUTF8(at.lang, "\uFFFD"), asciiSpace))
		}

	case "title":
		if ex.svgDepth == 0 && !ex.titleSeen {
			ex.titleSeen, ex.inTitle = true, true
			ex.title.reset(MaxTitleBytes)
		}

	case "svg":
		if tt == html.StartTagToken {
			ex.svgDepth++
		}

	case "script", "style":
		return true

	case "noscript":
		// The tokenizer treats <noscript> content as text, as a browser
		// running scripts would; a crawler does not run scripts, so parse
		// the links inside like a browser with scripting disabled.
		z.NextIsNotRawText()
	}
	return false
}

// finishTitle ends the collection of the title text: <title> content is a
// single raw text token, so any other token ends it.
func (ex *extractor) finishTitle() {
	if ex.inTitle {
		ex.inTitle = false
		ex.out.Title = ex.title.String()
	}
}

// closeAnchor finishes the open <a href>, if any, and sets its type and
// anchor text.
func (ex *extractor) closeAnchor() {
	if !ex.inAnchor {
		return
	}
	ex.inAnchor = false
	l := &ex.links[ex.anchorIdx]
	l.anchor = ex.anchor.String()
	if ex.hasImg {
		l.typ = linkgraphv1.LinkType_LINK_TYPE_IMG
		if ex.imgAlt != "" {
			l.anchor = ex.imgAlt
		}
	}
}

func (ex *extractor) addLink(href string, typ linkgraphv1.LinkType, anchor string, rel []string) {
	ex.links = append(ex.links, pendingLink{href: href, typ: typ, anchor: anchor, rel: rel})
}

// meta handles <meta http-equiv=refresh> and <meta name=robots|linkgraph>.
func (ex *extractor) meta(at tagAttrs) {
	if !at.has(attrContent) {
		return
	}
	if strings.EqualFold(strings.Trim(at.httpEquiv, asciiSpace), "refresh") {
		if u, ok := refreshURL(at.content); ok {
			ex.addLink(u, linkgraphv1.LinkType_LINK_TYPE_META_REFRESH, "", nil)
		}
	}
	name := strings.Trim(at.name, asciiSpace)
	if strings.EqualFold(name, "robots") || strings.EqualFold(name, "linkgraph") {
		nofollow, noindex := parseRobotsTokens(at.content)
		ex.out.NoFollow = ex.out.NoFollow || nofollow
		ex.out.NoIndex = ex.out.NoIndex || noindex
	}
}

func (ex *extractor) fold(s string, limit int) string {
	ex.scratch.reset(limit)
	ex.scratch.write([]byte(s))
	return ex.scratch.String()
}

// resolve turns the pending links into OutLinks: resolution against the
// base, self-link removal, deduplication and the per-page cap, in that order.
func (ex *extractor) resolve(page *url.URL) {
	pageURL, err := urlnorm.Resolve(page, "")
	if err != nil {
		pageURL = "" // no valid page URL: every relative link will fail too
	}
	base := page
	if ex.baseSeen {
		// An invalid <base href> is ignored: the page URL stays the base.
		if b, err := urlnorm.Resolve(page, ex.baseHref); err == nil {
			if bu, err := urlnorm.Parse(b); err == nil {
				base = bu
			}
		}
	}

	// A link is identified by (target, type, anchor), as in the index; a
	// repeat with other rel tokens is the same link, and the first wins.
	type key struct {
		url, anchor string
		typ         linkgraphv1.LinkType
	}
	seen := make(map[key]struct{}, len(ex.links))
	for _, l := range ex.links {
		u, err := urlnorm.Resolve(base, l.href)
		if err != nil {
			ex.out.Skipped++
			continue
		}
		if u == pageURL {
			continue // self links ("#top", "") are not links, nor skipped
		}
		k := key{url: u, anchor: l.anchor, typ: l.typ}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if len(ex.out.Links) >= MaxLinksPerPage {
			ex.out.Skipped++
			continue
		}
		ex.out.Links = append(ex.out.Links, &linkgraphv1.OutLink{
			Url:        u,
			AnchorText: l.anchor,
			Rel:        l.rel,
			Type:       l.typ,
		})
	}
}

// ---------------------------------------------------------------------------
// Attribute and header parsing.

const asciiSpace = " \t\n\f\r"

// tagAttrs holds the attributes Extract reads, for the current tag.
type tagAttrs struct {
	href, src, rel, alt, lang, name, httpEquiv, content string
	present                                             uint8 // attr* bits
}

const (
	attrHref uint8 = 1 << iota
	attrSrc
	attrRel
	attrAlt
	attrLang
	attrName
	attrHTTPEquiv
	attrContent
)

func (a *tagAttrs) has(bit uint8) bool { return a.present&bit != 0 }

// readAttrs reads the current tag's attributes. Only the first of duplicate
// attributes counts, as in the HTML parser; values of attributes Extract
// does not use are never copied.
func readAttrs(z *html.Tokenizer) tagAttrs {
	var a tagAttrs
	for {
		key, val, more := z.TagAttr()
		if key == nil {
			return a
		}
		var dst *string
		var bit uint8
		switch string(key) {
		case "href":
			dst, bit = &a.href, attrHref
		case "src":
			dst, bit = &a.src, attrSrc
		case "rel":
			dst, bit = &a.rel, attrRel
		case "alt":
			dst, bit = &a.alt, attrAlt
		case "lang":
			dst, bit = &a.lang, attrLang
		case "name":
			dst, bit = &a.name, attrName
		case "http-equiv":
			dst, bit = &a.httpEquiv, attrHTTPEquiv
		case "content":
			dst, bit = &a.content, attrContent
		}
		if dst != nil && !a.has(bit) {
			*dst, a.present = string(val), a.present|bit
		}
		if !more {
			return a
		}
	}
}

// parseRel splits a rel attribute on ASCII whitespace into lowercased tokens
// without duplicates, in document order; nil if there are none.
func parseRel(v string) []string {
	var rel []string
	for _, tok := range strings.FieldsFunc(v, isASCIISpace) {
		if !isLowerASCII(tok) {
			tok = strings.ToLower(strings.ToValidUTF8(tok, "\uFFFD"))
		}
		if !slices.Contains(rel, tok) {
			rel = append(rel, tok)
		}
	}
	return rel
}

// isLowerASCII reports whether s has only ASCII bytes and no uppercase
// letter, the common case that needs no copy.
func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

func isASCIISpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r'
}

// parseRobotsTokens reads a comma-separated robots directive list.
func parseRobotsTokens(s string) (nofollow, noindex bool) {
	for tok := range strings.SplitSeq(s, ",") {
		switch strings.ToLower(strings.TrimSpace(tok)) {
		case "nofollow":
			nofollow = true
		case "noindex":
			noindex = true
		case "none":
			nofollow, noindex = true, true
		}
	}
	return nofollow, noindex
}

// parseXRobotsTag reads X-Robots-Tag values. A value "botname: tokens"
// applies only when botname is "linkgraph"; a value without a bot name
// applies always.
func parseXRobotsTag(values []string) (nofollow, noindex bool) {
	for _, v := range values {
		if bot, rest, ok := strings.Cut(v, ":"); ok && isBotName(strings.TrimSpace(bot)) {
			if !strings.EqualFold(strings.TrimSpace(bot), "linkgraph") {
				continue
			}
			v = rest
		}
		f, i := parseRobotsTokens(v)
		nofollow, noindex = nofollow || f, noindex || i
	}
	return nofollow, noindex
}

// isBotName reports whether the text before a ':' in an X-Robots-Tag value
// is a user-agent name rather than part of a directive list: a single word
// that is not one of the directives that themselves take a ':' value
// ("unavailable_after: 25 Jun 2010 15:00:00 PST", "max-snippet: 20").
func isBotName(s string) bool {
	if s == "" || strings.ContainsAny(s, ", \t") {
		return false
	}
	switch strings.ToLower(s) {
	case "unavailable_after", "max-snippet", "max-image-preview", "max-video-preview":
		return false
	}
	return true
}

// refreshURL extracts the URL of a <meta http-equiv=refresh> content value,
// following the HTML "shared declarative refresh steps": "5; url=/next",
// "5;URL='/next'", "0; /next". ok is false when there is no URL (a plain
// reload) or the value does not parse.
func refreshURL(content string) (u string, ok bool) {
	s := content
	i := 0
	skipSpace := func() {
		for i < len(s) && strings.IndexByte(asciiSpace, s[i]) >= 0 {
			i++
		}
	}
	skipSpace()
	start := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == start && (i == len(s) || s[i] != '.') {
		return "", false
	}
	for i < len(s) && ('0' <= s[i] && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == len(s) {
		return "", false
	}
	if c := s[i]; c != ';' && c != ',' && strings.IndexByte(asciiSpace, c) < 0 {
		return "", false
	}
	skipSpace()
	if i < len(s) && (s[i] == ';' || s[i] == ',') {
		i++
	}
	skipSpace()
	if i == len(s) {
		return "", false
	}

	urlStart := i
	if i+3 <= len(s) && strings.EqualFold(s[i:i+3], "url") {
		j := i + 3
		for j < len(s) && strings.IndexByte(asciiSpace, s[j]) >= 0 {
			j++
		}
		if j == len(s) || s[j] != '=' {
			// "url" not followed by '=' is the start of the URL itself.
			return s[urlStart:], true
		}
		i = j + 1
		skipSpace()
	} else if s[i] == 'u' || s[i] == 'U' {
		// The spec jumps straight to parsing when "url=" is incomplete.
		return s[urlStart:], true
	}
	if i < len(s) && (s[i] == '\'' || s[i] == '"') {
		quote := s[i]
		rest := s[i+1:]
		if j := strings.IndexByte(rest, quote); j >= 0 {
			rest = rest[:j]
		}
		return rest, true
	}
	return s[i:], true
}

// ---------------------------------------------------------------------------
// Text folding.

// folder accumulates text the way Extract reports it: as if the whole text
// were passed through strings.ToValidUTF8(s, "\uFFFD"), then every run of
// Unicode whitespace replaced by one space and the ends trimmed, then cut to
// at most limit bytes on a rune boundary. It works incrementally over the
// text tokens and stops storing once the limit is passed, so a huge anchor
// costs no memory.
type folder struct {
	buf     []byte
	limit   int
	space   bool // whitespace seen after the last stored rune
	invalid bool // inside a run of invalid UTF-8 (one U+FFFD already stored)
	// carry holds an incomplete UTF-8 sequence at the end of the last
	// write, which the next write may complete.
	carry []byte
}

func (f *folder) reset(limit int) {
	f.buf, f.limit, f.space, f.invalid, f.carry = f.buf[:0], limit, false, false, nil
}

func (f *folder) write(p []byte) {
	if len(f.carry) > 0 {
		// Rare: the previous text ended inside a UTF-8 sequence.
		joined := append(f.carry, p...)
		f.carry = nil
		p = joined
	}
	for i := 0; i < len(p); {
		if f.full() {
			return
		}
		c := p[i]
		if c < utf8.RuneSelf {
			f.invalid = false
			if c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' {
				f.space = true
			} else {
				f.store(p[i : i+1])
			}
			i++
			continue
		}
		if !utf8.FullRune(p[i:]) {
			// Possibly the start of a rune that the next text completes.
			f.carry = append([]byte(nil), p[i:]...)
			return
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if !f.invalid {
				f.invalid = true
				f.store([]byte("\uFFFD"))
			}
		case unicode.IsSpace(r):
			f.invalid = false
			f.space = true
		default:
			f.invalid = false
			f.store(p[i : i+size])
		}
		i += size
	}
}

// full reports whether more text can no longer change the result.
func (f *folder) full() bool { return len(f.buf) > f.limit }

// store appends a non-space rune, preceded by a space if whitespace came
// between it and the previous one.
func (f *folder) store(r []byte) {
	if f.space && len(f.buf) > 0 {
		f.buf = append(f.buf, ' ')
	}
	f.space = false
	f.buf = append(f.buf, r...)
}

// String returns the folded text.
func (f *folder) String() string {
	if len(f.carry) > 0 {
		// An incomplete sequence at the very end is invalid UTF-8.
		if !f.invalid && !f.full() {
			f.store([]byte("\uFFFD"))
		}
		f.carry = nil
	}
	b := f.buf
	if len(b) > f.limit {
		n := f.limit
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	return string(b)
}
