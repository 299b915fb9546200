package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

// changingSite serves pages whose content the test changes between crawls.
type changingSite struct {
	mu    sync.Mutex
	pages map[string]func(w http.ResponseWriter, r *http.Request)
	// notModified counts 304 answers to conditional requests.
	notModified atomic.Int64
}

func (s *changingSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.pages[r.URL.Path]
	s.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func (s *changingSite) set(path string, h func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[path] = h
}

// etagged serves page behind the ETag etag, answering a request that
// has it 304 (counted in notModified).
func (s *changingSite) etagged(etag string, page func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			s.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		page(w, r)
	}
}

func html(body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<html><head><title>%s</title></head><body>%s</body></html>", r.URL.Path, body)
	}
}

// TestRecrawlFindsNewAndLostLinks crawls a site, changes it (a link
// replaced, a page deleted, one redirected, one made noindex, one host
// down, one page unchanged behind an ETag), waits for the revisits to fall
// due and crawls again: every link ends up live or lost with the right
// reason and times, and the unchanged page costs a 304 that changes
// nothing but last_seen, even when its revisit is retried after a 503.
func TestRecrawlFindsNewAndLostLinks(t *testing.T) {
	site := &changingSite{pages: map[string]func(http.ResponseWriter, *http.Request){}}
	srv := httptest.NewServer(site)
	defer srv.Close()
	down := &changingSite{pages: map[string]func(http.ResponseWriter, *http.Request){}}
	downLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downSrv := &httptest.Server{Listener: downLis, Config: &http.Server{Handler: down}}
	downSrv.Start()
	x := func(n int) string { return fmt.Sprintf(`<a href="http://t.example/%d">x%d</a>`, n, n) }

	site.set("/", html(`<a href="/a">a</a><a href="/b">b</a><a href="/c">c</a><a href="/d">d</a><a href="/e">e</a>`))
	site.set("/a", html(x(1)+x(2)))
	site.set("/b", html(x(4)))
	site.set("/c", html(x(5)))
	site.set("/d", html(x(7)))
	site.set("/e", site.etagged(`"e1"`, html(x(8))))
	down.set("/h", html(x(10)))

	dir := t.TempDir()
	// Revisits every 5s, neither sooner nor later, so that the second crawl
	// takes every page once.
	args := []string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0", "--ignore-robots",
		"--revisit", "5s", "--min-revisit", "5s", "--max-revisit", "5s",
		"--max-attempts", "2", "--retry-backoff", "10ms", "--timeout", "2s"}
	first := time.Now()
	if code, out, errOut := runCLI(t, append(slices.Clone(args), srv.URL+"/", downSrv.URL+"/h")...); code != 0 {
		t.Fatalf("first crawl: exit %d\n%s\n%s", code, out, errOut)
	}
	firstEnd := time.Now()
	if d := firstEnd.Sub(first); d > 5*time.Second {
		t.Fatalf("the first crawl took %v, longer than the revisit interval", d)
	}

	site.set("/a", html(x(3)))    // x1 removed, x2 moved to /c2, x3 added
	site.set("/b", http.NotFound) // page gone
	site.set("/c", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/c2", http.StatusMovedPermanently) })
	site.set("/c2", html(x(6)+x(2)))                                    // a new page behind the redirect
	site.set("/d", html(`<meta name="robots" content="noindex">`+x(7))) // noindex now
	downSrv.Close()                                                     // host unreachable
	// /e is unchanged, but its revisit first gets a 503: the retry must
	// still be a conditional request.
	var eTries atomic.Int64
	e := site.etagged(`"e1"`, html(x(8)))
	site.set("/e", func(w http.ResponseWriter, r *http.Request) {
		if eTries.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		e(w, r)
	})

	// Every page of the first crawl is due by then.
	time.Sleep(time.Until(firstEnd.Add(5100 * time.Millisecond)))
	second := time.Now()
	if code, out, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("second crawl: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := site.notModified.Load(); n != 1 || eTries.Load() != 2 {
		t.Errorf("%d conditional requests answered 304 in %d requests of /e, want 1 in 2 (the revisit of /e, retried after a 503)", n, eTries.Load())
	}

	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close() // closed below before the CLI opens the directory; Close is idempotent
	ix := indexer.New(db, bus.DefaultShards)
	q := indexer.Query{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: 100, Filter: &lgv1.Filter{IncludeLost: true}}
	page, err := ix.Backlinks(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, bl := range page.Backlinks {
		src := bl.SourceUrl[strings.LastIndex(bl.SourceUrl, "/"):]
		if src == "/e" && (bl.SourceTitle != "/e" || bl.SourceStatus != 200) {
			// The 304 changed nothing of the page but the time.
			t.Errorf("after a 304, /e has title %q and status %d, want its first crawl's \"/e\" and 200", bl.SourceTitle, bl.SourceStatus)
		}
		state := "live"
		if bl.LostAt != nil {
			state = "lost " + strings.TrimPrefix(bl.LostReason.String(), "LOST_REASON_")
		}
		// Seen first in the first or second crawl, last in which.
		crawl := func(ts time.Time) string {
			if ts.Before(second) {
				return "1"
			}
			return "2"
		}
		got = append(got, fmt.Sprintf("%s -> %s %s (first %s, last %s)", src, bl.AnchorText, state,
			crawl(bl.FirstSeen.AsTime()), crawl(bl.LastSeen.AsTime())))
	}
	slices.Sort(got)
	want := []string{
		"/a -> x1 lost REMOVED (first 1, last 1)",
		"/a -> x2 lost REMOVED (first 1, last 1)",
		"/a -> x3 live (first 2, last 2)",
		"/b -> x4 lost PAGE_GONE (first 1, last 1)",
		"/c -> x5 lost REDIRECTED (first 1, last 1)",
		"/c2 -> x2 live (first 2, last 2)",
		"/c2 -> x6 live (first 2, last 2)",
		"/d -> x7 lost NOINDEX (first 1, last 1)",
		"/e -> x8 live (first 1, last 2)",
		"/h -> x10 lost HOST_UNREACHABLE (first 1, last 1)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("links after the recrawl:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The maintained aggregates count the live links only, exactly.
	sum, err := ix.Summary(t.Context(), &lgv1.SummaryRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST})
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.GetSummary(); s.Backlinks != 4 || s.ReferringPages != 3 || s.ReferringDomains != 1 {
		t.Errorf("summary: %d backlinks from %d pages and %d domains, want 4, 3, 1", s.Backlinks, s.ReferringPages, s.ReferringDomains)
	}
	db.Close()

	// The same through the CLI: the lost links with their reasons, and the
	// velocity over the days around the crawls.
	code, out, errOut := runCLI(t, "backlinks", "--data", dir, "--scope", "host", "--state", "lost", "--format", "csv", "t.example")
	if code != 0 {
		t.Fatalf("backlinks --state lost: exit %d: %s", code, errOut)
	}
	var reasons []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Split(line, ",")
		reasons = append(reasons, f[slices.Index(tsvColumns, "lost_reason")-len(tsvColumns)+len(f)])
	}
	slices.Sort(reasons)
	if want := []string{"host_unreachable", "noindex", "page_gone", "redirected", "removed", "removed"}; !slices.Equal(reasons, want) {
		t.Errorf("lost_reason column: %q, want %q", reasons, want)
	}
	day := time.Now().UTC()
	code, out, errOut = runCLI(t, "velocity", "--data", dir, "--scope", "host", "--format", "tsv",
		"--from", day.AddDate(0, 0, -1).Format(time.DateOnly), "--to", day.AddDate(0, 0, 2).Format(time.DateOnly), "t.example")
	if code != 0 {
		t.Fatalf("velocity: exit %d: %s", code, errOut)
	}
	var sums [4]int
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		for i := range sums {
			var n int
			fmt.Sscan(f[i+1], &n)
			sums[i] += n
		}
	}
	// 7 links of the first crawl and 3 of the second are new, 6 lost; the
	// one referring domain (127.0.0.1) is new and keeps live links.
	if len(lines) != 4 || sums != [4]int{10, 6, 1, 0} {
		t.Errorf("velocity over 3 days: %d lines, totals %v; want 3 days and [10 6 1 0]:\n%s", len(lines)-1, sums, out)
	}

	// A page changes again before its revisit is due: recrawl checks the
	// target's sources now.
	site.set("/a", html(x(3)+x(11)))
	code, out, errOut = runCLI(t, "recrawl", "--data", dir, "--scope", "host", "--allow-private-networks", "--delay", "0", "--timeout", "2s", "t.example")
	if code != 0 {
		t.Fatalf("recrawl: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"recrawled 7 source pages", "live backlinks  5 (were 4)", "lost backlinks  6 (were 6)"} {
		if !strings.Contains(out, want) {
			t.Errorf("recrawl printed\n%s\nwant %q", out, want)
		}
	}
}

