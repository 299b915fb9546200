package testweb

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// Short names for the link types, to keep the generator readable.
const (
	typeA           = linkgraphv1.LinkType_LINK_TYPE_A
	typeIMG         = linkgraphv1.LinkType_LINK_TYPE_IMG
	typeArea        = linkgraphv1.LinkType_LINK_TYPE_AREA
	typeFrame       = linkgraphv1.LinkType_LINK_TYPE_FRAME
	typeIFrame      = linkgraphv1.LinkType_LINK_TYPE_IFRAME
	typeRedirect    = linkgraphv1.LinkType_LINK_TYPE_REDIRECT
	typeCanonical   = linkgraphv1.LinkType_LINK_TYPE_CANONICAL
	typeAlternate   = linkgraphv1.LinkType_LINK_TYPE_ALTERNATE
	typeMetaRefresh = linkgraphv1.LinkType_LINK_TYPE_META_REFRESH
)

// redirectCodes are the statuses a crawler must treat as redirects.
var redirectCodes = []int{301, 302, 303, 307, 308}

// indexChunk is how many URLs one index page lists.
const indexChunk = 40

// resource is one URL the web answers: the response, and the links a correct
// extractor finds in it (already deduplicated, without self links).
type resource struct {
	url         string
	status      int
	contentType string
	header      http.Header // extra response headers, e.g. X-Robots-Tag
	location    string      // raw Location header of a redirect
	body        []byte
	edges       []Edge
	skipped     int
}

// model is the generator's output: everything Web serves and knows.
type model struct {
	res     map[string]*resource
	pages   []string
	edges   []Edge
	skipped int
}

// gen renders a web for a fixed list of host:port addresses. All URLs are
// declared first (so that any page may link to any other), then rendered.
type gen struct {
	rng   *rand.Rand
	hosts []string
	res   map[string]*resource
	err   error

	// URL pools per host, in declaration order.
	regular   [][]string // content pages carrying the random features
	redirects [][]string // every redirecting URL
	files     [][]string // non-HTML responses (and HTML served as text/plain)
	missing   [][]string // URLs answering 404
	intl      [][]string // legacy charset and non-ASCII pages
	frames    [][]string // frameset documents
	lists     [][]string // pages whose URLs have queries, plus the XHTML page
	all       [][]string // all of the above: what the index pages list
	index     [][]string // the index pages
}

func generate(hosts []string, perHost int, seed int64) (*model, error) {
	n := len(hosts)
	g := &gen{
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x6c696e6b67726170)),
		hosts:     hosts,
		res:       make(map[string]*resource),
		regular:   make([][]string, n),
		redirects: make([][]string, n),
		files:     make([][]string, n),
		missing:   make([][]string, n),
		intl:      make([][]string, n),
		frames:    make([][]string, n),
		lists:     make([][]string, n),
		all:       make([][]string, n),
		index:     make([][]string, n),
	}
	for h := range hosts {
		g.declare(h, perHost)
	}
	for h := range hosts {
		g.render(h)
	}
	return g.finish()
}

// fail records the first inconsistency found; generation carries on so that
// the code stays linear, and finish reports it.
func (g *gen) fail(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
}

func (g *gen) url(h int, path string) string { return "http://" + g.hosts[h] + path }

// pagePath spreads the content pages over a few directories, so that
// relative hrefs need "../" and "./" to reach each other.
func pagePath(k int) string {
	switch k % 4 {
	case 0:
		return fmt.Sprintf("/page-%d.html", k)
	case 1:
		return fmt.Sprintf("/docs/page-%d.html", k)
	case 2:
		return fmt.Sprintf("/docs/guide/page-%d.html", k)
	default:
		return fmt.Sprintf("/blog/2024/post-%d.html", k)
	}
}

func (g *gen) prevHost(h int) int { return (h + len(g.hosts) - 1) % len(g.hosts) }
func (g *gen) nextHost(h int) int { return (h + 1) % len(g.hosts) }

