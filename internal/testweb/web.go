// Package testweb serves synthetic webs from real net/http/httptest servers
// on loopback addresses, for integration tests and benchmarks of the crawler.
//
// Start builds a small multi-host web full of the things that trip crawlers
// up (redirects of every kind, <base> elements, legacy charsets, nofollow in
// all its spellings, non-HTML files, 404s, links that must be skipped) and
// knows the exact ground truth a correct crawl from its seeds must produce:
// every URL that must be fetched (Pages) and every edge that must be indexed
// (Edges). The truth comes from the model the generator rendered the pages
// from, never from parsing the served HTML, so a bug in an HTML extractor
// cannot hide by being repeated here.
//
// NewSite builds a large, realistic single-host site pre-rendered in memory,
// for throughput benchmarks where serving must cost next to nothing.
package testweb

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// Options configures Start. Zero values take the defaults.
type Options struct {
	// Hosts is the number of servers, each on its own loopback IP starting
	// at 127.0.0.2. Default 3.
	Hosts int
	// PagesPerHost is the number of ordinary content pages per host. Each
	// host also serves about 55 special URLs (index pages, redirects, files,
	// 404s, charset pages, ...). Default 200. Every feature is guaranteed to
	// appear on every host from about 40 pages per host on.
	PagesPerHost int
	// Seed makes the web deterministic: the same seed gives the same pages
	// and links (only the ports differ between runs).
	Seed int64
}

// Edge is one link a correct crawler and indexer must record.
type Edge struct {
	// Source is the normalized URL of the page (or redirect) the link is on.
	Source string
	// Target is the normalized URL the link points to.
	Target string
	// Anchor is the whitespace-folded anchor text (the alt text for IMG and
	// AREA, empty for the other non-<a> types).
	Anchor string
	// Rel are the rel tokens, lowercased, deduplicated, in document order;
	// nil when the element has no rel.
	Rel  []string
	Type linkgraphv1.LinkType
	// RedirectStatus is the HTTP status for LINK_TYPE_REDIRECT, else 0.
	RedirectStatus int32
	// PageNoFollow is set when the source page said nofollow in
	// <meta name="robots"> or in an X-Robots-Tag header.
	PageNoFollow bool
}

// Web is a running multi-host test web and its ground truth.
type Web struct {
	seeds   []string
	pages   []string
	edges   []Edge
	skipped int
	res     map[string]*resource

	mu       sync.Mutex
	requests map[string]int
	total    int
}

// Start listens on 127.0.0.2, 127.0.0.3, ... (one port each), generates the
// web for those addresses and serves it until the test ends. Listening on
// loopback addresses other than 127.0.0.1 works out of the box on Linux; on
// other systems the addresses may have to be configured first.
func Start(tb testing.TB, opts Options) *Web {
	tb.Helper()
	if opts.Hosts <= 0 {
		opts.Hosts = 3
	}
	if opts.PagesPerHost <= 0 {
		opts.PagesPerHost = 200
	}
	if opts.Hosts > 253 {
		tb.Fatalf("testweb: %d hosts do not fit into 127.0.0.2-127.0.0.254", opts.Hosts)
	}

	listeners := make([]net.Listener, opts.Hosts)
	hosts := make([]string, opts.Hosts)
	for i := range listeners {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+2))
		if err != nil {
			for _, prev := range listeners[:i] {
				prev.Close()
			}
			tb.Fatalf("testweb: %v (on non-Linux systems loopback aliases may need to be added)", err)
		}
		listeners[i] = l
		hosts[i] = l.Addr().String()
	}

	m, err := generate(hosts, opts.PagesPerHost, opts.Seed)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		tb.Fatalf("testweb: inconsistent model: %v", err)
	}

	w := &Web{
		pages:    m.pages,
		edges:    m.edges,
		skipped:  m.skipped,
		res:      m.res,
		requests: make(map[string]int),
	}
	for i, l := range listeners {
		w.seeds = append(w.seeds, "http://"+hosts[i]+"/")
		srv := httptest.NewUnstartedServer(w.handler(hosts[i]))
		// NewUnstartedServer already listens on 127.0.0.1; we want our own
		// address so that every host has a distinct IP.
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		tb.Cleanup(srv.Close)
	}
	return w
}

