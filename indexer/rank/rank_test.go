package rank

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func graph(t testing.TB, n int, edges ...Edge) *Graph {
	t.Helper()
	g, err := NewGraph(n, edges)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// PageRank on small graphs solved by hand (the linear equations of each
// written out and solved for d = 0.85).
func TestPageRankKnownValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		edges []Edge
		want  []float64
	}{
		// A cycle 0->1->2->0 fed by 3 (no in-links):
		// p3 = 0.15/4; p0 = p3 + .85 p2; p1 = p3 + .85 p0; p2 = p3 + .85 (p1 + p3).
		{"cycle with a feeder", 4, []Edge{{0, 1}, {1, 2}, {2, 0}, {3, 2}}, []float64{0.3202138, 0.3096817, 0.3326045, 0.0375}},
		// 1 is dangling: its rank goes to both nodes alike.
		// p0 = .075 + .425 p1; p1 = .075 + .425 p1 + .85 p0.
		{"dangling node", 2, []Edge{{0, 1}}, []float64{0.5 / 1.425, 1 - 0.5/1.425}},
		// Two disconnected 2-cycles: every node alike.
		{"disconnected parts", 4, []Edge{{0, 1}, {1, 0}, {2, 3}, {3, 2}}, []float64{0.25, 0.25, 0.25, 0.25}},
		// Self-loops and repeated edges are dropped: the same as {0->1}.
		{"self-loops and repeats", 2, []Edge{{0, 1}, {0, 1}, {1, 1}, {0, 0}}, []float64{0.5 / 1.425, 1 - 0.5/1.425}},
	} {
		pr := graph(t, c.n, c.edges...).PageRank(DefaultDamping, 1e-12, 1000)
		sum := 0.0
		for i, p := range pr {
			sum += p
			if !near(p, c.want[i], 1e-6) {
				t.Errorf("%s: node %d rank %.7f, want %.7f", c.name, i, p, c.want[i])
			}
		}
		if !near(sum, 1, 1e-9) {
			t.Errorf("%s: ranks sum to %v", c.name, sum)
		}
	}
}

func TestHarmonicExactKnownValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		edges []Edge
		want  []float64
	}{
		// 0 -> 1 -> 2: 2 is reached from 1 (1) and 0 (1/2).
		{"path", 3, []Edge{{0, 1}, {1, 2}}, []float64{0, 1, 1.5}},
		// A star into 0.
		{"star", 4, []Edge{{1, 0}, {2, 0}, {3, 0}}, []float64{3, 0, 0, 0}},
		// Unreachable nodes add nothing; a 2-cycle gives 1 each.
		{"disconnected", 5, []Edge{{0, 1}, {1, 0}, {2, 3}, {3, 4}}, []float64{1, 1, 0, 1, 1.5}},
	} {
		if got := graph(t, c.n, c.edges...).HarmonicExact(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// HyperBall approximates exact harmonic centrality closely enough to order
// the nodes of a power-law graph alike.
func TestHarmonicApproximatesExact(t *testing.T) {
	const n = 3000
	g := graph(t, n, powerLawEdges(n, 8*n, 1)...)
	exact := g.HarmonicExact()
	approx := g.Harmonic(100, 2)
	var relErr float64
	counted := 0
	for v := range n {
		if exact[v] > 10 {
			relErr += math.Abs(approx[v]-exact[v]) / exact[v]
			counted++
		}
	}
	relErr /= float64(counted)
	rho := spearman(exact, approx)
	t.Logf("%d nodes with centrality > 10: mean relative error %.3f; Spearman rank correlation %.4f", counted, relErr, rho)
	if relErr > 0.15 || rho < 0.95 {
		t.Errorf("mean relative error %.3f (want <= 0.15), rank correlation %.4f (want >= 0.95)", relErr, rho)
	}
}

// powerLawEdges draws m edges whose targets follow a Zipf law, as links to
// hosts do, and whose sources are uniform.
func powerLawEdges(n, m int, seed uint64) []Edge {
	r := rand.New(rand.NewPCG(seed, 7))
	z := rand.NewZipf(r, 1.3, 1, uint64(n-1))
	edges := make([]Edge, m)
	for i := range edges {
		edges[i] = Edge{From: uint32(r.IntN(n)), To: uint32(z.Uint64())}
	}
	return edges
}

// spearman is the rank correlation of a and b (ties by position).
func spearman(a, b []float64) float64 {
	rank := func(x []float64) []float64 {
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(i, j int) int {
			switch {
			case x[i] < x[j]:
				return -1
			case x[i] > x[j]:
				return 1
			}
			return 0
		})
		r := make([]float64, len(x))
		for pos, i := range idx {
			r[i] = float64(pos)
		}
		return r
	}
	ra, rb := rank(a), rank(b)
	n := float64(len(a))
	var d2 float64
	for i := range ra {
		d := ra[i] - rb[i]
		d2 += d * d
	}
	return 1 - 6*d2/(n*(n*n-1))
}
