package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func writeGzip(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(text))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// rank --graph on a host graph solved by hand: a cycle a->b->c->a fed by d
// (PageRank 0.3202, 0.3097, 0.3326, 0.0375; harmonic centrality over
// in-links: c 1 + 1/2 + 1 = 2.5, a 1 + 1/2 + 1/2 = 2, b 1 + 1/2 + 1/3, d 0).
func TestRankKnownGraph(t *testing.T) {
	dir := t.TempDir()
	writeGzip(t, filepath.Join(dir, "vertices.txt.gz"), "0\tcom.a\n1\tcom.b\n2\tcom.c\n3\tcom.d\n")
	writeGzip(t, filepath.Join(dir, "edges.txt.gz"), "0\t1\n1\t2\n2\t0\n3\t2\n")
	out := filepath.Join(t.TempDir(), "ranks.tsv")
	if code, _, errOut := runCLI(t, "rank", "--graph", dir, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Not into the graph it reads: that would replace its files.
	for _, name := range []string{"vertices.txt.gz", "ranks.tsv"} {
		if code, _, errOut := runCLI(t, "rank", "--graph", dir, "--out", filepath.Join(dir, name)); code != 2 || !strings.Contains(errOut, "inside the graph directory") {
			t.Errorf("--out %s in the graph: exit %d: %s", name, code, errOut)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the graph directory holds %v after the refusals", entries)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if lines[0] != "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#host_rev" || len(lines) != 5 {
		t.Fatalf("ranks file:\n%s", raw)
	}
	want := map[string][4]float64{ // harmonic pos, value, PageRank pos, value
		"com.c": {1, 2.5, 1, 0.3326045},
		"com.a": {2, 2, 2, 0.3202138},
		"com.b": {3, 1 + 1.0/2 + 1.0/3, 3, 0.3096817},
		"com.d": {4, 0, 4, 0.0375},
	}
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		w := want[f[4]]
		var got [4]float64
		for i := range got {
			got[i], _ = strconv.ParseFloat(f[i], 64)
		}
		// Small graphs get exact harmonic centrality.
		if got[0] != w[0] || math.Abs(got[1]-w[1]) > 1e-12 || got[2] != w[2] || math.Abs(got[3]-w[3]) > 1e-6 {
			t.Errorf("%s: %v, want %v", f[4], got, w)
		}
	}
}

// rank --data ranks the hosts of an index by its follow links between
// hosts: in buildQueryIndex a.example's only link is nofollow and
// t.example/about's is internal, so the graph is b.example -> t.example
// (the two links of b.example count once), with t.example dangling.
func TestRankIndex(t *testing.T) {
	dir := buildQueryIndex(t)
	out := filepath.Join(t.TempDir(), "ranks.tsv")
	if code, _, errOut := runCLI(t, "rank", "--data", dir, "--out", out); code != 0 {
		t.Fatalf("rank: exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// p(b) = .075 + .425 p(t); p(t) = .075 + .425 p(t) + .85 p(b).
	want := "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#host_rev\n" +
		"1\t1\t1\t" + strconv.FormatFloat(1-0.5/1.425, 'g', 7, 64) + "\texample.t\n" +
		"2\t0\t2\t" + strconv.FormatFloat(0.5/1.425, 'g', 7, 64) + "\texample.b\n"
	// Compare with PageRank rounded to 7 digits.
	var got strings.Builder
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) == 5 && !strings.HasPrefix(f[0], "#") {
			v, _ := strconv.ParseFloat(f[3], 64)
			f[3] = strconv.FormatFloat(v, 'g', 7, 64)
			line = strings.Join(f, "\t") + "\n"
		}
		got.WriteString(line)
	}
	if got.String() != want {
		t.Errorf("ranks:\n%s\nwant\n%s", got.String(), want)
	}
	// The ranks are kept with the index: stats shows a host's. t.example has
	// the top PageRank (score 100); b.example scores
	// 100 * ln(1 + 2*0.3509) / ln(1 + 2*0.6491) = 64.
	for host, want := range map[string]string{
		"t.example": "rank.score\t100\nrank.harmonic_pos\t1\nrank.pagerank_pos\t1\n",
		"b.example": "rank.score\t64\nrank.harmonic_pos\t2\nrank.pagerank_pos\t2\n",
	} {
		code, out, errOut := runCLI(t, "stats", "--data", dir, "--scope", "host", "--format", "tsv", host)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("stats of %s: exit %d %s\n%s\nwant it to hold\n%s", host, code, errOut, out, want)
		}
	}

	// export --format ranks writes the same.
	code, exported, errOut := runCLI(t, "export", "--data", dir, "--format", "ranks")
	if code != 0 || exported != string(raw) {
		t.Errorf("export --format ranks: exit %d %s\n%s\nwant\n%s", code, errOut, exported, raw)
	}
	// Pages too: rank --pages stores page ranks, written with the URL last.
	code, pages, errOut := runCLI(t, "rank", "--data", dir, "--pages", "--level", "page", "--out", "-")
	if code != 0 || !strings.HasPrefix(pages, "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#url\n") || !strings.Contains(pages, "\thttp://t.example/\n") {
		t.Errorf("rank --pages: exit %d %s\n%s", code, errOut, pages)
	}
	if code, exported, errOut := runCLI(t, "export", "--data", dir, "--format", "ranks", "--level", "page"); code != 0 || exported != pages {
		t.Errorf("export --format ranks --level page: exit %d %s\n%s\nwant\n%s", code, errOut, exported, pages)
	}
	// An --out in a missing directory is a usage error found before any
	// ranking, naming the path given, not that of a temporary file.
	if code, _, errOut := runCLI(t, "rank", "--data", dir, "--out", "/nonexistent-dir/ranks.tsv"); code != 2 ||
		!strings.Contains(errOut, "--out /nonexistent-dir/ranks.tsv: directory /nonexistent-dir does not exist") ||
		strings.Contains(errOut, ".linkgraph-rank") || strings.Contains(errOut, "ranked") {
		t.Errorf("rank --out into a missing directory: exit %d: %s", code, errOut)
	}
	for _, c := range [][]string{{"rank", "--level", "page", "--out", "x"}, {"rank", "--graph", dir, "--pages", "--out", "x"}, {"rank", "--graph", dir}, {"rank", "--out", "x", "--level", "page"}, {"rank", "--min-authority", "3"}, {"rank", "--out", "x", "--data", dir, "--graph", dir}, {"rank", "--data", dir, "--connect-timeout", "1s"}} {
		if code, _, _ := runCLI(t, c...); code != 2 {
			t.Errorf("%q: exit %d, want 2", c, code)
		}
	}
}

