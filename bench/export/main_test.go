//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
)

// TestMain lets the benchmark run this test binary as its scan child.
func TestMain(m *testing.M) {
	if os.Getenv(scanEnv) != "" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestBench runs every case of the benchmark on a small generated index
// with a freshly built linkgraph and checks that each exported every row.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the linkgraph binary")
	}
	data := t.TempDir()
	w, err := graphgen.New(graphgen.Config{Seed: 3, Edges: 3000})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Shards(1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := graphgen.Write(context.Background(), indexer.New(db, 1), w, graphgen.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bin := filepath.Join(t.TempDir(), "linkgraph")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/linkgraph/linkgraph/cmd/linkgraph").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-data", data, "-bin", bin}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("want a header and 5 cases:\n%s", out.String())
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 8 || f[1] != "3000" {
			t.Errorf("case %q: want 3000 rows", l)
		}
		if f[0] != "scan" && f[4] == "0" {
			t.Errorf("case %q: no output bytes", l)
		}
	}
}
