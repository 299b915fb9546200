package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// fillIndex writes an index of URL-like edge keys, counters (merge
// operands) and a tail of keys left in the WAL only, and returns every key
// and value it should hold.
func fillIndex(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	words := strings.Fields("news blog shop forum wiki docs about contact price review guide best cheap home page")
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	b := db.NewBatch()
	for i := range 60000 {
		k := fmt.Appendf([]byte{PrefixEdge}, "com,site%d)/%s/%s-%d\x00%s %s", i%300, words[rng.IntN(len(words))], words[rng.IntN(len(words))], i, words[rng.IntN(len(words))], words[i%len(words)])
		v := fmt.Appendf(nil, "%d", rng.IntN(1000))
		b.Set(k, v, nil)
		want[string(k)] = string(v)
		if i == 40000 {
			// Most of it in the bottom level, with Open's settings.
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if err := db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
				t.Fatal(err)
			}
			b = db.NewBatch()
		}
	}
	// Source records, which Rewrite keeps in small blocks.
	for i := range 20000 {
		k := fmt.Appendf([]byte{PrefixSourceID}, "%08d", i)
		v := fmt.Appendf(nil, "com,site%d)/%s/%s-%d %s", i%300, words[rng.IntN(len(words))], words[rng.IntN(len(words))], i, strings.Repeat(words[i%len(words)], 5))
		b.Set(k, v, nil)
		want[string(k)] = string(v)
	}
	for i := range 3 {
		for range 5 {
			if err := AddCounter(b, CounterKey(fmt.Sprint("c", i)), int64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		want[string(CounterKey(fmt.Sprint("c", i)))] = string(binary.AppendVarint(nil, int64(5*(i+1))))
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	maps.Copy(want, metaKeys(t, db))
	return want
}

// metaKeys returns the metadata keys Open writes (the layout) and their
// values.
func metaKeys(t *testing.T, r pebble.Reader) map[string]string {
	t.Helper()
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{PrefixMeta}, UpperBound: []byte{PrefixMeta + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	meta := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		meta[string(it.Key())] = string(it.Value())
	}
	return meta
}

// checkIndex opens dir and fails unless it holds exactly want, and
// returns the compression stats and data blocks of its tables, and the
// average raw bytes a data block of its tables by the prefix of their
// first key.
func checkIndex(t *testing.T, dir string, want map[string]string) (stats []string, blocks uint64, perBlock map[byte]uint64) {
	t.Helper()
	db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := map[string]string{}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		got[string(it.Key())] = string(it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		missing := 0
		for k := range want {
			if _, ok := got[k]; !ok {
				missing++
			}
		}
		t.Fatalf("the index holds %d keys, want %d (%d missing, or values differ)", len(got), len(want), missing)
	}
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	raw, n := map[byte]uint64{}, map[byte]uint64{}
	for _, level := range levels {
		for _, tbl := range level {
			p := tbl.Properties
			stats = append(stats, p.CompressionStats)
			blocks += p.NumDataBlocks
			lo := tbl.Smallest.UserKey[0]
			raw[lo] += p.RawKeySize + p.RawValueSize
			n[lo] += p.NumDataBlocks
		}
	}
	perBlock = map[byte]uint64{}
	for p := range raw {
		perBlock[p] = raw[p] / max(n[p], 1)
	}
	return stats, blocks, perBlock
}

// smallTables has Rewrite write tables of about size bytes, so that the
// next Rewrite of a small index finds several ranges in it.
func smallTables(t *testing.T, size uint64) {
	old := rewriteTableSize
	rewriteTableSize = size
	t.Cleanup(func() { rewriteTableSize = old })
}

func TestRewrite(t *testing.T) {
	dir := t.TempDir()
	want := fillIndex(t, dir)
	smallTables(t, 256<<10)
	_, blocksBefore, _ := checkIndex(t, dir, want)

	var progressed int64
	o := Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 15, BlockSize: 256 << 10}
	st, err := Rewrite(t.Context(), dir, o, func(done, total int64) { progressed = done })
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != int64(len(want)) || st.Rewritten != st.Ranges || st.Tables < 4 {
		t.Errorf("Rewrite wrote %d keys in %d of %d ranges into %d tables, want %d keys in every range, in 4 tables or more", st.Keys, st.Rewritten, st.Ranges, st.Tables, len(want))
	}
	if st.After <= 0 || st.After >= st.Before {
		t.Errorf("Rewrite took the tables from %d to %d bytes, want fewer", st.Before, st.After)
	}
	if progressed <= 0 {
		t.Error("Rewrite reported no progress")
	}
	stats, blocks, perBlock := checkIndex(t, dir, want)
	for _, s := range stats {
		if !strings.Contains(s, "ZSTD15") || strings.Contains(s, "ZSTD7") {
			t.Errorf("a table of the rewritten index has compression stats %q, want ZSTD15 blocks only", s)
		}
	}
	// Twice larger blocks for the edges, which are most of it. Raw bytes
	// are a little more than a block's size: the block shares key prefixes.
	if blocks*4 > blocksBefore*3 {
		t.Errorf("%d data blocks after the rewrite, %d before: want under three quarters as many", blocks, blocksBefore)
	}
	if e, i := perBlock[PrefixEdge], perBlock[PrefixSourceID]; e < 120<<10 || e > 250<<10 || i == 0 || i > 100<<10 {
		t.Errorf("raw bytes a data block: edges %d, source records %d; want edges in blocks of 128 KiB (half of 256), source records of 64", e, i)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"LOCK", "index"}) {
		t.Errorf("the data directory holds %q after the rewrite, want only LOCK and index", names)
	}

	// Rewritten with the same settings, nothing is written again.
	again, err := Rewrite(t.Context(), dir, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Rewritten != 0 || again.Keys != 0 || again.After != st.After {
		t.Errorf("a second Rewrite wrote %d keys in %d ranges and took the tables from %d to %d bytes, want nothing written", again.Keys, again.Rewritten, st.After, again.After)
	}

	// The index takes writes as before, merges included. The next Rewrite
	// writes again the range most of them went to, not the ranges that
	// the flushed table's bounds span, where it holds few keys.
	db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	if err := AddCounter(b, CounterKey("c1"), 3); err != nil {
		t.Fatal(err)
	}
	want[string(CounterKey("c1"))] = string(binary.AppendVarint(nil, 13))
	for i := range 3000 {
		k := fmt.Appendf([]byte{PrefixEdge}, "com,site%d)/new/page-%d\x00anchor %d", 5, i, i%7)
		b.Set(k, []byte("1"), nil)
		want[string(k)] = "1"
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if n, err := Counter(db, CounterKey("c1")); err != nil || n != 13 {
		t.Errorf("counter c1 after a merge on the rewritten index: %d, %v; want 13", n, err)
	}
	db.Close()
	third, err := Rewrite(t.Context(), dir, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if third.Rewritten < 1 || third.Rewritten > 2 || third.Keys > int64(len(want))/4 {
		t.Errorf("after writes to one range, Rewrite wrote %d keys in %d of %d ranges; want that range (and the counter's)", third.Keys, third.Rewritten, third.Ranges)
	}
	checkIndex(t, dir, want)
}

// TestRewriteCutShort stops Rewrite after it has put two ranges in place,
// as a kill would: the index is whole, the next Open deletes what Rewrite
// left beside it, and the next Rewrite writes only the other ranges.
func TestRewriteCutShort(t *testing.T) {
	dir := t.TempDir()
	want := fillIndex(t, dir)
	// Tables of zstd 12, to be rewritten at 15: several ranges.
	smallTables(t, 64<<10)
	if _, err := Rewrite(t.Context(), dir, Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 12}, nil); err != nil {
		t.Fatal(err)
	}
	errKilled := errors.New("killed")
	n := 0
	rewriteStep = func() error {
		if n++; n == 2 {
			return errKilled
		}
		return nil
	}
	defer func() { rewriteStep = func() error { return nil } }()
	o := Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 15}
	if _, err := Rewrite(t.Context(), dir, o, nil); !errors.Is(err, errKilled) {
		t.Fatalf("Rewrite: %v, want it stopped after two ranges", err)
	}
	rewriteStep = func() error { return nil }
	// What a kill while a range's tables were written leaves.
	if err := os.MkdirAll(filepath.Join(dir, rewriteScratch), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rewriteScratch, "000001-000.sst"), []byte("half a table"), 0o644); err != nil {
		t.Fatal(err)
	}
	stats, _, _ := checkIndex(t, dir, want)
	var new, old int
	for _, s := range stats {
		switch {
		case strings.Contains(s, "ZSTD15"):
			new++
		case strings.Contains(s, "ZSTD12"):
			old++
		}
	}
	if new < 2 || old == 0 {
		t.Errorf("%d tables rewritten and %d not after Rewrite stopped, want two ranges' and the rest", new, old)
	}
	if _, err := os.Stat(filepath.Join(dir, rewriteScratch)); err == nil {
		t.Errorf("%s is still there after Open", rewriteScratch)
	}
	st, err := Rewrite(t.Context(), dir, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rewritten != st.Ranges-2 {
		t.Errorf("the next Rewrite wrote %d of %d ranges, want all but the two done", st.Rewritten, st.Ranges)
	}
	stats, _, _ = checkIndex(t, dir, want)
	for _, s := range stats {
		if !strings.Contains(s, "ZSTD15") || strings.Contains(s, "ZSTD12") {
			t.Errorf("a table has compression stats %q after the second Rewrite, want ZSTD15 blocks only", s)
		}
	}
}

// TestRewriteLeavesTheIndexOnFailure: a Rewrite that fails before it puts
// a range in place (here its context is cancelled) leaves the index as it
// was.
func TestRewriteLeavesTheIndexOnFailure(t *testing.T) {
	dir := t.TempDir()
	want := fillIndex(t, dir)
	_, blocksBefore, _ := checkIndex(t, dir, want)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Rewrite(ctx, dir, Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 15, BlockSize: 256 << 10}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rewrite with a cancelled context: %v", err)
	}
	if _, blocks, _ := checkIndex(t, dir, want); blocks != blocksBefore {
		t.Errorf("%d data blocks, %d before: the index changed", blocks, blocksBefore)
	}
	if _, err := os.Stat(filepath.Join(dir, rewriteScratch)); err == nil {
		t.Errorf("%s is still there", rewriteScratch)
	}
}

