package indexer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// exportRowsOf runs ix.export and returns its rows and positions.
func exportRowsOf(t *testing.T, ix *Index, q ExportQuery, builders, chunkRows int) ([]*lgv1.Backlink, []string) {
	t.Helper()
	var rows []*lgv1.Backlink
	var pos []string
	err := ix.export(context.Background(), q, builders, chunkRows, func(bl *lgv1.Backlink, p []byte) error {
		rows = append(rows, bl)
		pos = append(pos, string(p))
		return nil
	})
	if err != nil {
		t.Fatalf("export with %d builders: %v", builders, err)
	}
	return rows, pos
}

// The rows built on several goroutines are those of one, in the same
// order, whatever the chunk size.
func TestExportBuildersKeepOrder(t *testing.T) {
	ix, _ := crawlWeb(t, 11)
	queries := map[string]ExportQuery{
		"all":  {},
		"lost": {Filter: &lgv1.Filter{IncludeLost: true}},
		"domain follow, internal excluded": {Target: "beta.org", Scope: lgv1.Scope_SCOPE_DOMAIN,
			Filter: &lgv1.Filter{FollowOnly: true, Internal: lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE}},
	}
	for name, q := range queries {
		want, wantPos := exportRowsOf(t, ix, q, 1, exportChunkRows)
		if len(want) < 20 {
			t.Fatalf("%s: %d rows; the test needs more", name, len(want))
		}
		for _, chunk := range []int{1, 5, exportChunkRows} {
			got, gotPos := exportRowsOf(t, ix, q, 3, chunk)
			if len(got) != len(want) {
				t.Fatalf("%s, chunks of %d: %d rows, want %d", name, chunk, len(got), len(want))
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) || gotPos[i] != wantPos[i] {
					t.Fatalf("%s, chunks of %d: row %d is %v at %q, want %v at %q", name, chunk, i, got[i], gotPos[i], want[i], wantPos[i])
				}
			}
		}
		// Resumed after a row, the builders give the rows after it.
		mid := len(wantPos) / 2
		tok, err := ix.ResumeToken(q, []byte(wantPos[mid]))
		if err != nil {
			t.Fatal(err)
		}
		rq := q
		rq.ResumeToken = tok
		rest, _ := exportRowsOf(t, ix, rq, 2, 3)
		if len(rest) != len(want)-mid-1 || !proto.Equal(rest[0], want[mid+1]) {
			t.Errorf("%s resumed after row %d: %d rows, want %d", name, mid, len(rest), len(want)-mid-1)
		}
	}
}

// An error from fn or a cancelled context stops the builders: export
// returns it at once, calls fn no more, and leaves no goroutine behind.
func TestExportBuildersStop(t *testing.T) {
	ix, _ := crawlWeb(t, 11)
	before := runtime.NumGoroutine()
	stop := errors.New("stop here")
	for _, at := range []int{0, 7, 40} {
		calls := 0
		err := ix.export(context.Background(), ExportQuery{}, 3, 4, func(*lgv1.Backlink, []byte) error {
			if calls++; calls > at {
				return fmt.Errorf("row %d: %w", at, stop)
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != at+1 {
			t.Errorf("fn failing at row %d: got %v after %d calls", at, err, calls)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := ix.export(ctx, ExportQuery{}, 3, 4, func(*lgv1.Backlink, []byte) error {
		if calls++; calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled export: got %v after %d calls, want context.Canceled", err, calls)
	}
	// A goroutine that returned may still be counted for a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the exports, %d before", n, before)
	}
}

func TestPlainText(t *testing.T) {
	for _, c := range []struct {
		s     string
		plain bool
	}{
		{"", true},
		{"https://a.example/p?q=1&r=2", true},
		{"Log in – Arpenex 日本", true},
		{"a\x7fb", true},
		{" lead", false},
		{"\u00a0lead", false}, // a Unicode space: encoding/csv quotes it
		{"a,b", false},
		{`a"b`, false},
		{`a\b`, false},
		{`\.`, false},
		{"a\nb", false},
		{"a\tb", false},
		{"\xff", false},
		{"ok\xe6\x97", false}, // cut in a rune
	} {
		if got := PlainText(c.s); got != c.plain {
			t.Errorf("PlainText(%q) = %v, want %v", c.s, got, c.plain)
		}
	}
}
