package crawler

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

const extractTestPage = "http://example.com/dir/page.html"

// extLink is an OutLink in a form that reflect.DeepEqual can compare.
type extLink struct {
	URL    string
	Type   linkgraphv1.LinkType
	Anchor string
	Rel    []string
}

const (
	typeA         = linkgraphv1.LinkType_LINK_TYPE_A
	typeImg       = linkgraphv1.LinkType_LINK_TYPE_IMG
	typeArea      = linkgraphv1.LinkType_LINK_TYPE_AREA
	typeFrame     = linkgraphv1.LinkType_LINK_TYPE_FRAME
	typeIframe    = linkgraphv1.LinkType_LINK_TYPE_IFRAME
	typeCanonical = linkgraphv1.LinkType_LINK_TYPE_CANONICAL
	typeAlternate = linkgraphv1.LinkType_LINK_TYPE_ALTERNATE
	typeRefresh   = linkgraphv1.LinkType_LINK_TYPE_META_REFRESH
)

func anchorLink(url, anchor string, rel ...string) extLink {
	return extLink{URL: url, Type: typeA, Anchor: anchor, Rel: relOrNil(rel)}
}

func typedLink(typ linkgraphv1.LinkType, url, anchor string, rel ...string) extLink {
	return extLink{URL: url, Type: typ, Anchor: anchor, Rel: relOrNil(rel)}
}

func relOrNil(rel []string) []string {
	if len(rel) == 0 {
		return nil
	}
	return rel
}

func linksOf(ex *Extracted) []extLink {
	var out []extLink
	for _, l := range ex.Links {
		out = append(out, extLink{URL: l.GetUrl(), Type: l.GetType(), Anchor: l.GetAnchorText(), Rel: l.GetRel()})
	}
	return out
}

func extractString(t testing.TB, body, contentType string, xRobotsTag ...string) *Extracted {
	t.Helper()
	page, err := urlnorm.Parse(extractTestPage)
	if err != nil {
		t.Fatal(err)
	}
	return Extract([]byte(body), contentType, xRobotsTag, page)
}

