package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits the hostile crawl runs with; the assertions are derived from them.
const (
	trapBudget      = 150 // --max-pages-per-host
	trapDepth       = 8   // --max-depth
	trapMaxURL      = 200 // --max-url-length
	trapMaxParams   = 10  // --max-query-params
	trapMaxAttempts = 3   // --max-attempts
	trapMaxBody     = 256 << 10
	trapFarmFanout  = 200
)

// trapWeb is a hostile test web: a few loopback hosts full of crawler traps
// and misbehaving responses. It counts every request the servers receive.
type trapWeb struct {
	hosts map[string]string // label -> host:port
	seeds []string

	servers []*httptest.Server
	closers []func() // run after the servers are closed

	mu       sync.Mutex
	requests map[string]map[string]int // label -> request URI -> count
	longest  string                    // longest full URL requested

	hijackMu sync.Mutex
	hijacked []net.Conn
	hijackWG sync.WaitGroup
}

func (w *trapWeb) count(label, scheme string, r *http.Request) {
	full := scheme + "://" + w.hosts[label] + r.URL.RequestURI()
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.requests[label]
	if m == nil {
		m = make(map[string]int)
		w.requests[label] = m
	}
	m[r.URL.RequestURI()]++
	if len(full) > len(w.longest) {
		w.longest = full
	}
}

func (w *trapWeb) snapshot() map[string]map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]map[string]int, len(w.requests))
	for l, m := range w.requests {
		c := make(map[string]int, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[l] = c
	}
	return out
}

// close shuts every server down, waiting for their handlers, and closes
// any connection a handler took over.
func (w *trapWeb) close() {
	w.hijackMu.Lock()
	for _, c := range w.hijacked {
		c.Close()
	}
	w.hijacked = nil
	w.hijackMu.Unlock()
	for _, s := range w.servers {
		s.CloseClientConnections()
		s.Close()
	}
	w.servers = nil
	for _, c := range w.closers {
		c()
	}
	w.closers = nil
	w.hijackWG.Wait()
}

// trapListen listens on ip:0, or fails the test.
func trapListen(t *testing.T, ip string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v (on non-Linux systems loopback aliases may need to be added)", ip, err)
	}
	return l
}

// serve runs h on l, over TLS if tls is set.
func (w *trapWeb) serve(l net.Listener, h http.Handler, tls bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors and the like are expected
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	w.servers = append(w.servers, srv)
	return srv
}

// trapChanListener is a net.Listener fed by a demultiplexer.
type trapChanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newTrapChanListener(addr net.Addr) *trapChanListener {
	return &trapChanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *trapChanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *trapChanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *trapChanListener) Addr() net.Addr { return l.addr }

type trapPeekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *trapPeekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// demux splits the connections of l by their first byte: a TLS handshake
// (0x16) goes to the second listener, anything else to the first. One port
// then answers both http:// and https:// URLs of the same host, which the
// frontier treats as one host (one robots.txt, one budget).
func (w *trapWeb) demux(l net.Listener) (plain, secure *trapChanListener) {
	plain, secure = newTrapChanListener(l.Addr()), newTrapChanListener(l.Addr())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, err := br.Peek(1)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				to := plain
				if b[0] == 0x16 {
					to = secure
				}
				select {
				case to.ch <- &trapPeekedConn{Conn: c, r: br}:
				case <-to.done:
					c.Close()
				}
			}()
		}
	}()
	w.closers = append(w.closers, func() { l.Close(); wg.Wait() })
	return plain, secure
}