func (g *gen) declare(h, perHost int) {
	u := func(path string) string { return g.url(h, path) }
	for k := range perHost {
		g.regular[h] = append(g.regular[h], u(pagePath(k)))
	}
	g.regular[h] = append(g.regular[h], u("/docs/"), u("/docs/guide/"), u("/blog/"))

	for _, c := range redirectCodes {
		for j := range 3 {
			g.redirects[h] = append(g.redirects[h], u(fmt.Sprintf("/redirect/%d-%d", c, j)))
		}
	}
	g.redirects[h] = append(g.redirects[h],
		u("/chain/1.html"), u("/chain/2.html"),
		// The third hop of the previous host's chain lives here.
		u(fmt.Sprintf("/hop/from-%d.html", g.prevHost(h))),
		u("/loop/a"), u("/loop/b"),
		u("/out/partner"), u("/old/page.html"), u("/download/report"))

	g.files[h] = []string{
		u("/files/report-0.pdf"), u("/files/report-1.pdf"),
		u("/files/chart-0.png"), u("/files/chart-1.png"),
		u("/files/notes-0.txt"), u("/files/notes-1.txt"),
		u("/static/site.css"), u("/raw/source.html"),
	}
	g.missing[h] = []string{u("/missing/0.html"), u("/missing/1.html"), u("/missing/2.html"), u("/missing/moved.html")}
	g.intl[h] = []string{u("/intl/cp1252.html"), u("/intl/cp1252-meta.html"), u("/intl/sjis.html"), u("/intl/utf8.html")}
	g.frames[h] = []string{u("/frames/set-0.html"), u("/frames/set-1.html")}
	g.lists[h] = []string{u("/list.html"), u("/list.html?page=2&sort=asc"), u("/list.html?page=3"), u("/xhtml/page.xhtml")}

	for _, pool := range [][]string{g.regular[h], g.redirects[h], g.files[h], g.missing[h], g.intl[h], g.frames[h], g.lists[h]} {
		g.all[h] = append(g.all[h], pool...)
	}
	for k := 0; k*indexChunk < len(g.all[h]); k++ {
		g.index[h] = append(g.index[h], u(fmt.Sprintf("/index/%d.html", k)))
	}
}

func (g *gen) render(h int) {
	g.renderRoot(h)
	g.renderIndex(h)
	for i := range g.regular[h] {
		g.renderRegular(h, i)
	}
	g.renderRedirects(h)
	g.renderFiles(h)
	g.renderMissing(h)
	g.renderIntl(h)
	g.renderFrames(h)
	g.renderLists(h)
}

// add registers a finished resource.
func (g *gen) add(r *resource) {
	if g.res[r.url] != nil {
		g.fail("%s rendered twice", r.url)
		return
	}
	g.res[r.url] = r
}

func (g *gen) finish() (*model, error) {
	if g.err != nil {
		return nil, g.err
	}
	m := &model{res: g.res}
	for u, r := range g.res {
		m.pages = append(m.pages, u)
		m.edges = append(m.edges, r.edges...)
		m.skipped += r.skipped
	}
	slices.Sort(m.pages)
	sortEdges(m.edges)

	// Pages must be closed under in-scope edges: anything the crawl would
	// discover on our hosts has to be something we serve on purpose.
	inScope := make(map[string]bool)
	for _, h := range g.hosts {
		inScope[h] = true
	}
	for _, e := range m.edges {
		t, err := url.Parse(e.Target)
		if err != nil {
			return nil, fmt.Errorf("edge %s -> %q: %v", e.Source, e.Target, err)
		}
		if inScope[t.Host] && g.res[e.Target] == nil {
			return nil, fmt.Errorf("edge %s -> %s points into scope but nothing is served there", e.Source, e.Target)
		}
		if t.Fragment != "" || t.String() != e.Target {
			return nil, fmt.Errorf("edge target %q is not normalized", e.Target)
		}
	}
	for _, h := range g.index {
		for _, u := range h {
			if g.res[u] == nil {
				return nil, fmt.Errorf("index page %s was not rendered", u)
			}
		}
	}
	for h := range g.hosts {
		for _, u := range g.all[h] {
			if g.res[u] == nil {
				return nil, fmt.Errorf("%s was declared but not rendered", u)
			}
		}
	}
	if want := countDeclared(g); len(g.res) != want {
		return nil, fmt.Errorf("rendered %d resources, declared %d", len(g.res), want)
	}
	return m, nil
}

func countDeclared(g *gen) int {
	n := 0
	for h := range g.hosts {
		n += 1 + len(g.index[h]) + len(g.all[h])
	}
	return n
}

// pick returns a random element of a non-empty list.
func pick[T any](g *gen, list []T) T { return list[g.rng.IntN(len(list))] }

func (g *gen) otherHost(h int) int {
	if len(g.hosts) == 1 {
		return h
	}
	o := g.rng.IntN(len(g.hosts) - 1)
	if o >= h {
		o++
	}
	return o
}