// Seeds returns the root URL "http://127.0.0.N:PORT/" of every host.
func (w *Web) Seeds() []string { return slices.Clone(w.seeds) }

// Pages returns, sorted, every URL a complete crawl from the seeds (scope:
// the seeds' hosts, no depth limit) must request: HTML pages, redirecting
// URLs, 404s and non-HTML files. Every one of them is reachable from its
// host's root through plain <a> links on pages without nofollow (the root
// links to index pages listing the whole host), so the set does not depend
// on whether the crawler follows nofollow, canonical, frame or refresh
// links. /robots.txt is answered (allow all) but is not part of Pages, since
// whether it is fetched is the crawler's policy.
func (w *Web) Pages() []string { return slices.Clone(w.pages) }

// Edges returns every edge that crawl must index, sorted by Target, Source,
// Type, Anchor (then Rel, to make the order total).
func (w *Web) Edges() []Edge {
	out := make([]Edge, len(w.edges))
	for i, e := range w.edges {
		e.Rel = slices.Clone(e.Rel)
		out[i] = e
	}
	return out
}

// Skipped returns how many hrefs on the 2xx HTML pages must be skipped by
// the extractor because they are not http(s) (mailto:, javascript:, tel:,
// ftp:) or cannot be parsed at all.
func (w *Web) Skipped() int { return w.skipped }

// Status returns the HTTP status the web answers for a URL of Pages, or 0
// for a URL that is not in Pages.
func (w *Web) Status(url string) int {
	if r := w.res[url]; r != nil {
		return r.status
	}
	return 0
}

// Requests returns how many GET requests the servers received for url
// (scheme, host:port and request URI exactly as in Pages).
func (w *Web) Requests(url string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests[url]
}

// TotalRequests returns how many GET requests the servers received in all,
// including ones for URLs outside Pages (such as /robots.txt).
func (w *Web) TotalRequests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// RequestedURLs returns, sorted, every URL that received at least one GET
// request, so that tests can spot fetches of URLs that are not in Pages.
func (w *Web) RequestedURLs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.requests))
	for u := range w.requests {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// robotsTxt allows everything, so that a polite crawler crawls the whole web.
const robotsTxt = "User-agent: *\nAllow: /\n"

// notFoundBody is what unknown URLs answer. Its link must never be indexed:
// links are only extracted from 2xx responses.
const notFoundBody = "<!DOCTYPE html>\n<html><head><title>Not found</title></head>\n" +
	"<body><h1>Not found</h1><p><a href=\"/should-not-be-found-404\">Home</a></p></body></html>\n"

func (w *Web) handler(hostport string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// The request is keyed by the address we serve rather than the Host
		// header, so that a crawler that mangles Host still gets counted
		// under the URL it meant.
		u := "http://" + hostport + r.URL.RequestURI()
		if r.Method == http.MethodGet {
			w.mu.Lock()
			w.requests[u]++
			w.total++
			w.mu.Unlock()
		}

		h := rw.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		res := w.res[u]
		if res == nil {
			if r.URL.Path == "/robots.txt" {
				h.Set("Content-Type", "text/plain; charset=utf-8")
				h.Set("Content-Length", strconv.Itoa(len(robotsTxt)))
				_, _ = rw.Write([]byte(robotsTxt))
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Length", strconv.Itoa(len(notFoundBody)))
			rw.WriteHeader(http.StatusNotFound)
			_, _ = rw.Write([]byte(notFoundBody))
			return
		}
		for k, vs := range res.header {
			h[k] = vs
		}
		h.Set("Content-Type", res.contentType)
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		if res.location != "" {
			// Set verbatim: http.Redirect would resolve and clean it, and
			// the crawler must do that itself.
			h.Set("Location", res.location)
		}
		rw.WriteHeader(res.status)
		_, _ = rw.Write(res.body)
	})
}

// sortEdges puts edges in the documented order of Web.Edges.
func sortEdges(edges []Edge) {
	slices.SortFunc(edges, func(a, b Edge) int {
		return cmp.Or(
			strings.Compare(a.Target, b.Target),
			strings.Compare(a.Source, b.Source),
			cmp.Compare(a.Type, b.Type),
			strings.Compare(a.Anchor, b.Anchor),
			slices.Compare(a.Rel, b.Rel),
		)
	})
}
