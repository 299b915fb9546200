// Link extraction: Extract reads an HTML body with the streaming tokenizer
// of golang.org/x/net/html (no DOM is built) and returns the page's title,
// language, robots directives and outlinks, with every link resolved and
// normalized by internal/urlnorm. (The package documentation is in
// worker.go.)

package crawler

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"

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

// pendingLink is a link as found in the document. URLs are resolved only at
// the end, because a <base href> after the link still applies to it.
type pendingLink struct {
	href   string // replaced by the resolved URL in resolve
	typ    linkgraphv1.LinkType
	anchor string
	rel    []string
}

// linkKey identifies a link for deduplication: (target, type, anchor), as in
// the index; a repeat with other rel tokens is the same link.
type linkKey struct {
	url, anchor string
	typ         linkgraphv1.LinkType
}

// extractor holds the state of one Extract call. Extractors are pooled; only
// their buffers survive from one page to the next (see reset).
type extractor struct {
	out   *Extracted
	z     tokenizer
	links []pendingLink
	// rels is the backing array of the links' rel slices. It is not reused:
	// the slices end up in the result.
	rels []string

	baseSeen bool // the first <base href> was seen; later ones are ignored
	baseHref string
	// enc is the page's charset when it is not UTF-8, for the queries of
	// its links (see queryInCharset).
	enc      encoding.Encoding
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
	// An inline <svg>'s <title> names an icon but is not rendered, so its
	// text is kept apart and used only by a link with no other text.
	inSVGTitle bool // the next text token is an <svg> <title>'s in the open <a>
	svgTitle   folder

	scratch  folder // for alt attributes
	textBuf  []byte // text tokens with '\r'
	unescBuf []byte // unescaped text tokens
	valBuf   []byte // converted attribute values of the current tag
	xnet     xnetTags
	seen     map[linkKey]struct{}
}

var extractorPool = sync.Pool{New: func() any { return new(extractor) }}

// Larger buffers are dropped rather than kept in the pool.
const (
	maxPooledLinks = 4096
	maxPooledBytes = 64 << 10
)

// reset clears the per-page state, keeping the buffers.
func (ex *extractor) reset() {
	clear(ex.links)
	links := ex.links[:0]
	if cap(links) > maxPooledLinks {
		links = nil
	}
	seen := ex.seen
	if len(seen) > maxPooledLinks {
		seen = nil
	}
	clear(seen)
	ex.z.reset(nil)
	*ex = extractor{
		z:        ex.z,
		links:    links,
		title:    folder{buf: ex.title.buf[:0]},
		anchor:   folder{buf: ex.anchor.buf[:0]},
		svgTitle: folder{buf: ex.svgTitle.buf[:0]},
		scratch:  folder{buf: ex.scratch.buf[:0]},
		textBuf:  poolable(ex.textBuf),
		unescBuf: poolable(ex.unescBuf),
		valBuf:   poolable(ex.valBuf),
		xnet:     ex.xnet,
		seen:     seen,
	}
}

func poolable(b []byte) []byte {
	if cap(b) > maxPooledBytes {
		return nil
	}
	return b[:0]
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
	ex := extractorPool.Get().(*extractor)
	out := &Extracted{}
	ex.out = out
	out.NoFollow, out.NoIndex = parseXRobotsTag(xRobotsTag)
	body, ex.enc = toUTF8(body, contentType)
	ex.tokenize(body)
	ex.resolve(page)
	ex.reset() // no references to this page stay in the pool
	extractorPool.Put(ex)
	return out
}

// toUTF8 transcodes body to UTF-8 when its charset (from Content-Type, BOM or
// <meta charset> prescan) is anything else. With no declaration at all the
// HTML spec's fallback is windows-1252, but a body that is valid UTF-8 is
// far more likely UTF-8 today, so it is kept as is. It returns the
// charset it decoded, nil when the body was kept.
func toUTF8(body []byte, contentType string) ([]byte, encoding.Encoding) {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if enc == nil || name == "utf-8" || (!certain && name == "windows-1252" && utf8.Valid(body)) {
		return body, nil
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		// Decoders substitute U+FFFD rather than fail; keep the bytes we
		// have if one fails anyway.
		return body, nil
	}
	return out, enc
}

