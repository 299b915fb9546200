package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkgraph/linkgraph/internal/graphgen"
)

func TestGenerateCommand(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "gen")
	args := []string{"generate", "--data", dir, "--edges", "20000", "--hub-backlinks", "600", "--domain-backlinks", "500", "--samples", "50"}
	var out, errOut bytes.Buffer
	if code := run(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"wrote 20000 edges", "after compaction", "bytes/edge", "edges (reverse map)", graphgen.ManifestFile} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "WARNING") {
		t.Errorf("the index disagrees with the generator:\n%s", out.String())
	}
	m, err := graphgen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Edges != 20000 || m.HubURL == "" || m.HubBacklinks != 600 || m.HubDomain == "" || m.DomainBacklinks != 500 || len(m.SampleTargets) != 50 {
		t.Errorf("manifest %+v", m)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"existing index", args},
		{"no data", []string{"generate", "--edges", "100"}},
		{"hubs too big", []string{"generate", "--data", t.TempDir(), "--edges", "1000", "--hub-backlinks", "1000"}},
		{"argument", []string{"generate", "--data", t.TempDir(), "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(ctx, tc.args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2 (usage): %s%s", code, out.String(), errOut.String())
			}
		})
	}
}

// TestGenerateScalesTheHubs generates a small index without the hub flags:
// their defaults (a million backlinks each) shrink to a tenth of --edges
// rather than make the command refuse its own defaults.
func TestGenerateScalesTheHubs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"generate", "--data", dir, "--edges", "3000", "--samples", "5"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	m, err := graphgen.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.HubBacklinks != 300 || m.DomainBacklinks != 300 {
		t.Errorf("hub %d and domain %d backlinks, want 300 each", m.HubBacklinks, m.DomainBacklinks)
	}
	errOut.Reset()
	code := run(context.Background(), []string{"generate", "--data", filepath.Join(t.TempDir(), "g"), "--edges", "3000", "--hub-backlinks", "2000"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--hub-backlinks") {
		t.Errorf("hubs given too large: exit %d, %q; want 2 naming --hub-backlinks", code, errOut.String())
	}
}

// TestHelpCommand checks that "help CMD" prints the command's usage.
func TestHelpCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"help", "backlinks"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "linkgraph backlinks") || !strings.Contains(errOut.String(), "-scope") {
		t.Errorf("help backlinks: exit %d, %q", code, errOut.String())
	}
}

// TestGenerateInterruptedLeavesNothing interrupts a generate: the partial
// index is removed, so that the same command then runs, rather than
// refuse a directory that "already holds an index".
func TestGenerateInterruptedLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	args := []string{"generate", "--data", dir, "--edges", "3000", "--samples", "5"}
	if code := run(ctx, args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "interrupted") {
		t.Fatalf("interrupted: exit %d, %q; want 1 saying interrupted", code, errOut.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted generate left %s (%v)", dir, err)
	}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Errorf("generate again: exit %d: %s", code, errOut.String())
	}
}