// target picks the destination of an ordinary link from host h: mostly the
// host's own content pages, sometimes another host's, rarely anything at all.
func (g *gen) target(h int) string {
	switch x := g.rng.IntN(20); {
	case x < 15:
		return pick(g, g.regular[h])
	case x < 19:
		return pick(g, g.regular[g.otherHost(h)])
	default:
		return pick(g, g.all[g.rng.IntN(len(g.hosts))])
	}
}

// pathOf strips scheme and host from one of our URLs.
func (g *gen) pathOf(u string) string {
	i := strings.Index(u[len("http://"):], "/")
	return u[len("http://")+i:]
}

func (g *gen) renderRoot(h int) {
	p := g.newPage(h, g.url(h, "/"))
	p.head = append(p.head, `<link rel="stylesheet" href="/static/site.css">`)
	p.body = append(p.body, fmt.Sprintf("<h1>Test host %d</h1>", h), "<ul>")
	for k, u := range g.index[h] {
		p.body = append(p.body, "<li>")
		p.a(u, fmt.Sprintf("Index %d", k))
		p.body = append(p.body, "</li>")
	}
	p.body = append(p.body, "</ul>", "<p>Other hosts:")
	for o := range g.hosts {
		if o != h {
			p.a(g.url(o, "/"), fmt.Sprintf("Host %d", o))
		}
	}
	p.body = append(p.body, "</p>", "<p>")
	p.text(12)
	for range 5 {
		p.a(g.target(h), g.anchor())
		p.text(6)
	}
	p.body = append(p.body, "</p>")
	p.done(p.render(fmt.Sprintf("Test host %d", h), "utf-8"))
}

func (g *gen) renderIndex(h int) {
	for k, u := range g.index[h] {
		p := g.newPage(h, u)
		p.body = append(p.body, "<nav>")
		p.a(g.url(h, "/"), "Home")
		if k > 0 {
			p.a(g.index[h][k-1], "Previous index page")
		}
		if k+1 < len(g.index[h]) {
			p.a(g.index[h][k+1], "Next index page")
		}
		p.body = append(p.body, "</nav>", fmt.Sprintf("<h1>Index %d</h1>", k), "<ul>")
		for _, t := range g.all[h][k*indexChunk : min(len(g.all[h]), (k+1)*indexChunk)] {
			p.body = append(p.body, "<li>")
			p.a(t, g.pathOf(t))
			p.body = append(p.body, "</li>")
		}
		p.body = append(p.body, "</ul>")
		p.done(p.render(fmt.Sprintf("Index %d of host %d", k, h), "utf-8"))
	}
}

// Base element variants of content pages.
const (
	baseNone = iota
	baseHeadDir
	baseHeadCrossHost
	baseHeadAfterLink
	baseBodyAfterLinks
	numBaseVariants
)

