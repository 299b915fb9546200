package testweb

import (
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

func noRedirectClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp, body
}

func edgeString(e Edge) string {
	return fmt.Sprintf("%s -> %s %s %q rel=%q status=%d nofollow=%t",
		e.Source, e.Target, e.Type, e.Anchor, e.Rel, e.RedirectStatus, e.PageNoFollow)
}

// TestWeb crawls the whole web over HTTP, re-derives every edge from the
// responses with an independent extractor and requires exact agreement with
// the model, then checks that the web has everything it promises.
func TestWeb(t *testing.T) {
	w := Start(t, Options{Seed: 1})
	pages := w.Pages()
	inPages := make(map[string]bool, len(pages))
	for _, u := range pages {
		inPages[u] = true
	}
	if len(pages) < 500 {
		t.Errorf("only %d pages, want >= 500", len(pages))
	}
	seeds := w.Seeds()
	if len(seeds) != 3 {
		t.Fatalf("%d seeds, want 3", len(seeds))
	}
	scope := make(map[string]bool)
	for i, s := range seeds {
		u, err := url.Parse(s)
		if err != nil || u.Path != "/" || u.Hostname() != fmt.Sprintf("127.0.0.%d", i+2) {
			t.Errorf("seed %q: want http://127.0.0.%d:PORT/", s, i+2)
		}
		scope[u.Host] = true
		if !inPages[s] {
			t.Errorf("seed %s not in Pages", s)
		}
	}

	c := noRedirectClient()
	var got []Edge
	skipped, statuses, contentTypes := 0, map[int]int{}, map[string]int{}
	basePages, metaNoFollow, headerNoFollow := 0, 0, 0
	for _, u := range pages {
		resp, body := get(t, c, u)
		if resp.StatusCode != w.Status(u) {
			t.Errorf("GET %s: status %d, model says %d", u, resp.StatusCode, w.Status(u))
		}
		statuses[resp.StatusCode]++
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		contentTypes[mt]++

		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				t.Errorf("GET %s: %d without usable Location: %v", u, resp.StatusCode, err)
				continue
			}
			if target := normalizeURL(loc); target != u {
				got = append(got, Edge{Source: u, Target: target, Type: typeRedirect, RedirectStatus: int32(resp.StatusCode)})
			}
		case resp.StatusCode >= 200 && resp.StatusCode < 300 && (mt == "text/html" || mt == "application/xhtml+xml"):
			ex, err := extractHTML(u, resp.Header, body)
			if err != nil {
				t.Errorf("parsing %s: %v", u, err)
				continue
			}
			got = append(got, ex.edges...)
			skipped += ex.skipped
			if ex.hasBase {
				basePages++
			}
			if ex.metaNoFollow {
				metaNoFollow++
			}
			if strings.Contains(resp.Header.Get("X-Robots-Tag"), "nofollow") {
				headerNoFollow++
			}
		}
	}

	// Every page was fetched exactly once, by us.
	for _, u := range pages {
		if n := w.Requests(u); n != 1 {
			t.Errorf("Requests(%s) = %d, want 1", u, n)
		}
	}
	if n := w.TotalRequests(); n != len(pages) {
		t.Errorf("TotalRequests() = %d, want %d", n, len(pages))
	}
	if !slices.Equal(w.RequestedURLs(), pages) {
		t.Errorf("RequestedURLs() differs from Pages()")
	}

	want := w.Edges()
	if len(want) == 0 {
		t.Fatal("Edges() is empty")
	}
	if !slices.IsSortedFunc(want, func(a, b Edge) int {
		return strings.Compare(a.Target+"\x00"+a.Source, b.Target+"\x00"+b.Source)
	}) {
		t.Error("Edges() is not sorted by (Target, Source)")
	}
	sortEdges(got)
	if !reflect.DeepEqual(got, want) {
		diffEdges(t, got, want)
	}
	if skipped != w.Skipped() || skipped == 0 {
		t.Errorf("extracted %d skipped hrefs, Skipped() = %d (want equal and > 0)", skipped, w.Skipped())
	}

	// Everything the brief promises is in there, many times.
	types := map[linkgraphv1.LinkType]int{}
	codes := map[int32]int{}
	pageNoFollow, external := 0, 0
	nonASCII := map[string]bool{}
	for _, e := range want {
		types[e.Type]++
		if e.Type == typeRedirect {
			codes[e.RedirectStatus]++
		}
		if e.PageNoFollow {
			pageNoFollow++
		}
		if !inPages[e.Source] {
			t.Errorf("source of %s not in Pages", edgeString(e))
		}
		tu, _ := url.Parse(e.Target)
		if scope[tu.Host] && !inPages[e.Target] {
			t.Errorf("in-scope target of %s not in Pages", edgeString(e))
		}
		if !scope[tu.Host] {
			external++
			if inPages[e.Target] {
				t.Errorf("out-of-scope target %s in Pages", e.Target)
			}
		}
		if strings.Contains(e.Target, "should-not-be-found") {
			t.Errorf("planted link indexed: %s", edgeString(e))
		}
		for _, s := range []string{"é", "ü", "€", "“", "日本語のページ", "&", "<"} {
			if strings.Contains(e.Anchor, s) {
				nonASCII[s] = true
			}
		}
	}
	for v := range linkgraphv1.LinkType_name {
		lt := linkgraphv1.LinkType(v)
		if lt == linkgraphv1.LinkType_LINK_TYPE_UNSPECIFIED || lt == linkgraphv1.LinkType_LINK_TYPE_SITEMAP {
			if types[lt] != 0 {
				t.Errorf("%d edges of type %s", types[lt], lt)
			}
			continue
		}
		if types[lt] < 3 {
			t.Errorf("%d edges of type %s, want several", types[lt], lt)
		}
	}
	for _, c := range redirectCodes {
		if codes[int32(c)] < 3 {
			t.Errorf("%d redirects with status %d, want several", codes[int32(c)], c)
		}
	}
	for _, s := range []string{"é", "ü", "€", "“", "日本語のページ", "&", "<"} {
		if !nonASCII[s] {
			t.Errorf("no anchor contains %q", s)
		}
	}
	if pageNoFollow == 0 || metaNoFollow == 0 || headerNoFollow == 0 {
		t.Errorf("PageNoFollow edges: %d, pages with meta nofollow: %d, with X-Robots-Tag: %d; want all > 0",
			pageNoFollow, metaNoFollow, headerNoFollow)
	}
	if basePages < 3*numBaseVariants-3 {
		t.Errorf("%d pages with <base>, want at least %d", basePages, 3*numBaseVariants-3)
	}
	if external == 0 {
		t.Error("no out-of-scope targets")
	}
	for _, s := range []int{200, 301, 302, 303, 307, 308, 404} {
		if statuses[s] == 0 {
			t.Errorf("no response with status %d", s)
		}
	}
	for _, ct := range []string{"text/html", "application/xhtml+xml", "application/pdf", "image/png", "text/plain", "text/css"} {
		if contentTypes[ct] == 0 {
			t.Errorf("no response with Content-Type %s", ct)
		}
	}
	t.Logf("%d pages, %d edges (%d out of scope), %d skipped hrefs, statuses %v, types %v",
		len(pages), len(want), external, w.Skipped(), statuses, types)
}