func trapPage(title string, hrefs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>%s</title></head><body>\n", title)
	for _, h := range hrefs {
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a>\n", h, h)
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

func trapWriteHTML(rw http.ResponseWriter, body string) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(rw, body)
}

// trapServeCommon answers robots.txt and sitemap.xml; it reports whether it did.
func trapServeCommon(rw http.ResponseWriter, r *http.Request, robots string) bool {
	switch r.URL.Path {
	case "/robots.txt":
		rw.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(rw, robots)
		return true
	case "/sitemap.xml":
		http.NotFound(rw, r)
		return true
	}
	return false
}

func trapSID() string { return strconv.FormatUint(rand.Uint64(), 36) }

// trapCalDepth returns the link distance of a calendar path from the seed month
// 2024/01: months chain to their neighbours, days hang off their month and
// every day page nests one level deeper (/cal/2024/01/cal/2024/01/15).
func trapCalDepth(path string) (month int, depth int, ok bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 3 || segs[0] != "cal" {
		return 0, 0, false
	}
	y, err1 := strconv.Atoi(segs[1])
	m, err2 := strconv.Atoi(segs[2])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	month = (y-2024)*12 + m - 1
	depth = max(month, -month)
	if len(segs) > 3 {
		depth += strings.Count(path, "/cal/")
	}
	return month, depth, true
}

func trapCalMonth(k int) string {
	y, m := 2024+k/12, k%12
	if m < 0 {
		y, m = y-1, m+12
	}
	return fmt.Sprintf("/cal/%04d/%02d", y, m+1)
}

// trapPathDepth reads d from <prefix><d>/...
func trapPathDepth(path, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return 0, false
	}
	d, _, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(d)
	return n, err == nil
}