func (g *gen) renderRegular(h, i int) {
	u := g.regular[h][i]
	p := g.newPage(h, u)
	nreg := len(g.regular[h])
	// Every feature gets a slot that forces it onto one page per host, so
	// that each host has each feature at least once whatever the dice say.
	forced := func(slot int) bool { return i == (slot*5+1)%nreg }
	slot := len(pageFeatures)

	bv := baseNone
	if g.rng.IntN(16) == 0 {
		bv = 1 + g.rng.IntN(numBaseVariants-1)
	}
	for v := 1; v < numBaseVariants; v++ {
		if forced(slot + v) {
			bv = v
		}
	}
	slot += numBaseVariants
	if forced(slot) || g.rng.IntN(25) == 0 {
		p.res.header.Set("X-Robots-Tag", pick(g, []string{"nofollow", "noarchive, nofollow"}))
		p.nofollow = true
	}
	if forced(slot+1) || g.rng.IntN(25) == 0 {
		p.head = append(p.head, `<meta name="robots" content="`+pick(g, []string{"nofollow", "noarchive, nofollow"})+`">`)
		p.nofollow = true
	}

	// The base must be known before the first href is written: per the
	// rules the first <base> of the document applies to every link in it,
	// including the ones that come before it.
	var bodyBase string
	switch bv {
	case baseHeadDir:
		href := "/docs/guide/"
		if strings.HasPrefix(g.pathOf(u), "/docs/page-") {
			href = "guide/" // relative, resolved against the document URL
		}
		p.setBase(g.url(h, "/docs/guide/"))
		p.head = append(p.head, `<base href="`+href+`">`)
	case baseHeadCrossHost:
		o := g.otherHost(h)
		p.setBase(g.url(o, "/docs/"))
		p.head = append(p.head, `<base href="`+pick(g, []string{"http://", "//"})+g.hosts[o]+`/docs/">`)
	case baseHeadAfterLink:
		p.setBase(g.url(h, "/blog/"))
		p.alternate("de", g.target(h))
		p.head = append(p.head, `<base href="/blog/">`)
	case baseBodyAfterLinks:
		p.setBase(g.url(h, "/docs/guide/"))
		bodyBase = `<base href="/docs/guide/">`
	}
	p.head = append(p.head, `<link rel="stylesheet" href="/static/site.css">`)

	p.body = append(p.body, "<nav>")
	p.a(g.url(h, "/"), "Home")
	p.a(g.index[h][0], "Site index")
	p.a(g.regular[h][(i+1)%nreg], "Next page")
	p.body = append(p.body, "</nav>")
	if bodyBase != "" {
		p.body = append(p.body, bodyBase)
	}
	title := fmt.Sprintf("%s — host %d page %d", g.anchor(), h, i)
	p.body = append(p.body, "<h1>"+escapeText(title)+"</h1>")

	var items []func()
	for range 4 + g.rng.IntN(7) {
		items = append(items, func() { p.a(g.target(h), g.anchor()) })
	}
	for fi, f := range pageFeatures {
		if p.hasBase && !f.onBasePage {
			continue
		}
		if forced(fi) || g.rng.IntN(8) == 0 {
			items = append(items, func() { f.add(p) })
		}
	}
	g.rng.Shuffle(len(items), func(a, b int) { items[a], items[b] = items[b], items[a] })
	for len(items) > 0 {
		n := min(len(items), 1+g.rng.IntN(3))
		p.body = append(p.body, "<p>")
		p.text(3 + g.rng.IntN(10))
		for _, item := range items[:n] {
			item()
			p.text(2 + g.rng.IntN(8))
		}
		p.body = append(p.body, "</p>")
		items = items[n:]
	}
	p.body = append(p.body, "<footer><p>© 2024 Test Web. All rights reserved.</p></footer>")
	if bodyBase != "" {
		// A second <base> never counts; a crawler taking the last one fails.
		p.body = append(p.body, `<base href="/ignored/">`)
	}
	p.done(p.render(title, "utf-8"))
}

func (g *gen) renderRedirects(h int) {
	u := func(path string) string { return g.url(h, path) }
	k := 0
	for _, c := range redirectCodes {
		for j := range 3 {
			src := g.redirects[h][k]
			k++
			var t string
			switch j {
			case 0:
				t = pick(g, g.regular[h])
			case 1:
				t = pick(g, g.regular[g.otherHost(h)])
			default:
				t = pick(g, slices.Concat(g.files[h], g.lists[h], g.intl[h], g.missing[h]))
			}
			g.redirect(src, c, g.hrefFor(src, t), t)
		}
	}

	// A chain of three hops, the middle one crossing hosts:
	// /chain/1.html -> /chain/2.html -> next host's /hop/from-h.html -> a page here.
	next := g.nextHost(h)
	hop := g.url(next, fmt.Sprintf("/hop/from-%d.html", h))
	g.redirect(u("/chain/1.html"), 301, "2.html", u("/chain/2.html"))
	g.redirect(u("/chain/2.html"), 307, "http://"+g.hosts[next]+fmt.Sprintf("/hop/from-%d.html", h), hop)
	prev := g.prevHost(h)
	end := g.regular[prev][4%len(g.regular[prev])]
	hopHere := u(fmt.Sprintf("/hop/from-%d.html", prev))
	g.redirect(hopHere, 308, g.hrefFor(hopHere, end), end)

	// A loop: each URL must still be fetched exactly once.
	g.redirect(u("/loop/a"), 302, "b", u("/loop/b"))
	g.redirect(u("/loop/b"), 301, "/loop/a", u("/loop/a"))

	g.redirect(u("/out/partner"), 302,
		fmt.Sprintf("http://WWW.Partner-%d.Example/welcome?ref=linkgraph", h),
		fmt.Sprintf("http://www.partner-%d.example/welcome?ref=linkgraph", h))
	g.redirect(u("/old/page.html"), 301, "../missing/moved.html", u("/missing/moved.html"))
	g.redirect(u("/download/report"), 303, "/files/report-0.pdf#page=2", u("/files/report-0.pdf"))
}

