package indexer

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/linkgraph/linkgraph/internal/store"
)

// BenchmarkEdgePacking estimates what packing a target's edges into
// chunks, several edges to a Pebble key, would save on disk. It reads the
// edges of an index written by linkgraph generate and writes them again,
// into a scratch index with the same options, in four ways: one key per
// edge as now (its value in the key, see storedEdge), one key per edge with
// the value apart, chunks of up to 64 edges of one target stored row by row
// (each key suffix front-coded against the previous one), and the same
// chunks stored column by column. It reports each one's bytes an edge after
// compaction, and prints each column's bytes compressed on its own (zstd
// over runs of 2,000 edges), a floor for any packing.
//
//	LINKGRAPH_INDEX=/tmp/gen2m go test -run '^$' -bench EdgePacking -benchtime 1x ./indexer
//
// On 2026-11-26, the 2M-edge index of generate --shards 64: one key an edge
// with its value apart 14.4 bytes, row chunks 11.7, column chunks 11.3; the
// columns on their own 9.3 (anchors 4.1, target URLs 1.8, source ids 1.6,
// values 1.2, domain ids 0.5, types 0.2). On 2026-11-27, with values in the
// keys and plain values empty: one key an edge 12.5, its value apart 12.8,
// row chunks 11.6, column chunks 11.1, the columns 9.1 (values 0.9). What
// packing saves is mostly Pebble's per-key overhead (offsets into the
// block, which zstd barely compresses).
func BenchmarkEdgePacking(b *testing.B) {
	dir := os.Getenv("LINKGRAPH_INDEX")
	if dir == "" {
		b.Skip("set LINKGRAPH_INDEX to the --data directory of linkgraph generate")
	}
	src, err := store.OpenWith(dir, store.Options{MustExist: true})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for range b.N {
		for _, layout := range []string{"key-per-edge", "value-apart", "row-chunks", "column-chunks"} {
			perEdge := packEdges(b, src, layout)
			b.ReportMetric(perEdge, "B/edge-"+layout)
		}
		printColumns(b, src)
	}
}

// edgeChunk gathers the edges of one target, up to 64, and encodes them.
type edgeChunk struct {
	key      []byte // 'E' and the first edge's key
	n        int
	rows     []byte
	prev     []byte // the previous edge's key suffix, for front coding
	cols     [5][]byte
	prevDom  uint64
	columnar bool
}

func (c *edgeChunk) add(k edgeKeyParts, suffix, val []byte) {
	if c.columnar {
		c.cols[0] = binary.AppendUvarint(c.cols[0], k.domain-c.prevDom)
		c.prevDom = k.domain
		c.cols[1] = binary.AppendUvarint(c.cols[1], k.source)
		c.cols[2] = append(c.cols[2], byte(k.typ))
		c.cols[3] = append(append(c.cols[3], k.anchor...), 0)
		c.cols[4] = append(binary.AppendUvarint(c.cols[4], uint64(len(val))), val...)
	} else {
		shared := 0
		for shared < len(suffix) && shared < len(c.prev) && suffix[shared] == c.prev[shared] {
			shared++
		}
		c.rows = binary.AppendUvarint(c.rows, uint64(shared))
		c.rows = binary.AppendUvarint(c.rows, uint64(len(suffix)-shared))
		c.rows = append(c.rows, suffix[shared:]...)
		c.rows = append(binary.AppendUvarint(c.rows, uint64(len(val))), val...)
		c.prev = append(c.prev[:0], suffix...)
	}
	c.n++
}

func (c *edgeChunk) value() []byte {
	if !c.columnar {
		return c.rows
	}
	v := binary.AppendUvarint(nil, uint64(c.n))
	for _, col := range c.cols {
		v = append(v, col...)
	}
	return v
}