func TestExtractLinks(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		want        []extLink
		wantSkipped int
	}{
		{
			name: "anchor text is all descendant text, folded",
			body: "<a href='/x'>\n  Hello&nbsp;&amp;\t<b>big</b>\u3000 World  </a>",
			want: []extLink{anchorLink("http://example.com/x", "Hello & big World")},
		},
		{
			name: "adjacent elements add no space",
			body: `<a href="/x">foo<span>bar</span></a>`,
			want: []extLink{anchorLink("http://example.com/x", "foobar")},
		},
		{
			name: "br and block-level boundaries separate words, inline ones do not",
			body: `<a href='/br'>foo<br>bar</a>` +
				`<a href='/br2'>foo<br/>bar</br>baz</a>` +
				`<a href='/div'><div>A</div><div>B</div></a>` +
				`<a href='/p'>one<p>two</p>three</a>` +
				`<a href='/li'><ul><li>x</li><li>y</li></ul></a>` +
				`<a href='/h'><H2>Title</H2><blockquote>quote</blockquote><FIGCAPTION>cap</FIGCAPTION></a>` +
				`<a href='/td'><table><tr><td>1</td><td>2</td></tr><tr><th>3</th></tr></table></a>` +
				`<a href='/hr'>left<hr>right</a>` +
				`<a href='/inline'>foo<b>bar</b><span>baz</span><em>qux</em><strong>!</strong><i>i</i><wbr>w</a>` +
				`<a href='/edge'><div> <p>  lead</p> </div>mid<br><br>end<div></div></a>`,
			want: []extLink{
				anchorLink("http://example.com/br", "foo bar"),
				anchorLink("http://example.com/br2", "foo bar baz"),
				anchorLink("http://example.com/div", "A B"),
				anchorLink("http://example.com/p", "one two three"),
				anchorLink("http://example.com/li", "x y"),
				anchorLink("http://example.com/h", "Title quote cap"),
				anchorLink("http://example.com/td", "1 2 3"),
				anchorLink("http://example.com/hr", "left right"),
				anchorLink("http://example.com/inline", "foobarbazqux!iw"),
				anchorLink("http://example.com/edge", "lead mid end"),
			},
		},
		{
			name:        "a boundary ends a UTF-8 sequence",
			body:        "<a href='/u'>caf\xc3<br>\xa9</a>",
			contentType: "text/html; charset=utf-8",
			want:        []extLink{anchorLink("http://example.com/u", "caf\uFFFD \uFFFD")},
		},
		{
			// An inline <svg>'s <title> is its accessible name, not visible
			// text: like an <img alt> it stands for the link only when the
			// link has nothing else to show.
			name: "svg title counts only without visible text",
			body: `<a href='/x3'><span>Text</span><svg><title>icon</title></svg></a>` +
				`<a href='/x4'><svg><title>Share</title></svg><svg><title>on X</title></svg></a>` +
				`<a href='/x5'><svg><title>icon</title><text>Label</text></svg></a>`,
			want: []extLink{
				anchorLink("http://example.com/x3", "Text"),
				anchorLink("http://example.com/x4", "Share on X"),
				anchorLink("http://example.com/x5", "Label"),
			},
		},
		{
			name: "relative hrefs resolve against the page",
			body: `<a href="sub/p.html">1</a><a href="../up">2</a><a href="?q=1">3</a><a href="//other.org/x">4</a><a href="HTTPS://Other.ORG:443/y#f">5</a>`,
			want: []extLink{
				anchorLink("http://example.com/dir/sub/p.html", "1"),
				anchorLink("http://example.com/up", "2"),
				anchorLink("http://example.com/dir/page.html?q=1", "3"),
				anchorLink("http://other.org/x", "4"),
				anchorLink("https://other.org/y", "5"),
			},
		},
		{
			name: "base before links",
			body: `<head><base href="http://cdn.example.org/b/"></head><a href="x">x</a><a href="/y">y</a>`,
			want: []extLink{anchorLink("http://cdn.example.org/b/x", "x"), anchorLink("http://cdn.example.org/y", "y")},
		},
		{
			name: "base after links still applies",
			body: `<a href="x">x</a><base href="/other/"><a href="y">y</a>`,
			want: []extLink{anchorLink("http://example.com/other/x", "x"), anchorLink("http://example.com/other/y", "y")},
		},
		{
			name: "only the first base with href counts",
			body: `<base target="_blank"><base href="/first/"><base href="/second/"><a href="x">x</a>`,
			want: []extLink{anchorLink("http://example.com/first/x", "x")},
		},
		{
			name: "invalid base is ignored",
			body: `<base href="mailto:x@example.com"><a href="x">x</a>`,
			want: []extLink{anchorLink("http://example.com/dir/x", "x")},
		},
		{
			name: "img in a: alt of the first img with a non-empty alt",
			body: `<a href="/i"><img src="1.png" alt=""><img src="2.png" alt="  Logo  text "><img alt="third"> caption</a>`,
			want: []extLink{typedLink(typeImg, "http://example.com/i", "Logo text")},
		},
		{
			name: "img in a without alt falls back to the text",
			body: `<a href="/i"><img src="1.png"> Home page </a>`,
			want: []extLink{typedLink(typeImg, "http://example.com/i", "Home page")},
		},
		{
			name: "img outside a is ignored",
			body: `<img src="/x.png" alt="x"><a href="/t">text</a>`,
			want: []extLink{anchorLink("http://example.com/t", "text")},
		},
		{
			name: "a new a closes the open one",
			body: `<a href="/1">one<a href="/2">two</a>three</a>`,
			want: []extLink{anchorLink("http://example.com/1", "one"), anchorLink("http://example.com/2", "two")},
		},
		{
			name: "a without href is ignored but closes the open a",
			body: `<a href="/1">one<a name="x">two</a><a>three`,
			want: []extLink{anchorLink("http://example.com/1", "one")},
		},
		{
			name: "unclosed a runs to the end of the document",
			body: `<a href="/1">one <p>two`,
			want: []extLink{anchorLink("http://example.com/1", "one two")},
		},
		{
			name: "first of duplicate attributes wins",
			body: `<a href="/1" href="/2" rel="a" rel="b">x</a>`,
			want: []extLink{anchorLink("http://example.com/1", "x", "a")},
		},
		{
			name: "rel tokens",
			body: "<a href='/1' rel=' NoFollow\tUGC nofollow\n sponsored '>x</a><a href='/2' rel=''>y</a><a href='/3' rel=' '>z</a>",
			want: []extLink{
				anchorLink("http://example.com/1", "x", "nofollow", "ugc", "sponsored"),
				anchorLink("http://example.com/2", "y"),
				anchorLink("http://example.com/3", "z"),
			},
		},
		{
			name: "script and style text never counts",
			body: `<a href="/s">Click<script>var s = "<a href='/no'>no</a>";</script><style>a{}</style> me</a><script src="x.js"/>after</script>`,
			want: []extLink{anchorLink("http://example.com/s", "Click me")},
		},
		{
			name: "title text inside a counts, svg title too",
			body: `<a href="/t"><svg><title>Twitter</title></svg></a>`,
			want: []extLink{anchorLink("http://example.com/t", "Twitter")},
		},
		{
			name: "links inside noscript are extracted",
			body: `<noscript><a href="/ns">No JS</a></noscript>`,
			want: []extLink{anchorLink("http://example.com/ns", "No JS")},
		},
		{
			name: "area",
			body: `<map><area href="/a" alt=" Area  one " rel="NoFollow"><area alt="no href"></map>`,
			want: []extLink{typedLink(typeArea, "http://example.com/a", "Area one", "nofollow")},
		},
		{
			name: "frame and iframe",
			body: `<frameset><frame src="/f"></frameset><iframe src="/i" title="t">fallback</iframe><iframe></iframe>`,
			want: []extLink{typedLink(typeFrame, "http://example.com/f", ""), typedLink(typeIframe, "http://example.com/i", "")},
		},
		{
			name: "link canonical and alternate, others ignored",
			body: `<link rel="stylesheet" href="/s.css"><link rel="icon" href="/i.ico">` +
				`<link rel="Canonical" href="/c"><link rel="alternate" hreflang="de" href="/de/">` +
				`<link rel="alternate stylesheet" href="/alt.css"><link rel="canonical">`,
			want: []extLink{
				typedLink(typeCanonical, "http://example.com/c", "", "canonical"),
				typedLink(typeAlternate, "http://example.com/de/", "", "alternate"),
				typedLink(typeAlternate, "http://example.com/alt.css", "", "alternate", "stylesheet"),
			},
		},
		{
			name: "meta refresh variants",
			body: `<meta http-equiv="refresh" content="5; url=/next">` +
				`<meta HTTP-EQUIV="Refresh" content="5;URL='/q'">` +
				`<meta http-equiv="refresh" content="0; /x">` +
				`<meta http-equiv="refresh" content=' 3 , Url = "/y z" '>` +
				`<meta http-equiv="refresh" content="1.5;url=/dot">` +
				`<meta http-equiv="refresh" content="5">` +
				`<meta http-equiv="refresh" content="url=/notime">` +
				`<meta http-equiv="refresh" content="5x; url=/bad">` +
				`<meta name="refresh" content="0; url=/name-is-not-http-equiv">`,
			want: []extLink{
				typedLink(typeRefresh, "http://example.com/next", ""),
				typedLink(typeRefresh, "http://example.com/q", ""),
				typedLink(typeRefresh, "http://example.com/x", ""),
				typedLink(typeRefresh, "http://example.com/y%20z", ""),
				typedLink(typeRefresh, "http://example.com/dot", ""),
			},
		},
		{
			name: "hrefs that do not resolve are skipped",
			body: `<a href="mailto:a@example.com">m</a><a href="javascript:void(0)">j</a><a href="tel:+1">t</a>` +
				`<a href="data:text/html,x">d</a><a href="ht!tp://x">i</a><a href="http://exa mple.com/">h</a>` +
				`<iframe src="about:blank"></iframe><a href="ftp://example.com/">f</a><a href="/ok">ok</a>`,
			want:        []extLink{anchorLink("http://example.com/ok", "ok")},
			wantSkipped: 8,
		},
		{
			name: "self links are dropped, not skipped",
			body: `<a href="#top">top</a><a href="">empty</a><a href="page.html#x">same</a><a href="page.html?">same2</a><a href="/dir/page.html?q">other</a>`,
			want: []extLink{anchorLink("http://example.com/dir/page.html?q", "other")},
		},
		{
			name: "self link relative to base is not the page",
			body: `<base href="http://cdn.example.org/"><a href="">base</a>`,
			want: []extLink{anchorLink("http://cdn.example.org/", "base")},
		},
		{
			name: "duplicates collapse to the first",
			body: `<a href="/d">same</a><a href="/d#frag">same</a><a href="http://example.com/d">same</a>` +
				`<a href="/d">other text</a><a href="/d" rel="nofollow">same</a><link rel="canonical" href="/d">`,
			want: []extLink{
				anchorLink("http://example.com/d", "same"),
				anchorLink("http://example.com/d", "other text"),
				// the nofollow repeat is the same (target, type, anchor): the first wins
				typedLink(typeCanonical, "http://example.com/d", "", "canonical"),
			},
		},
		{
			name: "anchor cut at 256 bytes on a rune boundary",
			body: `<a href="/long">` + strings.Repeat("a", 255) + "é and more</a>",
			want: []extLink{anchorLink("http://example.com/long", strings.Repeat("a", 255))},
		},
		{
			name: "anchor cut after folding",
			body: `<a href="/long">` + strings.Repeat("ab   \n", 100) + "</a>",
			want: []extLink{anchorLink("http://example.com/long", strings.Repeat("ab ", 85)+"a")},
		},
		{
			name: "img alt capped",
			body: `<a href="/img"><img alt="` + strings.Repeat("x", 300) + `"></a>`,
			want: []extLink{typedLink(typeImg, "http://example.com/img", strings.Repeat("x", 256))},
		},
		{
			name:        "invalid UTF-8 in anchor",
			body:        "<a href='/u'>a\xff\xfeb\xc3</a>",
			contentType: "text/html; charset=utf-8",
			want:        []extLink{anchorLink("http://example.com/u", "a\uFFFDb\uFFFD")},
		},
		{
			name:        "invalid UTF-8 split by a tag is one run",
			body:        "<a href='/u'>a\xe2\x82<b></b>\xffb</a>",
			contentType: "text/html; charset=utf-8",
			want:        []extLink{anchorLink("http://example.com/u", "a\uFFFDb")},
		},
		{
			name:        "UTF-8 sequence split by a tag is joined",
			body:        "<a href='/u'>caf\xc3<b></b>\xa9</a>",
			contentType: "text/html; charset=utf-8",
			want:        []extLink{anchorLink("http://example.com/u", "café")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := extractString(t, tt.body, tt.contentType)
			if got := linksOf(ex); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("links:\n got %q\nwant %q", got, tt.want)
			}
			if ex.Skipped != tt.wantSkipped {
				t.Errorf("Skipped = %d, want %d", ex.Skipped, tt.wantSkipped)
			}
		})
	}
}

