package crawler

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// hostileCase is one misbehaving server and what a fetch of it must yield.
type hostileCase struct {
	name string
	// start starts the server and returns the URL to fetch and a function
	// that shuts the server down (waiting for its handlers).
	start func(t *testing.T) (url string, stop func())
	// cfg adjusts the fetcher's config (AllowPrivateNetworks is always on).
	cfg func(*FetcherConfig)
	// within bounds the fetch's wall time (generous: -race on 2 cores).
	within time.Duration
	// maxAlloc, if set, bounds the bytes allocated during the fetch, an
	// upper bound on the fetch's peak heap growth.
	maxAlloc uint64
	check    func(t *testing.T, res *lgv1.PageResult)
}

const hsMiB = 1 << 20

// TestFetchHostileServers fetches from servers that misbehave in the ways a
// crawler meets on the open web. Every fetch must end within its bound,
// with a clear ErrorReason or Truncated, produce a PageResult that can be
// put on the wire, and leave no goroutines or memory behind.
func TestFetchHostileServers(t *testing.T) {
	baseG := runtime.NumGoroutine()
	baseHeap := hsHeapAlloc()

	bomb := hsGzipZeros(t, 10*hsMiB)
	t.Logf("gzip bomb: %d bytes compress 10 MiB of zeros", len(bomb))

	cases := []hostileCase{
		{
			name: "slow drip",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusOK)
				for {
					if _, err := w.Write([]byte("a")); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}),
			cfg:    func(c *FetcherConfig) { c.Timeout = time.Second },
			within: 2500 * time.Millisecond,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "timeout")
			},
		},
		{
			name: "silent server",
			start: hsRawServer(func(c net.Conn) {
				_, _ = io.Copy(io.Discard, c) // read the request, never answer
			}),
			cfg:    func(c *FetcherConfig) { c.Timeout = time.Second },
			within: 2500 * time.Millisecond,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "timeout")
			},
		},
		{
			name: "endless body",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				chunk := bytes.Repeat([]byte("<p>all work and no play</p>\n"), 1024)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}),
			cfg:      func(c *FetcherConfig) { c.MaxBody = 256 << 10 },
			within:   3 * time.Second,
			maxAlloc: 8 * hsMiB,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				if !res.Truncated || res.BodyBytes != 256<<10 {
					t.Errorf("Truncated, BodyBytes = %v, %d; want true, %d", res.Truncated, res.BodyBytes, 256<<10)
				}
			},
		},
		{
			name: "gzip bomb, Content-Encoding gzip",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(bomb)
			}),
			cfg:      func(c *FetcherConfig) { c.MaxBody = hsMiB },
			within:   5 * time.Second,
			maxAlloc: 6 * hsMiB,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				if !res.Truncated || res.BodyBytes != hsMiB {
					t.Errorf("Truncated, BodyBytes = %v, %d; want true, %d", res.Truncated, res.BodyBytes, hsMiB)
				}
			},
		},
		{
			name: "gzip bomb, application/gzip .xml.gz",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/gzip")
				_, _ = w.Write(bomb)
			}, "/sitemap.xml.gz"),
			cfg:      func(c *FetcherConfig) { c.MaxBody = hsMiB },
			within:   5 * time.Second,
			maxAlloc: 6 * hsMiB,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				if res.BodyBytes > hsMiB {
					t.Errorf("BodyBytes = %d, want at most MaxBody %d", res.BodyBytes, hsMiB)
				}
				if res.BodyBytes == int64(len(bomb)) && res.Truncated {
					t.Errorf("raw body of %d bytes flagged truncated", res.BodyBytes)
				}
			},
		},
		{
			name: "HTML served as image/png",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "image/png")
				_, _ = io.WriteString(w, `<!doctype html><html><head><title>Not an image</title></head>`+
					`<body><a href="/hidden">hidden</a></body></html>`)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				if len(res.Links) != 0 || res.Title != "" {
					t.Errorf("image/png body was parsed as HTML: title %q, links %v", res.Title, res.Links)
				}
				if res.ContentType != "image/png" {
					t.Errorf("ContentType = %q, want image/png", res.ContentType)
				}
			},
		},
		{
			name: "PNG served as text/html",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write(hsPNGWithText(t, `<a href="http://example.com/in-png">x</a>`))
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				for _, l := range res.Links {
					if l.Url != "http://example.com/in-png" {
						t.Errorf("garbage link %q from PNG bytes", l.Url)
					}
				}
			},
		},
		{
			name: "invalid UTF-8 in HTML",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, "<html><head><meta charset=utf-8><title>bad \xff\xfe title \xc3\x28 \xed\xa0\x80</title></head>"+
					"<body><a href=\"/p\xff\xfeq\">anchor \xc0\xaf text \xf8\x88\x80\x80\x80</a>"+
					"<a href=\"http://ex\xffample.com/\">host</a></body></html>")
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
				if res.Title == "" || len(res.Links) == 0 {
					t.Errorf("nothing extracted: title %q, links %v", res.Title, res.Links)
				}
			},
		},
		{
			name: "invalid UTF-8 in headers",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{"text/html; charset=\xff\xfe"}
				_, _ = io.WriteString(w, `<title>ok</title><a href="/x">x</a>`)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 200)
			},
		},
		{
			name: "spoofed internal headers",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(hdrTruncated, "1")
				w.Header().Set(hdrContentType, "text/html")
				w.Header().Set("Content-Type", "image/png")
				_, _ = io.WriteString(w, `<title>ok</title><a href="/x">x</a>`)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				if res.Truncated || res.ContentType != "image/png" || len(res.Links) != 0 {
					t.Errorf("server-sent internal headers trusted: Truncated %v, ContentType %q, links %d",
						res.Truncated, res.ContentType, len(res.Links))
				}
			},
		},
		{
			// net/http stops reading at Transport.MaxResponseHeaderBytes
			// (64 KiB) and the fetch fails as "too_many_bytes".
			name: "endless response header",
			start: hsRawServer(func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: "); err != nil {
					return
				}
				chunk := bytes.Repeat([]byte("a"), 4096)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "too_many_bytes")
			},
		},
		{
			// 1xx headers count against the same 64 KiB limit.
			name: "endless 1xx responses",
			start: hsRawServer(func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				for {
					if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"); err != nil {
						return
					}
				}
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "too_many_bytes")
			},
		},
		{
			name: "endless chunk-size line",
			start: hsRawServer(func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n10;ext="); err != nil {
					return
				}
				chunk := bytes.Repeat([]byte("x"), 4096)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "too_many_bytes")
			},
		},
		{
			name: "corrupt gzip body",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "gzip")
				b := hsGzipZeros(t, 1<<20)
				for i := 20; i < len(b); i += 7 {
					b[i] ^= 0x5a
				}
				_, _ = w.Write(b)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "bad_encoding")
			},
		},
		{
			name: "101 Switching Protocols, then an endless stream",
			start: hsRawServer(func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
					return
				}
				chunk := bytes.Repeat([]byte("<a href=/x>x</a>"), 256)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}),
			cfg:    func(c *FetcherConfig) { c.MaxBody = 64 << 10 },
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				if res.ErrorReason == "" && !res.Truncated {
					t.Errorf("neither an error nor truncated")
				}
				if res.BodyBytes > 64<<10 {
					t.Errorf("BodyBytes = %d, above MaxBody", res.BodyBytes)
				}
			},
		},
		{
			name: "malformed status line with invalid UTF-8",
			start: hsRawServer(func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 2\xff\xfe OK\r\n\r\n")
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "other")
			},
		},
		{
			name: "redirect with invalid UTF-8 Location",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Location"] = []string{"/to\xff\xfe/there"}
				w.WriteHeader(http.StatusFound)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 302)
				if len(res.Links)+int(res.SkippedLinks) != 1 {
					t.Errorf("links %v, skipped %d; want the Location as one link or one skipped", res.Links, res.SkippedLinks)
				}
			},
		},
		{
			name: "TLS with an untrusted certificate",
			start: func(t *testing.T) (string, func()) {
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Error("TLS server got a request despite its untrusted certificate")
				}))
				srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are expected
				srv.StartTLS()
				return srv.URL + "/", srv.Close
			},
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "tls")
			},
		},
		{
			name: "connection closed mid-body (Content-Length)",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", "100000")
				_, _ = io.WriteString(w, strings.Repeat("<p>half</p>", 100))
				w.(http.Flusher).Flush()
				hsCloseHijacked(w, false)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "reset")
			},
		},
		{
			name: "connection closed mid-body (chunked)",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, strings.Repeat("<p>half</p>", 100))
				w.(http.Flusher).Flush()
				hsCloseHijacked(w, false)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "reset")
			},
		},
		{
			name: "connection reset (RST) mid-body",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", "100000")
				_, _ = io.WriteString(w, strings.Repeat("<p>half</p>", 100))
				w.(http.Flusher).Flush()
				hsCloseHijacked(w, true)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "reset")
			},
		},
		{
			name: "connection refused",
			start: func(t *testing.T) (string, func()) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				return "http://" + addr + "/", func() {}
			},
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "refused")
			},
		},
		{
			name: "429 with Retry-After seconds",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 429)
				if res.RetryAfterSeconds != 120 {
					t.Errorf("RetryAfterSeconds = %d, want 120", res.RetryAfterSeconds)
				}
			},
		},
		{
			name: "503 with Retry-After HTTP-date",
			start: hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
			}),
			within: 3 * time.Second,
			check: func(t *testing.T, res *lgv1.PageResult) {
				hsWantReason(t, res, "")
				hsWantStatus(t, res, 503)
				if d := res.RetryAfterSeconds - 90; d < -1 || d > 1 {
					t.Errorf("RetryAfterSeconds = %d, want 90±1", res.RetryAfterSeconds)
				}
			},
		},
	}

	var fetchers []*Fetcher
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, stop := tc.start(t)
			defer stop()
			cfg := FetcherConfig{AllowPrivateNetworks: true, Timeout: 10 * time.Second}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			f := NewFetcher(context.Background(), cfg)
			fetchers = append(fetchers, f)
			defer f.CloseIdleConnections()

			res, took, alloc := hsTimedFetch(f, &lgv1.FetchTask{Url: u})
			t.Logf("%v, %d KiB allocated: status %d, reason %q (%s), truncated %v, %d body bytes, %d links",
				took.Round(time.Millisecond), alloc>>10, res.Status, res.ErrorReason, res.ErrorDetail,
				res.Truncated, res.BodyBytes, len(res.Links))
			if took > tc.within {
				t.Errorf("fetch took %v, want at most %v", took, tc.within)
			}
			if tc.maxAlloc > 0 && alloc > tc.maxAlloc {
				t.Errorf("fetch allocated %d KiB, want at most %d KiB", alloc>>10, tc.maxAlloc>>10)
			}
			hsWantWireSafe(t, res)
			tc.check(t, res)
		})
	}

	t.Run("redirect loop", func(t *testing.T) {
		var hits atomic.Int32
		mux := http.NewServeMux()
		mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Redirect(w, r, "/b", http.StatusFound)
		})
		mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Redirect(w, r, "/a", http.StatusMovedPermanently)
		})
		srv := httptest.NewServer(mux)
		defer srv.Close()
		f := NewFetcher(context.Background(), FetcherConfig{AllowPrivateNetworks: true, Timeout: 10 * time.Second})
		fetchers = append(fetchers, f)
		defer f.CloseIdleConnections()
		for _, hop := range []struct {
			from, to string
			status   int32
		}{{"/a", "/b", 302}, {"/b", "/a", 301}} {
			res := f.Fetch(&lgv1.FetchTask{Url: srv.URL + hop.from})
			hsWantWireSafe(t, res)
			hsWantReason(t, res, "")
			hsWantStatus(t, res, hop.status)
			want := srv.URL + hop.to
			if len(res.Links) != 1 || res.Links[0].Url != want ||
				res.Links[0].Type != lgv1.LinkType_LINK_TYPE_REDIRECT || res.Links[0].RedirectStatus != hop.status {
				t.Errorf("%s: links %v, want one REDIRECT (%d) link to %s", hop.from, res.Links, hop.status, want)
			}
		}
		if n := hits.Load(); n != 2 {
			t.Errorf("server got %d requests for 2 fetches: a redirect was followed", n)
		}
	})

	for _, f := range fetchers {
		f.CloseIdleConnections()
	}
	if g := hsSettleGoroutines(baseG, 5*time.Second); g > baseG+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the table, %d before; stacks:\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	} else {
		t.Logf("goroutines: %d before, %d after", baseG, g)
	}
	fetchers = nil
	if h := hsHeapAlloc(); h > baseHeap+4*hsMiB {
		t.Errorf("heap %d KiB after the table, %d KiB before", h>>10, baseHeap>>10)
	} else {
		t.Logf("heap: %d KiB before, %d KiB after", baseHeap>>10, h>>10)
	}
}