// verifiedSite serves three pages that link to t.example, and counts the
// requests that reach it.
func verifiedSite(t *testing.T) (site *changingSite, url string, hits *atomic.Int64) {
	t.Helper()
	site = &changingSite{pages: map[string]func(http.ResponseWriter, *http.Request){}}
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		site.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	site.set("/", html(`<a href="/a">a</a><a href="/b">b</a><a href="/c">c</a>`))
	site.set("/a", html(`<a href="http://t.example/1">x1</a><a href="http://u.example/">u</a>`))
	site.set("/b", html(`<a href="http://t.example/2">x2</a><a href="/">home</a>`))
	site.set("/c", html(`<a href="http://t.example/3">x3</a>`))
	return site, srv.URL, hits
}

// TestRecrawlRefusedPrivateAddressChangesNothing recrawls the sources of
// links found on a loopback site without --allow-private-networks. The
// guard refuses the fetches before connecting, which says nothing about
// the pages: every link, to the target or not, stays live, and recrawl
// reports the refusal instead of claiming the links verified. The guard
// refuses the page itself when robots.txt is still valid from the crawl,
// or robots.txt first when it is not; both must end the same.
func TestRecrawlRefusedPrivateAddressChangesNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		crawl []string
	}{
		{"page refused", nil},
		{"robots.txt refused", []string{"--ignore-robots"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, url, hits := verifiedSite(t)
			dir := t.TempDir()
			args := append([]string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0"}, c.crawl...)
			if code, out, errOut := runCLI(t, append(args, url+"/")...); code != 0 {
				t.Fatalf("crawl: exit %d\n%s\n%s", code, out, errOut)
			}
			before := hits.Load()
			code, out, errOut := runCLI(t, "recrawl", "--data", dir, "--scope", "host", "--delay", "0", "t.example")
			if code != 0 {
				t.Fatalf("recrawl: exit %d\n%s\n%s", code, out, errOut)
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("%d requests reached the loopback site without --allow-private-networks", n)
			}
			for _, want := range []string{
				"recrawled 3 source pages: 3 not fetched", "not fetched     private_address 3",
				"--allow-private-networks", "live backlinks  3 (were 3)", "lost backlinks  0 (were 0)",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("recrawl printed\n%s\nwant %q", out, want)
				}
			}
			if strings.Contains(out, "verified") {
				t.Errorf("recrawl claims links verified that it did not fetch:\n%s", out)
			}
			if !strings.Contains(errOut, "private address") {
				t.Errorf("recrawl logged nothing of the refusal; stderr:\n%s", errOut)
			}

			db, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var live int
			err = indexer.New(db, bus.DefaultShards).ScanEdges(t.Context(), func(b *lgv1.Backlink, ok bool) error {
				if !ok {
					t.Errorf("lost after a refused recrawl: %s -> %s (%s)", b.SourceUrl, b.TargetUrl, b.LostReason)
				}
				live++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// / -> /a, /b, /c; /a -> x1, u; /b -> x2, /; /c -> x3.
			if live != 8 {
				t.Errorf("%d links after the recrawl, want the crawl's 8", live)
			}
		})
	}
}

// TestRecrawlInterruptedPrintsSummary sends SIGINT to a recrawl while it
// fetches: like an interrupted crawl it drains, prints what it did and how
// to go on, and exits 0.
func TestRecrawlInterruptedPrintsSummary(t *testing.T) {
	site, url, _ := verifiedSite(t)
	// Enough backlinks that counting them takes a scan long enough to
	// check the context (every 256 rows), as on a real index.
	for i, p := range []string{"/a", "/b", "/c"} {
		var links strings.Builder
		for j := range 100 {
			fmt.Fprintf(&links, `<a href="http://t.example/%d">x</a>`, i*100+j)
		}
		site.set(p, html(links.String()))
	}
	dir := t.TempDir()
	if code, out, errOut := runCLI(t, "crawl", "--data", dir, "--allow-private-networks", "--delay", "0", url+"/"); code != 0 {
		t.Fatalf("crawl: exit %d\n%s\n%s", code, out, errOut)
	}
	// The recrawl's first fetch of a source waits until the signal is
	// sent, so that the signal comes while a fetch is in flight.
	fetching, signalled := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(h func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(fetching) })
			select {
			case <-signalled:
			case <-time.After(10 * time.Second):
			}
			h(w, r)
		}
	}
	site.mu.Lock()
	for _, p := range []string{"/a", "/b", "/c"} {
		site.pages[p] = slow(site.pages[p])
	}
	site.mu.Unlock()
	cmd, out := startCLI(t, "recrawl", "--data", dir, "--scope", "host", "--allow-private-networks", "--delay", "0", "--workers", "1", "t.example")
	select {
	case <-fetching:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no source page fetched after 30s:\n%s", out)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(signalled)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0 as an interrupted crawl:\n%s", code, out)
	}
	for _, want := range []string{"recrawled 3 source pages: interrupted (run again with the same --data to go on)",
		"live backlinks  300 (were 300)", "lost backlinks  0 (were 0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("recrawl printed\n%s\nwant %q", out, want)
		}
	}
}