// rank refuses a --log-level it does not know, as crawl does, whatever
// it ranks: not only with --nats, where it logs.
func TestRankLogLevel(t *testing.T) {
	dir := buildQueryIndex(t)
	code, _, errOut := runCLI(t, "rank", "--data", dir, "--log-level", "bogus")
	if code != 2 || !strings.Contains(errOut, `--log-level "bogus": use debug, info, warn or error`) || strings.Contains(errOut, "ranked") {
		t.Errorf("rank --log-level bogus: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "rank", "--data", dir, "--log-level", "warn"); code != 0 {
		t.Errorf("rank --log-level warn: exit %d: %s", code, errOut)
	}
}

// rank --nats gives up on a cluster it cannot reach after
// --connect-timeout, with exit 1 and the URL in the message, instead of
// waiting until it is stopped.
func TestRankNATSUnreachable(t *testing.T) {
	// Cut short if rank waits on: the test then fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"rank", "--nats", "nats://127.0.0.1:1", "--connect-timeout", "500ms"}, &stdout, &stderr)
	if took := time.Since(start); code != 1 || took > 10*time.Second ||
		!strings.Contains(stderr.String(), "nats://127.0.0.1:1") || !strings.Contains(stderr.String(), "--connect-timeout") {
		t.Errorf("rank --nats to nothing: exit %d after %v: %s", code, took.Round(time.Millisecond), stderr.String())
	}
}

// Ranks files are compressed by their extension as the text exports
// are, and get the mode those get (0666 less the umask), not 0600.
func TestRanksFiles(t *testing.T) {
	dir := buildQueryIndex(t)
	out := t.TempDir()
	plain := filepath.Join(out, "ranks.txt")
	if code, _, errOut := runCLI(t, "rank", "--data", dir, "--out", plain); code != 0 {
		t.Fatalf("rank: exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := os.OpenFile(filepath.Join(t.TempDir(), "ref"), os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	refInfo, _ := ref.Stat()
	ref.Close()
	check := func(path, compress string) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != refInfo.Mode() {
			t.Errorf("%s: mode %v, want %v as os.Create gives", path, st.Mode(), refInfo.Mode())
		}
		raw, _ := os.ReadFile(path)
		var r io.Reader = bytes.NewReader(raw)
		switch compress {
		case "gzip":
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatalf("%s: not gzip: %v", path, err)
			}
			r = zr
		case "zstd":
			zr, err := zstd.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			r = zr
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s (%s): %v\n%s\nwant\n%s", path, compress, err, got, want)
		}
	}
	check(plain, "none")
	for _, c := range []struct {
		args     []string
		compress string
	}{
		{[]string{"rank", "--data", dir, "--out", "OUT/r.gz"}, "gzip"},
		{[]string{"rank", "--data", dir, "--out", "OUT/r.zst"}, "zstd"},
		{[]string{"export", "--data", dir, "--format", "ranks", "--out", "OUT/e.txt"}, "none"},
		{[]string{"export", "--data", dir, "--format", "ranks", "--out", "OUT/e.txt.gz"}, "gzip"},
		{[]string{"export", "--data", dir, "--format", "ranks", "--compress", "zstd", "--out", "OUT/ez.txt"}, "zstd"},
	} {
		args := slices.Clone(c.args)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "OUT", out)
		}
		code, _, errOut := runCLI(t, args...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
			continue
		}
		if args[0] == "export" && !strings.Contains(errOut, "exported 2 rows, ") {
			t.Errorf("%q: no summary: %q", args, errOut)
		}
		check(args[len(args)-1], c.compress)
	}
	// The same compression to stdout.
	code, got, errOut := runCLI(t, "export", "--data", dir, "--format", "ranks", "--compress", "gzip")
	if zr, err := gzip.NewReader(strings.NewReader(got)); code != 0 || err != nil {
		t.Errorf("export --format ranks --compress gzip to stdout: exit %d %v: %s", code, err, errOut)
	} else if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, want) || !strings.Contains(errOut, "exported 2 rows, ") {
		t.Errorf("export --format ranks --compress gzip to stdout: %q, stderr %q", plain, errOut)
	}
}

