package testweb

import (
	"fmt"
	"strings"
)

// feature is one kind of tricky content a content page may carry.
type feature struct {
	name string
	// onBasePage says whether the feature may appear on a page with a
	// <base>. Self links may not: "#top" there resolves against the base,
	// not to the page itself.
	onBasePage bool
	add        func(p *page)
}

// pageFeatures is the catalogue the content pages draw from. Order matters
// only for determinism and for which page each feature is forced onto.
var pageFeatures = []feature{
	{"external", true, (*page).fExternal},
	{"rel", true, (*page).fRel},
	{"img", true, (*page).fImg},
	{"area", true, (*page).fArea},
	{"iframe", true, (*page).fIframe},
	{"canonical", true, (*page).fCanonical},
	{"alternate", true, (*page).fAlternate},
	{"refresh", true, (*page).fRefresh},
	{"duplicate", true, (*page).fDuplicate},
	{"self", false, (*page).fSelf},
	{"skipped", true, (*page).fSkipped},
	{"file", true, (*page).fFile},
	{"missing", true, (*page).fMissing},
	{"redirect", true, (*page).fRedirect},
	{"messy", true, (*page).fMessy},
	{"unicode", true, (*page).fUnicode},
	{"empty", true, (*page).fEmpty},
	{"list", true, (*page).fList},
	{"hidden", true, (*page).fHidden},
	{"intl", true, (*page).fIntl},
	{"frames", true, (*page).fFrames},
	{"cross-host", true, (*page).fCrossHost},
	{"dot-segments", true, (*page).fDotSegments},
}

func (p *page) fExternal() {
	for range 1 + p.g.rng.IntN(2) {
		e := p.g.external()
		a := p.g.anchor()
		p.aRaw(e.href, e.target, escapeText(a), a, "")
	}
}

// relVariants are rel attribute values as written; relTokens gives the
// expected tokens (the last one checks case folding and repeats).
var relVariants = []string{
	"nofollow", "ugc", "sponsored", "nofollow noopener", "external",
	"noopener noreferrer", "sponsored nofollow", "NoFollow  UGC\tnofollow",
}

func (p *page) fRel() {
	rel := pick(p.g, relVariants)
	a := p.g.anchor()
	if p.g.rng.IntN(4) == 0 {
		e := p.g.external()
		p.aRaw(e.href, e.target, escapeText(a), a, rel)
		return
	}
	t := p.g.target(p.h)
	p.aRaw(p.href(t), t, escapeText(a), a, rel)
}

// imgVariants are the insides of an <a> around images, and the anchor:
// the first non-empty folded alt, else the folded text.
var imgVariants = [][2]string{
	{`<img src="/files/chart-0.png" alt="Alt text">`, "Alt text"},
	{"<img src=\"/files/chart-1.png\" alt=\"  Spaced\n   alt \">", "Spaced alt"},
	{"<img src=\"/files/chart-0.png\" alt=\"\"> Fallback \t text", "Fallback text"},
	{`<img src="/files/chart-0.png"><img src="/files/chart-1.png" alt="Second image">`, "Second image"},
	{`<img src="/files/chart-1.png" alt="Caf&eacute; &amp; more">`, "Café & more"},
	{`<span>Logo:</span> <img src="/files/chart-0.png" alt="Logo">`, "Logo"},
	{`<img src="/files/chart-1.png">`, ""},
	{`<img src="/files/chart-0.png" alt="Bild: Größe">`, "Bild: Größe"},
}

func (p *page) fImg() {
	v := pick(p.g, imgVariants)
	t := p.g.target(p.h)
	rel := ""
	if p.g.rng.IntN(5) == 0 {
		rel = "nofollow"
	}
	p.link(typeIMG, p.href(t), t, v[0], v[1], rel)
}

func (p *page) fArea() {
	name := fmt.Sprintf("map-%d", p.g.rng.IntN(1000))
	t1, t2 := p.g.target(p.h), p.g.target(p.h)
	p.body = append(p.body,
		`<img src="/files/chart-0.png" usemap="#`+name+`" alt="Site map" width="100" height="50">`,
		`<map name="`+name+`">`,
		"<area shape=\"rect\" coords=\"0,0,50,50\" href=\""+escapeAttr(p.href(t1))+"\" alt=\"North \n region\">",
		`<area shape="rect" coords="50,0,100,50" href="`+escapeAttr(p.href(t2))+`" alt="South &amp; east" rel="nofollow">`,
		// No href: not a link at all.
		`<area shape="default" nohref alt="Nothing here">`,
		`</map>`)
	p.edge(t1, typeArea, "North region", nil)
	p.edge(t2, typeArea, "South & east", []string{"nofollow"})
}

