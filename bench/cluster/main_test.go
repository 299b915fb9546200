//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRun runs the benchmark on a tiny web with one and two worker
// processes and checks the table: one row per run, each with every page
// recorded. It checks no timings.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds linkgraph and nats-server and runs clusters of processes")
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"-pages", "200", "-hosts", "2", "-procs", "1,2", "-workers", "4"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+) pages to record`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no 'pages to record' in the header")
	}
	want := m[1]
	if want != "202" { // 2 sites of 100 pages, each also at "/"
		t.Errorf("%s pages to record, want 202", want)
	}

	lines := strings.Split(out.String(), "\n")
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "procs ") {
			header = i
			break
		}
	}
	if header < 0 {
		t.Fatal("no table header")
	}
	var procs []string
	for _, l := range lines[header+1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			break
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			break
		}
		if len(f) != 17 {
			t.Fatalf("row %q: want 17 columns", l)
		}
		procs = append(procs, f[0])
		if f[2] != want {
			t.Errorf("row %q: %s pages, want %s", l, f[2], want)
		}
	}
	if strings.Join(procs, ",") != "1,2" {
		t.Errorf("rows for procs %v, want 1,2", procs)
	}
	if !strings.Contains(out.String(), "What limits scaling:") {
		t.Error("no reading")
	}
}

// TestBadFlags checks that bad flags are usage errors (exit code 2), all
// reported at once.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-procs", "1,x"},
		{"-procs", "0"},
		{"-hosts", "0"},
		{"-pages", "3", "-hosts", "4"},
		{"-workers", "0"},
		{"-shard-nodes", "65"},
		{"-timeout", "0s"},
		{"-bin", "/nonexistent"},
		{"-nosuchflag"},
		{"extra"},
	} {
		_, err := parseFlags(args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	_, err := parseFlags([]string{"-procs", "0", "-workers", "0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-procs") || !strings.Contains(err.Error(), "-workers") {
		t.Errorf("want both problems reported, got %v", err)
	}
}
