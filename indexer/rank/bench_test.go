package rank

import (
	"runtime"
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
