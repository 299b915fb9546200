package main

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The politeness tests crawl small sites on loopback hosts through the real
// crawl command and check, from what the servers saw, that the frontier kept
// its promises: at most --per-host-concurrency requests in flight per host,
// at least --delay (or the robots.txt Crawl-delay) between the end of one
// request and the start of the next, Retry-After honoured for the whole
// host, robots.txt fetched first and obeyed.

// politeSlack absorbs clock granularity only: the servers' timestamps are
// taken on the same monotonic clock as the frontier's.
const politeSlack = 5 * time.Millisecond

// politeHit is one request as a test server saw it.
type politeHit struct {
	host   string // site name
	path   string
	status int
	start  time.Time // the handler was entered
	// lastByte is taken just before the last byte of the body is written:
	// the client cannot have the whole response, let alone report it done,
	// any earlier. Spacing is measured from here, which is never later
	// than the crawler's own end of the request.
	lastByte time.Time
	// end is taken after the whole body was written and flushed. Overlaps
	// are counted up to here, which is never earlier than the real end.
	end time.Time
}

// politeLog is the mutex-protected request log shared by a web's servers.
type politeLog struct {
	mu   sync.Mutex
	hits []politeHit
}

func (l *politeLog) add(h politeHit) {
	l.mu.Lock()
	l.hits = append(l.hits, h)
	l.mu.Unlock()
}

// byHost returns each host's hits sorted by start time.
func (l *politeLog) byHost() map[string][]politeHit {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]politeHit)
	for _, h := range l.hits {
		out[h.host] = append(out[h.host], h)
	}
	for _, hs := range out {
		slices.SortFunc(hs, func(a, b politeHit) int { return a.start.Compare(b.start) })
	}
	return out
}

// politeSpec describes one host of a politeness web.
type politeSpec struct {
	name   string
	pages  int    // HTML pages: "/" (which links to all others) and /p1 ... /p<pages-1>
	robots string // body of /robots.txt
	// slowEvery makes /p<i> with i%slowEvery == 2 take politeSlowLatency,
	// longer than the delay, so that a second request may overlap it.
	// 0: none.
	slowEvery int
	// unavailable answers its first request with 503 and Retry-After: 2,
	// taking unavailableLatency to do so; later requests get the page.
	unavailable        string
	unavailableLatency time.Duration
	// privateLinks makes every third page link to /private/x.
	privateLinks bool
}

const politeSlowLatency = 400 * time.Millisecond

// politeSite is one running host.
type politeSite struct {
	spec   politeSpec
	addr   string // 127.0.0.N:PORT
	root   string // http://127.0.0.N:PORT/
	bodies map[string][]byte
	// links maps every page to the absolute URLs it links to, in order.
	links map[string][]string

	log *politeLog

	mu     sync.Mutex
	failed map[string]bool // unavailable paths that already answered 503
}

func (s *politeSite) url(path string) string { return "http://" + s.addr + path }

// pagePaths returns the site's HTML page paths, "/" first.
func (s *politeSite) pagePaths() []string {
	paths := []string{"/"}
	for i := 1; i < s.spec.pages; i++ {
		paths = append(paths, fmt.Sprintf("/p%d", i))
	}
	return paths
}

// latency is how long the server takes to answer path: 20-50 ms, fixed
// per path, or politeSlowLatency for the slow pages.
func (s *politeSite) latency(path string) time.Duration {
	if s.spec.slowEvery > 0 && strings.HasPrefix(path, "/p") {
		if i, err := strconv.Atoi(path[2:]); err == nil && i%s.spec.slowEvery == 2 {
			return politeSlowLatency
		}
	}
	h := fnv.New32a()
	h.Write([]byte(s.spec.name + path))
	return time.Duration(20+h.Sum32()%31) * time.Millisecond
}