func trapGzipZeros(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	for ; n > 0; n -= len(zeros) {
		if _, err := zw.Write(zeros[:min(n, len(zeros))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startTrapWeb starts the hostile web:
//
//   - main (127.0.0.2): links to everything; a redirect loop; a robots.txt
//     disallowed directory; an https:// link to its own port, whose TLS
//     handshake fails (the port speaks both, see demux);
//   - cal (127.0.0.3): an infinite calendar;
//   - session (127.0.0.4): session ids, growing query strings, long URLs;
//   - farm (127.0.0.5): every page links to 200 new pages;
//   - hostile (127.0.0.6): a slow drip, an endless body, a gzip bomb, wrong
//     Content-Types, invalid UTF-8, an endless header;
//   - tls (127.0.0.7): TLS with an untrusted certificate (robots.txt fails,
//     the host is given up).
func startTrapWeb(t *testing.T, bomb []byte) *trapWeb {
	w := &trapWeb{hosts: make(map[string]string), requests: make(map[string]map[string]int)}
	t.Cleanup(w.close) // on early failure; close is idempotent
	labels := []string{"main", "cal", "session", "farm", "hostile", "tls"}
	ls := make(map[string]net.Listener)
	for i, label := range labels {
		l := trapListen(t, fmt.Sprintf("127.0.0.%d", i+2))
		ls[label] = l
		w.hosts[label] = l.Addr().String()
	}
	url := func(label, path string) string { return "http://" + w.hosts[label] + path }

	// main
	mainPlain, mainSecure := w.demux(ls["main"])
	w.serve(mainPlain, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("main", "http", r)
		if trapServeCommon(rw, r, "User-agent: *\nDisallow: /private/\n") {
			return
		}
		switch r.URL.Path {
		case "/":
			trapWriteHTML(rw, trapPage("main",
				"/loop/a", "/private/secret", "/private/other?x=1", "/about",
				"https://"+w.hosts["main"]+"/secure",
				url("cal", "/cal/2024/01"), url("session", "/s/0/0?sid=seed"), url("farm", "/farm/0/0"),
				url("hostile", "/h/"), "https://"+w.hosts["tls"]+"/"))
		case "/about":
			trapWriteHTML(rw, trapPage("about", "/", "/loop/b"))
		case "/loop/a":
			rw.Header().Set("Location", "/loop/b")
			rw.WriteHeader(http.StatusFound)
		case "/loop/b":
			rw.Header().Set("Location", "/loop/a")
			rw.WriteHeader(http.StatusMovedPermanently)
		default:
			http.NotFound(rw, r)
		}
	}), false)
	w.serve(mainSecure, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("main", "https", r) // unreachable: the certificate is untrusted
		trapWriteHTML(rw, trapPage("secure"))
	}), true)

	// cal
	w.serve(ls["cal"], http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("cal", "http", r)
		if trapServeCommon(rw, r, "User-agent: *\nAllow: /\n") {
			return
		}
		k, _, ok := trapCalDepth(r.URL.Path)
		if !ok {
			http.NotFound(rw, r)
			return
		}
		segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(segs) == 3 { // a month
			m := trapCalMonth(k)
			trapWriteHTML(rw, trapPage(m, trapCalMonth(k-1), trapCalMonth(k+1), m+"/01", m+"/15", m+"/28"))
			return
		}
		// A day: its relative link nests the calendar one level deeper.
		day := segs[len(segs)-1]
		trapWriteHTML(rw, trapPage(r.URL.Path, "cal/"+segs[1]+"/"+segs[2]+"/"+day, "/cal/"+segs[1]+"/"+segs[2]))
	}), false)

	// session
	w.serve(ls["session"], http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("session", "http", r)
		if trapServeCommon(rw, r, "User-agent: *\nAllow: /\n") {
			return
		}
		d, ok := trapPathDepth(r.URL.Path, "/s/")
		if !ok {
			http.NotFound(rw, r)
			return
		}
		_, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/s/"), "/")
		n, _ := strconv.Atoi(rest)
		params := len(r.URL.Query()) - 1 // besides sid
		grow := func(k int) string {
			var q strings.Builder
			for i := range k {
				fmt.Fprintf(&q, "&%c=%d", 'a'+i, i+1)
			}
			return q.String()
		}
		next := fmt.Sprintf("/s/%d/", d+1)
		trapWriteHTML(rw, trapPage("session",
			next+strconv.Itoa(n)+"?sid="+trapSID(),                       // itself, fresh session
			next+strconv.Itoa(n+1)+"?sid="+trapSID(),                     // the next page
			next+strconv.Itoa(n)+"?sid="+trapSID()+grow(params+2),        // a growing query
			next+strconv.Itoa(n)+"?sid="+trapSID()+grow(20),              // 20 parameters
			next+strconv.Itoa(n)+"/"+strings.Repeat("x", trapMaxURL)+"/", // too long
		))
	}), false)

	// farm
	w.serve(ls["farm"], http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("farm", "http", r)
		if trapServeCommon(rw, r, "User-agent: *\nAllow: /\n") {
			return
		}
		d, ok := trapPathDepth(r.URL.Path, "/farm/")
		if !ok {
			http.NotFound(rw, r)
			return
		}
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		hrefs := make([]string, trapFarmFanout)
		for i := range hrefs {
			hrefs[i] = fmt.Sprintf("/farm/%d/%s.%d", d+1, id, i)
		}
		trapWriteHTML(rw, trapPage("farm "+id, hrefs...))
	}), false)

	// hostile
	w.serve(ls["hostile"], http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("hostile", "http", r)
		if trapServeCommon(rw, r, "User-agent: *\nAllow: /\n") {
			return
		}
		h := rw.Header()
		switch r.URL.Path {
		case "/h/":
			trapWriteHTML(rw, trapPage("hostile", "/h/slow", "/h/endless", "/h/bomb", "/h/html-as-png",
				"/h/binary-as-html", "/h/bad-utf8", "/h/endless-header", "/h/ok"))
		case "/h/ok":
			trapWriteHTML(rw, trapPage("ok", "/h/"))
		case "/h/slow": // 1 byte every 200 ms, forever
			h.Set("Content-Type", "text/html")
			rw.WriteHeader(http.StatusOK)
			for {
				if _, err := rw.Write([]byte("a")); err != nil {
					return
				}
				rw.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		case "/h/endless":
			h.Set("Content-Type", "text/html")
			chunk := bytes.Repeat([]byte("<p>all work and no play <a href=\"/h/ok\">x</a></p>\n"), 512)
			for r.Context().Err() == nil {
				if _, err := rw.Write(chunk); err != nil {
					return
				}
			}
		case "/h/bomb":
			h.Set("Content-Type", "text/html")
			h.Set("Content-Encoding", "gzip")
			_, _ = rw.Write(bomb)
		case "/h/html-as-png":
			h.Set("Content-Type", "image/png")
			_, _ = io.WriteString(rw, trapPage("not an image", "/h/never-from-png"))
		case "/h/binary-as-html":
			h.Set("Content-Type", "text/html")
			junk := make([]byte, 8<<10)
			for i := range junk {
				junk[i] = byte(i*131 + i>>3)
			}
			_, _ = rw.Write(junk)
		case "/h/bad-utf8":
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(rw, "<html><head><title>bad \xff\xfe title \xc3\x28</title></head>"+
				"<body><a href=\"/h/p\xff\xfeq\">anchor \xc0\xaf text</a><a href=\"/h/ok\">\xed\xa0\x80</a></body></html>")
		case "/h/endless-header":
			c, _, err := rw.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			w.hijackMu.Lock()
			w.hijacked = append(w.hijacked, c)
			w.hijackWG.Add(1)
			w.hijackMu.Unlock()
			defer w.hijackWG.Done()
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: "); err != nil {
				return
			}
			chunk := bytes.Repeat([]byte("a"), 4096)
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		default:
			http.NotFound(rw, r)
		}
	}), false)

	// tls
	w.serve(ls["tls"], http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.count("tls", "https", r) // unreachable: the certificate is untrusted
		trapWriteHTML(rw, trapPage("tls"))
	}), true)

	w.seeds = []string{
		url("main", "/"), url("cal", "/cal/2024/01"), url("session", "/s/0/0?sid=seed"),
		url("farm", "/farm/0/0"), url("hostile", "/h/"), "https://" + w.hosts["tls"] + "/",
	}
	return w
}

