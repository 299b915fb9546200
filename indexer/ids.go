package indexer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Edge keys name their source page and its registrable domain by ids, not
// URLs: on the 10M-edge generated index this took the edges from 28.8 to
// 20.5 bytes each on disk (32 KiB blocks). Ids are numbers from 1,
// assigned in the order the node first sees a source (per target shard,
// with its record) or a domain, and written in keys by store.AppendID
// (store's edge key schema reads them back into columns). See the key
// space in package store.
//
// A source id is assigned by the links applier of the source's target
// shard, which is the only writer of that shard's source records, inside
// the transaction that writes them. A domain id is shared by every shard of
// the node, so it is assigned under Index.idMu and committed at once, ahead
// of the transaction that uses it: every snapshot that holds an edge holds
// its domain's name, and no two ids name one domain.

func sourceIDKey(id uint64) []byte { return store.AppendID([]byte{store.PrefixSourceID}, id) }
func domainIDKey(id uint64) []byte { return store.AppendID([]byte{store.PrefixDomainID}, id) }

// sourceIDs is the s record of a linking page: its domain and source ids
// and the target shards it has had links applied on, in order.
type sourceIDs struct {
	domain, source uint64
	shards         []int
}

// on says whether the source has had links applied on shard.
func (s *sourceIDs) on(shard int) bool {
	_, ok := slices.BinarySearch(s.shards, shard)
	return ok
}

// add records that the source has links applied on shard.
func (s *sourceIDs) add(shard int) {
	if i, ok := slices.BinarySearch(s.shards, shard); !ok {
		s.shards = slices.Insert(s.shards, i, shard)
	}
}

func (s sourceIDs) encode() []byte {
	dst := store.AppendID(store.AppendID(nil, s.domain), s.source)
	for _, sh := range s.shards {
		dst = binary.AppendUvarint(dst, uint64(sh))
	}
	return dst
}

var errBadIDs = errors.New("indexer: malformed source ids")

func decodeSourceIDs(b []byte) (sourceIDs, error) {
	d, n := store.ReadID(b)
	if n == 0 {
		return sourceIDs{}, errBadIDs
	}
	s, m := store.ReadID(b[n:])
	if m == 0 {
		return sourceIDs{}, errBadIDs
	}
	ids := sourceIDs{domain: d, source: s}
	for b = b[n+m:]; len(b) > 0; {
		sh, k := binary.Uvarint(b)
		if k <= 0 || sh > math.MaxInt32 {
			return sourceIDs{}, errBadIDs
		}
		ids.shards = append(ids.shards, int(sh))
		b = b[k:]
	}
	return ids, nil
}

// getSourceIDs returns the s record of a source, ok false when it has
// none.
func getSourceIDs(r pebble.Reader, sourceSURT string) (ids sourceIDs, ok bool, err error) {
	raw, closer, err := r.Get(sourceKey(sourceSURT))
	if errors.Is(err, pebble.ErrNotFound) {
		return sourceIDs{}, false, nil
	}
	if err != nil {
		return sourceIDs{}, false, err
	}
	defer closer.Close()
	ids, err = decodeSourceIDs(raw)
	if err != nil {
		return sourceIDs{}, false, fmt.Errorf("%w (source %s)", err, sourceSURT)
	}
	return ids, true, nil
}

// lastID returns the highest id under prefix p, 0 when there is none.
func (ix *Index) lastID(p byte) (uint64, error) {
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	id, n := store.ReadID(it.Key()[1:])
	if n == 0 {
		return 0, fmt.Errorf("indexer: malformed id key %q", it.Key())
	}
	return id, nil
}

// loadIDs reads the highest ids in use, once; called with idMu held.
func (ix *Index) loadIDs() error {
	if ix.idsLoaded {
		return nil
	}
	var err error
	if ix.lastSource, err = ix.lastID(store.PrefixSourceID); err != nil {
		return err
	}
	if ix.lastDomain, err = ix.lastID(store.PrefixDomainID); err != nil {
		return err
	}
	ix.idsLoaded = true
	return nil
}

// newSourceID returns an id no source has. An id whose transaction does
// not commit is not used again: ids only go up.
func (ix *Index) newSourceID() (uint64, error) {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	if err := ix.loadIDs(); err != nil {
		return 0, err
	}
	ix.lastSource++
	return ix.lastSource, nil
}