func diffEdges(t *testing.T, got, want []Edge) {
	t.Helper()
	g, w := map[string]bool{}, map[string]bool{}
	for _, e := range got {
		g[edgeString(e)] = true
	}
	for _, e := range want {
		w[edgeString(e)] = true
	}
	n := 0
	for _, e := range want {
		if s := edgeString(e); !g[s] && n < 20 {
			t.Errorf("in model, not in served HTML: %s", s)
			n++
		}
	}
	for _, e := range got {
		if s := edgeString(e); !w[s] && n < 40 {
			t.Errorf("in served HTML, not in model: %s", s)
			n++
		}
	}
	t.Errorf("served HTML has %d edges, model %d", len(got), len(want))
}

// TestDeterministic: the same seed gives the same web up to ports.
func TestDeterministic(t *testing.T) {
	shape := func(w *Web) string {
		var b strings.Builder
		for _, p := range w.Pages() {
			fmt.Fprintln(&b, p)
		}
		for _, e := range w.Edges() {
			fmt.Fprintln(&b, edgeString(e))
		}
		s := b.String()
		for i, seed := range w.Seeds() {
			host := strings.TrimSuffix(strings.TrimPrefix(seed, "http://"), "/")
			s = strings.ReplaceAll(s, host, fmt.Sprintf("host%d", i))
		}
		return s
	}
	opts := Options{Hosts: 4, PagesPerHost: 60, Seed: 42}
	a, b := Start(t, opts), Start(t, opts)
	if shape(a) != shape(b) {
		t.Error("two webs with the same seed differ")
	}
	opts.Seed = 43
	if shape(a) == shape(Start(t, opts)) {
		t.Error("webs with different seeds are identical")
	}
	if a.Skipped() != b.Skipped() {
		t.Error("Skipped differs for the same seed")
	}
}

// TestSmallWeb: tiny webs still hold together (the model checks its own
// closure under in-scope links when it is built).
func TestSmallWeb(t *testing.T) {
	for _, opts := range []Options{{Hosts: 1, PagesPerHost: 1}, {Hosts: 2, PagesPerHost: 7, Seed: 3}} {
		w := Start(t, opts)
		if len(w.Seeds()) != opts.Hosts || len(w.Edges()) == 0 {
			t.Errorf("%+v: %d seeds, %d edges", opts, len(w.Seeds()), len(w.Edges()))
		}
	}
}

