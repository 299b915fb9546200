package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/testweb"
)

// TestCompactCommand rewrites a generated index and checks that it is
// smaller and answers every view exactly as before.
func TestCompactCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	if code, out, errOut := runCLI(t, "generate", "--data", dir, "--edges", "20000", "--hub-backlinks", "600", "--domain-backlinks", "500", "--samples", "20"); code != 0 {
		t.Fatalf("generate: exit %d: %s%s", code, out, errOut)
	}
	m, err := graphgen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	queries := [][]string{
		{"backlinks", "--data", dir, "--format", "tsv", "--page-size", "10000", m.HubURL},
		{"backlinks", "--data", dir, "--format", "tsv", "--scope", "domain", "--page-size", "10000", m.HubDomain},
		{"domains", "--data", dir, "--format", "tsv", "--scope", "domain", "--page-size", "10000", m.HubDomain},
		{"anchors", "--data", dir, "--format", "tsv", "--scope", "domain", "--page-size", "10000", m.HubDomain},
		{"stats", "--data", dir, "--format", "json", "--scope", "domain", m.HubDomain},
	}
	for _, target := range m.SampleTargets {
		queries = append(queries, []string{"backlinks", "--data", dir, "--format", "tsv", target})
	}
	answers := func() []string {
		var outs []string
		for _, q := range queries {
			code, out, errOut := runCLI(t, q...)
			if code != 0 {
				t.Fatalf("%q: exit %d: %s", q, code, errOut)
			}
			outs = append(outs, out)
		}
		return outs
	}
	before := answers()

	code, out, errOut := runCLI(t, "compact", "--data", dir)
	if code != 0 {
		t.Fatalf("compact: exit %d: %s%s", code, out, errOut)
	}
	sizes := regexp.MustCompile(`= ([0-9.]+) -> ([0-9.]+) bytes an edge \(20000 live edges\)`).FindStringSubmatch(out)
	if sizes == nil {
		t.Fatalf("compact printed no bytes an edge for 20000 edges:\n%s", out)
	}
	if b, _ := strconv.ParseFloat(sizes[1], 64); b <= 0 {
		t.Errorf("before: %s bytes an edge", sizes[1])
	} else if a, _ := strconv.ParseFloat(sizes[2], 64); a >= b {
		t.Errorf("compact took the index from %s to %s bytes an edge, want fewer", sizes[1], sizes[2])
	}
	if !strings.Contains(out, "edges (reverse map)") {
		t.Errorf("compact printed no size by key prefix:\n%s", out)
	}
	for i, a := range answers() {
		if a != before[i] {
			t.Errorf("%q answers differently after compact:\nbefore:\n%s\nafter:\n%s", queries[i], before[i], a)
		}
	}
	// Nothing changed since: nothing is written again.
	if code, out, errOut := runCLI(t, "compact", "--data", dir); code != 0 || !strings.HasPrefix(out, "rewrote 0 of ") {
		t.Errorf("compact again: exit %d, %q%q; want it to rewrite 0 ranges", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compact"}, "--data is required"},
		{[]string{"compact", "--data", filepath.Join(dir, "nothing")}, "no linkgraph index there"},
		{[]string{"compact", "--data", dir, "--zstd-level", "20"}, "must be from 1 to 19"},
		{[]string{"compact", "--data", dir, "--block-size", "2MiB"}, "must be from 4KiB to 1MiB"},
		{[]string{"compact", "--data", dir, "extra"}, "unexpected arguments"},
	} {
		if code, out, errOut := runCLI(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q%q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// Before a node's first start its volume holds no index yet.
	empty := filepath.Join(t.TempDir(), "new")
	if code, out, errOut := runCLI(t, "compact", "--data", empty, "--missing-ok"); code != 0 || !strings.Contains(out, "nothing to compact") {
		t.Errorf("compact --missing-ok of a directory without an index: exit %d, %q%q; want 0, nothing to compact", code, out, errOut)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("compact --missing-ok created %s", empty)
	}
}

// TestCrawlGoesOnAfterCompact stops a crawl halfway, compacts its index,
// and crawls on: the frontier (URL-seen, queues) and the index come
// through the rewrite, so every page is fetched once and the index ends up
// with exactly the web's edges.
func TestCrawlGoesOnAfterCompact(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 2})
	dir := t.TempDir()
	args := append([]string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--per-host-concurrency", "4", "--workers", "8"}, web.Seeds()...)
	pages := web.Pages()
	half := len(pages) / 2
	code, out, errOut := runCLI(t, append([]string{"crawl", "--max-pages", strconv.Itoa(half)}, args[1:]...)...)
	if code != 0 {
		t.Fatalf("first crawl: exit %d\n%s%s", code, out, errOut)
	}
	first := summaryNumber(t, out, "pages fetched")
	if code, out, errOut := runCLI(t, "compact", "--data", dir); code != 0 {
		t.Fatalf("compact: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, args...)
	if code != 0 {
		t.Fatalf("second crawl: exit %d\n%s%s", code, out, errOut)
	}
	if second := summaryNumber(t, out, "pages fetched"); first == 0 || first > half || first+second != len(pages) {
		t.Errorf("the crawls fetched %d and %d pages, want at most %d and then the rest of %d", first, second, half, len(pages))
	}
	for _, p := range pages {
		if n := web.Requests(p); n != 1 {
			t.Errorf("%s requested %d times, want once", p, n)
		}
	}
	var want []string
	for _, e := range web.Edges() {
		want = append(want, edgeString(e.Source, e.Target, e.Anchor, e.Rel, e.Type, e.RedirectStatus, e.PageNoFollow || nofollowRel(e.Rel)))
	}
	slices.Sort(want)
	if missing, extra := diff(want, indexedEdges(t, dir)); len(missing)+len(extra) > 0 {
		t.Errorf("index differs from the true graph: %d missing, %d extra (of %d); first missing %q, extra %q",
			len(missing), len(extra), len(want), missing[:min(1, len(missing))], extra[:min(1, len(extra))])
	}
}
