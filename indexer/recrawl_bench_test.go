package indexer

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// BenchmarkRecrawl measures the diff-and-apply of recrawled pages as the
// shard role runs it: RecordFetch of a page of 100 links crawled before,
// then ApplyLinks of its batches, 16 pages a commit. "changed" pages lose
// 10 of their links and gain 10 new ones; "flapping" pages drop and regain
// the same 10 links on alternate visits, so those links gather history;
// "304" pages answer Not Modified. Reports pages/s, and the mean size of an
// edge value and of one with history, from which the bytes history costs.
//
//	go test -run '^$' -bench Recrawl -benchtime 20000x ./indexer
//
// On 2026-11-25, this 2-core machine: changed 528 pages/s (52.8k links/s),
// flapping 634, 304 717; an edge value is 9.8-10.0 bytes, one whose link
// was lost and came back about 5 times 50.9 bytes, so about 8 bytes a
// period of history, and nothing for links that never come and go. On
// 2026-11-27, with edge values in their keys (an update deletes the old
// key): changed 863-925 pages/s, flapping 899-925, against 893-1,020 and
// 977-1,050 for the same runs with values apart.
func BenchmarkRecrawl(b *testing.B) {
	for _, mode := range []string{"changed", "flapping", "304"} {
		b.Run(mode, func(b *testing.B) { benchmarkRecrawl(b, mode) })
	}
}

func benchmarkRecrawl(b *testing.B, mode string) {
	db, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ix := New(db, 1)
	const pages, linksPerPage, perTxn = 2000, 100, 16
	page := func(i int) string { return fmt.Sprintf("https://www.example.com/articles/%d.html", i%pages) }
	link := func(p, k, gen int) *lgv1.OutLink {
		return &lgv1.OutLink{Url: fmt.Sprintf("https://site%d.example.org/post/%d-%d", (p*7+k)%500, k, gen), AnchorText: fmt.Sprintf("anchor %d", k), Type: lgv1.LinkType_LINK_TYPE_A}
	}
	visits := make([]int, pages)
	linksOf := func(p int) []*lgv1.OutLink {
		v := visits[p]
		out := make([]*lgv1.OutLink, 0, linksPerPage)
		for k := range linksPerPage {
			gen := 0
			switch {
			case mode == "changed" && k < 10:
				gen = v // 10 links replaced on every visit
			case mode == "flapping" && k < 10 && v%2 == 1:
				continue // 10 links gone on odd visits, back on even ones
			}
			out = append(out, link(p, k, gen))
		}
		return out
	}
	at := int64(0)
	run := func(n int, timed bool) {
		for i := 0; i < n; i += perTxn {
			txn := ix.Begin()
			var batches []*lgv1.LinkBatch
			for j := i; j < min(i+perTxn, n); j++ {
				p := j % pages
				at += 1e9
				pr := &lgv1.PageResult{Url: page(p), Status: 200, FetchedAt: at, Title: "a title", Links: linksOf(p)}
				if timed && mode == "304" {
					pr = &lgv1.PageResult{Url: page(p), Status: 304, FetchedAt: at}
				}
				rec, err := txn.RecordFetch(pr)
				if err != nil {
					b.Fatal(err)
				}
				visits[p]++
				for _, lb := range rec.Batches {
					batches = append(batches, lb)
				}
			}
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			txn.Close()
			txn = ix.Begin()
			for _, lb := range batches {
				if err := txn.ApplyLinks(lb); err != nil {
					b.Fatal(err)
				}
			}
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			txn.Close()
		}
	}
	run(pages, false) // the first crawl
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N, true)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")

	var all, withHistory, allBytes, historyBytes int
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixEdge}, UpperBound: []byte{store.PrefixEdge + 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, err := parseEdgeKey(it.Key(), "")
		if err != nil {
			b.Fatal(err)
		}
		val, err := k.value(it.Key())
		if err != nil {
			b.Fatal(err)
		}
		v, err := decodeEdgeValue(val, 0) // only its history is looked at
		if err != nil {
			b.Fatal(err)
		}
		all++
		allBytes += len(val)
		if len(v.history) > 0 {
			withHistory++
			historyBytes += len(val)
		}
	}
	b.ReportMetric(float64(allBytes)/float64(all), "value-bytes/edge")
	if withHistory > 0 {
		b.ReportMetric(float64(historyBytes)/float64(withHistory), "value-bytes/edge-with-history")
	}
}
