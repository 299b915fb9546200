package crawler

import (
	"bytes"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding"
	"google.golang.org/protobuf/proto"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// fuzzContentTypes are picked by the fuzzer's ct argument, so that the
// charset paths are exercised too.
var fuzzContentTypes = []string{
	"",
	"text/html",
	"text/html; charset=utf-8",
	"text/html; charset=windows-1252",
	"text/html; charset=shift_jis",
	"text/html; charset=utf-16le",
}

func FuzzExtract(f *testing.F) {
	seeds := []string{
		`<html lang="en"><head><title>T</title><base href="/b/"></head><body><a href="x" rel="nofollow">x</a></body></html>`,
		`<a href="/1">one<a href="/2"><img alt="two"></a>three</a>`,
		`<meta http-equiv="refresh" content="0; url='/next'"><meta name="robots" content="none">`,
		`<map><area href="/a" alt="A"></map><frameset><frame src="f"></frameset><iframe src="//x.org/i"></iframe>`,
		`<link rel="canonical alternate" href="https://example.com/c"><a href="mailto:x">m</a><a href="#top">top</a>`,
		`<a href="/s">a<script>"<a href=/no>"</script>b<noscript><a href=/ns>ns</a></noscript></a>`,
		"<meta charset=windows-1252><title>caf\xe9</title><a href='\xe9'>\xff\xfe</a>",
		`<svg><title>icon</title><a href="/svg">s</a></svg><title>real</title>`,
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	page, err := urlnorm.Parse("http://example.com/dir/page.html")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		contentType := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]
		ex := Extract(body, contentType, []string{string(body[:min(len(body), 40)])}, page)

		if !utf8.ValidString(ex.Title) || len(ex.Title) > MaxTitleBytes {
			t.Errorf("bad title %q (%d bytes)", ex.Title, len(ex.Title))
		}
		if !utf8.ValidString(ex.Lang) {
			t.Errorf("invalid UTF-8 lang %q", ex.Lang)
		}
		if len(ex.Links) > MaxLinksPerPage || ex.Skipped < 0 {
			t.Errorf("%d links, %d skipped", len(ex.Links), ex.Skipped)
		}
		for _, l := range ex.Links {
			u := l.GetUrl()
			if n, err := urlnorm.Normalize(u); err != nil || n != u {
				t.Errorf("link %q is not normalized: %q, %v", u, n, err)
			}
			pu, err := url.Parse(u)
			if err != nil || !pu.IsAbs() || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				t.Errorf("link %q is not an absolute http(s) URL (%v)", u, err)
			}
			if u == "http://example.com/dir/page.html" {
				t.Errorf("self link kept")
			}
			if !utf8.ValidString(l.GetAnchorText()) || len(l.GetAnchorText()) > MaxAnchorBytes {
				t.Errorf("bad anchor %q (%d bytes)", l.GetAnchorText(), len(l.GetAnchorText()))
			}
			if l.GetType() == linkgraphv1.LinkType_LINK_TYPE_UNSPECIFIED {
				t.Errorf("link %q without type", u)
			}
			for _, r := range l.GetRel() {
				if r == "" || !utf8.ValidString(r) {
					t.Errorf("bad rel token %q", r)
				}
			}
		}
		// Everything must be publishable: proto3 strings must be UTF-8.
		msg := &linkgraphv1.PageResult{Title: ex.Title, Lang: ex.Lang, Links: ex.Links}
		if _, err := proto.Marshal(msg); err != nil {
			t.Errorf("proto.Marshal: %v", err)
		}
	})
}