// queryInCharset percent-encodes the non-ASCII characters of href's query
// in the page's charset enc, as browsers do (the URL Standard's encoding
// override: only the query; the path is always UTF-8). A Shift_JIS page's
// "?q=日本" is requested as ?q=%93%FA%96{, and a server expecting that
// would not understand the UTF-8 bytes: the link's target would be
// another URL than the one its readers follow. A character enc cannot
// encode becomes a decimal character reference, as in a browser.
func queryInCharset(href string, enc encoding.Encoding) string {
	q := strings.IndexByte(href, '?')
	if q < 0 || strings.IndexByte(href[:q], '#') >= 0 {
		return href
	}
	end := len(href)
	if h := strings.IndexByte(href[q:], '#'); h >= 0 {
		end = q + h
	}
	query := href[q+1 : end]
	if !strings.ContainsFunc(query, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return href
	}
	e := enc.NewEncoder()
	var b strings.Builder
	b.WriteString(href[:q+1])
	for _, r := range query {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		raw, err := e.String(string(r))
		if ref := strconv.Itoa(int(r)); err != nil || raw == "&#"+ref+";" {
			// Not in the charset: htmlindex's encoders write the reference
			// themselves, others fail.
			b.WriteString("%26%23" + ref + "%3B")
			continue
		}
		for i := range len(raw) {
			// A multi-byte character may end in an ASCII byte (本 is
			// 0x96 '{'), encoded only if the query's set says so.
			if c := raw[i]; c >= utf8.RuneSelf || c <= ' ' || c == '"' || c == '#' || c == '<' || c == '>' || c == '\'' {
				fmt.Fprintf(&b, "%%%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteString(href[end:])
	return b.String()
}

// tokenize runs the tokenizer over the whole (UTF-8) body and collects the
// pending links, title, language and meta directives.
func (ex *extractor) tokenize(body []byte) {
	z := &ex.z
	z.reset(body)
	skipText := false // the next text token is the content of <script>/<style>
	var nameBuf [maxTagName]byte
	for {
		tt := z.next()
		switch tt {
		case html.ErrorToken:
			// The end of the body.
			ex.finishTitle()
			ex.closeAnchor()
			return

		case html.TextToken:
			if skipText || (!ex.inTitle && !ex.inAnchor) {
				break // text() converts; skip it when nobody wants the text
			}
			text := ex.text()
			if ex.inTitle {
				ex.title.write(text)
			}
			if ex.inSVGTitle {
				ex.svgTitle.write(text)
			} else if ex.inAnchor {
				ex.anchor.write(text)
			}

		case html.StartTagToken, html.SelfClosingTagToken:
			// HTML ignores the self-closing flag on non-void elements, so
			// "<a/>" opens an <a> like "<a>" does.
			ex.finishTitle()
			skipText = ex.startTag(tt, z.tagName(&nameBuf))

		case html.EndTagToken:
			ex.finishTitle()
			switch name := z.tagName(&nameBuf); string(name) {
			case "a":
				ex.closeAnchor()
			case "svg":
				if ex.svgDepth > 0 {
					ex.svgDepth--
				}
			default:
				if ex.inAnchor && breaksWords(name) {
					ex.anchor.boundary()
				}
			}
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			skipText = false
		}
	}
}

// text returns the current text token's text as html.Tokenizer.Text does:
// "\r\n" and "\r" become "\n", NUL becomes U+FFFD in raw text, character
// references are decoded except in raw text (<script>, <style>, ...). It
// never writes to the body.
func (ex *extractor) text() []byte {
	z := &ex.z
	s := z.buf[z.data.start:z.data.end]
	if bytes.IndexByte(s, '\r') >= 0 {
		ex.textBuf = append(ex.textBuf[:0], s...)
		s = convertNewlines(ex.textBuf)
	}
	if z.convertNUL && bytes.IndexByte(s, 0) >= 0 {
		s = bytes.ReplaceAll(s, []byte("\x00"), []byte("\uFFFD"))
	}
	if !z.textIsRaw && bytes.IndexByte(s, '&') >= 0 {
		if u, ok := appendUnescaped(ex.unescBuf[:0], s, false); ok {
			ex.unescBuf, s = u, u
		} else {
			s = []byte(html.UnescapeString(string(s)))
		}
	}
	return s
}

// convertNewlines converts "\r" and "\r\n" in s to "\n", in place
// (html.Tokenizer does the same to text and attribute values).
func convertNewlines(s []byte) []byte {
	w := 0
	for r := 0; r < len(s); r++ {
		c := s[r]
		if c == '\r' {
			c = '\n'
			if r+1 < len(s) && s[r+1] == '\n' {
				r++
			}
		}
		s[w] = c
		w++
	}
	return s[:w]
}

// maxTagName is the length of the longest tag name startTag and
// breaksWords handle.
const maxTagName = len("figcaption")

// tagName returns the ASCII-lowercased name of the current tag, written
// into buf, or nil for names longer than buf: none of those matter here.
// (html.Tokenizer.TagName also replaces NUL with U+FFFD, which makes no
// difference to names compared with ASCII ones.)
func (z *tokenizer) tagName(buf *[maxTagName]byte) []byte {
	name := z.buf[z.data.start:z.data.end]
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(name)]
}

// startTag handles a start tag and reports whether the text token that
// follows it must be ignored (raw text of <script> and <style>).
func (ex *extractor) startTag(tt html.TokenType, name []byte) (skipText bool) {
	switch string(name) {
	case "a":
		// A new <a> closes the open one, as the HTML parser does.
		ex.closeAnchor()
		at := ex.readAttrs()
		if !at.has(attrHref) {
			return false
		}
		ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_A, "", ex.parseRel(at.rel))
		ex.inAnchor, ex.anchorIdx = true, len(ex.links)-1
		ex.anchor.reset(MaxAnchorBytes)
		ex.svgTitle.reset(MaxAnchorBytes)
		ex.hasImg, ex.imgAlt = false, ""

	case "img":
		if !ex.inAnchor {
			return false
		}
		ex.hasImg = true
		if ex.imgAlt == "" {
			ex.imgAlt = ex.fold(ex.readAttrs().alt, MaxAnchorBytes)
		}

	case "area":
		at := ex.readAttrs()
		if at.has(attrHref) {
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_AREA, ex.fold(at.alt, MaxAnchorBytes), ex.parseRel(at.rel))
		}

	case "frame":
		if at := ex.readAttrs(); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_FRAME, "", nil)
		}

	case "iframe":
		if at := ex.readAttrs(); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_IFRAME, "", nil)
		}

	case "link":
		at := ex.readAttrs()
		if !at.has(attrHref) {
			return false
		}
		mark := len(ex.rels)
		rel := ex.parseRel(at.rel)
		switch {
		case slices.Contains(rel, "canonical"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_CANONICAL, "", rel)
		case slices.Contains(rel, "alternate"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_ALTERNATE, "", rel)
		default:
			ex.rels = ex.rels[:mark] // rel is not kept
		}

	case "meta":
		ex.meta(ex.readAttrs())

	case "base":
		if ex.baseSeen {
			return false
		}
		if at := ex.readAttrs(); at.has(attrHref) {
			ex.baseSeen, ex.baseHref = true, string(at.href)
		}

	case "html":
		if ex.langSeen {
			return false
		}
		if at := ex.readAttrs(); at.has(attrLang) {
			ex.langSeen = true
			ex.out.Lang = strings.ToLower(strings.Trim(strings.ToValidUTF8(string(at.lang), "\uFFFD"), asciiSpace))
		}

	case "title":
		if ex.svgDepth == 0 && !ex.titleSeen {
			ex.titleSeen, ex.inTitle = true, true
			ex.title.reset(MaxTitleBytes)
		}
		if ex.svgDepth > 0 && ex.inAnchor {
			ex.inSVGTitle = true
			ex.svgTitle.boundary()
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
		ex.z.nextIsNotRawText()

	default:
		if ex.inAnchor && breaksWords(name) {
			ex.anchor.boundary()
		}
	}
	return false
}

