// Package rank computes link-based ranks of the nodes of a graph (hosts,
// registrable domains or pages, linked when one links to the other):
// PageRank and harmonic centrality, the two ranks Common Crawl publishes for
// its host and domain graphs. The graph is held as compressed sparse rows
// of 32-bit node ids, both ways, so its memory is about 8 bytes per edge
// and 12 per node; a host or domain graph's does not grow with the page
// graph it came from. Builder gathers the graphs from an index's links,
// and the ranks are stored with the index in generations (store.go).
package rank

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// Graph is a directed graph of n nodes, 0..n-1, without self-loops or
// parallel edges. Build it with NewGraph.
type Graph struct {
	n int
	// out[off[v]:off[v+1]] are the nodes v links to; in likewise those
	// linking to v.
	off, out   []uint32
	inOff, in  []uint32
	outDegrees []uint32
}

// Edge is a link from one node to another.
type Edge struct{ From, To uint32 }

// ErrNode is returned by NewGraph for an edge naming a node out of range.
var ErrNode = errors.New("rank: edge names a node out of range")

// NewGraph builds the graph of n nodes with edges, dropping self-loops and
// repeated edges. It sorts edges in place.
func NewGraph(n int, edges []Edge) (*Graph, error) {
	if n < 0 || n > math.MaxUint32 {
		return nil, fmt.Errorf("rank: %d nodes", n)
	}
	for _, e := range edges {
		if int(e.From) >= n || int(e.To) >= n {
			return nil, fmt.Errorf("%w: %d -> %d with %d nodes", ErrNode, e.From, e.To, n)
		}
	}
	// Sorted as 64-bit words, repeated edges come together (in an order of
	// their halves that depends on the byte order, which the rows below do
	// not need) several times faster than sorted as structs.
	words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(edges))), len(edges))
	slices.Sort(words)
	edges = edges[:len(slices.Compact(words))]
	edges = slices.DeleteFunc(edges, func(e Edge) bool { return e.From == e.To })
	g := &Graph{n: n, off: make([]uint32, n+1), out: make([]uint32, len(edges)), inOff: make([]uint32, n+1), in: make([]uint32, len(edges))}
	for _, e := range edges {
		g.off[e.From+1]++
		g.inOff[e.To+1]++
	}
	for v := range n {
		g.off[v+1] += g.off[v]
		g.inOff[v+1] += g.inOff[v]
	}
	nextOut, nextIn := slices.Clone(g.off[:n]), slices.Clone(g.inOff[:n])
	for _, e := range edges {
		g.out[nextOut[e.From]] = e.To
		nextOut[e.From]++
		g.in[nextIn[e.To]] = e.From
		nextIn[e.To]++
	}
	g.outDegrees = make([]uint32, n)
	for v := range n {
		g.outDegrees[v] = g.off[v+1] - g.off[v]
	}
	return g, nil
}

// Nodes and Edges return the graph's size.
func (g *Graph) Nodes() int { return g.n }
func (g *Graph) Edges() int { return len(g.out) }

// DefaultDamping is PageRank's damping factor.
const DefaultDamping = 0.85

// PageRank returns the PageRank of every node with damping d: the
// stationary distribution of a surfer who follows a random out-link with
// probability d and jumps to a random node otherwise; a dangling node's
// share (a node without out-links) goes to every node alike. The values
// sum to 1. It iterates until the ranks move by less than tol in L1 norm,
// or maxIter times.
func (g *Graph) PageRank(d, tol float64, maxIter int) []float64 {
	n := g.n
	if n == 0 {
		return nil
	}
	pr := make([]float64, n)
	next := make([]float64, n)
	for i := range pr {
		pr[i] = 1 / float64(n)
	}
	for range maxIter {
		dangling := 0.0
		for v := range n {
			if g.outDegrees[v] == 0 {
				dangling += pr[v]
			}
		}
		base := (1-d)/float64(n) + d*dangling/float64(n)
		delta := 0.0
		for v := range n {
			sum := 0.0
			for _, u := range g.in[g.inOff[v]:g.inOff[v+1]] {
				sum += pr[u] / float64(g.outDegrees[u])
			}
			next[v] = base + d*sum
			delta += math.Abs(next[v] - pr[v])
		}
		pr, next = next, pr
		if delta < tol {
			break
		}
	}
	return pr
}

// HarmonicExact returns the harmonic centrality of every node, the sum
// over every other node u of 1/d(u, v), where d(u, v) is the length of the
// shortest path from u to v (unreachable nodes add nothing). One
// breadth-first search per node: for small graphs and for checking
// Harmonic.
func (g *Graph) HarmonicExact() []float64 {
	n := g.n
	hc := make([]float64, n)
	dist := make([]int32, n)
	queue := make([]uint32, 0, n)
	for v := range n {
		for i := range dist {
			dist[i] = -1
		}
		// Search backwards from v: the nodes at distance k over in-links
		// are those whose shortest path to v has length k.
		dist[v] = 0
		queue = append(queue[:0], uint32(v))
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for _, u := range g.in[g.inOff[x]:g.inOff[x+1]] {
				if dist[u] < 0 {
					dist[u] = dist[x] + 1
					hc[v] += 1 / float64(dist[u])
					queue = append(queue, u)
				}
			}
		}
	}
	return hc
}

