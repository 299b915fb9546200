package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestRecordMerge(t *testing.T) {
	for _, c := range []struct {
		name       string
		shape      Shape
		a, b, want []int64
	}{
		{"sum", ShapeSum, []int64{1, 2}, []int64{3, -5}, []int64{4, -3}},
		{"sum pads", ShapeSum, []int64{1}, []int64{3, 4}, []int64{4, 4}},
		{"span", ShapeSumSpan, []int64{0, 50, 60}, []int64{0, 40, 55}, []int64{0, 40, 60}},
		{"span ignores an unset first", ShapeSumSpan, []int64{0, 50, 60}, []int64{0, 0, 70}, []int64{0, 50, 70}},
		{"span from unset", ShapeSumSpan, []int64{0, 0, 0}, []int64{0, 40, 55}, []int64{0, 40, 55}},
		{"sum and span", ShapeSumSpan, []int64{1, 1, 50, 60}, []int64{-1, 0, 30, 40}, []int64{0, 1, 30, 60}},
		{"three sums and span", ShapeSumSpan, []int64{1, 1, 1, 50, 60}, []int64{1, 2, 3, 30, 70}, []int64{2, 3, 4, 30, 70}},
	} {
		r := Record{Shape: c.shape, Fields: slices.Clone(c.a)}
		if err := r.Merge(Record{Shape: c.shape, Fields: c.b}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Fields, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, r.Fields, c.want)
		}
		back, err := DecodeRecord(r.Append(nil))
		if err != nil || back.Shape != c.shape || !slices.Equal(back.Fields, c.want) {
			t.Errorf("%s: round trip gave %v, %v", c.name, back, err)
		}
	}
	r := Record{Shape: ShapeSum, Fields: []int64{1}}
	if err := r.Merge(Record{Shape: ShapeSumSpan, Fields: []int64{1, 2}}); err == nil {
		t.Error("merging records of two shapes succeeded")
	}
	for _, bad := range [][]byte{nil, {1}, {1, 2, 0x80}} {
		if _, err := DecodeRecord(bad); err == nil {
			t.Errorf("DecodeRecord(%v) succeeded", bad)
		}
	}
}