func TestExtractLinkCap(t *testing.T) {
	var b strings.Builder
	for i := range MaxLinksPerPage + 5 {
		fmt.Fprintf(&b, `<a href="/p%d">p</a>`, i)
	}
	b.WriteString(`<a href="/p0">p</a>`)     // a duplicate of a kept link is not skipped
	b.WriteString(`<a href="/p10001">p</a>`) // nor is one of a link over the cap
	b.WriteString(`<a href="mailto:x">m</a>`)
	ex := extractString(t, b.String(), "")
	if len(ex.Links) != MaxLinksPerPage {
		t.Errorf("len(Links) = %d, want %d", len(ex.Links), MaxLinksPerPage)
	}
	if ex.Skipped != 5+1 {
		t.Errorf("Skipped = %d, want 6", ex.Skipped)
	}
	if last := ex.Links[len(ex.Links)-1].GetUrl(); last != fmt.Sprintf("http://example.com/p%d", MaxLinksPerPage-1) {
		t.Errorf("last kept link = %q", last)
	}
}

func TestExtractPage(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		contentType  string
		xRobotsTag   []string
		wantTitle    string
		wantLang     string
		wantNoFollow bool
		wantNoIndex  bool
		wantLinks    []extLink
	}{
		{
			name:      "title and lang",
			body:      `<html LANG=" EN-us "><head><title>  My &amp; <b>page</b>  </title><title>second</title></head></html>`,
			wantTitle: "My & <b>page</b>",
			wantLang:  "en-us",
		},
		{
			name:      "svg title is not the document title",
			body:      `<body><svg><title>icon</title></svg><title>Real</title>`,
			wantTitle: "Real",
		},
		{
			name:      "first title even if empty",
			body:      `<title></title><title>second</title>`,
			wantTitle: "",
		},
		{
			name:      "unterminated title",
			body:      `<title>Open`,
			wantTitle: "Open",
		},
		{
			name:      "title capped at 512 bytes",
			body:      `<title>` + strings.Repeat("日", 200) + `</title>`,
			wantTitle: strings.Repeat("日", 170),
		},
		{
			name:         "meta robots",
			body:         `<meta name="robots" content="NoIndex, nofollow">`,
			wantNoFollow: true,
			wantNoIndex:  true,
		},
		{
			name:         "meta robots none",
			body:         `<meta name="ROBOTS" content="none">`,
			wantNoFollow: true,
			wantNoIndex:  true,
		},
		{
			name:         "meta linkgraph",
			body:         `<meta name="linkgraph" content="nofollow"><meta name="googlebot" content="noindex">`,
			wantNoFollow: true,
		},
		{
			name:        "meta robots other tokens",
			body:        `<meta name="robots" content="index, follow, max-snippet:20"><meta name="robots" content="noindex">`,
			wantNoIndex: true,
		},
		{
			name:        "X-Robots-Tag without bot name",
			xRobotsTag:  []string{"noindex"},
			wantNoIndex: true,
		},
		{
			name:         "X-Robots-Tag for another bot",
			xRobotsTag:   []string{"googlebot: nofollow, noindex", "otherbot: none"},
			wantNoFollow: false,
		},
		{
			name:         "X-Robots-Tag for linkgraph",
			xRobotsTag:   []string{"LinkGraph: NoFollow"},
			wantNoFollow: true,
		},
		{
			name:        "X-Robots-Tag directives with values are not bot names",
			xRobotsTag:  []string{"unavailable_after: 25 Jun 2010 15:00:00 PST", "max-snippet: 20, noindex"},
			wantNoIndex: true,
		},
		{
			name:         "X-Robots-Tag none",
			xRobotsTag:   []string{"none"},
			wantNoFollow: true,
			wantNoIndex:  true,
		},
		{
			name:         "NoFollow is not copied into rel",
			body:         `<meta name="robots" content="nofollow"><a href="/x">x</a>`,
			wantNoFollow: true,
			wantLinks:    []extLink{anchorLink("http://example.com/x", "x")},
		},
		{
			name:        "windows-1252 via Content-Type",
			body:        "<title>caf\xe9 \x93quoted\x94</title><a href='/s?q=\xe9'>na\xefve</a>",
			contentType: "text/html; charset=windows-1252",
			wantTitle:   "café “quoted”",
			wantLinks:   []extLink{anchorLink("http://example.com/s?q=%E9", "naïve")}, // the query in the page's charset
		},
		{
			name:        "ISO-8859-1 label means windows-1252",
			body:        "<title>\x80uro</title>",
			contentType: "text/html; charset=ISO-8859-1",
			wantTitle:   "€uro",
		},
		{
			name:      "windows-1252 via meta charset",
			body:      "<html><head><meta charset=\"windows-1252\"><title>caf\xe9</title></head><body><a href='/x'>\xe0 la carte</a>",
			wantTitle: "café",
			wantLinks: []extLink{anchorLink("http://example.com/x", "à la carte")},
		},
		{
			name:      "windows-1252 via meta http-equiv content-type",
			body:      "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><title>caf\xe9</title>",
			wantTitle: "café",
		},
		{
			name:        "Content-Type charset wins over meta",
			body:        "<meta charset=\"windows-1252\"><title>café</title>",
			contentType: "text/html; charset=utf-8",
			wantTitle:   "café",
		},
		{
			name:        "Shift_JIS via Content-Type",
			body:        mustEncode(t, japanese.ShiftJIS, "<title>日本語のページ</title><a href='/東京'>東京へ</a>"),
			contentType: "text/html; charset=Shift_JIS",
			wantTitle:   "日本語のページ",
			wantLinks:   []extLink{anchorLink("http://example.com/%E6%9D%B1%E4%BA%AC", "東京へ")},
		},
		{
			// Browsers encode a link's query in the page's charset, its path
			// in UTF-8; a character the charset lacks becomes &#N;.
			name: "Shift_JIS query",
			body: mustEncode(t, japanese.ShiftJIS, "<meta charset=shift_jis><a href='/東京?q=日本&x=1#日本'>q</a>") +
				"<a href='?q=&#x1F600;'>emoji</a><a href='#?q=日本'>fragment</a>",
			wantLinks: []extLink{
				// 本 is 0x96 '{', and '{' is not in the query's percent-encode set.
				anchorLink("http://example.com/%E6%9D%B1%E4%BA%AC?q=%93%FA%96{&x=1", "q"),
				anchorLink("http://example.com/dir/page.html?q=%26%23128512%3B", "emoji"),
			},
		},
		{
			name:      "Shift_JIS via meta charset",
			body:      mustEncode(t, japanese.ShiftJIS, `<meta charset="shift_jis"><title>日本語</title>`),
			wantTitle: "日本語",
		},
		{
			name:      "UTF-8 BOM",
			body:      "\xef\xbb\xbf<title>café</title>",
			wantTitle: "café",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := extractString(t, tt.body, tt.contentType, tt.xRobotsTag...)
			if ex.Title != tt.wantTitle {
				t.Errorf("Title = %q, want %q", ex.Title, tt.wantTitle)
			}
			if ex.Lang != tt.wantLang {
				t.Errorf("Lang = %q, want %q", ex.Lang, tt.wantLang)
			}
			if ex.NoFollow != tt.wantNoFollow || ex.NoIndex != tt.wantNoIndex {
				t.Errorf("NoFollow, NoIndex = %v, %v; want %v, %v", ex.NoFollow, ex.NoIndex, tt.wantNoFollow, tt.wantNoIndex)
			}
			if got := linksOf(ex); !reflect.DeepEqual(got, tt.wantLinks) {
				t.Errorf("links:\n got %q\nwant %q", got, tt.wantLinks)
			}
		})
	}
}