// breaksWords reports whether a start or end tag with this (lowercased)
// name separates the text before it from the text after it when rendered:
// <br> and the elements the HTML rendering model (WHATWG HTML 15.3) lays
// out as blocks, list items, table rows or cells. Inline elements do not,
// so "foo<b>bar</b>" stays one word. </br> and </p> count too, because the
// parser turns them into a <br> and an empty <p>.
func breaksWords(name []byte) bool {
	switch string(name) {
	case "br", "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "menu", "dir",
		"h1", "h2", "h3", "h4", "h5", "h6", "hgroup", "hr", "pre", "listing", "xmp", "plaintext",
		"blockquote", "address", "center", "figure", "figcaption", "main", "search",
		"article", "aside", "section", "nav", "header", "footer", "form", "fieldset", "legend",
		"details", "summary", "dialog",
		"table", "caption", "thead", "tbody", "tfoot", "tr", "td", "th":
		return true
	}
	return false
}

// finishTitle ends the collection of the title text: <title> content is a
// single raw text token, so any other token ends it.
func (ex *extractor) finishTitle() {
	ex.inSVGTitle = false
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
	if l.anchor == "" {
		l.anchor = ex.svgTitle.String()
	}
	if ex.hasImg {
		l.typ = linkgraphv1.LinkType_LINK_TYPE_IMG
		if ex.imgAlt != "" {
			l.anchor = ex.imgAlt
		}
	}
}

// addLink adds a pending link; href is copied.
func (ex *extractor) addLink(href []byte, typ linkgraphv1.LinkType, anchor string, rel []string) {
	ex.links = append(ex.links, pendingLink{href: string(href), typ: typ, anchor: anchor, rel: rel})
}

// meta handles <meta http-equiv=refresh> and <meta name=robots|linkgraph>.
func (ex *extractor) meta(at tagAttrs) {
	if !at.has(attrContent) {
		return
	}
	if bytes.EqualFold(bytes.Trim(at.httpEquiv, asciiSpace), []byte("refresh")) {
		if u, ok := refreshURL(string(at.content)); ok {
			ex.addLink([]byte(u), linkgraphv1.LinkType_LINK_TYPE_META_REFRESH, "", nil)
		}
	}
	name := bytes.Trim(at.name, asciiSpace)
	if bytes.EqualFold(name, []byte("robots")) || bytes.EqualFold(name, []byte("linkgraph")) {
		nofollow, noindex := parseRobotsTokens(string(at.content))
		ex.out.NoFollow = ex.out.NoFollow || nofollow
		ex.out.NoIndex = ex.out.NoIndex || noindex
	}
}

func (ex *extractor) fold(s []byte, limit int) string {
	ex.scratch.reset(limit)
	ex.scratch.write(s)
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
	if ex.seen == nil {
		ex.seen = make(map[linkKey]struct{}, len(ex.links))
	}
	r := urlnorm.NewResolver(base)
	kept := 0 // ex.links[:kept] are the kept links, href resolved
	for _, l := range ex.links {
		href := l.href
		if ex.enc != nil {
			href = queryInCharset(href, ex.enc)
		}
		u, err := r.Resolve(href)
		if err != nil {
			ex.out.Skipped++
			continue
		}
		if u == pageURL {
			continue // self links ("#top", "") are not links, nor skipped
		}
		k := linkKey{url: u, anchor: l.anchor, typ: l.typ}
		if _, dup := ex.seen[k]; dup {
			continue
		}
		ex.seen[k] = struct{}{}
		if kept >= MaxLinksPerPage {
			ex.out.Skipped++
			continue
		}
		l.href = u
		ex.links[kept] = l
		kept++
	}
	if kept == 0 {
		return
	}
	// One allocation for all the OutLinks of the page.
	msgs := make([]linkgraphv1.OutLink, kept)
	ex.out.Links = make([]*linkgraphv1.OutLink, kept)
	for i, l := range ex.links[:kept] {
		m := &msgs[i]
		m.Url, m.AnchorText, m.Rel, m.Type = l.href, l.anchor, l.rel, l.typ
		ex.out.Links[i] = m
	}
}

// ---------------------------------------------------------------------------
// Attribute and header parsing.

const asciiSpace = " \t\n\f\r"

