package main

import (
	"bytes"
	"context"
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
