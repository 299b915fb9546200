package indexer_test

import (
	"context"
	"os"
	"testing"

	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
)

// BenchmarkFirstPage reads the first page of 10 backlinks of the sample
// targets of an index written by linkgraph generate, in process (no gRPC):
// the index's share of bench/query's backlinks-random-10.
//
//	LINKGRAPH_INDEX=/tmp/gen10m go test -run '^$' -bench FirstPage -benchmem ./indexer
func BenchmarkFirstPage(b *testing.B) {
	dir := os.Getenv("LINKGRAPH_INDEX")
	if dir == "" {
		b.Skip("set LINKGRAPH_INDEX to the --data directory of linkgraph generate")
	}
	m, err := graphgen.ReadManifest(dir)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.OpenWith(dir, store.Options{MustExist: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	shards, err := db.Shards(0, 1)
	if err != nil {
		b.Fatal(err)
	}
	ix := indexer.New(db, shards)
	ctx := context.Background()
	rows := 0
	i := 0
	for b.Loop() {
		p, err := ix.Backlinks(ctx, indexer.Query{Target: m.SampleTargets[i%len(m.SampleTargets)], PageSize: 10})
		if err != nil {
			b.Fatal(err)
		}
		rows += len(p.Backlinks)
		i++
	}
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
}