// tagAttrs holds the attributes Extract reads, for the current tag, as
// html.Tokenizer.TagAttr returns them (NUL replaced, newlines converted,
// character references decoded). The slices are valid until the next tag.
type tagAttrs struct {
	href, src, rel, alt, lang, name, httpEquiv, content []byte
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

// slot returns where the attribute named key (as in the document: any case)
// goes, or nil if Extract does not use it.
func (a *tagAttrs) slot(key []byte) (*[]byte, uint8) {
	switch len(key) {
	case 3:
		switch {
		case equalLowerASCII(key, "src"):
			return &a.src, attrSrc
		case equalLowerASCII(key, "rel"):
			return &a.rel, attrRel
		case equalLowerASCII(key, "alt"):
			return &a.alt, attrAlt
		}
	case 4:
		switch {
		case equalLowerASCII(key, "href"):
			return &a.href, attrHref
		case equalLowerASCII(key, "lang"):
			return &a.lang, attrLang
		case equalLowerASCII(key, "name"):
			return &a.name, attrName
		}
	case 7:
		if equalLowerASCII(key, "content") {
			return &a.content, attrContent
		}
	case 10:
		if equalLowerASCII(key, "http-equiv") {
			return &a.httpEquiv, attrHTTPEquiv
		}
	}
	return nil, 0
}

// equalLowerASCII reports whether b, ASCII-lowercased, is s.
func equalLowerASCII[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// readAttrs reads the current start tag's attributes. Only the first of
// duplicate attributes counts (the tokenizer drops the others, as the HTML
// parser does). Values are slices of the body unless they need converting.
func (ex *extractor) readAttrs() tagAttrs {
	var a tagAttrs
	z := &ex.z
	ex.valBuf = ex.valBuf[:0]
	for _, at := range z.attr {
		dst, bit := a.slot(z.buf[at[0].start:at[0].end])
		if dst == nil || a.has(bit) {
			continue
		}
		val := z.buf[at[1].start:at[1].end]
		if bytes.IndexByte(val, '&') >= 0 || bytes.IndexByte(val, '\r') >= 0 || bytes.IndexByte(val, 0) >= 0 {
			v, ok := ex.convertAttr(val)
			if !ok {
				return ex.readAttrsXNet()
			}
			val = v
		}
		*dst, a.present = val, a.present|bit
	}
	return a
}

// convertAttr converts an attribute value as html.Tokenizer.TagAttr does:
// NUL to U+FFFD, "\r\n" and "\r" to "\n", then character references decoded
// (attribute rules). ok is false if it meets a character reference it does
// not know; the caller then falls back to html.Tokenizer.
func (ex *extractor) convertAttr(val []byte) (v []byte, ok bool) {
	start := len(ex.valBuf)
	for i := 0; i < len(val); i++ {
		switch c := val[i]; c {
		case 0:
			ex.valBuf = append(ex.valBuf, "\uFFFD"...)
		case '\r':
			ex.valBuf = append(ex.valBuf, '\n')
			if i+1 < len(val) && val[i+1] == '\n' {
				i++
			}
		default:
			ex.valBuf = append(ex.valBuf, c)
		}
	}
	mid := len(ex.valBuf)
	ex.valBuf, ok = appendUnescaped(ex.valBuf, ex.valBuf[start:mid], true)
	if !ok {
		return nil, false
	}
	// The unescaped value follows the converted one; the buffer may have
	// moved, but both copies are in it.
	return ex.valBuf[mid:len(ex.valBuf):len(ex.valBuf)], true
}

// readAttrsXNet is readAttrs for the rare tags with an attribute value that
// convertAttr cannot convert: html.Tokenizer.TagAttr on the tag's raw bytes.
func (ex *extractor) readAttrsXNet() tagAttrs {
	var a tagAttrs
	z := ex.xnet.tokenizeTag(ex.z.rawBytes())
	if z == nil {
		return a // not reached: see tokenizeTag
	}
	for {
		key, val, more := z.TagAttr()
		if key == nil {
			return a
		}
		if dst, bit := a.slot(key); dst != nil && !a.has(bit) {
			*dst, a.present = val, a.present|bit
		}
		if !more {
			return a
		}
	}
}

// xnetTags runs an html.Tokenizer over single start tags, one at a time,
// reusing the tokenizer: it is its own input, fed one tag before each Next.
type xnetTags struct {
	z    *html.Tokenizer
	feed []byte
}

func (x *xnetTags) Read(p []byte) (int, error) {
	if len(x.feed) == 0 {
		return 0, io.EOF
	}
	n := copy(p, x.feed)
	x.feed = x.feed[n:]
	return n, nil
}

// tokenizeTag returns an html.Tokenizer positioned on the start tag raw (a
// whole start tag, as returned for a start tag token), ready for TagAttr.
// A start tag token always ends at its '>', so the tokenizer never reads
// past the tag and the next tag can be fed to the same tokenizer.
func (x *xnetTags) tokenizeTag(raw []byte) *html.Tokenizer {
	for range 2 {
		if x.z == nil {
			x.z = html.NewTokenizer(x)
		}
		x.feed = raw
		tt := x.z.Next()
		x.z.NextIsNotRawText() // <iframe>: the next tag is not its text
		done := len(x.feed) == 0
		x.feed = nil // an empty slice of the body would keep it alive in the pool
		if (tt == html.StartTagToken || tt == html.SelfClosingTagToken) && done && len(x.z.Buffered()) == 0 {
			return x.z
		}
		x.z = nil // out of step: start again with a new tokenizer
	}
	return nil
}

// parseRel splits a rel attribute on ASCII whitespace into lowercased tokens
// without duplicates, in document order; nil if there are none. The slice
// is carved out of ex.rels.
func (ex *extractor) parseRel(v []byte) []string {
	start := len(ex.rels)
	for i := 0; i < len(v); {
		for i < len(v) && isASCIISpaceByte(v[i]) {
			i++
		}
		j := i
		for j < len(v) && !isASCIISpaceByte(v[j]) {
			j++
		}
		if j > i {
			tok := relToken(v[i:j])
			if !slices.Contains(ex.rels[start:], tok) {
				ex.rels = append(ex.rels, tok)
			}
		}
		i = j
	}
	if len(ex.rels) == start {
		return nil
	}
	return ex.rels[start:len(ex.rels):len(ex.rels)]
}

// relToken returns tok lowercased, with invalid UTF-8 replaced; common
// tokens without allocating.
func relToken(tok []byte) string {
	var buf [16]byte
	lower := buf[:0]
	if len(tok) <= len(buf) {
		for _, c := range tok {
			if c >= utf8.RuneSelf {
				lower = nil
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower = append(lower, c)
		}
	} else {
		lower = nil
	}
	if lower == nil {
		return strings.ToLower(strings.ToValidUTF8(string(tok), "\uFFFD"))
	}
	switch string(lower) {
	case "nofollow":
		return "nofollow"
	case "noopener":
		return "noopener"
	case "noreferrer":
		return "noreferrer"
	case "sponsored":
		return "sponsored"
	case "ugc":
		return "ugc"
	case "canonical":
		return "canonical"
	case "alternate":
		return "alternate"
	case "external":
		return "external"
	case "stylesheet":
		return "stylesheet"
	case "icon":
		return "icon"
	case "author":
		return "author"
	case "bookmark":
		return "bookmark"
	case "tag":
		return "tag"
	case "me":
		return "me"
	case "next":
		return "next"
	case "prev":
		return "prev"
	case "help":
		return "help"
	case "license":
		return "license"
	case "home":
		return "home"
	}
	return string(lower)
}

func isASCIISpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// Character references that appendUnescaped decodes itself; all of them end
// in ';', so they mean the same in text and in attribute values, and
// TestKnownEntities checks them against html.UnescapeString.
var knownEntities = map[string]string{
	"amp;":  "&",
	"lt;":   "<",
	"gt;":   ">",
	"quot;": "\"",
	"apos;": "'",
	"nbsp;": "\u00a0",
}

// appendUnescaped appends s with character references decoded as
// golang.org/x/net/html does in text (attribute false) or in attribute
// values (attribute true). It handles the common references only: ok is
// false if s has a numeric reference or a named one that is not in
// knownEntities, where the caller must use x/net/html.
func appendUnescaped(dst, s []byte, attribute bool) (out []byte, ok bool) {
	for {
		i := bytes.IndexByte(s, '&')
		if i < 0 {
			return append(dst, s...), true
		}
		dst = append(dst, s[:i]...)
		s = s[i:]
		// As in x/net/html's unescapeEntity, s[0] == '&'.
		if len(s) <= 1 {
			return append(dst, '&'), true
		}
		if s[1] == '#' {
			if len(s) <= 2 {
				return append(dst, s...), true // "&#" at the end
			}
			return dst, false
		}
		n := 1
		for n < len(s) {
			c := s[n]
			n++
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				continue
			}
			if c != ';' {
				n--
			}
			break
		}
		name := s[1:n]
		switch {
		case len(name) == 0,
			attribute && name[len(name)-1] != ';' && n < len(s) && s[n] == '=':
			// Not a reference.
			dst = append(dst, '&')
			s = s[1:]
		default:
			r, known := knownEntities[string(name)]
			if !known {
				return dst, false
			}
			dst = append(dst, r...)
			s = s[n:]
		}
	}
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
// Tokenizer.
//
// tokenizer is the tokenizer of golang.org/x/net/html (token.go, v0.62.0;
// Copyright 2010 The Go Authors, BSD license) ported to a body held in
// memory: the same state machine, giving the same tokens with the same raw
// bytes, tag attributes and text, but without the io.Reader buffering (its
// readByte is a call per input byte) and without the two allocations per
// attribute that html.Tokenizer makes to drop duplicate attributes, which
// were half of Extract's allocations. Runs of bytes that the state machine
// only scans for one delimiter use bytes.IndexByte. CDATA sections are not
// recognized (html.Tokenizer's default: AllowCDATA is never called).
// FuzzTokenizer checks it token by token against html.Tokenizer.

type span struct{ start, end int }

type tokenizer struct {
	buf []byte
	// eof is html.Tokenizer's err != nil: io.EOF is the only error a body
	// in memory can give.
	eof bool
	tt  html.TokenType
	// buf[raw.start:raw.end] holds the raw bytes of the current token.
	raw span
	// buf[data.start:data.end] holds the current token's data: a text
	// token's text, a tag token's tag name, etc.
	data span
	// pendingAttr is the attribute key and value being tokenized; attr are
	// the current start tag's attributes, without duplicates.
	pendingAttr [2]span
	attr        [][2]span
	// attrKeys holds the lowercased keys of attr once a tag has many
	// attributes, so that dropping duplicates stays linear.
	attrKeys     map[string]struct{}
	attrKeysUsed bool
	keyBuf       []byte
	// rawTag is the lowercased name of the element whose raw text or
	// RCDATA comes next ("script", "title", ...), or "".
	rawTag     string
	textIsRaw  bool // the current text token is raw text: no references
	convertNUL bool // the current text token's NULs become U+FFFD
}

// manyAttrs is the attribute count from which readTag uses attrKeys.
const manyAttrs = 16

func (z *tokenizer) reset(body []byte) {
	attr, keys, keyBuf := z.attr[:0], z.attrKeys, z.keyBuf[:0]
	if cap(attr) > 1024 {
		attr = nil
	}
	if len(keys) > 1024 {
		keys = nil
	}
	clear(keys)
	if cap(keyBuf) > 1024 {
		keyBuf = nil
	}
	*z = tokenizer{buf: body, attr: attr, attrKeys: keys, keyBuf: keyBuf}
}

// rawBytes is html.Tokenizer.Raw.
func (z *tokenizer) rawBytes() []byte { return z.buf[z.raw.start:z.raw.end] }

// nextIsNotRawText is html.Tokenizer.NextIsNotRawText.
func (z *tokenizer) nextIsNotRawText() { z.rawTag = "" }

func (z *tokenizer) readByte() byte {
	if z.raw.end >= len(z.buf) {
		z.eof = true
		return 0
	}
	c := z.buf[z.raw.end]
	z.raw.end++
	return c
}

// skipTo advances past the next c, as a loop of readByte until c would;
// false (and eof) if there is none.
func (z *tokenizer) skipTo(c byte) bool {
	i := bytes.IndexByte(z.buf[z.raw.end:], c)
	if i < 0 {
		z.raw.end = len(z.buf)
		z.eof = true
		return false
	}
	z.raw.end += i + 1
	return true
}

func (z *tokenizer) skipWhiteSpace() {
	if z.eof {
		return
	}
	for {
		c := z.readByte()
		if z.eof {
			return
		}
		switch c {
		case ' ', '\n', '\r', '\t', '\f':
		default:
			z.raw.end--
			return
		}
	}
}

// readRawOrRCDATA reads until the next "</foo>", where "foo" is z.rawTag.
func (z *tokenizer) readRawOrRCDATA() {
	if z.rawTag == "script" {
		z.readScript()
		z.textIsRaw = true
		z.rawTag = ""
		return
	}
	for z.skipTo('<') {
		c := z.readByte()
		if z.eof {
			break
		}
		if c != '/' {
			z.raw.end--
			continue
		}
		if z.readRawEndTag() || z.eof {
			break
		}
	}
	z.data.end = z.raw.end
	// A textarea's or title's RCDATA can contain escaped entities.
	z.textIsRaw = z.rawTag != "textarea" && z.rawTag != "title"
	z.rawTag = ""
}

// readRawEndTag attempts to read a tag like "</foo>", where "foo" is
// z.rawTag. If it succeeds, it backs up the input position to reconsume the
// tag and returns true. The opening "</" has already been consumed.
func (z *tokenizer) readRawEndTag() bool {
	for i := 0; i < len(z.rawTag); i++ {
		c := z.readByte()
		if z.eof {
			return false
		}
		if c != z.rawTag[i] && c != z.rawTag[i]-('a'-'A') {
			z.raw.end--
			return false
		}
	}
	c := z.readByte()
	if z.eof {
		return false
	}
	switch c {
	case ' ', '\n', '\r', '\t', '\f', '/', '>':
		// The 3 is 2 for the leading "</" plus 1 for the trailing character c.
		z.raw.end -= 3 + len(z.rawTag)
		return true
	}
	z.raw.end--
	return false
}

// readScript reads until the next </script> tag, following the byzantine
// rules for escaping/hiding the closing tag.
func (z *tokenizer) readScript() {
	z.readScriptData()
	z.data.end = z.raw.end
}

func (z *tokenizer) readScriptData() {
	var c byte

scriptData:
	if !z.skipTo('<') {
		return
	}
	goto scriptDataLessThanSign

scriptDataLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '/':
		goto scriptDataEndTagOpen
	case '!':
		goto scriptDataEscapeStart
	}
	z.raw.end--
	goto scriptData

scriptDataEndTagOpen:
	if z.readRawEndTag() || z.eof {
		return
	}
	goto scriptData

scriptDataEscapeStart:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '-' {
		goto scriptDataEscapeStartDash
	}
	z.raw.end--
	goto scriptData

scriptDataEscapeStartDash:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '-' {
		goto scriptDataEscapedDashDash
	}
	z.raw.end--
	goto scriptData

scriptDataEscaped:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDash
	case '<':
		goto scriptDataEscapedLessThanSign
	}
	goto scriptDataEscaped

scriptDataEscapedDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDashDash
	case '<':
		goto scriptDataEscapedLessThanSign
	}
	goto scriptDataEscaped

scriptDataEscapedDashDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDashDash
	case '<':
		goto scriptDataEscapedLessThanSign
	case '>':
		goto scriptData
	}
	goto scriptDataEscaped

scriptDataEscapedLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		goto scriptDataEscapedEndTagOpen
	}
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
		goto scriptDataDoubleEscapeStart
	}
	z.raw.end--
	goto scriptData

scriptDataEscapedEndTagOpen:
	if z.readRawEndTag() || z.eof {
		return
	}
	goto scriptDataEscaped

scriptDataDoubleEscapeStart:
	z.raw.end--
	for i := 0; i < len("script"); i++ {
		c = z.readByte()
		if z.eof {
			return
		}
		if c != "script"[i] && c != "SCRIPT"[i] {
			z.raw.end--
			goto scriptDataEscaped
		}
	}
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case ' ', '\n', '\r', '\t', '\f', '/', '>':
		goto scriptDataDoubleEscaped
	}
	z.raw.end--
	goto scriptDataEscaped

scriptDataDoubleEscaped:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDashDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedDashDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDashDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	case '>':
		goto scriptData
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		goto scriptDataDoubleEscapeEnd
	}
	z.raw.end--
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapeEnd:
	if z.readRawEndTag() {
		z.raw.end += len("</script>")
		goto scriptDataEscaped
	}
	if z.eof {
		return
	}
	goto scriptDataDoubleEscaped
}

// readComment reads the next comment token starting with "<!--". The
// opening "<!--" has already been consumed.
func (z *tokenizer) readComment() {
	z.data.start = z.raw.end
	z.readCommentData()
	if z.data.end < z.data.start {
		// It's a comment with no data, like <!-->.
		z.data.end = z.data.start
	}
}