func TestRewriteRefuses(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rewrite(t.Context(), dir, Options{}, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("Rewrite of an index in use: %v, want ErrLocked", err)
	}
	db.Close()
	for _, o := range []Options{{ZstdLevel: MaxZstdLevel + 1}, {BlockSize: 1 << 10}, {BlockSize: 2 << 20}} {
		if _, err := Rewrite(t.Context(), dir, o, nil); err == nil || !strings.Contains(err.Error(), "must be from") {
			t.Errorf("Rewrite with %+v: %v, want an error naming the range", o, err)
		}
	}
	if _, err := Rewrite(t.Context(), filepath.Join(dir, "nothing"), Options{}, nil); !errors.Is(err, ErrNoIndex) {
		t.Errorf("Rewrite of a directory without an index: %v, want ErrNoIndex", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing")); err == nil {
		t.Error("Rewrite created the directory it was given")
	}
}

// TestRewriteDropsDeletedKeys: ranges whose keys were all deleted (here
// every edge) hold only tombstones and the tables they shadow; Rewrite
// leaves nothing of them.
func TestRewriteDropsDeletedKeys(t *testing.T) {
	dir := t.TempDir()
	want := fillIndex(t, dir)
	smallTables(t, 64<<10)
	o := Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 15}
	if _, err := Rewrite(t.Context(), dir, o, nil); err != nil {
		t.Fatal(err)
	}
	db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for k := range want {
		if k[0] == PrefixEdge {
			b.Delete([]byte(k), nil)
			delete(want, k)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Rewrite(t.Context(), dir, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The edges were most of the index.
	if st.Rewritten == 0 || st.After > st.Before/4 {
		t.Errorf("after every edge was deleted, Rewrite wrote %d ranges again and took the tables from %d to %d bytes; want under a quarter left", st.Rewritten, st.Before, st.After)
	}
	checkIndex(t, dir, want)
}

// TestRewriteRounds writes, deletes and merges at random for several
// rounds, each flushed and compacted differently and then rewritten, and
// checks the index against a model of what it should hold after every
// Rewrite: ranges that changed, tables above the bottom level spanning
// many ranges, and ranges left as they were all meet in it.
func TestRewriteRounds(t *testing.T) {
	dir := t.TempDir()
	smallTables(t, 8<<10)
	rng := rand.New(rand.NewPCG(7, 7))
	want := map[string]string{}
	counters := map[string]int64{}
	prefixes := []byte{PrefixAggregate, PrefixEdge, PrefixForward, PrefixSourceID}
	o := Options{CacheSize: MinDefaultCacheSize, ZstdLevel: 15}
	skipped := 0
	for round := range 6 {
		db, err := OpenWith(dir, Options{CacheSize: MinDefaultCacheSize})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			b := db.NewBatch()
			// Each batch writes in one place, so that its tables cover a
			// few ranges, in the first round everywhere.
			p, s0, width := prefixes[rng.IntN(len(prefixes))], rng.IntN(40), 3
			key := func() string {
				if round == 0 {
					p, s0, width = prefixes[rng.IntN(len(prefixes))], 0, 40
				}
				return string(fmt.Appendf([]byte{p}, "com,site%02d)/page-%04d", s0+rng.IntN(width), rng.IntN(500)))
			}
			for range 3000 {
				k := key()
				if rng.IntN(10) == 0 {
					b.Delete([]byte(k), nil)
					delete(want, k)
					continue
				}
				v := fmt.Sprintf("round %d value %d", round, rng.IntN(1e6))
				b.Set([]byte(k), []byte(v), nil)
				want[k] = v
			}
			for range 20 {
				name := fmt.Sprint("c", rng.IntN(5))
				d := int64(rng.IntN(100))
				if err := AddCounter(b, CounterKey(name), d); err != nil {
					t.Fatal(err)
				}
				counters[name] += d
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			// Left in the memtable, flushed, or compacted to the bottom.
			switch rng.IntN(3) {
			case 0:
				if err := db.Flush(); err != nil {
					t.Fatal(err)
				}
			case 1:
				lo := fmt.Appendf([]byte{p}, "com,site%02d)", s0)
				hi := fmt.Appendf([]byte{p}, "com,site%02d)", s0+width)
				if err := db.Compact(t.Context(), lo, hi, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		maps.Copy(want, metaKeys(t, db))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := Rewrite(t.Context(), dir, o, nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d of %d ranges rewritten, %d keys", round, st.Rewritten, st.Ranges, st.Keys)
		skipped += st.Ranges - st.Rewritten
		for name, n := range counters {
			want[string(CounterKey(name))] = string(binary.AppendVarint(nil, n))
		}
		checkIndex(t, dir, want)
	}
	if skipped == 0 {
		t.Error("every Rewrite wrote every range: the rounds never left one as it was")
	}
}