// hsTimedFetch fetches task and returns the result, the wall time and the
// bytes allocated (by the whole process) meanwhile.
func hsTimedFetch(f *Fetcher, task *lgv1.FetchTask) (*lgv1.PageResult, time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	res := f.Fetch(task)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return res, took, after.TotalAlloc - before.TotalAlloc
}

func hsWantReason(t *testing.T, res *lgv1.PageResult, reason string) {
	t.Helper()
	if res.ErrorReason != reason {
		t.Errorf("ErrorReason = %q (%s), want %q", res.ErrorReason, res.ErrorDetail, reason)
	}
}

func hsWantStatus(t *testing.T, res *lgv1.PageResult, status int32) {
	t.Helper()
	if res.Status != status {
		t.Errorf("Status = %d, want %d", res.Status, status)
	}
}

// hsWantWireSafe checks that res can be marshalled (proto3 strings must be
// valid UTF-8, or the worker could never publish the result).
func hsWantWireSafe(t *testing.T, res *lgv1.PageResult) {
	t.Helper()
	if _, err := proto.Marshal(res); err != nil {
		t.Errorf("result cannot be marshalled: %v", err)
	}
	strs := []string{res.Url, res.ErrorReason, res.ErrorDetail, res.ContentType, res.Title, res.Lang}
	for _, l := range res.Links {
		strs = append(strs, l.Url, l.AnchorText)
		strs = append(strs, l.Rel...)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("invalid UTF-8 in result: %q", s)
		}
	}
}

