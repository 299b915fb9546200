package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkWriteEdges compares ways to write the edge keys of crawled
// pages (100 links each, to 50,000 pages of one site, as the indexer's
// BenchmarkApply) into a shard's Pebble, to size the write path's
// options; the indexer writes the "batch" way.
//
//   - keys: only makes the keys, the cost the others share;
//   - batch: an indexed Batch per 16 pages (its reads see its writes),
//     committed sorted (Batch.Commit);
//   - plain: the same writes sorted into an unindexed batch;
//   - ingest: sorted runs of 32 MiB written as sstables and ingested,
//     past the memtable and the WAL (the messages they come from would
//     stay unacknowledged in JetStream until the ingest).
//
// Each ends with a flush, so that all three writers have written their keys to
// sstables.
//
//	go test -run ^$ -bench WriteEdges -benchtime 20000x ./internal/store
func BenchmarkWriteEdges(b *testing.B) {
	for _, mode := range []string{"keys", "batch", "plain", "ingest"} {
		b.Run(mode, func(b *testing.B) { benchmarkWriteEdges(b, mode) })
	}
}

func benchmarkWriteEdges(b *testing.B, mode string) {
	dir := b.TempDir()
	db, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const linksPerPage, sitePages, perTxn = 100, 50000, 16
	value := []byte("\x80\xa0\xe8\xd5\x8c\x33\x00\x00\x00\x00")
	pageKeys := func(page int, emit func(key []byte)) {
		for k := range linksPerPage {
			t := rng.IntN(sitePages)
			if k < 10 {
				t = k
			}
			key := fmt.Appendf([]byte{PrefixEdge}, "com,example,www)s/articles/%d/some-title-%d.html", t, t)
			key = append(key, 0, 1, 1, 3, byte(page>>16), byte(page>>8), byte(page), 1)
			emit(fmt.Appendf(key, "anchor text %d", t%500))
		}
	}
	type kv struct{ key, value []byte }
	var run []kv
	runBytes, ingested := 0, 0
	ingest := func() {
		slices.SortFunc(run, func(x, y kv) int { return bytes.Compare(x.key, y.key) })
		run = slices.CompactFunc(run, func(x, y kv) bool { return bytes.Equal(x.key, y.key) })
		path := filepath.Join(dir, fmt.Sprintf("run-%d.sst", ingested))
		f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			b.Fatal(err)
		}
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), sstable.WriterOptions{
			TableFormat: db.FormatMajorVersion().MaxTableFormat(),
			BlockSize:   64 << 10,
			MergerName:  CounterMerger.Name,
		})
		for _, e := range run {
			if err := w.Set(e.key, e.value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := db.Ingest(context.Background(), []string{path}); err != nil {
			b.Fatal(err)
		}
		run, runBytes = run[:0], 0
		ingested++
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += perTxn {
		switch mode {
		case "keys":
			for p := i; p < min(i+perTxn, b.N); p++ {
				pageKeys(p, func([]byte) {})
			}
		case "batch":
			batch := db.NewWriteBatch()
			for p := i; p < min(i+perTxn, b.N); p++ {
				pageKeys(p, func(key []byte) {
					if err := batch.Set(key, value, nil); err != nil {
						b.Fatal(err)
					}
				})
			}
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		case "plain":
			var ops [][]byte
			for p := i; p < min(i+perTxn, b.N); p++ {
				pageKeys(p, func(key []byte) { ops = append(ops, key) })
			}
			slices.SortStableFunc(ops, bytes.Compare)
			batch := db.NewBatch()
			for _, key := range ops {
				if err := batch.Set(key, value, nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		case "ingest":
			for p := i; p < min(i+perTxn, b.N); p++ {
				pageKeys(p, func(key []byte) {
					run = append(run, kv{key, value})
					runBytes += len(key) + len(value)
				})
			}
			if runBytes >= 32<<20 {
				ingest()
			}
		}
	}
	if len(run) > 0 {
		ingest()
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*linksPerPage)/b.Elapsed().Seconds(), "edges/s")
}
