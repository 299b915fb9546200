package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/testweb"
)

// startCLI runs linkgraph with args in a child process (this test binary,
// see TestMain).
func startCLI(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LINKGRAPH_AS_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// TestKill9AndResume kills a running crawl with SIGKILL twice, restarts it
// on the same data directory, and checks that in the end every page was
// fetched, only pages in flight at a kill were fetched again, and the index
// holds exactly the true graph with exact counters.
func TestKill9AndResume(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 5})
	dir := t.TempDir()
	args := append([]string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--per-host-concurrency", "4", "--workers", "8"}, web.Seeds()...)
	pages := web.Pages()

	for i, frac := range []float64{0.2, 0.6} {
		cmd, out := startCLI(t, args...)
		killAt := int(frac * float64(len(pages)))
		deadline := time.Now().Add(60 * time.Second)
		for web.TotalRequests() < killAt {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("run %d: only %d requests after 60s:\n%s", i, web.TotalRequests(), out)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d ended before the kill (%v):\n%s", i, err, out)
		}
		t.Logf("run %d killed after %d requests", i, web.TotalRequests())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LINKGRAPH_AS_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	t.Logf("final run:\n%s", out)

	again := 0
	for _, p := range pages {
		switch n := web.Requests(p); {
		case n == 0:
			t.Errorf("%s never fetched", p)
		case n > 1:
			again += n - 1
		}
	}
	// At most what was in flight at the two kills: 8 workers each, plus
	// what they had pulled, plus robots.txt and sitemap.xml.
	t.Logf("pages fetched again after a kill: %d", again)
	if again > 2*(8+8) {
		t.Errorf("%d pages fetched again; more than were in flight at the kills", again)
	}

	var want []string
	for _, e := range web.Edges() {
		want = append(want, edgeString(e.Source, e.Target, e.Anchor, e.Rel, e.Type, e.RedirectStatus, e.PageNoFollow || nofollowRel(e.Rel)))
	}
	slices.Sort(want)
	got := indexedEdges(t, dir)
	if missing, extra := diff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("index differs from the true graph after kills: %d missing, %d extra", len(missing), len(extra))
	}
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := indexer.New(db, bus.DefaultShards).Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c[indexer.CounterEdges] != int64(len(want)) || c[indexer.CounterPages] != int64(len(pages)) {
		t.Errorf("counters after kills: edges %d pages %d, want %d %d (nothing counted twice)",
			c[indexer.CounterEdges], c[indexer.CounterPages], len(want), len(pages))
	}
}