func (z *tokenizer) readCommentData() {
	var dashCount int
	beginning := true
	for {
		if dashCount == 0 && !beginning {
			// Only a '-' can change the state now: skip to it.
			if !z.skipTo('-') {
				z.data.end = z.calculateAbruptCommentDataEnd()
				return
			}
			dashCount = 1
			continue
		}
		c := z.readByte()
		if z.eof {
			z.data.end = z.calculateAbruptCommentDataEnd()
			return
		}
		switch c {
		case '-':
			dashCount++
			continue
		case '>':
			if dashCount >= 2 || beginning {
				z.data.end = z.raw.end - len("-->")
				return
			}
		case '!':
			if dashCount >= 2 {
				c = z.readByte()
				if z.eof {
					z.data.end = z.calculateAbruptCommentDataEnd()
					return
				} else if c == '>' {
					z.data.end = z.raw.end - len("--!>")
					return
				} else if c == '-' {
					dashCount = 1
					beginning = false
					continue
				}
			}
		}
		dashCount = 0
		beginning = false
	}
}

func (z *tokenizer) calculateAbruptCommentDataEnd() int {
	raw := z.rawBytes()
	const prefixLen = len("<!--")
	if len(raw) >= prefixLen {
		raw = raw[prefixLen:]
		if bytes.HasSuffix(raw, []byte("--!")) {
			return z.raw.end - 3
		} else if bytes.HasSuffix(raw, []byte("--")) {
			return z.raw.end - 2
		} else if bytes.HasSuffix(raw, []byte("-")) {
			return z.raw.end - 1
		}
	}
	return z.raw.end
}

// readUntilCloseAngle reads until the next ">".
func (z *tokenizer) readUntilCloseAngle() {
	z.data.start = z.raw.end
	if !z.skipTo('>') {
		z.data.end = z.raw.end
		return
	}
	z.data.end = z.raw.end - len(">")
}

