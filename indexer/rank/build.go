package rank

import (
	"context"
	"fmt"
	"slices"
	"strings"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Builder gathers the host graph of a stream of links, and with it the
// graph of their registrable domains. It holds each distinct pair of hosts
// once, so its memory follows the host graph (about 8 bytes per host link,
// twice that while deduplicating, and a map entry per host), never the page
// graph it reads.
type Builder struct {
	ids   map[string]uint32 // host name -> id
	names []string          // host names (reversed, as in Common Crawl) by id
	dom   []uint32          // the domain id of each host id
	domID map[string]uint32
	doms  []string

	// lastDst caches the id of the previous link's target: links come
	// sorted by target from the index, and a lookup in a map of a million
	// hosts costs a few cache misses.
	lastDst   string
	lastDstID uint32

	pairs    []uint64 // from<<32 | to, host ids
	compact  int      // len(pairs) at which to deduplicate next
	links    int64
	maxHosts int
}

// MaxHosts bounds the hosts a Builder takes: ids are 32-bit, and the
// ranking's memory (about 12 bytes per host and 8 per host link, doubled
// while building) must fit one node.
const MaxHosts = 1 << 31

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{ids: make(map[string]uint32), domID: make(map[string]uint32), compact: 1 << 20, maxHosts: MaxHosts}
}

// Add records that the host named src links to the host named dst; both
// are reversed names (urlnorm.ReversedHost: "com.example.www"). A link
// within a host makes the host a node but is no edge.
func (b *Builder) Add(src, dst string) error {
	b.links++
	from, err := b.id(src)
	if err != nil {
		return err
	}
	if dst != b.lastDst || len(b.names) == 0 {
		if b.lastDstID, err = b.id(dst); err != nil {
			return err
		}
		b.lastDst = b.names[b.lastDstID]
	}
	to := b.lastDstID
	if from == to {
		return nil
	}
	b.pairs = append(b.pairs, uint64(from)<<32|uint64(to))
	if len(b.pairs) >= b.compact {
		// Most links repeat a pair already seen (a site links to another
		// from many pages): deduplicate, and let the buffer grow only when
		// that frees too little.
		b.pairs = sortUnique(b.pairs)
		b.compact = max(b.compact, 2*len(b.pairs))
	}
	return nil
}

// AddPairs is Add for links already counted elsewhere: links is how many
// page links the pairs stand for.
func (b *Builder) AddPairs(links int64, srcs, dsts []string) error {
	if len(srcs) != len(dsts) {
		return fmt.Errorf("rank: %d sources for %d targets", len(srcs), len(dsts))
	}
	for i := range srcs {
		if err := b.Add(srcs[i], dsts[i]); err != nil {
			return err
		}
	}
	b.links += links - int64(len(srcs))
	return nil
}

func (b *Builder) id(name string) (uint32, error) {
	if id, ok := b.ids[name]; ok {
		return id, nil
	}
	if len(b.names) >= b.maxHosts {
		return 0, fmt.Errorf("rank: more than %d hosts; the host graph no longer fits one node", b.maxHosts)
	}
	name = strings.Clone(name)
	id := uint32(len(b.names))
	b.ids[name] = id
	b.names = append(b.names, name)
	d := urlnorm.ReversedHost(urlnorm.RegistrableDomain(urlnorm.HostOfReversed(name)))
	did, ok := b.domID[d]
	if !ok {
		did = uint32(len(b.doms))
		b.domID[d] = did
		b.doms = append(b.doms, d)
	}
	b.dom = append(b.dom, did)
	return id, nil
}

func sortUnique(p []uint64) []uint64 {
	slices.Sort(p)
	return slices.Compact(p)
}

// Ranked is one level of a ranking: the nodes' names and their harmonic
// centrality and PageRank.
type Ranked struct {
	Level  byte // LevelHost or LevelDomain
	Names  []string
	HC, PR []float64
	Links  int // distinct links between the nodes
}

// Result is a ranking of hosts and of registrable domains.
type Result struct {
	Hosts, Domains Ranked
	// Links is how many page links the graphs were built from.
	Links int64
}

// Rank computes the ranks of both levels: PageRank with DefaultDamping,
// and harmonic centrality (exact on small graphs, HyperBall beyond) on
// workers goroutines. The Builder is spent.
func (b *Builder) Rank(ctx context.Context, workers int) (*Result, error) {
	hostEdges := make([]Edge, 0, len(b.pairs))
	var domEdges []Edge
	for _, p := range sortUnique(b.pairs) {
		from, to := uint32(p>>32), uint32(p)
		hostEdges = append(hostEdges, Edge{from, to})
		if df, dt := b.dom[from], b.dom[to]; df != dt {
			domEdges = append(domEdges, Edge{df, dt})
		}
	}
	b.pairs, b.ids, b.domID = nil, nil, nil
	res := &Result{Links: b.links}
	for _, lv := range []struct {
		out   *Ranked
		level byte
		names []string
		edges []Edge
	}{{&res.Hosts, LevelHost, b.names, hostEdges}, {&res.Domains, LevelDomain, b.doms, domEdges}} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		g, err := NewGraph(len(lv.names), lv.edges)
		if err != nil {
			return nil, err
		}
		*lv.out = Ranked{Level: lv.level, Names: lv.names, Links: g.Edges(),
			PR: g.PageRank(DefaultDamping, 1e-9, 200), HC: g.HarmonicCentrality(workers)}
	}
	return res, nil
}

// Ranks returns the ranks of the level's nodes, in the order of Names.
func (r *Ranked) Ranks() []*lgv1.RankedName {
	score := Score(r.PR)
	hcPos, prPos := positions(r.Names, r.HC), positions(r.Names, r.PR)
	out := make([]*lgv1.RankedName, len(r.Names))
	for i, name := range r.Names {
		out[i] = &lgv1.RankedName{Name: name, Rank: &lgv1.Rank{Score: score[i], HarmonicPos: int64(hcPos[i]), Harmonic: r.HC[i], PagerankPos: int64(prPos[i]), Pagerank: r.PR[i]}}
	}
	return out
}