// TestHrefFor resolves many generated hrefs with net/url and checks they
// land on their targets.
func TestHrefFor(t *testing.T) {
	g := &gen{rng: rand.New(rand.NewPCG(1, 2))}
	paths := []string{"/", "/page-1.html", "/docs/", "/docs/page-2.html", "/docs/guide/", "/docs/guide/page-3.html",
		"/blog/2024/post-4.html", "/list.html?page=2&sort=asc", "/hop/from-1.html"}
	hosts := []string{"127.0.0.2:1234", "127.0.0.3:5678"}
	for range 5000 {
		base := "http://" + pick(g, hosts) + pick(g, paths)
		target := "http://" + pick(g, hosts) + pick(g, paths)
		href := g.hrefFor(base, target)
		b, _ := url.Parse(base)
		u, err := b.Parse(href)
		if err != nil {
			t.Fatalf("hrefFor(%s, %s) = %q: %v", base, target, href, err)
		}
		if got := normalizeURL(u); got != target {
			t.Fatalf("hrefFor(%s, %s) = %q resolves to %s", base, target, href, got)
		}
	}
	for range 500 {
		e := g.external()
		u, err := url.Parse("http://127.0.0.2:1/x")
		if err == nil {
			u, err = u.Parse(e.href)
		}
		if err != nil || normalizeURL(u) != e.target {
			t.Fatalf("external %q resolves to %v (%v), want %s", e.href, u, err, e.target)
		}
	}
}

// siteLinks returns the hrefs of the <a> elements of a page.
func siteLinks(t *testing.T, page []byte) []string {
	t.Helper()
	var hrefs []string
	z := html.NewTokenizer(strings.NewReader(string(page)))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			return hrefs
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data != "a" {
				continue
			}
			for _, a := range tok.Attr {
				if a.Key == "href" {
					hrefs = append(hrefs, a.Val)
				}
			}
		}
	}
}

func checkSite(t *testing.T, s *Site, opts SiteOptions, base string) {
	t.Helper()
	var links int
	var size int64
	reached := map[int]bool{0: true}
	queue := []int{0}
	adj := make([][]int, s.Pages())
	for i, page := range s.pages {
		size += int64(len(page))
		if len(page) < opts.MinBytes || len(page) > opts.MaxBytes {
			t.Errorf("page %d has %d bytes, want %d..%d", i, len(page), opts.MinBytes, opts.MaxBytes)
		}
		hrefs := siteLinks(t, page)
		links += len(hrefs)
		if len(hrefs) < opts.MinLinks || len(hrefs) > opts.MaxLinks {
			t.Errorf("page %d has %d links, want %d..%d", i, len(hrefs), opts.MinLinks, opts.MaxLinks)
		}
		pageURL, _ := url.Parse(base + s.Path(i))
		for _, h := range hrefs {
			u, err := pageURL.Parse(h)
			if err != nil {
				t.Fatalf("page %d: bad href %q", i, h)
			}
			if u.Host != pageURL.Host {
				continue
			}
			j, ok := s.pageIndex(u.Path)
			if !ok || u.Path == "/" {
				t.Errorf("page %d: href %q points to no page", i, h)
			}
			if j == i {
				t.Errorf("page %d links to itself with %q", i, h)
			}
			adj[i] = append(adj[i], j)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range adj[i] {
			if !reached[j] {
				reached[j] = true
				queue = append(queue, j)
			}
		}
	}
	if len(reached) != s.Pages() {
		t.Errorf("%d of %d pages reachable from page 0", len(reached), s.Pages())
	}
	if links != s.Links() || size != s.Bytes() {
		t.Errorf("Links() = %d, Bytes() = %d; counted %d, %d", s.Links(), s.Bytes(), links, size)
	}
}

func TestSite(t *testing.T) {
	opts := SiteOptions{Pages: 300, Seed: 5, MinLinks: 50, MaxLinks: 150, MinBytes: 20 << 10, MaxBytes: 50 << 10}
	s, base := StartSite(t, opts)
	if s.Pages() != 300 {
		t.Fatalf("Pages() = %d", s.Pages())
	}
	checkSite(t, s, opts, base)

	c := noRedirectClient()
	for path, want := range map[string]int{"/": 200, "/p/0.html": 200, "/p/299.html": 200,
		"/p/300.html": 404, "/p/07.html": 404, "/p/-1.html": 404, "/static/site.css": 404} {
		resp, body := get(t, c, base+path)
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if want == 200 {
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", path, ct)
			}
			if !strings.HasPrefix(string(body), "<!DOCTYPE html>") || !strings.Contains(string(body), base+"/p/") {
				t.Errorf("GET %s: not a page with absolute links", path)
			}
		}
	}

	// Small bounds and tiny sites are honoured too.
	small := SiteOptions{Pages: 3, MinLinks: 5, MaxLinks: 8, MinBytes: 3000, MaxBytes: 4000, Seed: 9}
	checkSite(t, NewSite(small), small, "http://h")
}

func TestSiteDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("renders ~175 MB")
	}
	s := NewSite(SiteOptions{})
	if s.Pages() != 5000 {
		t.Fatalf("Pages() = %d", s.Pages())
	}
	for i, p := range s.pages {
		if len(p) < 20<<10 || len(p) > 50<<10 {
			t.Fatalf("page %d has %d bytes", i, len(p))
		}
	}
	if l := s.Links(); l < 50*5000 || l > 150*5000 {
		t.Errorf("Links() = %d", l)
	}
	t.Logf("%d pages, %d links, %d bytes", s.Pages(), s.Links(), s.Bytes())
}
