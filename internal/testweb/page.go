package testweb

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// page builds one HTML document and, alongside, the edges it contains. Every
// method that writes a link also records the edge it must produce, from the
// target the generator chose, so the truth never depends on the HTML text.
type page struct {
	g        *gen
	h        int
	url      string
	base     string // what relative hrefs resolve against
	hasBase  bool
	nofollow bool
	head     []string
	body     []string
	edges    []Edge
	skipped  int
	res      *resource
}

func (g *gen) newPage(h int, u string) *page {
	return &page{
		g:    g,
		h:    h,
		url:  u,
		base: u,
		res: &resource{
			url:         u,
			status:      200,
			contentType: "text/html; charset=utf-8",
			header:      http.Header{},
		},
	}
}

func (p *page) setBase(u string) {
	p.base = u
	p.hasBase = true
}

// href spells target in one of its many equivalent forms relative to the
// page's base URL.
func (p *page) href(target string) string { return p.g.hrefFor(p.base, target) }

func (p *page) edge(target string, t linkgraphv1.LinkType, anchor string, rel []string) {
	p.edges = append(p.edges, Edge{Target: target, Type: t, Anchor: anchor, Rel: rel})
}

// a writes a plain <a> to target with a random spelling of its href.
func (p *page) a(target, anchor string) {
	p.aRaw(p.href(target), target, escapeText(anchor), anchor, "")
}

// aRaw writes <a href=href rel=rel>inner</a>, which must yield an A edge to
// target with the given anchor.
func (p *page) aRaw(href, target, inner, anchor, rel string) {
	p.link(typeA, href, target, inner, anchor, rel)
}