func (s *politeSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.RequestURI()
	status, ctype, body := http.StatusOK, "text/html; charset=utf-8", s.bodies[path]
	latency := s.latency(path)
	switch {
	case path == "/robots.txt":
		ctype, body = "text/plain; charset=utf-8", []byte(s.spec.robots)
	case path == s.spec.unavailable && s.firstRequest(path):
		status, ctype, body = http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte("busy, come back later\n")
		w.Header().Set("Retry-After", "2")
		latency = s.spec.unavailableLatency
	case body == nil: // /sitemap.xml among them
		status, ctype, body = http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found\n")
	}
	time.Sleep(latency)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	fl := w.(http.Flusher)
	_, _ = w.Write(body[:len(body)-1])
	fl.Flush()
	lastByte := time.Now()
	_, _ = w.Write(body[len(body)-1:])
	fl.Flush()
	s.log.add(politeHit{host: s.spec.name, path: path, status: status, start: start, lastByte: lastByte, end: time.Now()})
}

func (s *politeSite) firstRequest(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed[path] {
		return false
	}
	s.failed[path] = true
	return true
}

// politeWeb is a set of sites on 127.0.0.2, 127.0.0.3, ..., one per spec,
// whose pages link to each other within and across hosts, and to an
// offsite host on the next address that is not a seed and so out of scope.
type politeWeb struct {
	sites   map[string]*politeSite
	order   []*politeSite
	offsite *politeSite
	log     *politeLog
}

const politeOffsite = "offsite"

func startPoliteWeb(t *testing.T, specs ...politeSpec) *politeWeb {
	t.Helper()
	web := &politeWeb{sites: make(map[string]*politeSite), log: &politeLog{}}
	var listeners []net.Listener
	for i, spec := range append(specs, politeSpec{name: politeOffsite, pages: 1}) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+2))
		if err != nil {
			for _, prev := range listeners {
				prev.Close()
			}
			t.Fatalf("listen on a loopback alias: %v", err)
		}
		listeners = append(listeners, l)
		s := &politeSite{spec: spec, addr: l.Addr().String(), log: web.log, failed: make(map[string]bool),
			bodies: make(map[string][]byte), links: make(map[string][]string)}
		s.root = s.url("/")
		web.sites[spec.name] = s
		if spec.name == politeOffsite {
			web.offsite = s
		} else {
			web.order = append(web.order, s)
		}
	}
	for i, s := range web.order {
		next := web.order[(i+1)%len(web.order)]
		paths := s.pagePaths()
		for j, p := range paths {
			var links []string
			if j == 0 {
				// The root lists the whole host, so the queue is full at
				// once and the slow pages overlap others.
				for _, q := range paths[1:] {
					links = append(links, s.url(q))
				}
				links = append(links, web.offsite.url("/elsewhere"))
			} else {
				links = append(links, s.url(paths[(j+1)%len(paths)]), s.url(paths[(j*7)%len(paths)]))
			}
			nextPaths := next.pagePaths()
			links = append(links, next.url(nextPaths[j%len(nextPaths)]))
			if s.spec.privateLinks && j%3 == 1 {
				links = append(links, s.url("/private/x"))
			}
			s.links[p] = links
			var b strings.Builder
			fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>%s %s</title></head><body>\n", s.spec.name, p)
			for k, u := range links {
				fmt.Fprintf(&b, "<p><a href=\"%s\">link %d</a></p>\n", u, k)
			}
			b.WriteString("</body></html>\n")
			s.bodies[p] = []byte(b.String())
		}
	}
	// Serve only now that every page is rendered.
	for i, s := range append(slices.Clone(web.order), web.offsite) {
		srv := httptest.NewUnstartedServer(s)
		// NewUnstartedServer listens on 127.0.0.1; each site has its own IP.
		srv.Listener.Close()
		srv.Listener = listeners[i]
		srv.Start()
		t.Cleanup(srv.Close)
	}
	return web
}

func (w *politeWeb) seeds() []string {
	var out []string
	for _, s := range w.order {
		out = append(out, s.root)
	}
	return out
}

