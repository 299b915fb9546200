package testweb

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SiteOptions configures NewSite. Zero values take the defaults.
type SiteOptions struct {
	// Pages is the number of pages. Default 5000.
	Pages int
	// MinLinks and MaxLinks bound the number of links on each page
	// (navigation and footer included). Defaults 50 and 150.
	MinLinks, MaxLinks int
	// MinBytes and MaxBytes bound the size of each page. Defaults 20 KiB and
	// 50 KiB. A page can only exceed MaxBytes if its links alone do not fit.
	MinBytes, MaxBytes int
	// Seed makes the site deterministic.
	Seed int64
	// BaseURL, like "http://127.0.0.1:8080", is what absolute links to the
	// site's own pages start with. When empty they are written root-relative
	// instead, since the address is not known. StartSite fills it in.
	BaseURL string
}

// Site is a static site pre-rendered in memory: serving a page costs no more
// than writing its bytes. Pages live at /p/N.html; / serves page 0 too, and
// pages link to page 0 as /p/0.html, so a crawl starting at / fetches
// Pages()+1 URLs.
type Site struct {
	pages [][]byte
	links int
	bytes int64
}

// The Content-Type header value, shared by all responses so that serving
// does not allocate it. The server only reads header slices.
var siteContentType = []string{"text/html; charset=utf-8"}

// NewSite renders every page of the site. Links go to other pages of the
// site, uniformly or (about one in six) to a handful of very popular pages,
// plus a few external ones; page i always links to page i+1, so every page
// is reachable from page 0. Links on one page are pairwise distinct and
// never point to the page itself, so Links is also the number of edges an
// indexer finds.
func NewSite(opts SiteOptions) *Site {
	if opts.Pages <= 0 {
		opts.Pages = 5000
	}
	if opts.MinLinks <= 0 {
		opts.MinLinks = 50
	}
	if opts.MaxLinks <= 0 {
		opts.MaxLinks = 150
	}
	if opts.MinBytes <= 0 {
		opts.MinBytes = 20 << 10
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 50 << 10
	}
	opts.MaxLinks = max(opts.MaxLinks, opts.MinLinks)
	opts.MaxBytes = max(opts.MaxBytes, opts.MinBytes)
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")

	sb := &siteBuilder{
		opts: opts,
		rng:  rand.New(rand.NewPCG(uint64(opts.Seed), 0x73697465)),
	}
	// Page 0 is the home page, the most popular of all; a few random others
	// join it, as on real sites where some pages are linked from everywhere.
	sb.popular = []int{0}
	for _, j := range sb.rng.Perm(opts.Pages) {
		if len(sb.popular) == min(10, opts.Pages) {
			break
		}
		if j != 0 {
			sb.popular = append(sb.popular, j)
		}
	}

	s := &Site{pages: make([][]byte, opts.Pages)}
	for i := range s.pages {
		page, links := sb.render(i)
		s.pages[i] = page
		s.links += links
		s.bytes += int64(len(page))
	}
	return s
}

// StartSite serves a new site on 127.0.0.1 until the test ends and returns
// it with its base URL ("http://127.0.0.1:PORT").
func StartSite(tb testing.TB, opts SiteOptions) (*Site, string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testweb: %v", err)
	}
	base := "http://" + l.Addr().String()
	opts.BaseURL = base
	s := NewSite(opts)
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	tb.Cleanup(srv.Close)
	return s, base
}

// Pages returns the number of pages.
func (s *Site) Pages() int { return len(s.pages) }

// Links returns the number of links over all pages.
func (s *Site) Links() int { return s.links }

// Bytes returns the size of all pages together.
func (s *Site) Bytes() int64 { return s.bytes }

// Path returns the URL path of page i.
func (s *Site) Path(i int) string { return "/p/" + strconv.Itoa(i) + ".html" }

// Handler serves the pages, and 404 for anything else.
func (s *Site) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve serves the site on l until l is closed, for a server running in a
// separate process. It always returns a non-nil error.
func (s *Site) Serve(l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(l)
}

func (s *Site) serveHTTP(w http.ResponseWriter, r *http.Request) {
	i, ok := s.pageIndex(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	page := s.pages[i]
	h := w.Header()
	h["Content-Type"] = siteContentType
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(page)
	}
}