// hsHandlerServer returns a start function for an httptest server running h
// at path (default "/").
func hsHandlerServer(h http.HandlerFunc, path ...string) func(t *testing.T) (string, func()) {
	return func(t *testing.T) (string, func()) {
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.Start()
		p := "/"
		if len(path) > 0 {
			p = path[0]
		}
		return srv.URL + p, srv.Close
	}
}

// hsRawServer returns a start function for a TCP server on loopback that
// runs serve on every connection; stop closes the listener and every
// connection and waits for serve to return.
func hsRawServer(serve func(net.Conn)) func(t *testing.T) (string, func()) {
	return func(t *testing.T) (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					serve(c)
				}()
			}
		}()
		stop := func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		}
		return "http://" + ln.Addr().String() + "/", stop
	}
}

// hsCloseHijacked takes over the connection behind w and closes it; with rst
// the close sends a TCP RST instead of a FIN.
func hsCloseHijacked(w http.ResponseWriter, rst bool) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := c.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// hsGzipZeros returns n zero bytes, gzipped.
func hsGzipZeros(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(zeros))
		if _, err := zw.Write(zeros[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hsPNGWithText returns a small real PNG with a tEXt chunk holding text.
func hsPNGWithText(t *testing.T, text string) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 31)
	}
	img.Set(0, 0, color.NRGBA{'<', 'a', ' ', 'h'})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	iend := b[len(b)-12:] // the IEND chunk
	data := append([]byte("Comment\x00"), text...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append(append(append([]byte{}, b[:len(b)-12]...), chunk...), iend...)
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Fatalf("built an invalid PNG: %v", err)
	}
	return out
}

