package indexer_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// BenchmarkApply measures the index write path as the shard role runs it:
// RecordPage for a fetched page with 100 links, then ApplyLinks of the
// resulting batches, committed every 16 pages. Reports edges/s. In the
// external case 30 of the 100 links point to other sites, whose host and
// domain aggregates are maintained.
//
//	go test -run ^$ -bench Apply -benchtime 20000x ./indexer
func BenchmarkApply(b *testing.B) {
	b.Run("internal", func(b *testing.B) { benchmarkApply(b, 0) })
	b.Run("external", func(b *testing.B) { benchmarkApply(b, 30) })
}

func benchmarkApply(b *testing.B, external int) {
	_, ix := openIndex(b)
	rng := rand.New(rand.NewPCG(1, 2))
	const linksPerPage, sitePages, perTxn = 100, 50000, 16
	page := func(i int) string {
		return fmt.Sprintf("https://www.example.com/articles/%d/some-title-%d.html", i%sitePages, i%sitePages)
	}
	b.ReportAllocs()
	b.ResetTimer()
	edges := 0
	for i := 0; i < b.N; i += perTxn {
		txn := ix.Begin()
		var batches []*lgv1.LinkBatch
		for j := i; j < min(i+perTxn, b.N); j++ {
			links := make([]*lgv1.OutLink, linksPerPage)
			for k := range links {
				t := rng.IntN(sitePages)
				if k < 10 {
					t = k // navigation: the same popular pages everywhere
				}
				u := page(t)
				if k >= linksPerPage-external {
					u = fmt.Sprintf("https://site%d.example.org/post/%d", rng.IntN(1000), t)
				}
				links[k] = &lgv1.OutLink{Url: u, AnchorText: fmt.Sprintf("anchor text %d", t%500), Type: lgv1.LinkType_LINK_TYPE_A}
			}
			out, err := txn.RecordPage(&lgv1.PageResult{Url: page(j), Status: 200, FetchedAt: int64(j) + 1, Title: "a title", Links: links})
			if err != nil {
				b.Fatal(err)
			}
			for _, lb := range out {
				batches = append(batches, lb)
				edges += len(lb.Edges)
			}
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
		txn = ix.Begin()
		for _, lb := range batches {
			if err := txn.ApplyLinks(lb); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(edges)/b.Elapsed().Seconds(), "edges/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