// tokenizerSeeds are inputs for the differential fuzzers: the corners of the
// tokenizer's state machine.
var tokenizerSeeds = []string{
	`<!DOCTYPE html><html lang=en><head><title>a &amp; b</title></head><body><p class="x">t</p></body></html>`,
	`<a href="/x" HREF="/y" rel=nofollow Rel=ugc>x</a><a href=/u/v/>y</a><a href=x/><a =x a==b "q"='r'>`,
	`<a href='?a=1&amp;b=2&amp=3&copy=4&copy;&#38;&#x26;&#;&#xZ;&notit;&notin;&bogus;&'>z</a>`,
	"<a href=\"a\r\nb\rc\x00d\">\r\ntext\x00&lt;&gt\r</a>",
	`<script>var a = "<!--"; if (a<b) x = "</scr" + "ipt>";<!-- <script> </script> --> </script>after`,
	`<script><!--<script>--></script>x</script><style>a{}</style ><textarea><b>&amp;</textarea><xmp><a></xmp>`,
	`<!-- c --><!----><!--><!---><!-- a -- b --!><!-- x --!-- y --><!-x><? pi ?></ x></><!DOCTYPE><!doctype html x>`,
	`<iframe src="/f"><a href="/no"></iframe><noscript><a href="/ns">n</a></noscript><noembed>e</noembed><noframes>f</noframes>`,
	`<title>one</title><svg><title>icon</title></svg><TITLE>two</TITLE><plaintext><a href="/p">`,
	`<p a=/><br/><img src=x alt=y/><a href="/1"/>t</a><a b c=d e='f' / g>`,
	`<a href="/open`, `<a href=`, `<a `, `<!--`, `<!-- x -`, `<!-- x --`, `<!-- x --!`, `<!D`, `<!DOCTYPE`, `</`, `<`, `&`, `<script>`, `<script><!--`, `<script><!--<script>`, `<title>x`,
	`<a k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12 k13 k14 k15 K1 k16 k17 k16 href=/many HREF=/dup>m</a>`,
	"<meta http-equiv=refresh content=\"0; url=/r\"><meta name=ROBOTS content='noindex,nofollow'><base href=/b/><link rel='canonical' href='/c'>",
	"<a href=/x>caf\xc3<b></b>\xa9 \xff</a><area href=/a alt=\"A&nbsp;B\"><frame src=/f>",
	"<a href=/b>a<BR/>b</br>\xc3<div>\xa9</div><BlockQuote>q</blockquote><span>s</span></a><a href=/s><svg><title>t</title></svg></a><a href=/t>x<svg><title>y</title></svg></a>",
}

// FuzzTokenizer checks the tokenizer against html.Tokenizer, token by token:
// type, raw bytes, tag name, attributes and text, with NextIsNotRawText
// called after some start tags.
func FuzzTokenizer(f *testing.F) {
	for i, s := range tokenizerSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(checkTokenizer)
}

// TestTokenizerBenchmarkPage runs the checks of FuzzTokenizer and
// FuzzExtractReference on the benchmark page (too big a fuzzing seed).
func TestTokenizerBenchmarkPage(t *testing.T) {
	body := benchmarkHTMLPage()
	for flags := range 4 {
		checkTokenizer(t, body, uint8(flags))
	}
	for sel := range 32 {
		checkExtractReference(t, body, uint8(sel))
	}
}

// checkTokenizer is FuzzTokenizer's check.
func checkTokenizer(t *testing.T, body []byte, flags uint8) {
	{
		ex := new(extractor)
		z := &ex.z
		z.reset(body)
		xz := html.NewTokenizer(bytes.NewReader(body))
		for n := 0; ; n++ {
			tt, want := z.next(), xz.Next()
			if tt != want {
				t.Fatalf("token %d: type %v, html.Tokenizer says %v (raw %q, %q)", n, tt, want, z.rawBytes(), xz.Raw())
			}
			if !bytes.Equal(z.rawBytes(), xz.Raw()) {
				t.Fatalf("token %d (%v): raw %q, html.Tokenizer says %q", n, tt, z.rawBytes(), xz.Raw())
			}
			switch tt {
			case html.ErrorToken:
				return
			case html.TextToken:
				if got, want := ex.text(), xz.Text(); !bytes.Equal(got, want) {
					t.Fatalf("token %d: text %q, html.Tokenizer says %q", n, got, want)
				}
			case html.CommentToken, html.DoctypeToken:
				// Text replaces NUL in comments, not in doctypes.
				data := convertNewlines(bytes.Clone(z.buf[z.data.start:z.data.end]))
				if tt == html.CommentToken {
					data = bytes.ReplaceAll(data, []byte("\x00"), []byte("\uFFFD"))
				}
				if got, want := html.UnescapeString(string(data)), xz.Text(); got != string(want) {
					t.Fatalf("token %d: data %q, html.Tokenizer says %q", n, got, want)
				}
			case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
				name := appendLowerASCII(nil, bytes.ReplaceAll(z.buf[z.data.start:z.data.end], []byte("\x00"), []byte("\uFFFD")))
				xname, hasAttr := xz.TagName()
				if !bytes.Equal(name, xname) || hasAttr != (len(z.attr) > 0) {
					t.Fatalf("token %d: tag %q (%d attributes), html.Tokenizer says %q (%v)", n, name, len(z.attr), xname, hasAttr)
				}
				var nameBuf, refBuf [maxTagName]byte
				if got, want := z.tagName(&nameBuf), refRawTagName(z.rawBytes(), &refBuf); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("token %d: tagName %q, the reference's rawTagName %q", n, got, want)
				}
				checkAttrs(t, ex, xz, n)
				if tt != html.EndTagToken && flags>>(n%8)&1 == 1 {
					z.nextIsNotRawText()
					xz.NextIsNotRawText()
				}
			}
		}
	}
}