func (s *Site) pageIndex(path string) (int, bool) {
	if path == "/" {
		return 0, len(s.pages) > 0
	}
	rest, ok := strings.CutPrefix(path, "/p/")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".html")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	// One URL per page: "/p/007.html" and "/p/+7.html" are not page 7.
	if err != nil || n < 0 || n >= len(s.pages) || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

type siteBuilder struct {
	opts    SiteOptions
	rng     *rand.Rand
	popular []int
}

// siteLink is one link of a page, rendered, with its identity for
// deduplication.
type siteLink struct {
	key  string
	html string
}

func (b *siteBuilder) word() string { return lorem[b.rng.IntN(len(lorem))] }

func (b *siteBuilder) words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = b.word()
	}
	return strings.Join(ws, " ")
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// href spells a link from page i to page j.
func (b *siteBuilder) href(i, j int) string {
	abs := "/p/" + strconv.Itoa(j) + ".html"
	x := b.rng.IntN(20)
	switch {
	case x < 4 && b.opts.BaseURL != "":
		return b.opts.BaseURL + abs
	case i == 0 || x < 10:
		// Page 0 is also served at "/", where relative hrefs would resolve
		// elsewhere; it only uses root-relative and absolute ones.
		return abs
	case x < 17:
		return strconv.Itoa(j) + ".html"
	case x < 19:
		return "./" + strconv.Itoa(j) + ".html"
	default:
		return "../p/" + strconv.Itoa(j) + ".html"
	}
}

// pickTarget returns a page other than i: a popular one with probability
// 1/6 (skewed towards the most popular), else uniform.
func (b *siteBuilder) pickTarget(i int) int {
	n := b.opts.Pages
	for {
		var j int
		if b.rng.IntN(6) == 0 {
			j = b.popular[b.rng.IntN(b.rng.IntN(len(b.popular))+1)]
		} else {
			j = b.rng.IntN(n)
		}
		if j != i {
			return j
		}
	}
}

// link renders a link from page i to page j (or, for j < 0, to an external
// site), with an anchor and rel that make it distinct among seen.
func (b *siteBuilder) link(i, j int, anchor string, seen map[string]bool) siteLink {
	rel := ""
	switch x := b.rng.IntN(40); {
	case x < 2:
		rel = "nofollow"
	case x < 3:
		rel = "ugc"
	case x < 4:
		rel = "sponsored"
	}
	img := b.rng.IntN(20) == 0
	for attempt := 0; ; attempt++ {
		key := fmt.Sprintf("%d|%s|%s|%t", j, anchor, rel, img)
		if !seen[key] {
			seen[key] = true
			break
		}
		anchor += " " + b.word()
		if attempt > 5 {
			anchor += " " + strconv.Itoa(attempt)
		}
	}

	var href string
	if j < 0 {
		href = fmt.Sprintf("https://www.example-%d.org/articles/%d", b.rng.IntN(100), b.rng.IntN(1000))
		if rel == "" {
			rel = "noopener"
		}
	} else {
		href = b.href(i, j)
	}
	var sb strings.Builder
	sb.WriteString(`<a href="`)
	sb.WriteString(href)
	sb.WriteByte('"')
	if rel != "" {
		sb.WriteString(` rel="` + rel + `"`)
	}
	sb.WriteByte('>')
	if img {
		fmt.Fprintf(&sb, `<img src="/img/%d.jpg" alt="%s" width="120" height="80" loading="lazy">`, b.rng.IntN(500), anchor)
	} else {
		sb.WriteString(anchor)
	}
	sb.WriteString("</a>")
	return siteLink{html: sb.String()}
}