func (p *page) fIframe() { p.iframe(p.g.target(p.h)) }

// fCanonical adds at most one canonical, since pages have one; a third of
// them point at the page itself, as most do on the web, and give no edge.
func (p *page) fCanonical() {
	var t string
	switch p.g.rng.IntN(3) {
	case 0:
		t = pick(p.g, p.g.regular[p.h])
	case 1:
		t = p.url
	default:
		t = fmt.Sprintf("https://www.canonical-%d.example/articles/%d", p.g.rng.IntN(5), p.g.rng.IntN(100))
	}
	p.head = append(p.head, `<link rel="canonical" href="`+escapeAttr(p.href(t))+`">`)
	p.edge(t, typeCanonical, "", []string{"canonical"})
}

func (p *page) fAlternate() {
	for _, lang := range []string{"de", "fr"}[:1+p.g.rng.IntN(2)] {
		t := pick(p.g, p.g.regular[p.h])
		if p.g.rng.IntN(2) == 0 {
			t = fmt.Sprintf("https://%s.external-%d.example/seite-%d", lang, p.g.rng.IntN(5), p.g.rng.IntN(100))
		}
		p.alternate(lang, t)
	}
}

func (p *page) fRefresh() {
	t := pick(p.g, p.g.regular[p.h])
	if p.g.rng.IntN(3) == 0 {
		t = pick(p.g, p.g.redirects[p.h])
	}
	href := p.href(t)
	if p.hasBase {
		// Whether a refresh URL resolves against <base> is a fine point we
		// do not want to test: absolute URLs sidestep it.
		href = t
	}
	p.head = append(p.head, `<meta http-equiv="refresh" content="`+pick(p.g, []string{"0", "5"})+`; url=`+escapeAttr(href)+`">`)
	p.edge(t, typeMetaRefresh, "", nil)
}

// withoutFragment strips "#..." from an href.
func withoutFragment(href string) string {
	if i := strings.IndexByte(href, '#'); i >= 0 {
		return href[:i]
	}
	return href
}

func (p *page) fDuplicate() {
	t := p.g.target(p.h)
	a := p.g.anchor()
	switch p.g.rng.IntN(6) {
	case 0: // the very same link twice: one edge
		h := p.href(t)
		p.aRaw(h, t, escapeText(a), a, "")
		p.text(3)
		p.aRaw(h, t, escapeText(a), a, "")
	case 1: // two spellings of the same target: one edge
		p.a(t, a)
		p.text(3)
		p.aRaw(withoutFragment(p.href(t))+"#dup", t, escapeText(a), a, "")
	case 2: // same target, different anchors: two edges
		p.a(t, a)
		p.text(3)
		p.a(t, a+" again")
	case 3: // same target as text and as image: two edges
		p.a(t, a)
		p.link(typeIMG, p.href(t), t, `<img src="/files/chart-0.png" alt="`+escapeAttr(a)+`">`, a, "")
	case 4: // same target and anchor, one nofollow: two edges
		p.a(t, a)
		p.aRaw(p.href(t), t, escapeText(a), a, "nofollow")
	default: // anchors equal once folded: one edge
		p.aRaw(p.href(t), t, "Read  more", "Read more", "")
		p.aRaw(p.href(t), t, "\n Read\tmore ", "Read more", "")
	}
}

func (p *page) fSelf() {
	selfs := [][2]string{
		{"#top", "Back to top"},
		{"", "Reload"},
		{p.url, "This page"},
		{"#", "Hash"},
		{p.href(p.url), "Permalink"},
	}
	for range 1 + p.g.rng.IntN(3) {
		s := pick(p.g, selfs)
		// Recorded like any link; done drops it because it is a self link.
		p.aRaw(s[0], p.url, escapeText(s[1]), s[1], "")
	}
}

// skippedHrefs are hrefs that are not http(s) or do not parse.
var skippedHrefs = [][2]string{
	{"mailto:info@example.com", "Mail us"},
	{"javascript:void(0)", "Click me"},
	{"tel:+1-555-0100", "Call us"},
	{"http://[::1", "Broken IPv6"},
	{"ftp://ftp.external.example/pub/file.zip", "FTP download"},
	{"http://bad host.example/", "Space in host"},
}

func (p *page) fSkipped() {
	for range 1 + p.g.rng.IntN(3) {
		s := pick(p.g, skippedHrefs)
		p.skip(s[0], s[1])
	}
}