// readMarkupDeclaration reads the next token starting with "<!". It might be
// a "<!--comment-->", a "<!DOCTYPE foo>" or "<!a bogus comment". The
// opening "<!" has already been consumed.
func (z *tokenizer) readMarkupDeclaration() html.TokenType {
	z.data.start = z.raw.end
	var c [2]byte
	for i := 0; i < 2; i++ {
		c[i] = z.readByte()
		if z.eof {
			// bogus comment
			z.data.end = z.raw.end
			if i == 1 && c[0] == '>' {
				z.data.end--
			}
			return html.CommentToken
		}
	}
	if c[0] == '-' && c[1] == '-' {
		z.readComment()
		return html.CommentToken
	}
	z.raw.end -= 2
	if z.readDoctype() {
		return html.DoctypeToken
	}
	// It's a bogus comment (CDATA sections are not allowed).
	z.readUntilCloseAngle()
	return html.CommentToken
}

// readDoctype attempts to read a doctype declaration and returns true if
// successful. The opening "<!" has already been consumed.
func (z *tokenizer) readDoctype() bool {
	const s = "DOCTYPE"
	for i := 0; i < len(s); i++ {
		c := z.readByte()
		if z.eof {
			// Back up to read the fragment of "DOCTYPE" again, reset
			// the error to signal EOF on the next call.
			z.raw.end = z.data.start
			z.eof = false
			return false
		}
		if c != s[i] && c != s[i]+('a'-'A') {
			// Back up to read the fragment of "DOCTYPE" again.
			z.raw.end = z.data.start
			return false
		}
	}
	if z.skipWhiteSpace(); z.eof {
		z.data.start = z.raw.end
		z.data.end = z.raw.end
		return true
	}
	z.readUntilCloseAngle()
	return true
}

// rawTextElement returns the lowercased name of the start tag in
// z.buf[z.data.start:z.data.end] if its content is raw text or RCDATA for
// the tokenizer, else "".
func (z *tokenizer) rawTextElement() string {
	name := z.buf[z.data.start:z.data.end]
	if len(name) == 0 {
		return ""
	}
	c := name[0]
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	var s1, s2, s3 string
	switch c {
	case 'i':
		s1 = "iframe"
	case 'n':
		s1, s2, s3 = "noembed", "noframes", "noscript"
	case 'p':
		s1 = "plaintext"
	case 's':
		s1, s2 = "script", "style"
	case 't':
		s1, s2 = "textarea", "title"
	case 'x':
		s1 = "xmp"
	default:
		return ""
	}
	switch {
	case equalLowerASCII(name, s1):
		return s1
	case s2 != "" && equalLowerASCII(name, s2):
		return s2
	case s3 != "" && equalLowerASCII(name, s3):
		return s3
	}
	return ""
}

// readStartTag reads the next start tag token. The opening "<a" has
// already been consumed, where 'a' means anything in [A-Za-z].
func (z *tokenizer) readStartTag() html.TokenType {
	z.readTag(true)
	if z.eof {
		return html.ErrorToken
	}
	// Several tags flag the tokenizer's next token as raw.
	if s := z.rawTextElement(); s != "" {
		z.rawTag = s
	}
	// Look for a self-closing token (e.g. <br/>): the last character before
	// the '>' is a '/' that does not end the last attribute's value
	// (<p a=/>).
	nAttrs := len(z.attr)
	if z.buf[z.raw.end-2] == '/' && (nAttrs == 0 || z.raw.end-2 != z.attr[nAttrs-1][1].end-1) {
		return html.SelfClosingTagToken
	}
	return html.StartTagToken
}

// readTag reads the next tag token and its attributes. If saveAttr, those
// attributes are saved in z.attr, otherwise z.attr is set to an empty
// slice. The opening "<a" or "</a" has already been consumed, where 'a'
// means anything in [A-Za-z].
func (z *tokenizer) readTag(saveAttr bool) {
	z.attr = z.attr[:0]
	if z.attrKeysUsed {
		clear(z.attrKeys)
		z.attrKeysUsed = false
	}
	// Read the tag name and attribute key/value pairs.
	z.readTagName()
	if z.skipWhiteSpace(); z.eof {
		return
	}
	for {
		c := z.readByte()
		if z.eof || c == '>' {
			break
		}
		z.raw.end--
		z.readTagAttrKey()
		z.readTagAttrVal()
		// Save pendingAttr if saveAttr and that attribute has a non-empty
		// key, and the key hasn't been seen before.
		if saveAttr && z.pendingAttr[0].start != z.pendingAttr[0].end {
			z.saveAttr()
		}
		if z.skipWhiteSpace(); z.eof {
			break
		}
	}
}