// checkAttrs compares the attributes of the current tag with TagAttr's:
// keys, and values as readAttrs converts them.
func checkAttrs(t *testing.T, ex *extractor, xz *html.Tokenizer, n int) {
	t.Helper()
	z := &ex.z
	ex.valBuf = ex.valBuf[:0]
	var fallback *html.Tokenizer
	for i, at := range z.attr {
		key, val, _ := xz.TagAttr()
		if key == nil {
			t.Fatalf("token %d: %d attributes, html.Tokenizer has %d", n, len(z.attr), i)
		}
		if got := appendLowerASCII(nil, bytes.ReplaceAll(z.buf[at[0].start:at[0].end], []byte("\x00"), []byte("\uFFFD"))); !bytes.Equal(got, key) {
			t.Fatalf("token %d: attribute %d is %q, html.Tokenizer says %q", n, i, got, key)
		}
		got, ok := z.buf[at[1].start:at[1].end], true
		if bytes.ContainsAny(got, "&\r\x00") {
			got, ok = ex.convertAttr(got)
		}
		if !ok {
			// readAttrs falls back to a reused html.Tokenizer: check that.
			if fallback == nil {
				if fallback = ex.xnet.tokenizeTag(z.rawBytes()); fallback == nil {
					t.Fatalf("token %d: the fallback tokenizer fails on %q", n, z.rawBytes())
				}
				for range i {
					fallback.TagAttr()
				}
			}
			var fkey []byte
			fkey, got, _ = fallback.TagAttr()
			if !bytes.Equal(fkey, key) {
				t.Fatalf("token %d: the fallback tokenizer gives attribute %q, want %q", n, fkey, key)
			}
		} else if fallback != nil {
			fallback.TagAttr()
		}
		if !bytes.Equal(got, val) {
			t.Fatalf("token %d: attribute %q = %q, html.Tokenizer says %q", n, key, got, val)
		}
	}
	if key, _, _ := xz.TagAttr(); key != nil {
		t.Fatalf("token %d: html.Tokenizer has more than %d attributes", n, len(z.attr))
	}
}

// FuzzExtractReference checks that Extract returns what refExtract, the
// implementation on html.Tokenizer and urlnorm.Resolve it replaced, returns.
func FuzzExtractReference(f *testing.F) {
	for i, s := range tokenizerSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(checkExtractReference)
}

var referencePages = func() []*url.URL {
	var pages []*url.URL
	for _, p := range []string{
		"http://example.com/dir/page.html",
		"https://www.example.com/news/2024/05/some-article.html?ref=home",
		"http://example.com",
		"http://[::1]:8080/a%2fb/c?x",
	} {
		u, err := urlnorm.Parse(p)
		if err != nil {
			panic(err)
		}
		pages = append(pages, u)
	}
	return pages
}()

// checkExtractReference is FuzzExtractReference's check. sel picks the
// Content-Type and the page URL.
func checkExtractReference(t *testing.T, body []byte, sel uint8) {
	contentType := fuzzContentTypes[int(sel)%len(fuzzContentTypes)]
	page := referencePages[int(sel/8)%len(referencePages)]
	xRobotsTag := []string{string(body[:min(len(body), 30)])}
	got := Extract(body, contentType, xRobotsTag, page)
	want := refExtract(body, contentType, xRobotsTag, page)
	if d := diffExtracted(got, want); d != "" {
		t.Fatalf("Extract(%q, %q, page %v) differs from the reference: %s", body, contentType, page, d)
	}
}

func diffExtracted(got, want *Extracted) string {
	switch {
	case got.Title != want.Title:
		return fmt.Sprintf("Title %q, want %q", got.Title, want.Title)
	case got.Lang != want.Lang:
		return fmt.Sprintf("Lang %q, want %q", got.Lang, want.Lang)
	case got.NoFollow != want.NoFollow || got.NoIndex != want.NoIndex:
		return fmt.Sprintf("NoFollow, NoIndex %v, %v; want %v, %v", got.NoFollow, got.NoIndex, want.NoFollow, want.NoIndex)
	case got.Skipped != want.Skipped:
		return fmt.Sprintf("Skipped %d, want %d", got.Skipped, want.Skipped)
	case (got.Links == nil) != (want.Links == nil) || !reflect.DeepEqual(linksWithNil(got), linksWithNil(want)):
		return fmt.Sprintf("links\n%q\nwant\n%q", linksWithNil(got), linksWithNil(want))
	}
	return ""
}

