package export

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Levels of a hostgraph export.
const (
	LevelHost   = "host"   // a vertex per host name
	LevelDomain = "domain" // a vertex per registrable domain
)

// The files of a hostgraph export.
const (
	VerticesFile = "vertices.txt.gz"
	EdgesFile    = "edges.txt.gz"
)

// DefaultSortPairs is Options.SortPairs when it is zero: 4Mi edges of 8
// bytes, a 32 MiB buffer.
const DefaultSortPairs = 4 << 20

// hostGraphWriter builds the host- or domain-level graph of the rows in
// Common Crawl's web graph layout:
//
//   - vertices.txt.gz: "id<TAB>name" lines, name the host (or registrable
//     domain) with its labels reversed ("com.example.www"; IP addresses as
//     they are, ports dropped), ids dense from 0 in byte order of the
//     names;
//   - edges.txt.gz: "from<TAB>to" lines, sorted by from then to, each pair
//     once, without self-loops (links within one host or domain), as
//     Common Crawl's hostlinks_to_graph drops them; a vertex whose only
//     links are to itself is still listed.
//
// Every row counts, nofollow links included (Common Crawl's graphs keep
// them); the export's filters (--follow-only, --types, --include-lost)
// choose otherwise.
//
// Memory: the vertex names and their ids stay in memory (about 100 bytes
// a vertex); edges are buffered up to SortPairs pairs, deduplicated, and
// spilled to sorted runs in unnamed scratch files when the buffer stays
// full, then merged, so an index of any size needs the buffer plus one
// read buffer per run. Not safe for concurrent use.
type hostGraphWriter struct {
	domains bool
	dir     string // for scratch files
	out     map[string]*asideFile

	// byKey maps a URL's host[:port] to its vertex's provisional id (in
	// order of appearance); names holds the vertex names by provisional
	// id, ids the names' ids.
	byKey map[string]uint32
	ids   map[string]uint32
	names []string
	// lastTarget caches the target of the previous row: rows come sorted
	// by target.
	lastTarget string
	lastID     uint32

	pairs    []uint64 // from<<32 | to, provisional ids
	maxPairs int
	runs     []*os.File

	vertices, edges int64
}

func newHostGraphWriter(dir string, domains bool, maxPairs int, out map[string]*asideFile) *hostGraphWriter {
	// The buffer is allocated whole: growing it by appends would leave
	// garbage as large again. Its pages cost memory only once written.
	return &hostGraphWriter{domains: domains, dir: dir, out: out, byKey: make(map[string]uint32),
		ids: make(map[string]uint32), maxPairs: maxPairs, pairs: make([]uint64, 0, maxPairs)}
}

// vertexName is the name of the vertex of a host[:port]: its labels
// reversed, without the port.
func (h *hostGraphWriter) vertexName(hostPort string) string {
	host := hostPort
	if h.domains {
		host = urlnorm.RegistrableDomain(hostPort)
	}
	return urlnorm.ReversedHost(host)
}

// vertex returns the provisional id of the vertex of a URL.
func (h *hostGraphWriter) vertex(url string) (uint32, error) {
	key := urlnorm.Host(url)
	if key == "" {
		return 0, fmt.Errorf("export: no host in %q", url)
	}
	if id, ok := h.byKey[key]; ok {
		return id, nil
	}
	name := h.vertexName(key)
	id, ok := h.ids[name]
	if !ok {
		if len(h.names) == 1<<32-1 {
			return 0, fmt.Errorf("export: more than %d vertices", len(h.names))
		}
		id = uint32(len(h.names))
		h.names = append(h.names, name)
		h.ids[name] = id
	}
	h.byKey[strings.Clone(key)] = id
	return id, nil
}

func (h *hostGraphWriter) Write(bl *lgv1.Backlink) error {
	if bl.TargetUrl != h.lastTarget || h.lastTarget == "" {
		id, err := h.vertex(bl.TargetUrl)
		if err != nil {
			return err
		}
		h.lastTarget, h.lastID = bl.TargetUrl, id
	}
	to := h.lastID
	from, err := h.vertex(bl.SourceUrl)
	if err != nil {
		return err
	}
	if from == to {
		return nil
	}
	h.pairs = append(h.pairs, uint64(from)<<32|uint64(to))
	if len(h.pairs) < h.maxPairs {
		return nil
	}
	// Most rows repeat a pair already seen (a host links to another from
	// many pages): deduplicate, and spill only when that frees too little.
	h.pairs = sortUnique(h.pairs)
	if len(h.pairs) <= h.maxPairs/2 {
		return nil
	}
	return h.spill()
}

func sortUnique(p []uint64) []uint64 {
	slices.Sort(p)
	return slices.Compact(p)
}

// spill writes the buffer, sorted and unique, to a new run.
func (h *hostGraphWriter) spill() error {
	f, err := h.writeRun(sortUnique(h.pairs))
	if err != nil {
		return err
	}
	h.runs = append(h.runs, f)
	h.pairs = h.pairs[:0]
	return nil
}