// TestRecrawlServerRefusesLocalFlags: with --server the server fetches
// with its own settings, so the flags of recrawl's own fetches are usage
// errors rather than silently ignored.
func TestRecrawlServerRefusesLocalFlags(t *testing.T) {
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--delay", "5s"}, "--delay: not with --server"},
		{[]string{"--workers", "2", "--allow-private-networks", "--timeout", "1s"}, "--allow-private-networks, --timeout, --workers: not with --server"},
		{[]string{"--log-level", "debug", "--max-body", "1MiB", "--user-agent", "x"}, "--log-level, --max-body, --user-agent: not with --server"},
	} {
		args := append(append([]string{"recrawl", "--server", "127.0.0.1:1"}, c.flags...), "http://t.example/")
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", args, code, errOut, c.want)
		}
	}
	// The flags that say what to recrawl go to the server: no usage error,
	// only the failed call to a port where nothing listens.
	args := []string{"recrawl", "--server", "127.0.0.1:1", "--scope", "host", "--max-sources", "5", "t.example"}
	if code, _, errOut := runCLI(t, args...); code != 1 {
		t.Errorf("%q: exit %d, stderr %q; want exit 1 (nothing listens)", args, code, errOut)
	}
}

// TestCrawlSummaryCountsRevisits runs a crawl again once its pages are due
// for a revisit: the second summary counts that run's fetches (revisits
// and 304s included) and sitemap fetches, and its links added and lost
// apart, never as a negative number.
func TestCrawlSummaryCountsRevisits(t *testing.T) {
	site := &changingSite{pages: map[string]func(http.ResponseWriter, *http.Request){}}
	var pageHits, sitemapHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
		case "/sitemap.xml":
			sitemapHits.Add(1)
		default:
			pageHits.Add(1)
		}
		site.ServeHTTP(w, r)
	}))
	defer srv.Close()
	x := func(n int) string { return fmt.Sprintf(`<a href="http://t.example/%d">x%d</a>`, n, n) }
	site.set("/sitemap.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://%s/</loc></url></urlset>`, r.Host)
	})
	site.set("/", html(`<a href="/a">a</a><a href="/b">b</a><a href="/c">c</a>`))
	site.set("/a", html(x(1)+x(2)))
	site.set("/b", site.etagged(`"b1"`, html(x(4))))
	site.set("/c", html(x(5)))

	dir := t.TempDir()
	args := []string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--revisit", "2s", "--min-revisit", "2s", "--max-revisit", "2s", "--robots-ttl", "1s", "--timeout", "2s", srv.URL + "/"}
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("first crawl: exit %d\n%s\n%s", code, out, errOut)
	}
	firstEnd := time.Now()
	t.Logf("first summary:\n%s", out)
	if got, want := summaryNumber(t, out, "pages fetched"), int(pageHits.Load()); got != want {
		t.Errorf("first crawl: summary says %d pages fetched, the server answered %d", got, want)
	}

	site.set("/a", html(x(1)+x(3)))                               // x2 lost, x3 new
	site.set("/c", http.NotFound)                                 // x5 lost
	time.Sleep(time.Until(firstEnd.Add(2500 * time.Millisecond))) // every page due
	pages0, sitemaps0 := pageHits.Load(), sitemapHits.Load()
	code, out, errOut = runCLI(t, args[:len(args)-1]...)
	if code != 0 {
		t.Fatalf("second crawl: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("second summary:\n%s", out)
	pages, sitemaps := pageHits.Load()-pages0, sitemapHits.Load()-sitemaps0
	if pages != 4 || site.notModified.Load() != 1 {
		t.Fatalf("second crawl: the server answered %d page requests (%d 304), want 4 (1)", pages, site.notModified.Load())
	}
	if got := summaryNumber(t, out, "pages fetched"); got != int(pages) {
		t.Errorf("second crawl: summary says %d pages fetched, the server answered %d", got, pages)
	}
	if got := summaryNumber(t, out, "sitemaps"); got != int(sitemaps) {
		t.Errorf("second crawl: summary says %d sitemaps fetched, the server answered %d", got, sitemaps)
	}
	for _, want := range []string{
		"by status         2xx 2, 304 1, 4xx 1\n",
		"links indexed     1 new, 2 lost (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second crawl: summary lacks %q", want)
		}
	}
	if regexp.MustCompile(`\s-\d`).MatchString(out) {
		t.Errorf("second crawl: summary has a negative number")
	}
}

