package rank

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// MaxNodes bounds the nodes of a graph a Builder gathers: ids are 32-bit,
// and the ranking's memory (about 12 bytes per node and 8 per link,
// doubled while building, plus the names) must fit one machine.
const MaxNodes = 1 << 31

// nodeSet is the named nodes of a graph being gathered and its distinct
// links, each held once.
type nodeSet struct {
	what  string            // "hosts" or "pages", for errors
	ids   map[string]uint32 // name -> id
	names []string          // by id

	// lastSrc and lastDst cache the ids of the previous link's ends: links
	// come sorted by target from the index, often many from one source
	// site, and a lookup in a map of a million names costs a few cache
	// misses.
	lastSrc, lastDst     string
	lastSrcID, lastDstID uint32

	pairs   []Edge
	compact int // len(pairs) at which to deduplicate next
	max     int
	onNew   func(name string) // called for each new node, in id order
}

func newNodeSet(what string) nodeSet {
	const compact = 1 << 20
	return nodeSet{what: what, ids: make(map[string]uint32), compact: compact, max: MaxNodes, pairs: make([]Edge, 0, compact)}
}

func (s *nodeSet) id(name string) (uint32, error) {
	if id, ok := s.ids[name]; ok {
		return id, nil
	}
	if len(s.names) >= s.max {
		return 0, fmt.Errorf("rank: more than %d %s; the graph no longer fits one node", s.max, s.what)
	}
	name = strings.Clone(name)
	id := uint32(len(s.names))
	s.ids[name] = id
	s.names = append(s.names, name)
	if s.onNew != nil {
		s.onNew(name)
	}
	return id, nil
}

// add records a link from src to dst; a link from a node to itself makes
// the node but no link.
func (s *nodeSet) add(src, dst string) error {
	var err error
	if src != s.lastSrc || len(s.names) == 0 {
		if s.lastSrcID, err = s.id(src); err != nil {
			return err
		}
		s.lastSrc = s.names[s.lastSrcID]
	}
	from := s.lastSrcID
	if dst != s.lastDst || len(s.names) == 0 {
		if s.lastDstID, err = s.id(dst); err != nil {
			return err
		}
		s.lastDst = s.names[s.lastDstID]
	}
	if to := s.lastDstID; from != to {
		s.pairs = append(s.pairs, Edge{from, to})
	}
	if len(s.pairs) >= s.compact {
		// Most links repeat a pair already seen (a site links to another
		// from many pages): deduplicate, and let the buffer grow (to twice
		// what remains, no more) only when that frees too little.
		s.pairs = sortUnique(s.pairs)
		if 2*len(s.pairs) > s.compact {
			s.compact = 2 * len(s.pairs)
			s.pairs = slices.Grow(s.pairs, s.compact-len(s.pairs))
		}
	}
	return nil
}

// edges returns the distinct links, and forgets everything but the names.
func (s *nodeSet) edges() []Edge {
	p := sortUnique(s.pairs)
	s.pairs, s.ids = nil, nil
	return p
}

// sortUnique sorts edges as 64-bit words (see NewGraph) and drops repeats.
func sortUnique(e []Edge) []Edge {
	words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(e))), len(e))
	slices.Sort(words)
	return e[:len(slices.Compact(words))]
}

// Builder gathers the host graph of a stream of links, and with it the
// graph of their registrable domains (and, if asked, the page graph). It
// holds each distinct pair of hosts once, so without pages its memory
// follows the host graph (about 8 bytes per host link, twice that while
// deduplicating, and a map entry per host), never the page graph it reads.
type Builder struct {
	hosts nodeSet
	dom   []uint32 // the domain id of each host id
	doms  nodeSet
	pages *nodeSet
	links int64
}

