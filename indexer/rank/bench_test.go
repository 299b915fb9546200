package rank

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRank ranks a synthetic host graph of 1M hosts and 20M distinct
// edges (Zipf in-degrees, as links to hosts have; 35M drawn, repeats
// dropped): it builds the graph, then
// computes PageRank and harmonic centrality (HyperBall), and reports the
// seconds of each and the process's peak RSS.
//
//	go test -run '^$' -bench Rank -benchtime 1x -timeout 30m ./indexer/rank
func BenchmarkRank(b *testing.B) {
	const n, m = 1_000_000, 35_000_000
	for range b.N {
		edges := powerLawEdges(n, m, 1)
		start := time.Now()
		g, err := NewGraph(n, edges)
		if err != nil {
			b.Fatal(err)
		}
		edges = nil
		built := time.Now()
		pr := g.PageRank(DefaultDamping, 1e-9, 200)
		ranked := time.Now()
		hc := g.Harmonic(100, runtime.GOMAXPROCS(0))
		done := time.Now()
		if len(pr) != n || len(hc) != n || g.Edges() < 20_000_000 {
			b.Fatalf("%d ranks, %d edges; want %d and at least 20M", len(pr), g.Edges(), n)
		}
		b.ReportMetric(built.Sub(start).Seconds(), "build-s")
		b.ReportMetric(ranked.Sub(built).Seconds(), "pagerank-s")
		b.ReportMetric(done.Sub(ranked).Seconds(), "harmonic-s")
		b.ReportMetric(done.Sub(start).Seconds(), "total-s")
		b.ReportMetric(float64(g.Edges()), "edges")
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}

// BenchmarkRankBuilder is the whole ranking a node runs (ComputeRanks):
// 35M links between 1M named hosts (3 per registrable domain, Zipf
// in-degrees, 20M distinct), sorted by target as the index yields them, go
// through a Builder, which deduplicates them and ranks both the host and
// the domain graph. Run it on its own for its peak RSS, with the memory
// limit the chart's CronJob sets for a 2 GiB pod (without one the garbage
// collector lets the heap grow to twice what is live):
//
//	GOMEMLIMIT=1400MiB go test -run '^$' -bench 'RankBuilder' -benchtime 1x -timeout 30m ./indexer/rank
func BenchmarkRankBuilder(b *testing.B) {
	const n, m = 1_000_000, 35_000_000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("com.site%d.h%d", i/3, i%3)
	}
	for range b.N {
		edges := powerLawEdges(n, m, 1)
		slices.SortFunc(edges, func(a, b Edge) int { return cmp.Compare(a.To, b.To) })
		start := time.Now()
		bl := NewBuilder(false)
		for _, e := range edges {
			if err := bl.Add(names[e.From], names[e.To]); err != nil {
				b.Fatal(err)
			}
		}
		edges = nil
		built := time.Now()
		res, err := bl.Rank(context.Background(), runtime.GOMAXPROCS(0))
		if err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		if res.Hosts.Links < 20_000_000 || len(res.Domains.Names) < n/3 {
			b.Fatalf("%d host links, %d domains; want at least 20M and %d", res.Hosts.Links, len(res.Domains.Names), n/3)
		}
		b.ReportMetric(built.Sub(start).Seconds(), "gather-s")
		b.ReportMetric(done.Sub(built).Seconds(), "rank-s")
		b.ReportMetric(done.Sub(start).Seconds(), "total-s")
		b.ReportMetric(float64(len(res.Hosts.Names)), "hosts")
		b.ReportMetric(float64(res.Hosts.Links), "host-links")
		b.ReportMetric(float64(len(res.Domains.Names)), "domains")
		b.ReportMetric(float64(res.Domains.Links), "domain-links")
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}