// export --format ranks refuses what does not apply to it, naming it,
// before it reads anything, and says what is wrong with a compression.
func TestExportRanksBadInput(t *testing.T) {
	dir := buildQueryIndex(t)
	if code, _, errOut := runCLI(t, "rank", "--data", dir); code != 0 {
		t.Fatalf("rank: exit %d: %s", code, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--follow-only"}, "--follow-only does not apply"},
		{[]string{"--types", "a", "--state", "all", "--min-authority", "3"}, "--min-authority, --state, --types do not apply"},
		{[]string{"--scope", "host"}, "--scope does not apply"},
		{[]string{"--row-group-rows", "5", "--cpuprofile", "OUT/cpu"}, "--cpuprofile, --row-group-rows do not apply"},
		{[]string{"--compress", "gzip", "--out", "OUT/r.zst"}, "names zstd compression by its extension but --compress is gzip"},
		{[]string{"--compress", "none", "--out", "OUT/r.gz"}, "names gzip compression by its extension but --compress is none"},
		{[]string{"--compress", "brotli"}, `--compress "brotli": use none, gzip or zstd`},
		{[]string{"--level", "planet"}, `--level "planet": use host, domain or page`},
		{[]string{"--out", "OUT/missing/r.txt"}, "directory OUT/missing does not exist"},
		{[]string{"--out", "OUT"}, "is a directory"},
		{[]string{"t.example"}, "give no TARGET"},
	} {
		out := t.TempDir()
		args := []string{"export", "--data", dir, "--format", "ranks"}
		for _, a := range c.args {
			args = append(args, strings.ReplaceAll(a, "OUT", out))
		}
		code, stdout, stderr := runCLI(t, args...)
		if want := strings.ReplaceAll(c.want, "OUT", out); code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, want)
		}
		if stdout != "" {
			t.Errorf("%q: printed %q", c.args, stdout)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%q: left %v behind", c.args, entries)
		}
	}
}