// reset empties the chunk, keeping its buffers, for edges from key on.
func (c *edgeChunk) reset(key []byte) {
	c.key = append(c.key[:0], key...)
	c.n, c.prevDom = 0, 0
	c.rows, c.prev = c.rows[:0], c.prev[:0]
	for i := range c.cols {
		c.cols[i] = c.cols[i][:0]
	}
}

// packEdges writes src's edges into a scratch index in layout and returns
// the bytes an edge its tables take after compaction.
func packEdges(b *testing.B, src *store.DB, layout string) float64 {
	out, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixEdge}, UpperBound: []byte{store.PrefixEdge + 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	batch := out.NewBatch()
	set := func(k, v []byte) {
		if err := batch.Set(k, v, nil); err != nil {
			b.Fatal(err)
		}
		if batch.Len() > 4<<20 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = out.NewBatch()
		}
	}
	chunk := &edgeChunk{columnar: layout == "column-chunks"}
	edges, target := 0, ""
	for it.First(); it.Valid(); it.Next() {
		edges++
		if layout == "key-per-edge" {
			set(it.Key(), nil)
			continue
		}
		k, err := parseEdgeKey(it.Key(), target)
		if err != nil {
			b.Fatal(err)
		}
		val, err := k.value(it.Key())
		if err != nil {
			b.Fatal(err)
		}
		if layout == "value-apart" {
			set(it.Key()[:k.keyLen], val)
			continue
		}
		if k.targetSURT != target || chunk.n == 64 {
			if chunk.n > 0 {
				set(chunk.key, chunk.value())
			}
			chunk.reset(append([]byte{'E'}, it.Key()...))
		}
		target = k.targetSURT
		chunk.add(k, it.Key()[len(target)+2:k.keyLen], val)
	}
	if chunk.n > 0 {
		set(chunk.key, chunk.value())
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	if err := out.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := out.Compact(b.Context(), []byte{0}, []byte{0xff}, false); err != nil {
		b.Fatal(err)
	}
	used, err := out.EstimateDiskUsage([]byte{0}, []byte{0xff})
	if err != nil {
		b.Fatal(err)
	}
	return float64(used) / float64(max(edges, 1))
}

// printColumns prints the bytes an edge of each part of src's edges, raw
// and compressed on its own.
func printColumns(b *testing.B, src *store.DB) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"target URLs", "domain ids", "source ids", "types", "anchors", "values"}
	cols := make([][]byte, len(names))
	raw, packed := make([]int, len(names)), make([]int, len(names))
	flush := func() {
		for i := range cols {
			raw[i] += len(cols[i])
			packed[i] += len(enc.EncodeAll(cols[i], nil))
			cols[i] = cols[i][:0]
		}
	}
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixEdge}, UpperBound: []byte{store.PrefixEdge + 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	edges, target := 0, ""
	for it.First(); it.Valid(); it.Next() {
		k, err := parseEdgeKey(it.Key(), target)
		if err != nil {
			b.Fatal(err)
		}
		if k.targetSURT != target {
			cols[0] = append(append(cols[0], k.targetSURT...), 0)
			target = k.targetSURT
		}
		cols[1] = store.AppendID(cols[1], k.domain)
		cols[2] = store.AppendID(cols[2], k.source)
		cols[3] = append(cols[3], byte(k.typ))
		cols[4] = append(append(cols[4], k.anchor...), 0)
		val, err := k.value(it.Key())
		if err != nil {
			b.Fatal(err)
		}
		cols[5] = append(append(cols[5], byte(len(val))), val...)
		if edges++; edges%2000 == 0 {
			flush()
		}
	}
	flush()
	total := 0.0
	for i, name := range names {
		z := float64(packed[i]) / float64(max(edges, 1))
		total += z
		fmt.Printf("%-12s raw %6.2f  zstd %5.2f bytes an edge\n", name, float64(raw[i])/float64(max(edges, 1)), z)
	}
	fmt.Printf("%-12s            zstd %5.2f bytes an edge (%d edges)\n", "all columns", total, edges)
}