// redirect registers a redirecting URL. Its body has a link that must not
// be indexed: only 2xx responses are parsed.
func (g *gen) redirect(src string, code int, location, target string) {
	r := &resource{
		url:         src,
		status:      code,
		contentType: "text/html; charset=utf-8",
		location:    location,
		body: []byte("<!DOCTYPE html>\n<html><head><title>Moved</title></head>\n" +
			"<body><p>This page has moved. <a href=\"/should-not-be-found-3xx\">Continue</a></p></body></html>\n"),
	}
	if target != src {
		r.edges = []Edge{{Source: src, Target: target, Type: typeRedirect, RedirectStatus: int32(code)}}
	}
	g.add(r)
}

// planted is the link planted in every body that must not be parsed.
const planted = `<a href="/should-not-be-found">not a link</a>`

func (g *gen) renderFiles(h int) {
	bodies := []struct {
		ct   string
		body string
	}{
		{"application/pdf", "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n% " + planted + "\n%%EOF\n"},
		{"application/pdf", "%PDF-1.7\n% <html><body>" + planted + "</body></html>\n%%EOF\n"},
		{"image/png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01" + planted},
		{"image/png", "\x89PNG\r\n\x1a\n<!DOCTYPE html><html><body>" + planted + "</body></html>"},
		{"text/plain; charset=utf-8", "Plain text notes.\n" + planted + "\n"},
		{"text/plain", "<!DOCTYPE html>\n<html><head><title>Looks like HTML</title></head><body>" + planted + "</body></html>\n"},
		{"text/css", "body { background: url(\"/should-not-be-found.png\"); }\n/* " + planted + " */\n"},
		// HTML source served as text: the extension must not matter.
		{"text/plain; charset=utf-8", "<!DOCTYPE html>\n<html><head><title>Source</title>\n" +
			"<link rel=\"canonical\" href=\"/should-not-be-found-canonical\"></head>\n<body>" + planted + "</body></html>\n"},
	}
	for i, u := range g.files[h] {
		g.add(&resource{url: u, status: 200, contentType: bodies[i].ct, body: []byte(bodies[i].body)})
	}
}

func (g *gen) renderMissing(h int) {
	for _, u := range g.missing[h] {
		g.add(&resource{
			url:         u,
			status:      404,
			contentType: "text/html; charset=utf-8",
			body: []byte("<!DOCTYPE html>\n<html><head><title>Not found</title></head>\n<body><h1>Not found</h1>\n" +
				"<p>Try the <a href=\"/should-not-be-found-404\">home page</a> or " +
				"<a href=\"" + g.url(h, "/page-0.html") + "\">page 0</a>.</p></body></html>\n"),
		})
	}
}

// intlPage describes one page whose anchors are not ASCII.
type intlPage struct {
	contentType string
	metaCharset string // "" for no <meta charset>
	enc         encoding.Encoding
	title       string
	anchors     [][2]string // inner HTML, expected anchor
	imgAlt      string
}

var intlPages = []intlPage{
	{
		contentType: "text/html; charset=windows-1252",
		enc:         charmap.Windows1252,
		title:       "Café – Seite",
		anchors: [][2]string{
			{"Café au lait", "Café au lait"},
			{"Müller &amp; Söhne", "Müller & Söhne"},
			{"“Smart quotes”", "“Smart quotes”"},
			{"Preis:  5 €", "Preis: 5 €"},
			{"naïve\n façade", "naïve façade"},
		},
		imgAlt: "Größe",
	},
	{
		// The charset is only in the document: the header has none.
		contentType: "text/html",
		metaCharset: "windows-1252",
		enc:         charmap.Windows1252,
		title:       "Crème brûlée",
		anchors: [][2]string{
			{"Crème brûlée", "Crème brûlée"},
			{"Über uns", "Über uns"},
			{"„Zitat“", "„Zitat“"},
			{"Größe: 10 €", "Größe: 10 €"},
			{"Señor\tniño", "Señor niño"},
		},
		imgAlt: "Bild: Straße",
	},
	{
		contentType: "text/html; charset=Shift_JIS",
		enc:         japanese.ShiftJIS,
		title:       "日本語のページ",
		anchors: [][2]string{
			{"日本語のページ", "日本語のページ"},
			{"東京タワー", "東京タワー"},
			{"こんにちは 世界", "こんにちは 世界"},
		},
		imgAlt: "富士山の写真",
	},
	{
		contentType: "text/html; charset=utf-8",
		metaCharset: "utf-8",
		title:       "Ünïcödé",
		anchors: [][2]string{
			{"Ελληνικά", "Ελληνικά"},
			{"Русский  текст", "Русский текст"},
			{"中文页面", "中文页面"},
			{"Party 🎉", "Party 🎉"},
			{"Stra&szlig;e &amp; Weg", "Straße & Weg"},
		},
		imgAlt: "Ærø",
	},
}