// domainCacheSize bounds Index.domainIDs.
const domainCacheSize = 1 << 16

// domainID returns the id of a registrable domain, given as its HostSURT,
// assigning and committing one if it has none.
func (ix *Index) domainID(domainSURT string) (uint64, error) {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	if id, ok := ix.domainIDs[domainSURT]; ok {
		return id, nil
	}
	id, err := lookupDomainID(ix.db, domainSURT)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		if err := ix.loadIDs(); err != nil {
			return 0, err
		}
		id = ix.lastDomain + 1
		b := ix.db.NewBatch()
		defer b.Close()
		if err := b.Set(prefixed(store.PrefixDomain, domainSURT), store.AppendID(nil, id), nil); err != nil {
			return 0, err
		}
		if err := b.Set(domainIDKey(id), []byte(domainSURT), nil); err != nil {
			return 0, err
		}
		// Not synced: the WAL keeps it ahead of the transaction that
		// uses it, whose commit syncs both.
		if err := b.Commit(pebble.NoSync); err != nil {
			return 0, err
		}
		ix.lastDomain = id
		ix.queryDomainIDs.assigned()
	}
	putBounded(ix.domainIDs, domainSURT, id, domainCacheSize)
	return id, nil
}

// putBounded sets m[k] to v, first evicting an arbitrary entry when m
// holds max of them: the caches it bounds serve keys that recur, which
// come back after an eviction.
func putBounded[K comparable, V any](m map[K]V, k K, v V, max int) {
	if len(m) >= max {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = v
}

// domainName returns the HostSURT that has id in the registry of domain
// ids.
func (ix *Index) domainName(id uint64) (string, error) {
	ix.idMu.Lock()
	defer ix.idMu.Unlock()
	if name, ok := ix.domainNames[id]; ok {
		return name, nil
	}
	raw, closer, err := ix.db.Get(domainIDKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", fmt.Errorf("indexer: domain id %d is not in the registry", id)
	}
	if err != nil {
		return "", err
	}
	name := string(raw)
	closer.Close()
	putBounded(ix.domainNames, id, name, domainCacheSize)
	return name, nil
}

// names resolves the ids of edge keys read from one reader (a snapshot):
// a domain id to its HostSURT, a source id to its SURT and to the base of
// its edges' times (sourceValue.base). The maps are bounded. Not safe for
// concurrent use.
type names struct {
	r       pebble.Reader
	max     int // entries of each map
	domains map[uint64]string
	sources map[uint64]string
	bases   *baseCache
}

// namesCacheSize bounds each map of a selection's names; a scan of the
// whole index that resolves every source uses more (see scanHostLinks).
const namesCacheSize = 1 << 16

// newNames returns the names of r's ids, looking bases up in bases (nil:
// a cache of its own).
func newNames(r pebble.Reader, max int, bases *baseCache) *names {
	if bases == nil {
		bases = newBaseCache(12)
	}
	return &names{r: r, max: max, domains: make(map[uint64]string), sources: make(map[uint64]string), bases: bases}
}

// base returns the base of the edge values of the source with id. Every
// edge a query matches needs its source's; the index's cache of them
// spares most of the lookups.
func (n *names) base(id uint64) (int64, error) {
	if b, ok := n.bases.get(id); ok {
		return b, nil
	}
	raw, closer, err := n.r.Get(sourceIDKey(id))
	if err != nil {
		return 0, fmt.Errorf("indexer: source id %d: %w", id, err)
	}
	b, err := sourceBase(raw)
	closer.Close()
	if err != nil {
		return 0, fmt.Errorf("%w (source id %d)", err, id)
	}
	n.bases.put(id, b)
	return b, nil
}

// baseCache holds the bases of sources (sourceValue.base) by id. A base
// never changes once its source's record exists, so an entry is never
// stale and the cache can serve every reader of an index at once. Each
// slot is one word, read and written without a lock:
// (id >> bits) << baseBits | base+1, 0 when empty.
type baseCache struct {
	bits  uint
	slots []atomic.Uint64
}

const (
	// baseCacheBits sizes an Index's cache: 2^18 slots, 2 MiB.
	baseCacheBits = 18
	// baseBits holds base+1 in ms, below 2^42 until the year 2109.
	baseBits = 42
)

func newBaseCache(bits uint) *baseCache {
	return &baseCache{bits: bits, slots: make([]atomic.Uint64, 1<<bits)}
}

func (c *baseCache) get(id uint64) (int64, bool) {
	w := c.slots[id&(1<<c.bits-1)].Load()
	if w == 0 || w>>baseBits != id>>c.bits {
		return 0, false
	}
	return int64(w&(1<<baseBits-1)) - 1, true
}

// put caches base for id, unless either is too large for a slot.
func (c *baseCache) put(id uint64, base int64) {
	hi := id >> c.bits
	if base < 0 || base >= 1<<baseBits-1 || hi >= 1<<(64-baseBits) {
		return
	}
	c.slots[id&(1<<c.bits-1)].Store(hi<<baseBits | uint64(base+1))
}

// domain returns the HostSURT of the domain with id.
func (n *names) domain(id uint64) (string, error) {
	if d, ok := n.domains[id]; ok {
		return d, nil
	}
	raw, closer, err := n.r.Get(domainIDKey(id))
	if err != nil {
		return "", fmt.Errorf("indexer: domain id %d: %w", id, err)
	}
	d := string(raw)
	closer.Close()
	if len(n.domains) >= n.max {
		clear(n.domains)
	}
	n.domains[id] = d
	return d, nil
}

// source returns the SURT of the source with id.
func (n *names) source(id uint64) (string, error) {
	if s, ok := n.sources[id]; ok {
		return s, nil
	}
	raw, closer, err := n.r.Get(sourceIDKey(id))
	if err != nil {
		return "", fmt.Errorf("indexer: source id %d: %w", id, err)
	}
	v, err := decodeSourceValue(raw, true, nil)
	closer.Close()
	if err != nil {
		return "", fmt.Errorf("%w (source id %d)", err, id)
	}
	putBounded(n.sources, id, v.surt, n.max)
	n.bases.put(id, v.base)
	return v.surt, nil
}

// domainIDCache holds, for queries, the ids of registrable domains. An id
// never changes once assigned, so a cached id is right for every reader of
// the index (a snapshot taken before its domain got it holds no edge that
// names it). That a domain has none (most targets' domains link nowhere,
// so the domain of a busy target often has none) is right until the next
// id is assigned: it is kept with the generation of the ids, which
// Index.domainID moves on after it commits one. It is safe for concurrent
// use and takes no lock, unlike Index.domainIDs, which the write path
// holds while it commits a new id. A nil cache looks every domain up.
type domainIDCache struct {
	ids sync.Map // HostSURT -> uint64, or noDomainID
	n   atomic.Int64
	gen atomic.Uint64
}

// noDomainID is a cached lookup that found no id, at a generation.
type noDomainID uint64

// domainIDCacheSize bounds a domainIDCache; past it, ids are looked up.
const domainIDCacheSize = 1 << 16

// generation is the generation of domain ids now. A reader whose lookups
// may be cached must have been taken after it was read.
func (c *domainIDCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// assigned moves the generation on: call it once a new id is committed.
func (c *domainIDCache) assigned() { c.gen.Add(1) }

// lookup returns the id of a domain given as its HostSURT, 0 if it has
// none in r, which was taken after generation gen was read.
func (c *domainIDCache) lookup(r pebble.Reader, domainSURT string, gen uint64) (uint64, error) {
	if c == nil {
		return lookupDomainID(r, domainSURT)
	}
	v, cached := c.ids.Load(domainSURT)
	if cached {
		switch v := v.(type) {
		case uint64:
			return v, nil
		case noDomainID:
			if uint64(v) == c.gen.Load() {
				return 0, nil
			}
		}
	}
	id, err := lookupDomainID(r, domainSURT)
	if err != nil {
		return 0, err
	}
	v = id
	if id == 0 {
		v = noDomainID(gen)
	}
	if cached || c.n.Load() < domainIDCacheSize {
		if _, loaded := c.ids.Swap(domainSURT, v); !loaded {
			c.n.Add(1)
		}
	}
	return id, nil
}

// lookupDomainID returns the id of a domain given as its HostSURT in r, 0
// if it has none there.
func lookupDomainID(r pebble.Reader, domainSURT string) (uint64, error) {
	raw, closer, err := r.Get(prefixed(store.PrefixDomain, domainSURT))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	id, n := store.ReadID(raw)
	if n == 0 {
		return 0, fmt.Errorf("%w (domain %s)", errBadIDs, domainSURT)
	}
	return id, nil
}

// linkPrefix names the links from a page to a target by their URLs, as the
// node that owns the target can find their edges: e SURT(target) 0
// SURT(source) 0. A node cannot build another node's edge keys, whose ids
// are that node's own.
func linkPrefix(dst []byte, targetSURT, sourceSURT string) []byte {
	dst = append(dst, store.PrefixEdge)
	dst = append(dst, targetSURT...)
	dst = append(dst, 0)
	dst = append(dst, sourceSURT...)
	return append(dst, 0)
}

// linkEdge is an edge found by its link prefix.
type linkEdge struct {
	suffix []byte // of its edge key: type byte, anchor
	value  []byte // encoded with base (see edgeValue.encode)
	base   int64
}

// linkEdges reads the edges link prefixes name from one reader, looking
// up a source's ids and base once, with one iterator. Close it.
type linkEdges struct {
	ix      *Index
	r       pebble.Reader
	sources map[string]*linkSource // by source SURT; nil: none
	it      *pebble.Iterator       // re-bounded per prefix; nil until the first
}

type linkSource struct {
	ids  sourceIDs
	base int64
}

func (l *linkEdges) close() error {
	if l.it == nil {
		return nil
	}
	return l.it.Close()
}

func (ix *Index) linkEdges(r pebble.Reader) *linkEdges {
	return &linkEdges{ix: ix, r: r, sources: make(map[string]*linkSource)}
}

// get returns copies of the edges the link prefix k names.
func (l *linkEdges) get(k []byte) ([]linkEdge, error) {
	if len(k) == 0 || k[0] != store.PrefixEdge {
		return nil, fmt.Errorf("indexer: malformed link prefix %q", k)
	}
	target, rest, ok := bytes.Cut(k[1:], []byte{0})
	source, rest, ok2 := bytes.Cut(rest, []byte{0})
	if !ok || !ok2 || len(rest) != 0 {
		return nil, fmt.Errorf("indexer: malformed link prefix %q", k)
	}
	tgtURL, err := urlnorm.UnSURT(string(target))
	if err != nil {
		return nil, fmt.Errorf("indexer: malformed link prefix %q: %w", k, err)
	}
	src, seen := l.sources[string(source)]
	if !seen {
		if src, err = l.source(string(source)); err != nil {
			return nil, err
		}
		l.sources[string(source)] = src
	}
	if src == nil || !src.ids.on(l.ix.shardOf(tgtURL)) {
		return nil, nil // the source has no edges on the target's shard
	}
	prefix := sourceEdgesPrefix(string(target), src.ids)
	upper := store.PrefixEnd(slices.Clone(prefix))
	if l.it == nil {
		if l.it, err = l.r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper}); err != nil {
			return nil, err
		}
	} else {
		l.it.SetBounds(prefix, upper)
	}
	var out []linkEdge
	it := l.it
	for it.First(); it.Valid(); it.Next() {
		stored := it.Key()
		p, err := parseEdgeKey(stored, string(target))
		if err != nil {
			return nil, fmt.Errorf("%w: %q", err, stored)
		}
		val, err := p.value(stored)
		if err != nil {
			return nil, err
		}
		out = append(out, linkEdge{suffix: slices.Clone(stored[len(prefix):p.keyLen]), value: slices.Clone(val), base: src.base})
	}
	return out, it.Error()
}

// source returns the ids and base of the source with SURT surt, nil if
// this node has none.
func (l *linkEdges) source(surt string) (*linkSource, error) {
	ids, ok, err := getSourceIDs(l.r, surt)
	if err != nil || !ok {
		return nil, err
	}
	raw, closer, err := l.r.Get(sourceIDKey(ids.source))
	if err != nil {
		return nil, fmt.Errorf("indexer: record of source %s (id %d): %w", surt, ids.source, err)
	}
	defer closer.Close()
	base, err := sourceBase(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (source %s)", err, surt)
	}
	return &linkSource{ids: ids, base: base}, nil
}