// hsSettleGoroutines waits up to d for the goroutine count to drop to at
// most target and returns the last count.
func hsSettleGoroutines(target int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= target || !time.Now().Before(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hsHeapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFetchHostileConcurrent shares one Fetcher between goroutines fetching
// a mix of hostile and ordinary servers, for the race detector, and checks
// every result as it would be checked alone.
func TestFetchHostileConcurrent(t *testing.T) {
	baseG := runtime.NumGoroutine()
	t.Cleanup(func() { // registered first, so it runs after the servers stop
		if g := hsSettleGoroutines(baseG, 5*time.Second); g > baseG+2 {
			t.Errorf("%d goroutines after the test, %d before", g, baseG)
		}
	})
	bomb := hsGzipZeros(t, 4*hsMiB)
	type target struct {
		url   string
		check func(res *lgv1.PageResult) bool
	}
	var targets []target
	add := func(start func(*testing.T) (string, func()), check func(res *lgv1.PageResult) bool) {
		u, stop := start(t)
		t.Cleanup(stop)
		targets = append(targets, target{u, check})
	}
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("<a href=/next>next</a>\n"), 512)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), func(res *lgv1.PageResult) bool {
		return res.Truncated && res.BodyBytes == 256<<10 && len(res.Links) == 1
	})
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(bomb)
	}), func(res *lgv1.PageResult) bool { return res.Truncated && res.BodyBytes == 256<<10 })
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}), func(res *lgv1.PageResult) bool { return res.Status == 429 && res.RetryAfterSeconds == 7 })
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}), func(res *lgv1.PageResult) bool {
		return res.Status == 301 && len(res.Links) == 1 && res.Links[0].Type == lgv1.LinkType_LINK_TYPE_REDIRECT
	})
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<title>fine</title><a href="/a">a</a><a href="/b">b</a>`)
	}), func(res *lgv1.PageResult) bool {
		return res.Status == 200 && res.Title == "fine" && len(res.Links) == 2
	})
	add(hsHandlerServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		hsCloseHijacked(w, false)
	}), func(res *lgv1.PageResult) bool { return res.ErrorReason == "reset" })

	f := NewFetcher(context.Background(), FetcherConfig{AllowPrivateNetworks: true, Timeout: 10 * time.Second, MaxBody: 256 << 10})
	const workers, rounds = 4, 3
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds * len(targets) {
				tg := targets[(i+w)%len(targets)]
				res := f.Fetch(&lgv1.FetchTask{Url: tg.url})
				if _, err := proto.Marshal(res); err != nil || !tg.check(res) {
					t.Errorf("%s: status %d, reason %q (%s), truncated %v, %d bytes, retry %d, links %v, marshal %v",
						tg.url, res.Status, res.ErrorReason, res.ErrorDetail, res.Truncated, res.BodyBytes,
						res.RetryAfterSeconds, res.Links, err)
				}
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	t.Logf("%d fetches in %v", workers*rounds*len(targets), time.Since(start).Round(time.Millisecond))
	f.CloseIdleConnections()
}