// writeRun writes sorted pairs to a new scratch file.
func (h *hostGraphWriter) writeRun(p []uint64) (*os.File, error) {
	f, err := createScratch(h.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot create a sort run: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var b [8]byte
	for _, v := range p {
		binary.LittleEndian.PutUint64(b[:], v)
		bw.Write(b[:]) // the error sticks and Flush returns it
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write a sort run: %w", err)
	}
	return f, nil
}

// Close assigns the final ids and writes both files.
func (h *hostGraphWriter) Close() error {
	defer func() {
		for _, f := range h.runs {
			f.Close()
		}
	}()
	// perm maps provisional ids to final ones: ids follow the names' order.
	order := make([]uint32, len(h.names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(h.names[a], h.names[b]) })
	perm := make([]uint32, len(order))
	for final, prov := range order {
		perm[prov] = uint32(final)
	}
	if err := h.writeVertices(order); err != nil {
		return err
	}
	h.byKey, h.ids, h.names = nil, nil, nil // free before the merge
	remap := func(p []uint64) {
		for i, v := range p {
			p[i] = uint64(perm[v>>32])<<32 | uint64(perm[uint32(v)])
		}
	}
	if len(h.runs) == 0 {
		remap(h.pairs)
		return h.writeEdges(&sliceSource{p: sortUnique(h.pairs)})
	}
	if len(h.pairs) > 0 {
		if err := h.spill(); err != nil {
			return err
		}
	}
	// Each run fits in the buffer: remap it there, sort it again and
	// write it back in final-id order, then merge the runs.
	for i, f := range h.runs {
		p, err := readRun(f, h.pairs[:0])
		if err != nil {
			return err
		}
		remap(p)
		h.pairs = sortUnique(p)
		nf, err := h.writeRun(h.pairs)
		if err != nil {
			return err
		}
		f.Close()
		h.runs[i] = nf
	}
	h.pairs = nil
	m := &runMerge{}
	for _, f := range h.runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := m.add(bufio.NewReaderSize(f, 256<<10)); err != nil {
			return err
		}
	}
	return h.writeEdges(m)
}

func readRun(f *os.File, dst []uint64) ([]uint64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var b [8]byte
	for {
		if _, err := io.ReadFull(br, b[:]); err == io.EOF {
			return dst, nil
		} else if err != nil {
			return nil, fmt.Errorf("cannot read a sort run: %w", err)
		}
		dst = append(dst, binary.LittleEndian.Uint64(b[:]))
	}
}

// gzipFile writes a gzip stream to an aside file.
type gzipFile struct {
	bw *bufio.Writer
	zw *gzip.Writer
	fw *bufio.Writer
}

func newGzipFile(f io.Writer) *gzipFile {
	g := &gzipFile{fw: bufio.NewWriterSize(f, 256<<10)}
	g.zw = gzip.NewWriter(g.fw)
	g.bw = bufio.NewWriterSize(g.zw, 256<<10)
	return g
}

func (g *gzipFile) Close() error {
	if err := g.bw.Flush(); err != nil {
		return err
	}
	if err := g.zw.Close(); err != nil {
		return err
	}
	return g.fw.Flush()
}

func (h *hostGraphWriter) writeVertices(order []uint32) error {
	g := newGzipFile(h.out[VerticesFile])
	var line []byte
	for id, prov := range order {
		line = strconv.AppendInt(line[:0], int64(id), 10)
		line = append(line, '\t')
		line = append(line, h.names[prov]...)
		line = append(line, '\n')
		if _, err := g.bw.Write(line); err != nil {
			return fmt.Errorf("cannot write %s: %w", VerticesFile, err)
		}
	}
	if err := g.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", VerticesFile, err)
	}
	h.vertices = int64(len(order))
	return nil
}

// pairSource yields edge pairs in order; ok is false at the end.
type pairSource interface {
	next() (p uint64, ok bool, err error)
}

type sliceSource struct {
	p []uint64
	i int
}

func (s *sliceSource) next() (uint64, bool, error) {
	if s.i == len(s.p) {
		return 0, false, nil
	}
	s.i++
	return s.p[s.i-1], true, nil
}

func (h *hostGraphWriter) writeEdges(src pairSource) error {
	g := newGzipFile(h.out[EdgesFile])
	var line []byte
	prev, first := uint64(0), true
	for {
		p, ok, err := src.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if !first && p == prev {
			continue // the same pair in two runs
		}
		prev, first = p, false
		line = strconv.AppendUint(line[:0], p>>32, 10)
		line = append(line, '\t')
		line = strconv.AppendUint(line, uint64(uint32(p)), 10)
		line = append(line, '\n')
		if _, err := g.bw.Write(line); err != nil {
			return fmt.Errorf("cannot write %s: %w", EdgesFile, err)
		}
		h.edges++
	}
	if err := g.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", EdgesFile, err)
	}
	return nil
}

// runMerge merges sorted runs with a heap of their heads.
type runMerge struct{ h runHeap }

type runHead struct {
	p uint64
	r *bufio.Reader
}

type runHeap []runHead

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].p < h[j].p }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(runHead)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func readPair(r *bufio.Reader) (uint64, bool, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err == io.EOF {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("cannot read a sort run: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), true, nil
}

func (m *runMerge) add(r *bufio.Reader) error {
	p, ok, err := readPair(r)
	if err != nil || !ok {
		return err
	}
	heap.Push(&m.h, runHead{p, r})
	return nil
}

func (m *runMerge) next() (uint64, bool, error) {
	if len(m.h) == 0 {
		return 0, false, nil
	}
	top := m.h[0]
	p, ok, err := readPair(top.r)
	if err != nil {
		return 0, false, err
	}
	if ok {
		m.h[0].p = p
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return top.p, true, nil
}