func (g *gen) renderIntl(h int) {
	for i, u := range g.intl[h] {
		spec := intlPages[i]
		p := g.newPage(h, u)
		p.res.contentType = spec.contentType
		p.body = append(p.body, "<nav>")
		p.a(g.url(h, "/"), "Home")
		p.body = append(p.body, "</nav>", "<h1>"+escapeText(spec.title)+"</h1>", "<p>")
		for _, a := range spec.anchors {
			t := g.target(h)
			p.aRaw(p.href(t), t, a[0], a[1], "")
			p.text(4)
		}
		t := g.target(h)
		p.link(typeIMG, p.href(t), t, `<img src="/files/chart-0.png" alt="`+escapeText(spec.imgAlt)+`">`, spec.imgAlt, "")
		p.body = append(p.body, "</p>")
		doc := p.render(spec.title, spec.metaCharset)
		if spec.enc != nil {
			b, err := spec.enc.NewEncoder().Bytes(doc)
			if err != nil {
				g.fail("encoding %s: %v", u, err)
			}
			doc = b
		}
		p.done(doc)
	}
}

func (g *gen) renderFrames(h int) {
	for i, u := range g.frames[h] {
		p := g.newPage(h, u)
		var targets []string
		if i == 0 {
			targets = []string{pick(g, g.regular[h]), pick(g, g.regular[h])}
		} else {
			targets = []string{pick(g, g.regular[g.otherHost(h)]), pick(g, g.intl[h])}
		}
		for k, t := range targets {
			p.frame(t, fmt.Sprintf("frame%d", k))
		}
		doc := "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Frames</title>\n</head>\n" +
			"<frameset cols=\"25%,75%\">\n" + strings.Join(p.body, "\n") + "\n</frameset>\n</html>\n"
		p.done([]byte(doc))
	}
}

// renderLists renders the pages whose URLs carry queries, linking to each
// other with query-only and relative hrefs, and the XHTML page.
func (g *gen) renderLists(h int) {
	first, second, third, xhtml := g.lists[h][0], g.lists[h][1], g.lists[h][2], g.lists[h][3]
	type link struct{ href, target, anchor string }
	pages := []struct {
		u     string
		links []link
	}{
		{first, []link{{"?page=2&sort=asc", second, "Page 2"}, {"list.html?page=3", third, "Page 3"}}},
		{second, []link{{"?page=3", third, "Next"}, {"list.html", first, "First"}, {"?page=2&sort=asc", second, "This page"}}},
		{third, []link{{"/list.html?page=2&sort=asc", second, "Previous"}, {"./list.html", first, "First"}}},
	}
	for _, pg := range pages {
		p := g.newPage(h, pg.u)
		p.body = append(p.body, "<nav>")
		p.a(g.url(h, "/"), "Home")
		p.body = append(p.body, "</nav>", "<ul>")
		for _, l := range pg.links {
			p.body = append(p.body, "<li>")
			p.aRaw(l.href, l.target, escapeText(l.anchor), l.anchor, "")
			p.body = append(p.body, "</li>")
		}
		p.body = append(p.body, "</ul>")
		p.done(p.render("Listing", "utf-8"))
	}

	p := g.newPage(h, xhtml)
	p.res.contentType = "application/xhtml+xml; charset=utf-8"
	p.body = append(p.body, "<p>")
	p.a(g.url(h, "/"), "Home")
	p.a(g.target(h), g.anchor())
	t := g.target(h)
	p.link(typeIMG, p.href(t), t, `<img src="/files/chart-1.png" alt="XHTML image" />`, "XHTML image", "")
	p.body = append(p.body, "</p>")
	doc := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n" +
		"<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"UTF-8\" />\n" +
		"<title>XHTML page</title>\n</head>\n<body>\n" + strings.Join(p.body, "\n") + "\n</body>\n</html>\n"
	p.done([]byte(doc))
}
