package indexer_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
)

// BenchmarkFirstPage reads the first page of 10 and of 100 (the default)
// backlinks of the sample targets of an index written by linkgraph
// generate, and of 100 of its URL with 1M backlinks, in process (no gRPC):
// the index's share of bench/query's backlinks-random-10,
// backlinks-random-100 and backlinks-hub-100.
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
	for _, c := range []struct {
		name    string
		targets []string
		size    int
	}{{"random", m.SampleTargets, 10}, {"random", m.SampleTargets, 100}, {"hub", []string{m.HubURL}, 100}} {
		b.Run(fmt.Sprintf("%s/size=%d", c.name, c.size), func(b *testing.B) {
			rows := 0
			i := 0
			for b.Loop() {
				p, err := ix.Backlinks(ctx, indexer.Query{Target: c.targets[i%len(c.targets)], PageSize: c.size})
				if err != nil {
					b.Fatal(err)
				}
				rows += len(p.Backlinks)
				i++
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}