// mustEncode encodes s with a legacy encoding for charset tests.
func mustEncode(t *testing.T, enc encoding.Encoding, s string) string {
	t.Helper()
	b, err := enc.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefreshURL(t *testing.T) {
	tests := []struct {
		content string
		want    string
		ok      bool
	}{
		{"5; url=/next", "/next", true},
		{"5;URL='/q'", "/q", true},
		{"5;URL='/q", "/q", true},
		{`0; url="/a'b"`, "/a'b", true},
		{"0; /x", "/x", true},
		{"0,/x", "/x", true},
		{"0 /x", "/x", true},
		{"0;url = /x", "/x", true},
		{"0; urn:x", "urn:x", true},
		{"0; url/x", "url/x", true},
		{".5;url=/x", "/x", true},
		{"5", "", false},
		{"5;", "", false},
		{"  ", "", false},
		{"url=/x", "", false},
		{"5x;url=/x", "", false},
	}
	for _, tt := range tests {
		got, ok := refreshURL(tt.content)
		if got != tt.want || ok != tt.ok {
			t.Errorf("refreshURL(%q) = %q, %v; want %q, %v", tt.content, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIsHTML(t *testing.T) {
	tests := []struct {
		contentType string
		body        string
		want        bool
	}{
		{"text/html", "", true},
		{"text/html; charset=utf-8", "", true},
		{" TEXT/HTML ;charset=x", "", true},
		{"application/xhtml+xml", "", true},
		{"application/xml", "<html>", false},
		{"text/plain", "<html>", false},
		{"application/json", "{}", false},
		{"image/png", "", false},
		{"", "<!DOCTYPE html><html><body>", true},
		{"", "  <html>", true},
		{"", "plain text", false},
		{"", "\x89PNG\r\n\x1a\n", false},
	}
	for _, tt := range tests {
		if got := IsHTML(tt.contentType, []byte(tt.body)); got != tt.want {
			t.Errorf("IsHTML(%q, %q) = %v, want %v", tt.contentType, tt.body, got, tt.want)
		}
	}
}

// benchmarkHTMLPage builds a realistic ~40 KB page with about 100 links.
func benchmarkHTMLPage() []byte {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Example News — Some article about things | Example</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="A long description of the article that search engines show.">
<link rel="canonical" href="https://www.example.com/news/2024/05/some-article.html">
<link rel="alternate" hreflang="de" href="https://www.example.com/de/news/2024/05/some-article.html">
<link rel="stylesheet" href="/static/css/main.3f2a1c.css"><link rel="icon" href="/favicon.ico">
<style>body{font-family:sans-serif;margin:0}.nav a{color:#333;text-decoration:none}.article p{line-height:1.6}</style>
<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag('js',new Date());gtag('config','G-XXXX');</script>
</head><body><header class="nav"><nav><ul>
`)
	for i := range 30 {
		fmt.Fprintf(&b, `<li class="nav-item"><a class="nav-link" href="/section/%d/">Section %d</a></li>`+"\n", i, i)
	}
	b.WriteString("</ul></nav></header><main class=\"article\"><article>\n")
	para := `Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. `
	for i := range 50 {
		fmt.Fprintf(&b, "<p>%s<a href=\"../../2023/%02d/story-%d.html?utm_source=article\" rel=\"noopener\">related story number %d</a> %s</p>\n", para, i%12+1, i, i, para[:120])
		if i%10 == 0 {
			fmt.Fprintf(&b, `<figure><a href="https://images.example.net/full/%d.jpg"><img src="https://images.example.net/thumb/%d.jpg" alt="Photo %d of the event" width="300" height="200"></a><figcaption>Caption &amp; credits</figcaption></figure>`+"\n", i, i, i)
		}
	}
	b.WriteString("</article></main><footer><ul>\n")
	for i := range 15 {
		fmt.Fprintf(&b, `<li><a href="https://partner%d.example.org/?ref=example" rel="nofollow sponsored">Partner %d</a></li>`+"\n", i, i)
	}
	b.WriteString(`<li><a href="mailto:news@example.com">Contact</a></li><li><a href="#top">Top</a></li></ul></footer>
<script src="/static/js/app.js"></script><script>(function(){var s=document.createElement('script');s.src='https://cdn.example.com/x.js';document.body.appendChild(s)})();</script>
</body></html>`)
	for b.Len() < 40_000 {
		b.WriteString("<!-- padding comment to reach a realistic page size -->\n<div class=\"ad-slot\" data-slot=\"1234\"></div>\n")
	}
	return []byte(b.String())
}

func BenchmarkExtract(b *testing.B) {
	body := benchmarkHTMLPage()
	page, err := urlnorm.Parse("https://www.example.com/news/2024/05/some-article.html")
	if err != nil {
		b.Fatal(err)
	}
	ex := Extract(body, "text/html; charset=utf-8", nil, page)
	b.Logf("page: %d bytes, %d links, %d skipped", len(body), len(ex.Links), ex.Skipped)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Extract(body, "text/html; charset=utf-8", nil, page)
	}
}

// BenchmarkTokenize measures the tokenizers alone on the benchmark page:
// html.Tokenizer, reading every start tag's attributes with TagAttr or not
// at all, and the port Extract uses (whose attributes cost nothing more).
// html.Tokenizer allocates twice per attribute even when they are not read.
func BenchmarkTokenize(b *testing.B) {
	body := benchmarkHTMLPage()
	for _, attrs := range []bool{false, true} {
		b.Run(fmt.Sprintf("xnet/attrs=%v", attrs), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				z := html.NewTokenizer(bytes.NewReader(body))
				for {
					tt := z.Next()
					if tt == html.ErrorToken {
						break
					}
					if attrs && tt == html.StartTagToken {
						for {
							_, _, more := z.TagAttr()
							if !more {
								break
							}
						}
					}
				}
			}
		})
	}
	b.Run("port", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var z tokenizer
		for b.Loop() {
			z.reset(body)
			for z.next() != html.ErrorToken {
			}
		}
	})
}