// render returns page i and its number of links.
func (b *siteBuilder) render(i int) ([]byte, int) {
	o := b.opts
	nlinks := o.MinLinks + b.rng.IntN(o.MaxLinks-o.MinLinks+1)
	seen := make(map[string]bool)

	// Navigation and footer: the popular pages, as on every page of a site.
	var nav, footer []siteLink
	for k, j := range b.popular {
		if j == i || len(nav)+len(footer) >= nlinks {
			continue
		}
		label := capitalize(b.words(1 + b.rng.IntN(2)))
		if k == 0 {
			label = "Home"
		}
		if k < 6 {
			nav = append(nav, b.link(i, j, label, seen))
		} else {
			footer = append(footer, b.link(i, j, label, seen))
		}
	}
	var body []siteLink
	if o.Pages > 1 && len(nav)+len(footer) < nlinks {
		// The chain that makes every page reachable from page 0.
		body = append(body, b.link(i, (i+1)%o.Pages, "Next: "+b.words(2), seen))
	}
	for len(nav)+len(footer)+len(body) < nlinks {
		j := -1
		if o.Pages == 1 || b.rng.IntN(20) != 0 {
			if o.Pages > 1 {
				j = b.pickTarget(i)
			}
		}
		body = append(body, b.link(i, j, capitalize(b.words(1+b.rng.IntN(4))), seen))
	}
	b.rng.Shuffle(len(body), func(x, y int) { body[x], body[y] = body[y], body[x] })

	title := capitalize(b.words(3+b.rng.IntN(4))) + " — page " + strconv.Itoa(i)
	var head strings.Builder
	head.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	head.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	head.WriteString("<title>" + title + "</title>\n")
	head.WriteString("<meta name=\"description\" content=\"" + capitalize(b.words(12)) + ".\">\n")
	head.WriteString("<link rel=\"stylesheet\" href=\"/static/site.css\">\n<link rel=\"icon\" href=\"/favicon.ico\">\n")
	head.WriteString("<script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n")
	head.WriteString("<header class=\"site-header\">\n<nav>\n<ul>\n")
	for _, l := range nav {
		head.WriteString("<li>" + l.html + "</li>\n")
	}
	head.WriteString("</ul>\n</nav>\n</header>\n<main>\n<article>\n<h1>" + title + "</h1>\n<p>")

	var tail strings.Builder
	tail.WriteString("</p>\n</article>\n</main>\n<footer>\n<p>© 2024 Example Corp.")
	for _, l := range footer {
		tail.WriteString(" " + l.html)
	}
	tail.WriteString("</p>\n</footer>\n</body>\n</html>\n")

	// Leave room for the last word, so that pages end up within bounds.
	const slack = 64
	lo, hi := o.MinBytes, o.MaxBytes-slack
	if hi < lo {
		hi = lo
	}
	target := lo + b.rng.IntN(hi-lo+1)

	buf := make([]byte, 0, target+slack)
	buf = append(buf, head.String()...)
	links := len(nav) + len(footer) + len(body)
	restBytes := 0
	for _, l := range body {
		restBytes += len(l.html) + 1
	}
	// Fill the article with prose until the page reaches its target size,
	// dropping the body links in at random places along the way.
	paraWords, paras, sentence := 40+b.rng.IntN(80), 0, 0
	for {
		projected := len(buf) + restBytes + tail.Len()
		if projected >= target && len(body) == 0 {
			break
		}
		if paraWords == 0 {
			paras++
			buf = append(buf, ".</p>\n"...)
			if paras%4 == 0 {
				buf = append(buf, "<h2>"+capitalize(b.words(2+b.rng.IntN(4)))+"</h2>\n"...)
			}
			buf = append(buf, "<p>"...)
			paraWords, sentence = 40+b.rng.IntN(80), 0
			continue
		}
		// A link comes next with probability links left / words left, so
		// that links spread evenly over the text.
		wordsLeft := max(0, (target-projected)/7)
		if len(body) > 0 && b.rng.IntN(wordsLeft+len(body)) < len(body) {
			buf = append(buf, ' ')
			buf = append(buf, body[0].html...)
			restBytes -= len(body[0].html) + 1
			body = body[1:]
			continue
		}
		w := b.word()
		if sentence == 0 {
			w = capitalize(w)
		}
		sentence++
		if sentence > 6 && b.rng.IntN(10) == 0 {
			w += "."
			sentence = 0
		}
		buf = append(buf, ' ')
		buf = append(buf, w...)
		paraWords--
	}
	buf = append(buf, tail.String()...)
	return buf, links
}
