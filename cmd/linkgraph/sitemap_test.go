package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSitemapsFeedTheFrontier: robots.txt names a sitemap index, which
// names a gzipped XML sitemap and a text sitemap; /sitemap.xml exists too.
// Pages listed only there are fetched and indexed as sitemap edges.
func TestSitemapsFeedTheFrontier(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	var srv *httptest.Server
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		base := srv.URL
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprintf(w, "User-agent: *\nAllow: /\nSitemap: %s/sm-index.xml\n", base)
		case "/sm-index.xml":
			fmt.Fprintf(w, `<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
				<sitemap><loc>%s/sm1.xml.gz</loc></sitemap><sitemap><loc>/sm2.txt</loc></sitemap></sitemapindex>`, base)
		case "/sm1.xml.gz":
			w.Header().Set("Content-Type", "application/gzip")
			w.Write(gz(fmt.Sprintf(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>%s/only-in-gz</loc></url><url><loc>%s/both</loc></url></urlset>`, base, base)))
		case "/sm2.txt":
			fmt.Fprintf(w, "%s/only-in-text\n\n%s/both\n", base, base)
		case "/sitemap.xml":
			fmt.Fprintf(w, `<urlset><url><loc>%s/only-in-default</loc></url></urlset>`, base)
		case "/":
			fmt.Fprint(w, `<html><body><a href="/linked">linked</a></body></html>`)
		default:
			fmt.Fprint(w, `<html><body>leaf</body></html>`)
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	code, out, errOut := runCLI(t, "crawl", "--data", dir, "--allow-private-networks", "--delay", "0", srv.URL+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("summary:\n%s", out)
	for _, p := range []string{"/only-in-gz", "/only-in-text", "/only-in-default", "/both", "/linked", "/sm-index.xml", "/sm1.xml.gz", "/sm2.txt", "/sitemap.xml"} {
		if hits[p] != 1 {
			t.Errorf("%s requested %d times, want once", p, hits[p])
		}
	}
	if got := summaryNumber(t, out, "sitemaps"); got != 4 {
		t.Errorf("sitemaps fetched %d, want 4", got)
	}
	for target, sources := range map[string][]string{
		"/only-in-gz":   {"/sm1.xml.gz"},
		"/both":         {"/sm1.xml.gz", "/sm2.txt"},
		"/only-in-text": {"/sm2.txt"},
		"/sm1.xml.gz":   {"/sm-index.xml"},
	} {
		_, tsv, _ := runCLI(t, "backlinks", "--data", dir, "--format", "tsv", srv.URL+target)
		for _, src := range sources {
			if !strings.Contains(tsv, srv.URL+src+"\t"+srv.URL+target+"\t\t\tsitemap\t") {
				t.Errorf("no sitemap edge %s -> %s in:\n%s", src, target, tsv)
			}
		}
	}
}

// TestSitemapsObeyRobotsAndMaxPages: the guessed /sitemap.xml of a host
// whose robots.txt disallows it is not fetched; and sitemaps do not use up
// --max-pages, which counts pages.
func TestSitemapsObeyRobotsAndMaxPages(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	count := func(r *http.Request) {
		mu.Lock()
		hits[r.Host+r.URL.Path]++
		mu.Unlock()
	}
	closed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count(r)
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprint(w, "User-agent: *\nDisallow: /\n")
		case "/sitemap.xml":
			fmt.Fprintf(w, `<urlset><url><loc>http://%s/secret</loc></url></urlset>`, r.Host)
		default:
			fmt.Fprint(w, `<html><body>private</body></html>`)
		}
	}))
	defer closed.Close()
	// Its one seed is disallowed, so the crawl fetched nothing: exit 1.
	code, _, errOut := runCLI(t, "crawl", "--data", t.TempDir(), "--allow-private-networks", "--delay", "0", closed.URL+"/")
	if code != 1 || !strings.Contains(errOut, "no page was fetched") {
		t.Fatalf("crawl of a closed host: exit %d, stderr %q; want 1, no page fetched", code, errOut)
	}
	host := strings.TrimPrefix(closed.URL, "http://")
	if n := hits[host+"/sitemap.xml"]; n != 0 {
		t.Errorf("/sitemap.xml of a host that disallows everything requested %d times", n)
	}

	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count(r)
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprint(w, "User-agent: *\nAllow: /\nSitemap: /sm.xml\n")
		case "/sitemap.xml":
			http.NotFound(w, r)
		case "/sm.xml":
			// The only way to the pages: the sitemaps come before them.
			var locs strings.Builder
			for i := 1; i <= 5; i++ {
				fmt.Fprintf(&locs, "<url><loc>http://%s/%d</loc></url>", r.Host, i)
			}
			fmt.Fprintf(w, "<urlset>%s</urlset>", locs.String())
		default:
			fmt.Fprint(w, `<html><body>leaf</body></html>`)
		}
	}))
	defer open.Close()
	code, out, errOut := runCLI(t, "crawl", "--data", t.TempDir(), "--allow-private-networks", "--delay", "0", "--max-pages", "3", open.URL+"/")
	if code != 0 {
		t.Fatalf("crawl --max-pages 3: exit %d: %s", code, errOut)
	}
	host = strings.TrimPrefix(open.URL, "http://")
	pages := 0
	for _, p := range []string{"/", "/1", "/2", "/3", "/4", "/5"} {
		pages += hits[host+p]
	}
	if got := summaryNumber(t, out, "pages fetched"); pages != 3 || got != 3 || hits[host+"/sm.xml"] != 1 {
		t.Errorf("--max-pages 3: %d pages requested, %d in the summary, /sm.xml %d times; want 3, 3 and 1:\n%s", pages, got, hits[host+"/sm.xml"], out)
	}
}
