package main

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCrawlRecordsFailuresAndGoesOn crawls a site whose links lead to a
// 404, a server too slow for --timeout, a closed port, a body over
// --max-body and an href that does not parse: each is recorded with its
// reason and the crawl still fetches everything else.
func TestCrawlRecordsFailuresAndGoesOn(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	release := make(chan struct{})
	defer close(release)
	const maxBody = 64 << 10
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `<html><body>
			<a href="/missing">gone</a>
			<a href="/slow">slow</a>
			<a href="http://127.0.0.1:%d/">dead</a>
			<a href="/big">big</a>
			<a href="http://[::1">broken</a>
			<a href="/ok">ok</a>
			</body></html>`, deadPort)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><body><a href="/early">early</a>`)
		fmt.Fprint(w, strings.Repeat("<p>filler text</p>\n", 2*maxBody/18))
		fmt.Fprint(w, `<a href="/late">after the cut</a></body></html>`)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><body><a href="/">home</a></body></html>`)
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "early") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	start := time.Now()
	code, out, errOut := runCLI(t, "crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--scope", "all", "--timeout", "300ms", "--retry-backoff", "50ms", "--max-body", fmt.Sprint(maxBody), srv.URL+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("summary in %v:\n%s", time.Since(start), out)
	// The slow page is tried three times, then recorded as a timeout; the
	// host on the closed port cannot even serve robots.txt, so after three
	// tries it is given up and its URL is skipped with that reason.
	for _, want := range []string{"timeout 1", "host_given_up 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if got := summaryNumber(t, out, "retries"); got != 2 {
		t.Errorf("retries %d, want 2 (the slow page)", got)
	}
	if got := summaryNumber(t, out, "pages fetched"); got != 6 { // /, missing, slow, big, ok, early
		t.Errorf("pages fetched %d, want 6", got)
	}
	if !strings.Contains(out, "4xx 1") {
		t.Errorf("summary does not count the 404")
	}
	if got := summaryNumber(t, out, "truncated bodies"); got != 1 {
		t.Errorf("truncated bodies %d, want 1", got)
	}
	if got := summaryNumber(t, out, "skipped links"); got != 1 {
		t.Errorf("skipped links %d, want 1", got)
	}
	// The link before the cut is indexed, the one after it is not.
	if code, out, _ := runCLI(t, "backlinks", "--data", dir, "--format", "tsv", srv.URL+"/early"); code != 0 || !strings.Contains(out, srv.URL+"/big") {
		t.Errorf("link before the cut not indexed: %q", out)
	}
	if _, out, _ := runCLI(t, "backlinks", "--data", dir, "--format", "tsv", srv.URL+"/late"); strings.Contains(out, srv.URL+"/big") {
		t.Errorf("link after the cut indexed: %q", out)
	}
}

// TestReadCommandsNeedAnIndex runs the commands that read an index on
// directories that hold none: a missing one, an unrelated one and the
// Pebble directory inside a data directory. Each exits 2 naming the
// directory and creates nothing there; an export leaves the file it would
// have replaced as it was.
func TestReadCommandsNeedAnIndex(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if code, _, stderr := runCLI(t, "generate", "--data", data, "--edges", "2000", "--hub-backlinks", "50", "--domain-backlinks", "50"); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	unrelated := filepath.Join(dir, "notes")
	if err := os.Mkdir(unrelated, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "keep.csv")
	if err := os.WriteFile(keep, []byte("an earlier export\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "typo"), unrelated, filepath.Join(data, "index")} {
		before := listTree(t, dir)
		for _, args := range [][]string{
			{"backlinks", "--data", d, "example.com"},
			{"stats", "--data", d, "example.com"},
			{"export", "--data", d, "--format", "csv", "--out", keep},
			{"rank", "--data", d},
		} {
			code, _, stderr := runCLI(t, args...)
			if code != 2 || !strings.Contains(stderr, "no linkgraph index") || !strings.Contains(stderr, d) {
				t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", args, code, stderr, d)
			}
		}
		if after := listTree(t, dir); !slices.Equal(before, after) {
			t.Errorf("on %s the commands changed the files:\n before %v\n after  %v", d, before, after)
		}
	}
	if raw, _ := os.ReadFile(keep); string(raw) != "an earlier export\n" {
		t.Errorf("keep.csv became %q", raw)
	}
}

// listTree lists the paths under dir.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		paths = append(paths, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestFlagErrorsAreShort gives bad flags: each is told once, in one line,
// with the hint to -h, not followed by the whole usage; -h prints the
// usage.
func TestFlagErrorsAreShort(t *testing.T) {
	for _, args := range [][]string{
		{"backlinks", "--bogus", "x"},
		{"crawl", "--cache-size", "1TiB", "http://example.com/"},
		{"backlinks", "--types", ",", "example.com"},
	} {
		code, _, stderr := runCLI(t, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'linkgraph") {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2, one error line and the hint", args, code, stderr)
		}
	}
	if _, _, stderr := runCLI(t, "crawl", "--cache-size", "1TiB", "http://example.com/"); !strings.Contains(stderr, `"1TiB"`) {
		t.Errorf("the size error does not quote what was given: %s", stderr)
	}
	if code, _, stderr := runCLI(t, "backlinks", "-h"); code != 0 || !strings.Contains(stderr, "Usage: linkgraph backlinks") || !strings.Contains(stderr, "-scope") {
		t.Errorf("backlinks -h: exit %d, %s", code, stderr)
	}
}

// A crawl whose every URL failed exits 1 and says why; one with nothing
// left to do exits 0.
func TestCrawlThatFetchedNothingFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><body>hello</body></html>`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	// The test server is on loopback, which a crawl refuses unless told.
	code, out, errOut := runCLI(t, "crawl", "--data", dir, "--delay", "0", srv.URL+"/")
	if code != 1 || !strings.Contains(errOut, "no page was fetched") || !strings.Contains(errOut, "--allow-private-networks") {
		t.Fatalf("refused seed: exit %d, stderr %q, want 1 and a hint at --allow-private-networks", code, errOut)
	}
	if !strings.Contains(out, "pages fetched     0") {
		t.Errorf("no summary printed before the error:\n%s", out)
	}
	dir = t.TempDir()
	if code, _, errOut := runCLI(t, "crawl", "--data", dir, "--delay", "0", "--allow-private-networks", srv.URL+"/"); code != 0 {
		t.Fatalf("reachable seed: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "crawl", "--data", dir, "--delay", "0", "--allow-private-networks", srv.URL+"/"); code != 0 {
		t.Fatalf("seed crawled before, nothing to do: exit %d: %s", code, errOut)
	}
}