// Merge operations on aggregate keys combine as records, on counter keys as
// sums, through Pebble's merge path (memtable and after a flush).
func TestMergeOperator(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	agg := []byte{PrefixAggregate, 'x'}
	for _, f := range [][]int64{{2, 1, 500, 600}, {1, 0, 400, 450}} {
		if err := db.Merge(agg, Record{Shape: ShapeSumSpan, Fields: f}.Append(nil), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	b := db.NewIndexedBatch()
	if err := AddCounter(b, CounterKey("c"), 5); err != nil {
		t.Fatal(err)
	}
	if err := AddCounter(b, CounterKey("c"), -2); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	raw, closer, err := db.Get(agg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRecord(raw)
	closer.Close()
	if err != nil || !slices.Equal(r.Fields, []int64{3, 1, 400, 600}) {
		t.Errorf("aggregate: got %v %v, want [3 1 400 600]", r, err)
	}
	if n, err := Counter(db, CounterKey("c")); n != 3 || err != nil {
		t.Errorf("counter: got %d %v, want 3", n, err)
	}
}

func TestOpenRefusesAnotherLayout(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A layout-1 directory: edges but no layout record.
	if err := db.Set([]byte{PrefixEdge, 'x'}, nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete([]byte{PrefixMeta, 'l', 'a', 'y', 'o', 'u', 't'}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLayout) {
		t.Fatalf("opening a layout-1 directory: got %v, want ErrLayout", err)
	}
	// A fresh directory records its layout and opens again.
	dir = t.TempDir()
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(dir)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	db.Close()
}

// An index of an earlier layout is upgraded step by step by the registered
// upgrades; one cut short runs again at the next Open; a layout with no way
// up, or a later one, is refused and left as it was.
func TestOpenUpgrades(t *testing.T) {
	saved := upgrades
	t.Cleanup(func() { upgrades = saved })
	var ran []uint64
	failOnce := true
	upgrades = map[uint64]Upgrade{
		Layout - 2: func(db *pebble.DB) error {
			ran = append(ran, Layout-2)
			return db.Set([]byte{PrefixMeta, 'x'}, []byte("step 1"), pebble.Sync)
		},
		Layout - 1: func(db *pebble.DB) error {
			ran = append(ran, Layout-1)
			if failOnce {
				failOnce = false
				return errors.New("disk full")
			}
			return nil
		},
	}
	layoutOf := func(dir string) uint64 {
		t.Helper()
		db, err := pebble.Open(filepath.Join(dir, "index"), &pebble.Options{Merger: CounterMerger, KeySchema: edgeKeySchema.Name, KeySchemas: keySchemas, Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		raw, closer, err := db.Get(layoutKey)
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		l, _ := binary.Uvarint(raw)
		return l
	}
	withLayout := func(l uint64) string {
		t.Helper()
		dir := t.TempDir()
		db, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set(layoutKey, binary.AppendUvarint(nil, l), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return dir
	}

	dir := withLayout(Layout - 2)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("an upgrade that fails: Open gave %v, want its error", err)
	}
	if l := layoutOf(dir); l != Layout-1 {
		t.Errorf("after the second step failed: layout %d, want %d (the first step's)", l, Layout-1)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("opening again: %v", err)
	}
	db.Close()
	if want := []uint64{Layout - 2, Layout - 1, Layout - 1}; !slices.Equal(ran, want) {
		t.Errorf("upgrades ran %v, want %v", ran, want)
	}
	if l := layoutOf(dir); l != Layout {
		t.Errorf("after the upgrades: layout %d, want %d", l, Layout)
	}

	for _, l := range []uint64{Layout - 3, Layout + 1} {
		dir := withLayout(l)
		ran = nil
		if _, err := Open(dir); !errors.Is(err, ErrLayout) {
			t.Errorf("layout %d: Open gave %v, want ErrLayout", l, err)
		}
		if len(ran) > 0 || layoutOf(dir) != l {
			t.Errorf("layout %d: refused, but upgrades %v ran and it is now layout %d", l, ran, layoutOf(dir))
		}
	}
}

// A data directory keeps the shard range it was first opened with, across
// restarts, and refuses another.
func TestOwnKeepsTheRange(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Own(32, 64); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Own(32, 64); err != nil {
		t.Errorf("the same range after a restart: %v", err)
	}
	for _, r := range [][2]int{{0, 64}, {32, 48}, {0, 32}} {
		if err := db.Own(r[0], r[1]); !errors.Is(err, ErrRange) || !strings.Contains(err.Error(), "shards 32-63") {
			t.Errorf("range %v: %v, want ErrRange naming shards 32-63", r, err)
		}
	}
}

// TestMustExist opens directories without an index with MustExist: a
// missing one, which is not created, and one whose index directory is
// empty. Both fail with ErrNoIndex; an index made by Open then opens.
func TestMustExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := OpenWith(missing, Options{MustExist: true}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("missing directory: %v, want ErrNoIndex", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing directory was created (%v)", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(filepath.Join(empty, "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(empty, Options{MustExist: true}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("empty index directory: %v, want ErrNoIndex", err)
	}
	made := filepath.Join(dir, "made")
	db, err := Open(made)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = OpenWith(made, Options{MustExist: true})
	if err != nil {
		t.Fatalf("an index made by Open: %v", err)
	}
	db.Close()
}

// The bloom filters leave edge keys (and in the bottom level, aggregates)
// out and never rule one out, so every key is found after a flush and after
// a compaction into the bottom level; other keys are filtered as before.
func TestKeyBloom(t *testing.T) {
	for _, tc := range []struct {
		p       keyBloom
		skipped []byte
	}{
		{edgelessBloom, []byte{PrefixEdge}},
		{bottomBloom, []byte{PrefixEdge, PrefixAggregate}},
	} {
		w := tc.p.NewWriter(pebble.TableFilter)
		for _, prefix := range tc.skipped {
			for i := range 100 {
				w.AddKey(fmt.Appendf([]byte{prefix}, "com,example)/%d\x00x", i))
			}
		}
		if f := w.Finish(nil); len(f) > 5 || tc.p.MayContain(pebble.TableFilter, f, []byte("ucom,example)/1")) {
			t.Errorf("%s: a filter of skipped keys only is %d bytes and may hold another key", tc.p.Name(), len(f))
		}
		w = tc.p.NewWriter(pebble.TableFilter)
		w.AddKey([]byte("ucom,example)/1"))
		f := w.Finish(nil)
		if !tc.p.MayContain(pebble.TableFilter, f, []byte("ucom,example)/1")) {
			t.Errorf("%s: rules out a key it holds", tc.p.Name())
		}
		for _, prefix := range tc.skipped {
			if k := []byte{prefix, 'x'}; !tc.p.MayContain(pebble.TableFilter, f, k) {
				t.Errorf("%s: rules out %q, which it leaves out", tc.p.Name(), k)
			}
		}
	}

	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := func(prefix byte, i int) []byte { return fmt.Appendf([]byte{prefix}, "com,example)/%d\x00", i) }
	prefixes := []byte{PrefixEdge, PrefixAggregate, PrefixSeen}
	// Two flushes of interleaved keys overlap, so the compaction rewrites
	// them rather than move a table, and its filter, down.
	for half := range 2 {
		for i := half; i < 1000; i += 2 {
			for _, prefix := range prefixes {
				if err := db.Set(key(prefix, i), []byte{1}, pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for i := range 2000 {
			for _, prefix := range prefixes {
				_, closer, err := db.Get(key(prefix, i))
				if found := err == nil; found != (i < 1000) {
					t.Fatalf("%s: %q: found %v (%v)", when, key(prefix, i), found, err)
				}
				if err == nil {
					closer.Close()
				}
			}
		}
	}
	check("after a flush")
	if err := db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	tables, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	if bottom := tables[len(tables)-1]; len(bottom) == 0 {
		t.Fatal("the compaction left the bottom level empty")
	}
	for _, tb := range tables[len(tables)-1] {
		if got := tb.Properties.FilterPolicyName; got != bottomBloom.Name() {
			t.Errorf("a bottom table's filter is %q, want %q", got, bottomBloom.Name())
		}
	}
	check("in the bottom level")
}

// TestBottomLevelCompression checks that a compacted index's tables, which
// sit in the bottom level, are compressed with zstd at the level Options
// says (7 by default), and that Open refuses a level zstd has not.
func TestBottomLevelCompression(t *testing.T) {
	for _, tc := range []struct {
		level int
		want  string
	}{{0, "ZSTD7"}, {15, "ZSTD15"}} {
		db, err := OpenWith(t.TempDir(), Options{ZstdLevel: tc.level})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// Two flushes of interleaved keys, so that the compaction has to
		// rewrite the tables rather than move them down.
		for half := range 2 {
			for i := half; i < 20000; i += 2 {
				k := fmt.Appendf([]byte{PrefixEdge}, "com,example)/page/%d\x00anchor text %d", i, i%97)
				if err := db.Set(k, []byte("value"), pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Compact(t.Context(), []byte{PrefixEdge}, []byte{PrefixEdge + 1}, false); err != nil {
			t.Fatal(err)
		}
		levels, err := db.SSTables(pebble.WithProperties())
		if err != nil {
			t.Fatal(err)
		}
		bottom := levels[len(levels)-1]
		if len(bottom) == 0 {
			t.Fatal("the compaction left no table in the bottom level")
		}
		for _, tbl := range bottom {
			if stats := tbl.Properties.CompressionStats; !strings.Contains(stats, tc.want) {
				t.Errorf("level %d: bottom-level table %s: compression stats %q, want %s blocks", tc.level, tbl.FileNum, stats, tc.want)
			}
		}
	}
	for _, level := range []int{-1, MaxZstdLevel + 1} {
		dir := t.TempDir()
		if _, err := OpenWith(dir, Options{ZstdLevel: level}); err == nil || !strings.Contains(err.Error(), "must be from 1 to 19") {
			t.Errorf("level %d: Open gave %v, want an error naming the range", level, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("level %d: Open left %d entries in the data directory", level, len(entries))
		}
	}
}