// NewBuilder returns an empty Builder; with pages it also gathers the page
// graph (see AddPage).
func NewBuilder(pages bool) *Builder {
	b := &Builder{hosts: newNodeSet("hosts"), doms: newNodeSet("domains")}
	b.hosts.onNew = func(name string) {
		d, _ := b.doms.id(urlnorm.ReversedHost(urlnorm.RegistrableDomain(urlnorm.HostOfReversed(name))))
		b.dom = append(b.dom, d)
	}
	if pages {
		p := newNodeSet("pages")
		b.pages = &p
	}
	return b
}

// Add records that the host named src links to the host named dst; both
// are reversed names (urlnorm.ReversedHost: "com.example.www"). A link
// within a host makes the host a node but is no edge.
func (b *Builder) Add(src, dst string) error {
	b.links++
	return b.hosts.add(src, dst)
}

// AddPage records, for a Builder with pages, that the page keyed src links
// to the page keyed dst (keys are the index's SURTs; a page linking to
// itself is no edge).
func (b *Builder) AddPage(src, dst string) error {
	return b.pages.add(src, dst)
}

// AddPairs is Add for links already counted elsewhere: links is how many
// page links the pairs stand for.
func (b *Builder) AddPairs(links int64, srcs, dsts []string) error {
	if len(srcs) != len(dsts) {
		return fmt.Errorf("rank: %d sources for %d targets", len(srcs), len(dsts))
	}
	for i := range srcs {
		if err := b.hosts.add(srcs[i], dsts[i]); err != nil {
			return err
		}
	}
	b.links += links
	return nil
}

// Ranked is one level of a ranking: the nodes' names and their harmonic
// centrality and PageRank.
type Ranked struct {
	Level  byte // LevelHost, LevelDomain or LevelPage
	Names  []string
	HC, PR []float64
	Links  int // distinct links between the nodes
}

// Result is a ranking of hosts, of registrable domains and, if gathered,
// of pages.
type Result struct {
	Hosts, Domains Ranked
	Pages          *Ranked
	// Links is how many page links the graphs were built from.
	Links int64
}

// Levels returns the levels ranked: hosts, domains and, if gathered, pages.
func (r *Result) Levels() []*Ranked {
	levels := []*Ranked{&r.Hosts, &r.Domains}
	if r.Pages != nil {
		levels = append(levels, r.Pages)
	}
	return levels
}

// Rank computes the ranks of every level: PageRank with DefaultDamping,
// and harmonic centrality (exact on small graphs, HyperBall beyond) on
// workers goroutines. The Builder is spent.
func (b *Builder) Rank(ctx context.Context, workers int) (*Result, error) {
	hostEdges := b.hosts.edges()
	var domEdges []Edge
	for _, e := range hostEdges {
		if df, dt := b.dom[e.From], b.dom[e.To]; df != dt {
			domEdges = append(domEdges, Edge{df, dt})
		}
	}
	domEdges = sortUnique(domEdges)
	res := &Result{Links: b.links}
	var err error
	if res.Hosts, err = rankLevel(ctx, LevelHost, b.hosts.names, hostEdges, workers); err != nil {
		return nil, err
	}
	if res.Domains, err = rankLevel(ctx, LevelDomain, b.doms.names, domEdges, workers); err != nil {
		return nil, err
	}
	if b.pages != nil {
		pages, err := rankLevel(ctx, LevelPage, b.pages.names, b.pages.edges(), workers)
		if err != nil {
			return nil, err
		}
		res.Pages = &pages
	}
	return res, nil
}

func rankLevel(ctx context.Context, level byte, names []string, edges []Edge, workers int) (Ranked, error) {
	if err := ctx.Err(); err != nil {
		return Ranked{}, err
	}
	g, err := NewGraph(len(names), edges)
	if err != nil {
		return Ranked{}, err
	}
	return Ranked{Level: level, Names: names, Links: g.Edges(),
		PR: g.PageRank(DefaultDamping, 1e-9, 200), HC: g.HarmonicCentrality(workers)}, nil
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