// link writes an <a> element of type A or IMG (the caller puts an <img> in
// inner for IMG).
func (p *page) link(t linkgraphv1.LinkType, href, target, inner, anchor, rel string) {
	var b strings.Builder
	b.WriteString(`<a href="`)
	b.WriteString(escapeAttr(href))
	b.WriteByte('"')
	if rel != "" {
		b.WriteString(` rel="`)
		b.WriteString(escapeAttr(rel))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	b.WriteString(inner)
	b.WriteString("</a>")
	p.body = append(p.body, b.String())
	p.edge(target, t, anchor, relTokens(rel))
}

// skip writes an <a> whose href the extractor must count as skipped.
func (p *page) skip(href, anchor string) {
	p.body = append(p.body, `<a href="`+escapeAttr(href)+`">`+escapeText(anchor)+`</a>`)
	p.skipped++
}

func (p *page) frame(target, name string) {
	p.body = append(p.body, `<frame src="`+escapeAttr(p.href(target))+`" name="`+name+`">`)
	p.edge(target, typeFrame, "", nil)
}

func (p *page) iframe(target string) {
	p.body = append(p.body, `<iframe src="`+escapeAttr(p.href(target))+`" title="Embedded" width="300" height="150"></iframe>`)
	p.edge(target, typeIFrame, "", nil)
}

func (p *page) alternate(lang, target string) {
	p.head = append(p.head, `<link rel="alternate" hreflang="`+lang+`" href="`+escapeAttr(p.href(target))+`">`)
	p.edge(target, typeAlternate, "", []string{"alternate"})
}

// text writes n words of filler.
func (p *page) text(n int) { p.body = append(p.body, p.g.words(n)) }

// render assembles the document. charset "" leaves out <meta charset>.
func (p *page) render(title, charset string) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n")
	if charset != "" {
		b.WriteString(`<meta charset="` + charset + "\">\n")
	}
	b.WriteString("<title>" + escapeText(title) + "</title>\n")
	for _, s := range p.head {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	b.WriteString("</head>\n<body>\n")
	for _, s := range p.body {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	b.WriteString("</body>\n</html>\n")
	return []byte(b.String())
}

// done stores the document and its edges, applying the extraction rules
// that do not depend on the markup: self links vanish and identical
// (target, type, anchor) links on one page count once; the first one's rel
// tokens win.
func (p *page) done(doc []byte) {
	r := p.res
	r.body = doc
	r.skipped = p.skipped
	seen := make(map[string]bool)
	for _, e := range p.edges {
		if e.Target == p.url {
			continue
		}
		key := fmt.Sprintf("%s\x00%d\x00%s", e.Target, e.Type, e.Anchor)
		if seen[key] {
			continue
		}
		seen[key] = true
		e.Source = p.url
		e.PageNoFollow = p.nofollow
		r.edges = append(r.edges, e)
	}
	p.g.add(r)
}

// relTokens applies the rel rules to an attribute value the generator wrote:
// split on whitespace, lowercase, drop repeats, keep order; nil when empty.
func relTokens(rel string) []string {
	var out []string
	for _, t := range strings.Fields(rel) {
		t = strings.ToLower(t)
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

func escapeAttr(s string) string { return html.EscapeString(s) }
func escapeText(s string) string { return html.EscapeString(s) }

var fragments = []string{"top", "section-2", "comments", "", "a-b"}

// hrefFor returns an href that, resolved against base, gives target (minus
// any fragment). It picks among absolute, uppercase-scheme, scheme-relative,
// root-relative, relative, "./"-relative and dot-segment spellings, and
// sometimes adds a fragment, so that a crawler meets every form.
func (g *gen) hrefFor(base, target string) string {
	b, t := mustParse(base), mustParse(target)
	pathQuery := t.EscapedPath()
	if t.RawQuery != "" {
		pathQuery += "?" + t.RawQuery
	}
	forms := []string{target}
	if t.Scheme == "http" {
		forms = append(forms, "HTTP://"+t.Host+pathQuery)
	}
	if t.Scheme == b.Scheme {
		forms = append(forms, "//"+t.Host+pathQuery)
	}
	if t.Scheme == b.Scheme && t.Host == b.Host {
		rel := relPath(b.EscapedPath(), t.EscapedPath())
		if t.RawQuery != "" {
			rel += "?" + t.RawQuery
		}
		// Same-host forms are the common case on the real web: weigh them up.
		forms = append(forms, pathQuery, pathQuery, rel, rel, rel,
			"/x/.."+pathQuery, "/."+pathQuery)
		if !strings.HasPrefix(rel, ".") {
			forms = append(forms, "./"+rel)
		}
	}
	h := pick(g, forms)
	if g.rng.IntN(8) == 0 {
		h += "#" + pick(g, fragments)
	}
	return h
}

// relPath returns a relative reference from the document at path from to
// the path to, using "../" where needed.
func relPath(from, to string) string {
	fromDir := from[:strings.LastIndexByte(from, '/')+1]
	toDir, file := to[:strings.LastIndexByte(to, '/')+1], to[strings.LastIndexByte(to, '/')+1:]
	fs, ts := dirSegments(fromDir), dirSegments(toDir)
	c := 0
	for c < len(fs) && c < len(ts) && fs[c] == ts[c] {
		c++
	}
	var b strings.Builder
	for range len(fs) - c {
		b.WriteString("../")
	}
	for _, s := range ts[c:] {
		b.WriteString(s)
		b.WriteByte('/')
	}
	b.WriteString(file)
	if b.Len() == 0 {
		return "./"
	}
	return b.String()
}

// dirSegments splits "/a/b/" into ["a", "b"] and "/" into nothing.
func dirSegments(dir string) []string {
	dir = strings.Trim(dir, "/")
	if dir == "" {
		return nil
	}
	return strings.Split(dir, "/")
}

// mustParse parses a URL the generator itself made; failure is a bug here.
func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(fmt.Sprintf("testweb: generated an invalid URL %q: %v", s, err))
	}
	return u
}

// extLink is a link to a host outside the crawl scope: indexed, never fetched.
type extLink struct{ href, target string }

// external returns an out-of-scope link in one of several spellings that
// all normalize to the same target.
func (g *gen) external() extLink {
	n := g.rng.IntN(20)
	host := fmt.Sprintf("www.external-%d.example", n)
	path := fmt.Sprintf("/path/%d", g.rng.IntN(50))
	switch g.rng.IntN(9) {
	case 0:
		return extLink{"http://" + host + path, "http://" + host + path}
	case 1: // uppercase host: hosts are case-insensitive, paths are not
		up := fmt.Sprintf("WWW.External-%d.Example", n)
		return extLink{"http://" + up + path + "/Index.HTML", "http://" + host + path + "/Index.HTML"}
	case 2: // default port spelled out
		return extLink{"http://" + host + ":80" + path, "http://" + host + path}
	case 3:
		return extLink{"https://" + host + ":443" + path, "https://" + host + path}
	case 4: // empty path
		return extLink{"http://" + host, "http://" + host + "/"}
	case 5:
		return extLink{"HTTPS://" + host + path + "?q=1&r=2", "https://" + host + path + "?q=1&r=2"}
	case 6:
		return extLink{"http://" + host + "/a/./b/../c" + path, "http://" + host + "/a/c" + path}
	case 7:
		return extLink{"http://" + host + path + "#" + pick(g, fragments), "http://" + host + path}
	default: // scheme-relative: our pages are http
		return extLink{"//" + host + ":8080" + path, "http://" + host + ":8080" + path}
	}
}

var lorem = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do
eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis
nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute
irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur
sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id
est laborum crawler index graph link anchor page web archive search`)

func (g *gen) words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = pick(g, lorem)
	}
	return strings.Join(ws, " ")
}

// anchor returns 1-4 capitalized filler words, already in folded form.
func (g *gen) anchor() string {
	s := g.words(1 + g.rng.IntN(4))
	return strings.ToUpper(s[:1]) + s[1:]
}