// crawl runs the crawl command over the web with the given politeness
// flags and returns its data directory and summary.
func (w *politeWeb) crawl(t *testing.T, flags ...string) (dir, summary string) {
	t.Helper()
	dir = t.TempDir()
	args := append([]string{"crawl", "--data", dir, "--workers", "8", "--allow-private-networks", "--scope", "host"}, flags...)
	start := time.Now()
	code, out, errOut := runCLI(t, append(args, w.seeds()...)...)
	if code != 0 {
		t.Fatalf("crawl exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("crawl %q took %v; summary:\n%s", flags, time.Since(start).Round(time.Millisecond), out)
	return dir, out
}

// checkRequests checks that every host got exactly the requests a polite
// crawl makes: robots.txt first, then each page once, /sitemap.xml once,
// the unavailable page twice, and nothing else (no /private/, nothing out
// of scope).
func (w *politeWeb) checkRequests(t *testing.T) map[string][]politeHit {
	t.Helper()
	byHost := w.log.byHost()
	for _, h := range byHost[politeOffsite] {
		t.Errorf("out-of-scope host requested: %s", h.path)
	}
	for _, s := range w.order {
		hits := byHost[s.spec.name]
		want := map[string]int{"/robots.txt": 1, "/sitemap.xml": 1}
		for _, p := range s.pagePaths() {
			want[p] = 1
		}
		if s.spec.unavailable != "" {
			want[s.spec.unavailable]++
		}
		got := map[string]int{}
		for _, h := range hits {
			got[h.path]++
		}
		for _, p := range slices.Sorted(maps.Keys(got)) {
			if got[p] != want[p] {
				t.Errorf("host %s: %s requested %d times, want %d", s.spec.name, p, got[p], want[p])
			}
		}
		for _, p := range slices.Sorted(maps.Keys(want)) {
			if got[p] == 0 {
				t.Errorf("host %s: %s never requested, want %d requests", s.spec.name, p, want[p])
			}
		}
		total := 0
		for _, n := range want {
			total += n
		}
		if len(hits) != total {
			t.Errorf("host %s: %d requests in all, want %d (%d pages + robots.txt + sitemap.xml + retries)", s.spec.name, len(hits), total, s.spec.pages)
		}
		if len(hits) == 0 {
			continue
		}
		if hits[0].path != "/robots.txt" {
			t.Errorf("host %s: first request was %s, want /robots.txt", s.spec.name, hits[0].path)
		} else if len(hits) > 1 && hits[1].start.Before(hits[0].end) {
			t.Errorf("host %s: %s started before robots.txt was answered", s.spec.name, hits[1].path)
		}
	}
	return byHost
}

// politeMaxOverlap returns the most requests of hits in flight at once.
func politeMaxOverlap(hits []politeHit) int {
	most := 0
	for _, h := range hits {
		n := 0
		for _, o := range hits {
			// o is in flight when h starts (h itself included).
			if !o.start.After(h.start) && o.end.After(h.start) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// politeCheckSpacing checks that each request of a host (that never has
// two in flight) started at least delay after the previous one ended, and
// returns the smallest gap seen.
func politeCheckSpacing(t *testing.T, host string, hits []politeHit, delay time.Duration) time.Duration {
	t.Helper()
	least := time.Duration(1<<63 - 1)
	for i := 1; i < len(hits); i++ {
		prev, cur := hits[i-1], hits[i]
		gap := cur.start.Sub(prev.lastByte)
		least = min(least, gap)
		if gap < delay-politeSlack {
			t.Errorf("host %s: %s started %v after %s ended, want at least %v", host, cur.path, gap.Round(time.Microsecond), prev.path, delay)
		}
	}
	return least
}

// politeMinStartSpacing is the least time between two consecutive starts.
func politeMinStartSpacing(hits []politeHit) time.Duration {
	least := time.Duration(1<<63 - 1)
	for i := 1; i < len(hits); i++ {
		least = min(least, hits[i].start.Sub(hits[i-1].start))
	}
	return least
}

// politeCheckRetryAfter checks that the host was left alone for the whole
// Retry-After after the 503 of path, and that the next request to the host
// was the retry of path (path must be the last URL of its host's queue).
func politeCheckRetryAfter(t *testing.T, host, path string, hits []politeHit, retryAfter time.Duration) (pause time.Duration) {
	t.Helper()
	i := slices.IndexFunc(hits, func(h politeHit) bool { return h.path == path && h.status == http.StatusServiceUnavailable })
	if i < 0 {
		t.Errorf("host %s: no 503 for %s in the log", host, path)
		return 0
	}
	failed := hits[i]
	if i+1 < len(hits) && hits[i+1].path != path {
		t.Errorf("host %s: %s was requested between the 503 of %s and its retry", host, hits[i+1].path, path)
	}
	retried := false
	for _, h := range hits[i+1:] {
		if gap := h.start.Sub(failed.lastByte); gap < retryAfter-politeSlack {
			t.Errorf("host %s: %s started %v after the 503 of %s (Retry-After %v)", host, h.path, gap.Round(time.Microsecond), path, retryAfter)
		}
		if h.path == path {
			if h.status != http.StatusOK {
				t.Errorf("host %s: retry of %s got %d", host, path, h.status)
			}
			if !retried {
				pause = h.start.Sub(failed.lastByte)
			}
			retried = true
		}
	}
	if !retried {
		t.Errorf("host %s: %s was not fetched again after its 503", host, path)
	}
	return pause
}

// politeSkipped returns the count of reason on the summary's skipped URLs
// line, 0 if absent.
func politeSkipped(t *testing.T, summary, reason string) int {
	t.Helper()
	line := regexp.MustCompile(`(?m)^\s+skipped URLs\s+(.*)$`).FindStringSubmatch(summary)
	if line == nil {
		t.Fatalf("summary has no skipped URLs line:\n%s", summary)
	}
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(reason) + ` (\d+)`).FindStringSubmatch(line[1])
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// politeSpecs are the four hosts of TestPolitenessAcrossWorkers:
// A and B are ordinary sites with slow pages (B also has robots.txt
// disallow /private/), C is small with a Crawl-delay of 1 s, and D answers
// its last page, /p7, with 503 and Retry-After: 2 first. /p7 is the last
// page D's root links to, so it is the last of D's queue: nothing else of
// D can be in flight or released between the 503 and the retry, whatever
// the concurrency, and the 503 must be followed by its retry alone.
func politeSpecs() []politeSpec {
	return []politeSpec{
		{name: "A", pages: 20, robots: "User-agent: *\nAllow: /\n", slowEvery: 5},
		{name: "B", pages: 20, robots: "User-agent: *\nDisallow: /private/\n", slowEvery: 5, privateLinks: true},
		{name: "C", pages: 4, robots: "User-agent: *\nCrawl-delay: 1\n"},
		{name: "D", pages: 8, robots: "User-agent: *\nAllow: /\n", unavailable: "/p7", unavailableLatency: 20 * time.Millisecond},
	}
}

func TestPolitenessAcrossWorkers(t *testing.T) {
	t.Parallel()
	const delay = 100 * time.Millisecond
	for _, c := range []struct {
		name        string
		concurrency int
	}{
		{"concurrency2", 2},
		{"concurrency1", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			web := startPoliteWeb(t, politeSpecs()...)
			dir, summary := web.crawl(t, "--per-host-concurrency", strconv.Itoa(c.concurrency), "--delay", delay.String())
			byHost := web.checkRequests(t)

			// At most --per-host-concurrency in flight per host; with 1,
			// at least --delay from the end of one to the start of the next.
			for _, s := range web.order {
				hits := byHost[s.spec.name]
				overlap := politeMaxOverlap(hits)
				if overlap > c.concurrency {
					t.Errorf("host %s: %d requests in flight at once, want at most %d", s.spec.name, overlap, c.concurrency)
				}
				if s.spec.slowEvery > 0 && overlap < c.concurrency {
					t.Errorf("host %s: at most %d requests in flight at once: slow pages should have made %d overlap", s.spec.name, overlap, c.concurrency)
				}
				msg := fmt.Sprintf("host %s: %d requests, max overlap %d, min start spacing %v", s.spec.name, len(hits), overlap, politeMinStartSpacing(hits).Round(time.Millisecond))
				if c.concurrency == 1 {
					msg += fmt.Sprintf(", min end-to-start gap %v", politeCheckSpacing(t, s.spec.name, hits, delay).Round(time.Millisecond))
				}
				t.Log(msg)
			}

			// Crawl-delay: 1 on C spaces every request, robots.txt
			// included, by 1 s whatever the concurrency, since each
			// request ends long before the next may start.
			gap := politeCheckSpacing(t, "C", byHost["C"], time.Second)
			t.Logf("host C (Crawl-delay 1): min end-to-start gap %v", gap.Round(time.Millisecond))

			// Retry-After: 2 on D's /p7 holds the whole host back 2 s.
			pause := politeCheckRetryAfter(t, "D", "/p7", byHost["D"], 2*time.Second)
			t.Logf("host D: /p7 fetched again %v after its 503", pause.Round(time.Millisecond))
			if got := summaryNumber(t, summary, "retries"); got != 1 {
				t.Errorf("summary counts %d retries, want 1", got)
			}

			// robots.txt of B disallows /private/: never requested (checked
			// above), counted as skipped, and still indexed as a target.
			if got := politeSkipped(t, summary, "robots_disallowed"); got != 1 {
				t.Errorf("summary counts %d robots_disallowed, want 1 (/private/x)", got)
			}
			if got, want := summaryNumber(t, summary, "robots.txt"), len(web.order); got != want {
				t.Errorf("summary counts %d robots.txt fetched, want %d", got, want)
			}
			b := web.sites["B"]
			target := b.url("/private/x")
			var wantSources []string
			for _, p := range b.pagePaths() {
				if slices.Contains(b.links[p], target) {
					wantSources = append(wantSources, b.url(p))
				}
			}
			code, out, errOut := runCLI(t, "backlinks", "--data", dir, "--format", "tsv", target)
			if code != 0 {
				t.Fatalf("backlinks %s: exit %d: %s", target, code, errOut)
			}
			var gotSources []string
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n")[1:] {
				f := strings.Split(l, "\t")
				if len(f) < 2 || f[1] != target {
					t.Errorf("backlinks %s: unexpected row %q", target, l)
					continue
				}
				gotSources = append(gotSources, f[0])
			}
			slices.Sort(gotSources)
			slices.Sort(wantSources)
			if len(wantSources) == 0 || !slices.Equal(gotSources, wantSources) {
				t.Errorf("backlinks %s:\n got %q\nwant %q", target, gotSources, wantSources)
			}
		})
	}
}

// TestPolitenessRetryAfterOnSlow503 has more than one request per host
// allowed and a server that is slow to say 503 (slower than --delay), on
// the last page of its host so that nothing else is in flight then: the
// host must still be left alone for the whole Retry-After.
func TestPolitenessRetryAfterOnSlow503(t *testing.T) {
	t.Parallel()
	web := startPoliteWeb(t, politeSpec{name: "E", pages: 8, robots: "User-agent: *\nAllow: /\n",
		unavailable: "/p7", unavailableLatency: 300 * time.Millisecond})
	_, summary := web.crawl(t, "--per-host-concurrency", "2", "--delay", "100ms")
	byHost := web.checkRequests(t)
	pause := politeCheckRetryAfter(t, "E", "/p7", byHost["E"], 2*time.Second)
	t.Logf("host E: /p7 fetched again %v after its 503", pause.Round(time.Millisecond))
	if got := summaryNumber(t, summary, "retries"); got != 1 {
		t.Errorf("summary counts %d retries, want 1", got)
	}
}