// HarmonicRegisters is the number of HyperLogLog registers per node in
// Harmonic: a relative standard error of about 1.04/sqrt(64) = 13% on each
// ball size, which orders nodes well at one byte a register.
const HarmonicRegisters = 64

// Harmonic returns the harmonic centrality of every node, approximated
// with HyperBall (Boldi and Vigna): each node keeps a HyperLogLog counter
// of the nodes within distance t of it over in-links, grown one step per
// iteration by merging its in-neighbours' counters, and adds the growth
// at step t divided by t. A node is merged again only if an in-neighbour's
// counter grew in the step before. Memory is 2 × HarmonicRegisters bytes
// and two flags a node. It stops when no counter grows, or after maxIter
// steps.
func (g *Graph) Harmonic(maxIter, workers int) []float64 {
	n := g.n
	const words = HarmonicRegisters / 8 // registers are bytes, 8 to a word
	cur, next := make([]uint64, n*words), make([]uint64, n*words)
	for v := range n {
		h := mix64(uint64(v))
		r := h >> (64 - 6) // the register: the top 6 bits (64 registers)
		rest := h<<6 | 1<<5
		cur[v*words+int(r/8)] |= uint64(bits.LeadingZeros64(rest)+1) << (8 * (r % 8))
	}
	hc := make([]float64, n)
	size := make([]float64, n)
	for v := range n {
		size[v] = estimate(cur[v*words : (v+1)*words])
	}
	grew, grewNext := make([]bool, n), make([]bool, n)
	for i := range grew {
		grew[i] = true
	}
	workers = max(workers, 1)
	for t := 1; t <= maxIter; t++ {
		growing := make([]bool, workers)
		parallel(n, workers, func(w, lo, hi int) {
			for v := lo; v < hi; v++ {
				dst := next[v*words : (v+1)*words]
				copy(dst, cur[v*words:(v+1)*words])
				grewNext[v] = false
				for _, u := range g.in[g.inOff[v]:g.inOff[v+1]] {
					if !grew[u] {
						continue // its counter is what v merged before
					}
					src := cur[int(u)*words : int(u+1)*words]
					for i, y := range src {
						dst[i] = maxBytes(dst[i], y)
					}
				}
				if s := estimate(dst); s > size[v] {
					hc[v] += (s - size[v]) / float64(t)
					size[v] = s
				}
				if !slices.Equal(dst, cur[v*words:(v+1)*words]) {
					grewNext[v] = true
					growing[w] = true
				}
			}
		})
		cur, next = next, cur
		grew, grewNext = grewNext, grew
		if !slices.Contains(growing, true) {
			break
		}
	}
	return hc
}

// maxBytes is the bytewise maximum of x and y, whose bytes are all below
// 0x80 (registers hold at most 59): per byte, (y|0x80) - x keeps its top
// bit exactly when y >= x, and borrows never cross bytes.
func maxBytes(x, y uint64) uint64 {
	const h = 0x8080808080808080
	ge := ((y | h) - x) & h
	mask := (ge >> 7) * 0xff
	return y&mask | x&^mask
}

// pow2neg[r] is 2^-r.
var pow2neg = func() (t [65]float64) {
	for r := range t {
		t[r] = math.Ldexp(1, -r)
	}
	return t
}()

// estimate is the HyperLogLog estimate of the number of distinct items a
// counter of 64 one-byte registers (packed 8 to a word) saw, with linear
// counting for small cardinalities.
func estimate(words []uint64) float64 {
	const m = HarmonicRegisters
	z, zeros := 0.0, 0
	for _, w := range words {
		for range 8 {
			r := w & 0xff
			z += pow2neg[r]
			if r == 0 {
				zeros++
			}
			w >>= 8
		}
	}
	const alpha = 0.709 // for 64 registers
	e := alpha * m * m / z
	if e <= 2.5*m && zeros > 0 {
		return m * math.Log(m/float64(zeros))
	}
	return e
}

// parallel runs fn over [0, n) split into workers consecutive parts, and
// waits for them.
func parallel(n, workers int, fn func(w, lo, hi int)) {
	done := make(chan struct{}, workers)
	for w := range workers {
		go func() {
			// Owned by parallel, which waits for every part below.
			defer func() { done <- struct{}{} }()
			fn(w, w*n/workers, (w+1)*n/workers)
		}()
	}
	for range workers {
		<-done
	}
}

// mix64 is SplitMix64's finalizer: node ids are consecutive, and their
// register choices must look random.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// exactWork bounds the graphs whose harmonic centrality is computed
// exactly: one breadth-first search per node costs about nodes × edges.
const exactWork = 1e9

// HarmonicCentrality returns exact harmonic centrality for graphs small
// enough (nodes × edges up to 1e9), and HyperBall's approximation above.
func (g *Graph) HarmonicCentrality(workers int) []float64 {
	if float64(g.n)*float64(max(len(g.out), 1)) <= exactWork {
		return g.HarmonicExact()
	}
	return g.Harmonic(100, workers)
}
