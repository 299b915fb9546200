package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/testweb"
)

// runCLI runs the linkgraph command line in-process, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// edgeString renders an edge with every field the test web knows.
func edgeString(source, target, anchor string, rel []string, typ lgv1.LinkType, redirect int32, nofollow bool) string {
	return fmt.Sprintf("%s -> %s type=%s status=%d anchor=%q rel=%q nofollow=%t",
		source, target, linkTypeName(typ), redirect, anchor, strings.Join(rel, " "), nofollow)
}

// indexedEdges reads every live edge of the index in dir.
func indexedEdges(t *testing.T, dir string) []string {
	t.Helper()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = indexer.New(db, shards).ScanEdges(context.Background(), func(b *lgv1.Backlink, live bool) error {
		if !live {
			t.Errorf("lost edge after a single crawl: %v", b)
		}
		got = append(got, edgeString(b.SourceUrl, b.TargetUrl, b.AnchorText, b.Rel, b.Type, b.RedirectStatus, b.Nofollow))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func summaryNumber(t *testing.T, summary, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(label) + `\s+(\d+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary has no %q line:\n%s", label, summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestCrawlFindsExactlyTheTrueGraph crawls a synthetic web of several
// loopback hosts through the real crawl command and checks that the index
// holds exactly the web's edges, every field included.
func TestCrawlFindsExactlyTheTrueGraph(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 1})
	dir := t.TempDir()
	args := append([]string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--per-host-concurrency", "4", "--workers", "8"}, web.Seeds()...)
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("crawl exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("summary:\n%s", out)

	pages := web.Pages()
	if len(pages) < 500 {
		t.Fatalf("test web too small: %d pages", len(pages))
	}
	for _, p := range pages {
		if n := web.Requests(p); n != 1 {
			t.Errorf("%s requested %d times, want once", p, n)
		}
	}
	hosts := len(web.Seeds())
	for _, seed := range web.Seeds() {
		for _, u := range []string{seed + "robots.txt", seed + "sitemap.xml"} {
			if n := web.Requests(u); n != 1 {
				t.Errorf("%s requested %d times, want once", u, n)
			}
		}
	}
	if got := web.TotalRequests(); got != len(pages)+2*hosts {
		t.Errorf("%d requests in all, want %d (one per page, plus robots.txt and sitemap.xml per host)", got, len(pages)+2*hosts)
	}
	if got := summaryNumber(t, out, "robots.txt"); got != hosts {
		t.Errorf("summary says %d robots.txt fetched, want %d", got, hosts)
	}
	if got := summaryNumber(t, out, "pages fetched"); got != len(pages) {
		t.Errorf("summary says %d pages fetched, want %d", got, len(pages))
	}
	if got := summaryNumber(t, out, "skipped links"); got != web.Skipped() {
		t.Errorf("summary says %d skipped links, want %d", got, web.Skipped())
	}

	var want []string
	for _, e := range web.Edges() {
		nofollow := e.PageNoFollow || nofollowRel(e.Rel)
		want = append(want, edgeString(e.Source, e.Target, e.Anchor, e.Rel, e.Type, e.RedirectStatus, nofollow))
	}
	slices.Sort(want)
	got := indexedEdges(t, dir)
	if missing, extra := diff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("index differs from the true graph: %d missing, %d extra (of %d)", len(missing), len(extra), len(want))
		for _, m := range missing[:min(20, len(missing))] {
			t.Errorf("missing: %s", m)
		}
		for _, x := range extra[:min(20, len(extra))] {
			t.Errorf("extra:   %s", x)
		}
	}
	if got := summaryNumber(t, out, "links indexed"); got != len(want) {
		t.Errorf("summary says %d links indexed, want %d", got, len(want))
	}

	// The backlinks command answers from the same index, per target.
	byTarget := map[string][]string{}
	for _, e := range web.Edges() {
		byTarget[e.Target] = append(byTarget[e.Target], e.Source+"\t"+e.Target+"\t"+e.Anchor+"\t"+linkTypeName(e.Type))
	}
	// Every 10th target in sorted order: the full set is checked above.
	targets := slices.Sorted(maps.Keys(byTarget))
	for i := 0; i < len(targets); i += 10 {
		target, rows := targets[i], byTarget[targets[i]]
		code, out, errOut := runCLI(t, "backlinks", "--data", dir, "--format", "tsv", target)
		if code != 0 {
			t.Fatalf("backlinks %s: exit %d: %s", target, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if lines[0] != strings.Join(tsvColumns, "\t") {
			t.Fatalf("TSV header = %q", lines[0])
		}
		var gotRows []string
		for _, l := range lines[1:] {
			f := strings.Split(l, "\t")
			gotRows = append(gotRows, f[0]+"\t"+f[1]+"\t"+f[2]+"\t"+f[4])
		}
		slices.Sort(rows)
		slices.Sort(gotRows)
		if !slices.Equal(rows, gotRows) {
			t.Errorf("backlinks %s:\n got %q\nwant %q", target, gotRows, rows)
		}
	}

	// A second run on the same data fetches nothing again.
	before := web.TotalRequests()
	code, out, errOut = runCLI(t, args...)
	if code != 0 {
		t.Fatalf("second crawl exit %d: %s", code, errOut)
	}
	if web.TotalRequests() != before {
		t.Errorf("second crawl made %d requests, want 0", web.TotalRequests()-before)
	}
	if got := summaryNumber(t, out, "pages fetched"); got != 0 {
		t.Errorf("second crawl summary says %d pages fetched, want 0", got)
	}
}

func diff(want, got []string) (missing, extra []string) {
	w := map[string]int{}
	for _, s := range want {
		w[s]++
	}
	for _, s := range got {
		if w[s] > 0 {
			w[s]--
		} else {
			extra = append(extra, s)
		}
	}
	for s, n := range w {
		for range n {
			missing = append(missing, s)
		}
	}
	slices.Sort(missing)
	return missing, extra
}

func TestCrawlUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"crawl", "--data", dir, "ht!tp://x"}, `seed "ht!tp://x"`},
		{[]string{"crawl", "--data", dir, ""}, `seed ""`},
		{[]string{"crawl", "--data", dir, "/relative/path"}, `seed "/relative/path"`},
		{[]string{"crawl", "--data", dir, "mailto:a@example.com"}, `seed "mailto:a@example.com"`},
		{[]string{"crawl", "--data", dir}, "give at least one seed"},
		{[]string{"crawl", "--data", dir, "--scope", "planet", "http://example.com/"}, `scope "planet"`},
		{[]string{"crawl", "--data", dir, "--workers", "0", "http://example.com/"}, "--workers 0"},
		{[]string{"crawl", "--no-such-flag"}, "no-such-flag"},
		{[]string{"backlinks", "--data", dir, "--format", "xml", "http://example.com/"}, `--format "xml"`},
		{[]string{"backlinks", "--data", dir, "not a url"}, "not an absolute http(s) URL"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"crawl", "--data", dir, "--shards", "-1", "http://example.com/"}, "--shards -1"},
		{[]string{"serve", "--data", dir, "--cache-size", "4KiB"}, "--cache-size 4KiB: must be at least 1MiB"},
		{[]string{"crawl", "--data", dir, "--zstd-level", "0", "http://example.com/"}, "--zstd-level 0: must be from 1 to 19"},
		{[]string{"generate", "--data", filepath.Join(dir, "gen"), "--zstd-level", "20"}, "--zstd-level 20: must be from 1 to 19"},
		{[]string{"export", "--data", dir, "--format", "csv", "--out", filepath.Join(dir, "o.csv"), "--compress", "lz4"}, `unknown compression "lz4"`},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
}

func TestSecondProcessOnDataDirGetsClearError(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code, _, errOut := runCLI(t, "crawl", "--data", dir, "http://example.com/")
	if code != 1 || !strings.Contains(errOut, "in use by another linkgraph process") {
		t.Errorf("exit %d, stderr %q; want exit 1 saying the data directory is in use", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		t.Errorf("the second process touched the JetStream store of the first")
	}
}

func TestPrivateAddressesRefusedByDefault(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 2, PagesPerHost: 5})
	dir := t.TempDir()
	code, out, errOut := runCLI(t, append([]string{"crawl", "--data", dir, "--delay", "0"}, web.Seeds()...)...)
	if code != 1 || !strings.Contains(errOut, "needs --allow-private-networks") {
		t.Fatalf("exit %d, stderr %q; want exit 1 (no page fetched) and the flag that allows them", code, errOut)
	}
	if n := web.TotalRequests(); n != 0 {
		t.Errorf("%d requests reached a loopback server without --allow-private-networks", n)
	}
	// robots.txt is the first request to a host: refused there, the host
	// is given up at once and its URLs are skipped for that reason.
	if !strings.Contains(out, fmt.Sprintf("skipped URLs      private_address %d", len(web.Seeds()))) {
		t.Errorf("summary does not count the refused seeds as private_address:\n%s", out)
	}
}

func TestShardCountIsFixedPerDataDir(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 4, PagesPerHost: 5})
	dir := t.TempDir()
	base := []string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0"}
	if code, _, errOut := runCLI(t, append(append(base, "--shards", "8"), web.Seeds()...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut := runCLI(t, append(append(base, "--shards", "16"), web.Seeds()...)...)
	if code != 1 || !strings.Contains(errOut, "keep --shards 8") {
		t.Errorf("exit %d, stderr %q; want exit 1 telling to keep --shards 8", code, errOut)
	}
	// Without --shards, the recorded count is used.
	if code, _, errOut := runCLI(t, append(base, web.Seeds()...)...); code != 0 {
		t.Errorf("crawl without --shards on an 8-shard directory: exit %d: %s", code, errOut)
	}
	// Readers take the recorded count.
	if code, out, errOut := runCLI(t, "backlinks", "--data", dir, "--scope", "host", "--format", "tsv", web.Seeds()[0]); code != 0 || strings.Count(out, "\n") < 2 {
		t.Errorf("backlinks on an 8-shard index: exit %d, %q %s", code, out, errOut)
	}
}

func nofollowRel(rel []string) bool {
	return slices.ContainsFunc(rel, func(r string) bool { return r == "nofollow" || r == "ugc" || r == "sponsored" })
}

// TestStoreFlags checks that the store flags reach store.Options.
func TestStoreFlags(t *testing.T) {
	var f storeFlags
	fs := newFlagSet("crawl", "crawl", io.Discard)
	f.register(fs)
	if err := fs.Parse([]string{"--cache-size", "64MiB", "--zstd-level", "12"}); err != nil {
		t.Fatal(err)
	}
	o, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.CacheSize != 64<<20 || o.ZstdLevel != 12 {
		t.Errorf("options %+v, want a 64 MiB cache and zstd level 12", o)
	}
}