func (p *page) fFile() {
	t := pick(p.g, p.g.files[p.h])
	if p.g.rng.IntN(4) == 0 {
		t = pick(p.g, p.g.files[p.g.otherHost(p.h)])
	}
	p.a(t, "Download "+p.g.anchor())
}

func (p *page) fMissing() {
	t := pick(p.g, p.g.missing[p.h])
	if p.g.rng.IntN(4) == 0 {
		t = pick(p.g, p.g.missing[p.g.otherHost(p.h)])
	}
	p.a(t, p.g.anchor())
}

func (p *page) fRedirect() {
	for range 1 + p.g.rng.IntN(2) {
		p.a(pick(p.g, p.g.redirects[p.g.rng.IntN(len(p.g.hosts))]), p.g.anchor())
	}
}

// messyAnchors are anchor HTML with whitespace, entities and markup, and
// the folded, decoded text the extractor must produce.
var messyAnchors = [][2]string{
	{"  Hello\n\t  world  ", "Hello world"},
	{"Tom &amp; Jerry", "Tom & Jerry"},
	{"a &lt;b&gt; tag", "a <b> tag"},
	{"caf&eacute; &#8364;5 &#x263A;", "café €5 ☺"},
	{"Click <b>here</b>\n now", "Click here now"},
	{"<span>Fo</span>o<em>bar</em>", "Foobar"},
	{"\n  <span> nested </span>\n<span>spans </span>\n", "nested spans"},
	{"Multiple     spaces\r\n and\ttabs", "Multiple spaces and tabs"},
	{"&quot;Quoted&quot; &amp;&amp; more", `"Quoted" && more`},
}

func (p *page) fMessy() {
	v := pick(p.g, messyAnchors)
	t := p.g.target(p.h)
	p.aRaw(p.href(t), t, v[0], v[1], "")
}

var unicodeAnchors = []string{"Über uns", "Café crème", "日本語", "naïve résumé", "€ 5 Rabatt", "“Quoted” title", "Ελληνικά", "Straße"}

func (p *page) fUnicode() {
	for range 1 + p.g.rng.IntN(2) {
		p.a(p.g.target(p.h), pick(p.g, unicodeAnchors))
	}
}

func (p *page) fEmpty() {
	t := p.g.target(p.h)
	if p.g.rng.IntN(2) == 0 {
		p.aRaw(p.href(t), t, "", "", "")
	} else {
		p.aRaw(p.href(t), t, " \n\t ", "", "")
	}
}

func (p *page) fList() { p.a(pick(p.g, p.g.lists[p.g.rng.IntN(len(p.g.hosts))]), p.g.anchor()) }

// fHidden writes links that are not elements: in a comment, inside script
// text and inside a textarea. None may produce an edge.
func (p *page) fHidden() {
	p.body = append(p.body,
		`<!-- <a href="/should-not-be-found-comment">commented out</a> -->`,
		`<script>document.write('<a href="/should-not-be-found-script">x<\/a>');</script>`,
		`<textarea><a href="/should-not-be-found-textarea">not a link</a></textarea>`)
}

func (p *page) fIntl() { p.a(pick(p.g, p.g.intl[p.g.rng.IntN(len(p.g.hosts))]), p.g.anchor()) }

func (p *page) fFrames() { p.a(pick(p.g, p.g.frames[p.g.rng.IntN(len(p.g.hosts))]), p.g.anchor()) }

// fCrossHost links to another host with a scheme-relative href.
func (p *page) fCrossHost() {
	t := pick(p.g, p.g.regular[p.g.otherHost(p.h)])
	a := p.g.anchor()
	p.aRaw("//"+strings.TrimPrefix(t, "http://"), t, escapeText(a), a, "")
}

// fDotSegments links with hrefs full of "." and ".." segments. They are
// relative to the base, so the target is taken on the base's host.
func (p *page) fDotSegments() {
	b := mustParse(p.base)
	var pool []string
	for h, hp := range p.g.hosts {
		if hp == b.Host {
			pool = p.g.regular[h]
		}
	}
	t := pick(p.g, pool)
	tu := mustParse(t)
	rel := relPath(b.EscapedPath(), tu.EscapedPath())
	var href string
	switch p.g.rng.IntN(4) {
	case 0:
		href = "/docs/guide/../.." + tu.EscapedPath()
	case 1:
		href = "sub/./../" + rel
	case 2:
		href = "./" + strings.TrimPrefix(rel, "./")
	default:
		tp := tu.EscapedPath()
		dir := tp[:strings.LastIndexByte(tp, '/')+1]
		href = dir + "./extra/../" + tp[len(dir):]
	}
	a := p.g.anchor()
	p.aRaw(href, t, escapeText(a), a, "")
}