// trapSummaryList parses a summary line of "name count, name count" pairs.
func trapSummaryList(t *testing.T, summary, label string) map[string]int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(label) + `\s+(.*)$`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary has no %q line:\n%s", label, summary)
	}
	out := make(map[string]int)
	if m[1] == "none" {
		return out
	}
	for _, part := range strings.Split(m[1], ", ") {
		name, n, ok := strings.Cut(part, " ")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("cannot parse %q in %q line: %q", part, label, m[1])
		}
		out[name] = v
	}
	return out
}

func trapHeapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// trapSettle waits up to d for the goroutine count to drop to at most
// target and returns the last count.
func trapSettle(target int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= target || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trapWarmUp runs a tiny crawl (one page, one TLS failure) so that the
// process-wide state initialised once (system root certificates, JSON and
// protobuf type caches, ...) is not mistaken for memory the hostile crawl
// kept.
func trapWarmUp(t *testing.T) {
	t.Helper()
	page := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		trapWriteHTML(rw, trapPage("warm", "/", "/x"))
	}))
	secure := httptest.NewUnstartedServer(http.NotFoundHandler())
	secure.Config.ErrorLog = log.New(io.Discard, "", 0)
	secure.StartTLS()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"crawl", "--data", t.TempDir(), "--allow-private-networks",
		"--delay", "0", "--timeout", "1s", "--max-attempts", "1", "--retry-backoff", "10ms",
		page.URL + "/", secure.URL + "/"}, &out, &errb)
	page.Close()
	secure.Close()
	if code != 0 {
		t.Fatalf("warm-up crawl: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

// TestCrawlSurvivesHostileWeb crawls a web of crawler traps and hostile
// servers (see startTrapWeb) through the real crawl command. The crawl must
// end on its own, within every limit it was given, leave nothing queued,
// account for every skip and failure in its summary, and leave no
// goroutines or memory behind.
func TestCrawlSurvivesHostileWeb(t *testing.T) {
	bomb := trapGzipZeros(t, 10<<20)
	dir := t.TempDir()

	preWarm := runtime.NumGoroutine()
	trapWarmUp(t)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if g := trapSettle(preWarm, 5*time.Second); g > preWarm+5 {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d goroutines after a one-page crawl, %d before; still running:\n%s", g, preWarm, dump.String())
	}
	baseG := runtime.NumGoroutine()
	baseHeap := trapHeapInuse()

	w := startTrapWeb(t, bomb)
	args := append([]string{"crawl", "--data", dir, "--allow-private-networks",
		"--delay", "0", "--workers", "8", "--per-host-concurrency", "4",
		"--timeout", "1s", "--max-body", "256KiB", "--retry-backoff", "50ms", "--max-backoff", "1s",
		"--max-attempts", strconv.Itoa(trapMaxAttempts),
		"--max-depth", strconv.Itoa(trapDepth), "--max-pages-per-host", strconv.Itoa(trapBudget),
		"--max-url-length", strconv.Itoa(trapMaxURL), "--max-query-params", strconv.Itoa(trapMaxParams),
		"--max-repeated-segments", "3",
	}, w.seeds...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, args, &stdout, &stderr)
	took := time.Since(start)
	interrupted := ctx.Err() != nil
	cancel()
	out := stdout.String()
	t.Logf("crawl took %v; summary:\n%s", took.Round(time.Millisecond), out)
	if code != 0 || interrupted || !strings.Contains(out, "crawl finished") {
		t.Fatalf("crawl exit %d after %v (60 s deadline hit: %v)\nstdout:\n%s\nstderr:\n%s", code, took, interrupted, out, stderr.String())
	}
	if testing.Verbose() && stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	reqs := w.snapshot()

	// A finished crawl leaves nothing queued: resuming from its data
	// directory finds nothing to do.
	resumeArgs := args[:len(args)-len(w.seeds)]
	var rOut, rErr bytes.Buffer
	rCode := run(context.Background(), resumeArgs, &rOut, &rErr)
	var late []string
	for label, m := range w.snapshot() {
		for uri, n := range m {
			if n != reqs[label][uri] {
				late = append(late, label+" "+uri)
			}
		}
	}
	slices.Sort(late)
	nothingQueued := rCode == 2 && strings.Contains(rErr.String(), "nothing queued")
	if !nothingQueued && !(rCode == 0 && len(late) == 0) {
		t.Errorf("the crawl said it finished, yet a resumed crawl (exit %d) fetched %d URLs left in its queue: %q\n%s%s",
			rCode, len(late), late[:min(len(late), 20)], rOut.String(), rErr.String())
	}

	// The per-host budget bounds the distinct URLs requested; each is
	// requested once, again only for a retry the summary counts, and at
	// most --max-attempts times (the slow drip, which always times out,
	// exactly that often).
	extra, distinct := 0, 0
	for _, label := range []string{"main", "cal", "session", "farm", "hostile"} {
		pages, total := 0, 0
		for uri, n := range reqs[label] {
			total += n
			if n > trapMaxAttempts {
				t.Errorf("%s: %s requested %d times, more than --max-attempts %d", label, uri, n, trapMaxAttempts)
			}
			if uri == "/robots.txt" {
				continue // its retries are not counted as page retries
			}
			extra += n - 1
			if uri == "/sitemap.xml" {
				continue // sitemaps are outside the page budget
			}
			pages++
		}
		distinct += pages
		if pages > trapBudget {
			t.Errorf("%s: %d distinct URLs requested, above the per-host budget %d", label, pages, trapBudget)
		}
		if reqs[label]["/robots.txt"] == 0 || reqs[label]["/sitemap.xml"] == 0 {
			t.Errorf("%s: robots.txt requested %d times, sitemap.xml %d times; want both", label,
				reqs[label]["/robots.txt"], reqs[label]["/sitemap.xml"])
		}
		t.Logf("%s: %d requests, %d distinct pages", label, total, pages)
	}
	if n := summaryNumber(t, out, "retries"); n != extra {
		t.Errorf("servers saw %d repeated page requests, summary counts %d retries", extra, n)
	}
	if n := reqs["hostile"]["/h/slow"]; n != trapMaxAttempts {
		t.Errorf("slow drip requested %d times, want --max-attempts %d", n, trapMaxAttempts)
	}
	// Every page request is a fetched page, plus the https:// URL whose
	// handshake failed.
	if n := summaryNumber(t, out, "pages fetched"); n != distinct+1 {
		t.Errorf("summary says %d pages fetched, servers saw %d distinct pages (+1 failed TLS handshake)", n, distinct)
	}
	// The endless hosts spend their whole budget.
	for _, label := range []string{"session", "farm"} {
		if n := len(reqs[label]) - 2; n != trapBudget {
			t.Errorf("%s: %d pages fetched, want the budget %d", label, n, trapBudget)
		}
	}
	if n := len(reqs["tls"]); n != 0 {
		t.Errorf("TLS host with an untrusted certificate served %d requests", n)
	}
	for _, uri := range []string{"/loop/a", "/loop/b", "/", "/about"} {
		if n := reqs["main"][uri]; n != 1 {
			t.Errorf("main: %s requested %d times, want once", uri, n)
		}
	}
	for uri := range reqs["main"] {
		if strings.HasPrefix(uri, "/private/") || uri == "/secure" {
			t.Errorf("main: %s requested despite robots.txt or a failing TLS handshake", uri)
		}
	}
	for _, uri := range []string{"/h/slow", "/h/endless", "/h/bomb", "/h/html-as-png", "/h/binary-as-html", "/h/bad-utf8", "/h/endless-header", "/h/ok"} {
		if reqs["hostile"][uri] == 0 {
			t.Errorf("hostile: %s never requested", uri)
		}
	}
	if n := reqs["hostile"]["/h/never-from-png"]; n != 0 {
		t.Errorf("a link inside an image/png body was followed")
	}

	// Depth: nothing beyond the limit, and the calendar goes exactly as
	// far as the limit (it stays within its budget).
	maxMonth, minMonth := 0, 0
	for uri := range reqs["cal"] {
		k, d, ok := trapCalDepth(uri)
		if !ok {
			continue
		}
		if d > trapDepth {
			t.Errorf("cal: %s at depth %d fetched, limit %d", uri, d, trapDepth)
		}
		if strings.Count(uri, "/") == 3 {
			maxMonth, minMonth = max(maxMonth, k), min(minMonth, k)
		}
	}
	if maxMonth != trapDepth || minMonth != -trapDepth {
		t.Errorf("calendar months %d..%d fetched, want %d..%d", minMonth, maxMonth, -trapDepth, trapDepth)
	}
	for _, c := range []struct{ label, prefix string }{{"session", "/s/"}, {"farm", "/farm/"}} {
		for uri := range reqs[c.label] {
			if d, ok := trapPathDepth(uri, c.prefix); ok && d > trapDepth {
				t.Errorf("%s: %s at depth %d fetched, limit %d", c.label, uri, d, trapDepth)
			}
		}
	}
	w.mu.Lock()
	longest := w.longest
	w.mu.Unlock()
	if len(longest) > trapMaxURL {
		t.Errorf("requested a URL of %d bytes, limit %d: %s", len(longest), trapMaxURL, longest)
	}
	for uri := range reqs["session"] {
		if strings.Count(uri, "&")+1 > trapMaxParams {
			t.Errorf("session: %s has more than %d query parameters", uri, trapMaxParams)
		}
	}

	// The summary accounts for every skip and failure provoked.
	skips := trapSummaryList(t, out, "skipped URLs")
	for _, reason := range []string{"max_depth", "max_pages_per_host", "url_too_long", "repeated_path_segments",
		"too_many_query_params", "robots_disallowed", "host_given_up"} {
		if skips[reason] <= 0 {
			t.Errorf("skipped URLs has no %s: %v", reason, skips)
		}
	}
	errs := trapSummaryList(t, out, "fetch errors")
	for _, reason := range []string{"timeout", "tls", "too_many_bytes"} {
		if errs[reason] <= 0 {
			t.Errorf("fetch errors has no %s: %v", reason, errs)
		}
	}
	if n := summaryNumber(t, out, "truncated bodies"); n < 2 {
		t.Errorf("truncated bodies = %d, want at least 2 (endless body, gzip bomb)", n)
	}
	if n := summaryNumber(t, out, "still queued"); n != 0 {
		t.Errorf("still queued = %d after a finished crawl", n)
	}
	if !strings.Contains(stderr.String(), "giving up host") {
		t.Errorf("no warning about the given-up TLS host in the log:\n%s", stderr.String())
	}

	// Everything the crawls started must be gone once they and the servers
	// are.
	w.close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	stdout, stderr, rOut, rErr = bytes.Buffer{}, bytes.Buffer{}, bytes.Buffer{}, bytes.Buffer{}
	const heapSlack = 4 << 20
	var g int
	var heap uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, heap = runtime.NumGoroutine(), trapHeapInuse()
		if (g <= baseG+5 && heap <= baseHeap+heapSlack) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after; heap in use: %d KiB before, %d KiB after", baseG, g, baseHeap>>10, heap>>10)
	if g > baseG+5 {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Errorf("%d goroutines after the crawl, %d before; still running:\n%s", g, baseG, dump.String())
	}
	if heap > baseHeap+heapSlack {
		t.Errorf("heap in use %d KiB after the crawl, %d KiB before (slack %d KiB)", heap>>10, baseHeap>>10, heapSlack>>10)
	}
}