// linksWithNil is linksOf keeping the difference between nil and empty Rel.
func linksWithNil(ex *Extracted) []extLink {
	var out []extLink
	for _, l := range ex.Links {
		out = append(out, extLink{URL: l.Url, Type: l.Type, Anchor: l.AnchorText, Rel: l.Rel})
	}
	return out
}

// TestKnownEntities checks knownEntities against x/net/html, in text and in
// attribute values, followed by what may follow them.
func TestKnownEntities(t *testing.T) {
	for name, want := range knownEntities {
		for _, next := range []string{"", "x", "=", ";", "&amp;"} {
			in := "&" + name + next
			if got := html.UnescapeString(in); got != want+html.UnescapeString(next) {
				t.Errorf("html.UnescapeString(%q) = %q, want %q", in, got, want+next)
			}
			z := html.NewTokenizer(strings.NewReader(`<a x="` + in + `">`))
			z.Next()
			if _, val, _ := z.TagAttr(); string(val) != want+html.UnescapeString(next) {
				t.Errorf("attribute value %q is %q, want %q", in, val, want+next)
			}
			for _, attribute := range []bool{false, true} {
				if got, ok := appendUnescaped(nil, []byte(in), attribute); !ok && next != "x" {
					t.Errorf("appendUnescaped(%q, %v) fails", in, attribute)
				} else if ok && string(got) != want+html.UnescapeString(next) {
					t.Errorf("appendUnescaped(%q, %v) = %q, want %q", in, attribute, got, want+next)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The reference implementation.

// refExtract is Extract as it was before the tokenizer port (commit
// d613b4d), kept as the reference for FuzzExtractReference. It parses an HTML body and returns the page's title, language, robots
// directives and outlinks. contentType is the response's Content-Type (used
// for the charset), xRobotsTag the values of its X-Robots-Tag headers, and
// page the normalized page URL (from urlnorm.Parse; must not be nil).
//
// refExtract never fails: whatever cannot be parsed is ignored, and hrefs that
// do not resolve to a valid http(s) URL are counted in Skipped. All strings
// in the result are valid UTF-8.
func refExtract(body []byte, contentType string, xRobotsTag []string, page *url.URL) *Extracted {
	ex := &refExtractor{out: &Extracted{}}
	ex.out.NoFollow, ex.out.NoIndex = parseXRobotsTag(xRobotsTag)
	body, ex.enc = toUTF8(body, contentType)
	ex.tokenize(body)
	ex.resolve(page)
	return ex.out
}

// refPendingLink is a link as found in the document. URLs are resolved only at
// the end, because a <base href> after the link still applies to it.
type refPendingLink struct {
	href   string
	typ    linkgraphv1.LinkType
	anchor string
	rel    []string
}

// refExtractor holds the state of one refExtract call.
type refExtractor struct {
	out   *Extracted
	links []refPendingLink

	baseSeen bool // the first <base href> was seen; later ones are ignored
	baseHref string
	enc      encoding.Encoding // the page's charset when not UTF-8
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
	// Text of <svg> <title>s in the open <a>, used when it has no other.
	inSVGTitle bool
	svgTitle   folder

	scratch folder // for alt attributes
}

// tokenize runs the tokenizer over the whole (UTF-8) body and collects the
// pending links, title, language and meta directives.
func (ex *refExtractor) tokenize(body []byte) {
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
			if ex.inSVGTitle {
				ex.svgTitle.write(text)
			} else if ex.inAnchor {
				ex.anchor.write(text)
			}

		case html.StartTagToken, html.SelfClosingTagToken:
			// HTML ignores the self-closing flag on non-void elements, so
			// "<a/>" opens an <a> like "<a>" does.
			ex.finishTitle()
			skipText = ex.startTag(z, tt, refRawTagName(z.Raw(), &nameBuf))

		case html.EndTagToken:
			ex.finishTitle()
			switch name := refRawTagName(z.Raw(), &nameBuf); string(name) {
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

// refRawTagName returns the lowercased name of the tag in raw ("<Name ...>" or
// "</Name ...>"), written into buf, or nil for names longer than buf: none
// of those matter here. It replaces Tokenizer.TagName, which allocates a
// copy of the name for every tag.
func refRawTagName(raw []byte, buf *[maxTagName]byte) []byte {
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
func (ex *refExtractor) startTag(z *html.Tokenizer, tt html.TokenType, name []byte) (skipText bool) {
	switch string(name) {
	case "a":
		// A new <a> closes the open one, as the HTML parser does.
		ex.closeAnchor()
		at := refReadAttrs(z)
		if !at.has(attrHref) {
			return false
		}
		ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_A, "", refParseRel(at.rel))
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
			ex.imgAlt = ex.fold(refReadAttrs(z).alt, MaxAnchorBytes)
		}

	case "area":
		at := refReadAttrs(z)
		if at.has(attrHref) {
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_AREA, ex.fold(at.alt, MaxAnchorBytes), refParseRel(at.rel))
		}

	case "frame":
		if at := refReadAttrs(z); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_FRAME, "", nil)
		}

	case "iframe":
		if at := refReadAttrs(z); at.has(attrSrc) {
			ex.addLink(at.src, linkgraphv1.LinkType_LINK_TYPE_IFRAME, "", nil)
		}

	case "link":
		at := refReadAttrs(z)
		if !at.has(attrHref) {
			return false
		}
		rel := refParseRel(at.rel)
		switch {
		case slices.Contains(rel, "canonical"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_CANONICAL, "", rel)
		case slices.Contains(rel, "alternate"):
			ex.addLink(at.href, linkgraphv1.LinkType_LINK_TYPE_ALTERNATE, "", rel)
		}

	case "meta":
		ex.meta(refReadAttrs(z))

	case "base":
		if ex.baseSeen {
			return false
		}
		if at := refReadAttrs(z); at.has(attrHref) {
			ex.baseSeen, ex.baseHref = true, at.href
		}

	case "html":
		if ex.langSeen {
			return false
		}
		if at := refReadAttrs(z); at.has(attrLang) {
			ex.langSeen = true
			ex.out.Lang = strings.ToLower(strings.Trim(strings.ToValidUTF8(at.lang, "\uFFFD"), asciiSpace))
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
		z.NextIsNotRawText()

	default:
		if ex.inAnchor && breaksWords(name) {
			ex.anchor.boundary()
		}
	}
	return false
}

// finishTitle ends the collection of the title text: <title> content is a
// single raw text token, so any other token ends it.
func (ex *refExtractor) finishTitle() {
	ex.inSVGTitle = false
	if ex.inTitle {
		ex.inTitle = false
		ex.out.Title = ex.title.String()
	}
}

// closeAnchor finishes the open <a href>, if any, and sets its type and
// anchor text.
func (ex *refExtractor) closeAnchor() {
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

func (ex *refExtractor) addLink(href string, typ linkgraphv1.LinkType, anchor string, rel []string) {
	ex.links = append(ex.links, refPendingLink{href: href, typ: typ, anchor: anchor, rel: rel})
}

// meta handles <meta http-equiv=refresh> and <meta name=robots|linkgraph>.
func (ex *refExtractor) meta(at refTagAttrs) {
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

func (ex *refExtractor) fold(s string, limit int) string {
	ex.scratch.reset(limit)
	ex.scratch.write([]byte(s))
	return ex.scratch.String()
}

// resolve turns the pending links into OutLinks: resolution against the
// base, self-link removal, deduplication and the per-page cap, in that order.
func (ex *refExtractor) resolve(page *url.URL) {
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
		href := l.href
		if ex.enc != nil {
			href = queryInCharset(href, ex.enc)
		}
		u, err := urlnorm.Resolve(base, href)
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

// refTagAttrs holds the attributes refExtract reads, for the current tag.
type refTagAttrs struct {
	href, src, rel, alt, lang, name, httpEquiv, content string
	present                                             uint8 // attr* bits
}

func (a *refTagAttrs) has(bit uint8) bool { return a.present&bit != 0 }

// refReadAttrs reads the current tag's attributes. Only the first of duplicate
// attributes counts, as in the HTML parser; values of attributes refExtract
// does not use are never copied.
func refReadAttrs(z *html.Tokenizer) refTagAttrs {
	var a refTagAttrs
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

// refParseRel splits a rel attribute on ASCII whitespace into lowercased tokens
// without duplicates, in document order; nil if there are none.
func refParseRel(v string) []string {
	var rel []string
	for _, tok := range strings.FieldsFunc(v, refIsASCIISpace) {
		if !refIsLowerASCII(tok) {
			tok = strings.ToLower(strings.ToValidUTF8(tok, "\uFFFD"))
		}
		if !slices.Contains(rel, tok) {
			rel = append(rel, tok)
		}
	}
	return rel
}

// refIsLowerASCII reports whether s has only ASCII bytes and no uppercase
// letter, the common case that needs no copy.
func refIsLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

func refIsASCIISpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r'
}