// TestRecrawlLeavesTheCrawlQueue: a recrawl fetches the sources of the
// target's backlinks and nothing else. The pages a crawl left queued (here
// by --max-pages) wait for the next crawl, which fetches them.
func TestRecrawlLeavesTheCrawlQueue(t *testing.T) {
	site, url, _ := verifiedSite(t)
	var others atomic.Int64 // fetches of /b and /c
	site.mu.Lock()
	for _, p := range []string{"/b", "/c"} {
		h := site.pages[p]
		site.pages[p] = func(w http.ResponseWriter, r *http.Request) {
			others.Add(1)
			h(w, r)
		}
	}
	site.mu.Unlock()
	dir := t.TempDir()
	crawl := func(maxPages string) {
		t.Helper()
		if code, out, errOut := runCLI(t, "crawl", "--data", dir, "--allow-private-networks", "--delay", "0", "--max-pages", maxPages, url+"/"); code != 0 {
			t.Fatalf("crawl: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	crawl("2") // / and /a, the first link it queued
	if n := others.Load(); n != 0 {
		t.Fatalf("the first crawl fetched /b or /c (%d), want / and /a only", n)
	}
	code, out, errOut := runCLI(t, "recrawl", "--data", dir, "--allow-private-networks", "--delay", "0", "http://t.example/1")
	if code != 0 || !strings.Contains(out, "recrawled 1 source pages: verified") {
		t.Fatalf("recrawl: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := others.Load(); n != 0 {
		t.Errorf("the recrawl fetched %d of the pages the crawl left queued, want none", n)
	}
	crawl("0")
	if n := others.Load(); n != 2 {
		t.Errorf("the next crawl fetched /b and /c %d times, want 2", n)
	}
}