// saveAttr appends pendingAttr to attr unless an attribute with the same
// ASCII-lowercased key is there already.
func (z *tokenizer) saveAttr() {
	key := z.buf[z.pendingAttr[0].start:z.pendingAttr[0].end]
	if !z.attrKeysUsed {
		for _, a := range z.attr {
			if equalFoldASCII(z.buf[a[0].start:a[0].end], key) {
				return
			}
		}
		z.attr = append(z.attr, z.pendingAttr)
		if len(z.attr) == manyAttrs {
			if z.attrKeys == nil {
				z.attrKeys = make(map[string]struct{})
			}
			for _, a := range z.attr {
				z.keyBuf = appendLowerASCII(z.keyBuf[:0], z.buf[a[0].start:a[0].end])
				z.attrKeys[string(z.keyBuf)] = struct{}{}
			}
			z.attrKeysUsed = true
		}
		return
	}
	z.keyBuf = appendLowerASCII(z.keyBuf[:0], key)
	if _, dup := z.attrKeys[string(z.keyBuf)]; dup {
		return
	}
	z.attrKeys[string(z.keyBuf)] = struct{}{}
	z.attr = append(z.attr, z.pendingAttr)
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		c, d := a[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func appendLowerASCII(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// readTagName sets z.data to the "div" in "<div k=v>". The first byte of
// the tag name (the "d" in "<div") has already been consumed.
func (z *tokenizer) readTagName() {
	z.data.start = z.raw.end - 1
	for {
		c := z.readByte()
		if z.eof {
			z.data.end = z.raw.end
			return
		}
		switch c {
		case ' ', '\n', '\r', '\t', '\f':
			z.data.end = z.raw.end - 1
			return
		case '/', '>':
			z.raw.end--
			z.data.end = z.raw.end
			return
		}
	}
}

// readTagAttrKey sets z.pendingAttr[0] to the "k" in "<div k=v>".
// Precondition: !z.eof.
func (z *tokenizer) readTagAttrKey() {
	z.pendingAttr[0].start = z.raw.end
	for {
		c := z.readByte()
		if z.eof {
			z.pendingAttr[0].end = z.raw.end
			return
		}
		switch c {
		case '=':
			if z.pendingAttr[0].start+1 == z.raw.end {
				// WHATWG 13.2.5.32, if we see an equals sign before the
				// attribute name begins, we treat it as a character in the
				// attribute name and continue.
				continue
			}
			fallthrough
		case ' ', '\n', '\r', '\t', '\f', '/', '>':
			// WHATWG 13.2.5.33 Attribute name state: reconsume the char
			// in the after attribute name state.
			z.raw.end--
			z.pendingAttr[0].end = z.raw.end
			return
		}
	}
}

// readTagAttrVal sets z.pendingAttr[1] to the "v" in "<div k=v>".
func (z *tokenizer) readTagAttrVal() {
	z.pendingAttr[1].start = z.raw.end
	z.pendingAttr[1].end = z.raw.end
	if z.skipWhiteSpace(); z.eof {
		return
	}
	c := z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		// WHATWG 13.2.5.34 After attribute name state: U+002F SOLIDUS (/)
		// switches to the self-closing start tag state.
		return
	}
	if c != '=' {
		z.raw.end--
		return
	}
	if z.skipWhiteSpace(); z.eof {
		return
	}
	quote := z.readByte()
	if z.eof {
		return
	}
	switch quote {
	case '>':
		z.raw.end--
		return

	case '\'', '"':
		z.pendingAttr[1].start = z.raw.end
		if !z.skipTo(quote) {
			z.pendingAttr[1].end = z.raw.end
			return
		}
		z.pendingAttr[1].end = z.raw.end - 1
		return

	default:
		z.pendingAttr[1].start = z.raw.end - 1
		for {
			c := z.readByte()
			if z.eof {
				z.pendingAttr[1].end = z.raw.end
				return
			}
			switch c {
			case ' ', '\n', '\r', '\t', '\f':
				z.pendingAttr[1].end = z.raw.end - 1
				return
			case '>':
				z.raw.end--
				z.pendingAttr[1].end = z.raw.end
				return
			}
		}
	}
}

// next scans the next token and returns its type (html.Tokenizer.Next).
func (z *tokenizer) next() html.TokenType {
	z.raw.start = z.raw.end
	z.data.start = z.raw.end
	z.data.end = z.raw.end
	if z.eof {
		z.tt = html.ErrorToken
		return z.tt
	}
	if z.rawTag != "" {
		if z.rawTag == "plaintext" {
			// Read everything up to EOF.
			z.raw.end = len(z.buf)
			z.eof = true
			z.data.end = z.raw.end
			z.textIsRaw = true
		} else {
			z.readRawOrRCDATA()
		}
		if z.data.end > z.data.start {
			z.tt = html.TextToken
			z.convertNUL = true
			return z.tt
		}
	}
	z.textIsRaw = false
	z.convertNUL = false

loop:
	for z.skipTo('<') {
		// Check if the '<' we have just read is part of a tag, comment or
		// doctype. If not, it's part of the accumulated text token.
		c := z.readByte()
		if z.eof {
			break loop
		}
		var tokenType html.TokenType
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			tokenType = html.StartTagToken
		case c == '/':
			tokenType = html.EndTagToken
		case c == '!' || c == '?':
			// CommentToken means any of "<!--actual comments-->",
			// "<!DOCTYPE declarations>" and "<?xml processing instructions?>".
			tokenType = html.CommentToken
		default:
			// Reconsume the current character.
			z.raw.end--
			continue
		}

		// We have a non-text token, but we might have accumulated some
		// text before that. If so, we return the text first, and return
		// the non-text token on the subsequent call to next.
		if x := z.raw.end - len("<a"); z.raw.start < x {
			z.raw.end = x
			z.data.end = x
			z.tt = html.TextToken
			return z.tt
		}
		switch tokenType {
		case html.StartTagToken:
			z.tt = z.readStartTag()
			return z.tt
		case html.EndTagToken:
			c = z.readByte()
			if z.eof {
				break loop
			}
			if c == '>' {
				// "</>" does not generate a token at all; html.Tokenizer
				// returns an empty comment.
				z.tt = html.CommentToken
				return z.tt
			}
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				z.readTag(false)
				if z.eof {
					z.tt = html.ErrorToken
				} else {
					z.tt = html.EndTagToken
				}
				return z.tt
			}
			z.raw.end--
			z.readUntilCloseAngle()
			z.tt = html.CommentToken
			return z.tt
		case html.CommentToken:
			if c == '!' {
				z.tt = z.readMarkupDeclaration()
				return z.tt
			}
			z.raw.end--
			z.readUntilCloseAngle()
			z.tt = html.CommentToken
			return z.tt
		}
	}
	if z.raw.start < z.raw.end {
		z.data.end = z.raw.end
		z.tt = html.TextToken
		return z.tt
	}
	z.tt = html.ErrorToken
	return z.tt
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

// boundary separates the text written before from the text written after
// as whitespace would. A UTF-8 sequence still open is invalid: the texts
// are not joined across a boundary.
func (f *folder) boundary() {
	if len(f.carry) > 0 {
		f.write(asciiSpaceByte)
		return
	}
	f.invalid, f.space = false, true
}

var asciiSpaceByte = []byte{' '}

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
