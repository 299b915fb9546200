package indexer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Paging limits of every paged view.
const (
	DefaultPageSize = 100
	MaxPageSize     = 10000
)

// ErrInvalidArgument is returned (wrapped, with the reason) by query methods
// for a request that can never succeed: a bad target, scope, filter, page
// size or page token. The gRPC layer maps it to codes.InvalidArgument.
var ErrInvalidArgument = errors.New("indexer: invalid argument")

// Query selects backlinks.
type Query struct {
	// Target is a URL, or for host and domain scope a host name or URL.
	Target string
	// Scope defaults to SCOPE_URL.
	Scope lgv1.Scope
	// PageSize defaults to DefaultPageSize, at most MaxPageSize.
	PageSize int
	// PageToken continues a previous query; empty for the first page.
	PageToken string
	// Filter narrows the links; nil keeps every live link (internal ones
	// as lgv1.InternalLinks says).
	Filter *lgv1.Filter
	Order  lgv1.BacklinkOrder
	// Descending reverses the order.
	Descending bool
	// OnePerDomain keeps the first link in the order per referring domain.
	OnePerDomain bool
}

// Page is one page of query results.
type Page struct {
	Backlinks []*lgv1.Backlink
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// Backlinks returns the links to the query's target. In the default order
// (target in SURT order, then its sources grouped by domain, in the order
// this node first saw them: see edgeKey) rows are read straight off the
// index; other orders, and one link per domain over more than one target
// URL, read every matching link first. Page tokens are keyset positions, so
// a token stays valid while the index changes: rows added before the
// position are not returned, rows after it are, and no row is returned twice.
func (ix *Index) Backlinks(ctx context.Context, q Query) (*Page, error) {
	sel, err := ix.selection(q.Target, q.Scope, q.Filter)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	qid := queryID(sel, byte(q.Order), q.Descending, q.OnePerDomain)
	var after []byte
	if q.PageToken != "" {
		if after, err = decodeToken(q.PageToken, qid); err != nil {
			return nil, err
		}
	}
	gen := ix.sources.generation() // before the snapshot, see sharedSources
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	var rows []edgeRow
	if q.Order == lgv1.BacklinkOrder_BACKLINK_ORDER_UNSPECIFIED && (!q.OnePerDomain || sel.scope == lgv1.Scope_SCOPE_URL) {
		buf := rowBufs.Get().(*[]edgeRow)
		rows, err = ix.scanOrdered(ctx, snap, sel, after, size+1, q.Descending, q.OnePerDomain, (*buf)[:0])
		defer func(rows []edgeRow) {
			// The page holds nothing of a row (its strings are copies or
			// point into the row's own key), so the rows can go back.
			if cap(rows) == pooledRows {
				clear(rows)
				*buf = rows[:0]
				rowBufs.Put(buf)
			}
		}(rows)
	} else {
		rows, err = ix.scanSorted(ctx, snap, sel, after, size+1, q.Order, q.Descending, q.OnePerDomain)
	}
	if err != nil {
		return nil, err
	}
	page := &Page{}
	if len(rows) > size {
		rows = rows[:size]
		page.NextPageToken = encodeToken(qid, rows[size-1].sortKey)
	}
	cache := newRowCache(max(len(rows), 1)) // a source per row at most
	cache.shared, cache.gen = ix.sources, gen
	defer cache.close()
	for i := range rows {
		bl, err := ix.backlink(snap, &rows[i], cache)
		if err != nil {
			return nil, err
		}
		page.Backlinks = append(page.Backlinks, bl)
	}
	return page, nil
}

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, fmt.Errorf("%w: page_size %d out of range 1..%d", ErrInvalidArgument, n, MaxPageSize)
	}
	return n, nil
}

// edgeRow is one matching edge as read from the index.
type edgeRow struct {
	key     []byte
	k       edgeKeyParts
	v       edgeValue
	sortKey []byte // the row's position in the query's order
	// srcDomain is the HostSURT of the source's registrable domain, and
	// authority its score, when the order needs them.
	srcDomain string
	authority int32
}

// pooledRows is the capacity of the row buffers in rowBufs: a first page
// of the default size fits, and most targets have fewer rows than that.
const pooledRows = DefaultPageSize + 1

// rowBufs holds empty row buffers of pooledRows for scanOrdered. Made for
// each query, one took 23 KB, half of what a first page of 100 allocated
// and mostly left unused.
var rowBufs = sync.Pool{New: func() any { s := make([]edgeRow, 0, pooledRows); return &s }}

// scanOrdered appends to rows up to limit rows after the keyset position
// after, in key order (or reversed). With onePerDomain (URL scope only,
// where one domain's sources are adjacent) it seeks past the rest of a
// domain's rows.
func (ix *Index) scanOrdered(ctx context.Context, r pebble.Reader, sel *selection, after []byte, limit int, desc, onePerDomain bool, rows []edgeRow) ([]edgeRow, error) {
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: sel.ranges[0][0], UpperBound: sel.ranges[len(sel.ranges)-1][1]})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if err := sel.use(r); err != nil {
		return nil, err
	}
	// Rows borrow their anchor from the iterator's key, and a row kept
	// copies the key with its anchor in it (ownKey): one allocation a row
	// rather than two.
	defer func(borrow bool) { sel.borrow = borrow }(sel.borrow)
	sel.borrow = true
	var lastDomain uint64 // id; ids start at 1
	if after != nil && onePerDomain {
		if k, err := parseEdgeKey(after, ""); err == nil {
			lastDomain = k.domain
		}
	}
	ranges := slices.Clone(sel.ranges)
	if desc {
		slices.Reverse(ranges)
	}
	n := 0
	var row edgeRow
	for _, rg := range ranges {
		in := func() bool {
			return it.Valid() && bytes.Compare(it.Key(), rg[0]) >= 0 && bytes.Compare(it.Key(), rg[1]) < 0
		}
		switch {
		case !desc && after != nil && bytes.Compare(after, rg[1]) >= 0,
			desc && after != nil && bytes.Compare(after, rg[0]) <= 0:
			continue // the position is past this range
		case !desc && after != nil && bytes.Compare(after, rg[0]) >= 0:
			it.SeekGE(edgeSuccessor(nil, after))
		case !desc:
			it.SeekGE(rg[0])
		case after != nil && bytes.Compare(after, rg[1]) < 0:
			it.SeekLT(after)
		default:
			it.SeekLT(rg[1])
		}
		for ; in() && len(rows) < limit; n++ {
			if n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			ok, err := sel.match(it.Key(), &row)
			if err != nil {
				return nil, err
			}
			if ok && onePerDomain {
				if d := row.k.domain; d == lastDomain {
					// Skip the rest of this domain's sources of this target:
					// their keys continue the prefix with a source id, whose
					// first byte is at most 8.
					prefix := edgePrefix(nil, row.k.targetSURT, d)
					if desc {
						it.SeekLT(prefix)
					} else {
						it.SeekGE(append(prefix, 0xff))
					}
					continue
				} else {
					lastDomain = d
				}
			}
			if ok {
				ownKey(&row)
				row.sortKey = row.key
				rows = append(rows, row)
			}
			if desc {
				it.Prev()
			} else {
				it.Next()
			}
		}
		if err := it.Error(); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// ownKey gives a row whose key and anchor point into an iterator's key (a
// row of selection.match with borrow) a copy of the key, which its anchor
// then points into: the anchor ends where the edge's key does.
func ownKey(row *edgeRow) {
	row.key = slices.Clone(row.key)
	if n := len(row.k.anchor); n > 0 {
		row.k.anchor = unsafe.String(&row.key[row.k.keyLen-n], n)
	}
}

// scanSorted reads every matching row and returns the first limit after
// the keyset position after in the given order.
func (ix *Index) scanSorted(ctx context.Context, r pebble.Reader, sel *selection, after []byte, limit int, order lgv1.BacklinkOrder, desc, onePerDomain bool) ([]edgeRow, error) {
	cmp := func(a, b []byte) int {
		if desc {
			return bytes.Compare(b, a)
		}
		return bytes.Compare(a, b)
	}
	// Rows point into the iterator's key and their sort key into buf
	// until one is kept: most rows of a large target are not, and copying
	// each took a quarter of the time of a scan of 1M rows.
	defer func(borrow bool) { sel.borrow = borrow }(sel.borrow)
	sel.borrow = true
	var buf []byte
	own := func(row *edgeRow) {
		ownKey(row)
		row.sortKey = slices.Clone(row.sortKey)
	}
	best := make(map[string]edgeRow) // per referring domain, with onePerDomain
	var top []edgeRow                // the limit first rows after the position, sorted
	keep := func(row *edgeRow, owned bool) {
		if after != nil && cmp(row.sortKey, after) <= 0 {
			return
		}
		if len(top) == limit && cmp(row.sortKey, top[limit-1].sortKey) >= 0 {
			return
		}
		if !owned {
			own(row)
		}
		i, _ := slices.BinarySearchFunc(top, row.sortKey, func(x edgeRow, k []byte) int { return cmp(x.sortKey, k) })
		top = slices.Insert(top, i, *row)
		if len(top) > limit {
			top = top[:limit]
		}
	}
	err := sel.scan(ctx, r, func(row *edgeRow) error {
		if onePerDomain || order == lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_DOMAIN || order == lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_AUTHORITY {
			var err error
			if row.srcDomain, err = sel.domainOf(row); err != nil {
				return err
			}
		}
		if order == lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_AUTHORITY {
			row.authority = sel.authority(row.srcDomain)
		}
		buf = appendSortKey(buf[:0], row, order)
		row.sortKey = buf
		if !onePerDomain {
			keep(row, false)
			return nil
		}
		if b, ok := best[row.srcDomain]; ok && cmp(b.sortKey, row.sortKey) <= 0 {
			return nil
		}
		own(row)
		best[row.srcDomain] = *row
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, row := range best {
		keep(&row, true)
	}
	return top, nil
}

// appendSortKey appends a row's position in an order: the order's value,
// then the edge key to make it unique.
func appendSortKey(k []byte, row *edgeRow, order lgv1.BacklinkOrder) []byte {
	switch order {
	case lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN:
		k = binary.BigEndian.AppendUint64(k, uint64(row.v.firstSeen))
	case lgv1.BacklinkOrder_BACKLINK_ORDER_LAST_SEEN:
		k = binary.BigEndian.AppendUint64(k, uint64(row.v.lastSeen))
	case lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_DOMAIN:
		k = append(append(k, row.srcDomain...), 0)
	case lgv1.BacklinkOrder_BACKLINK_ORDER_LOST_AT:
		k = binary.BigEndian.AppendUint64(k, uint64(row.v.lostAt))
	case lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_AUTHORITY:
		k = append(k, byte(row.authority))
	}
	return append(k, row.key...)
}

// rowCache keeps what consecutive rows share: rows of one target are
// adjacent in key order, and a page's links appear in many rows.
type rowCache struct {
	tgtSURT, tgtURL string
	sources         *sourceCache
	// shared, when set, is the index's cache of source entries, read
	// after sources and filled as of generation gen.
	shared *sharedSources
	gen    uint64
	max    int // bound of sources, and of the rows of a slab
	srcIt  *pebble.Iterator
	// page, when set, is every row's source (the rows of Outlinks).
	page *sourceEntry
	// rows and times are slabs the rows are cut from: a page or an
	// export batch costs two allocations instead of three a row.
	rows  []lgv1.Backlink
	times []timestamppb.Timestamp
	// reuse has every row built in one and the same Backlink, for
	// callers that are done with a row before they ask for the next.
	reuse    bool
	one      lgv1.Backlink
	oneTimes [3]timestamppb.Timestamp // first_seen, last_seen, lost_at
	oneNext  int
	// touched keeps the bytes sourcesOf reads, so that no compiler drops
	// the reads.
	touched byte
}

// slabRows is the rows of a slab; a page smaller than this gets a slab of
// its size.
const slabRows = 256

func (c *rowCache) newBacklink() *lgv1.Backlink {
	if c.reuse {
		c.oneNext = 0
		return &c.one
	}
	if len(c.rows) == 0 {
		c.rows = make([]lgv1.Backlink, min(c.max, slabRows))
	}
	bl := &c.rows[0]
	c.rows = c.rows[1:]
	return bl
}

// timestamp returns a Timestamp of Unix milliseconds ms.
func (c *rowCache) timestamp(ms int64) *timestamppb.Timestamp {
	var t *timestamppb.Timestamp
	if c.reuse {
		t = &c.oneTimes[c.oneNext]
		c.oneNext++
	} else {
		if len(c.times) == 0 {
			c.times = make([]timestamppb.Timestamp, 2*min(c.max, slabRows))
		}
		t = &c.times[0]
		c.times = c.times[1:]
	}
	t.Seconds, t.Nanos = ms/1000, int32(ms%1000)*1e6
	if t.Nanos < 0 {
		t.Seconds, t.Nanos = t.Seconds-1, t.Nanos+1e9
	}
	return t
}

// sourceEntry is a source page as rows show it. url and title share one
// allocation, so that a row's source costs the cache misses of its slot,
// its entry and its text only.
type sourceEntry struct {
	id         uint64 // the source's; 0 in an empty slot
	url, title string
	status     int32 // 0 when there is no source record
	// authority is the score of the source's registrable domain, and
	// pageAuthority that of the page, in scores.
	authority, pageAuthority int32
	scores                   *rank.Scores
	plain                    PlainFields // of url and title
}

// sharedSources is an index's cache of source entries across queries: a
// page of backlinks of a random target names sources no earlier page of
// it did, and reading their records took a fifth of a page's CPU
// (bench/query, 10M-edge index). An entry holds a source's URL, which its
// id names for good, and its title and status, which a crawl of the page
// may change, and the rank scores it was built with. A Txn that changes a
// title or status invalidates the source's entry after it commits (and
// until then the entry shows the committed one).
//
// A query may only put an entry read from a snapshot no commit has
// changed since: it takes the generation before its snapshot, and put
// drops the entry if an invalidation came after (one that came before is
// in the snapshot). Both take mu, so that no put lands after an
// invalidation it should have seen.
type sharedSources struct {
	cache *sourceCache // read without mu
	mu    sync.Mutex
	gen   atomic.Uint64 // bumped by each invalidation, under mu
}

// sharedSourceSlots bounds an index's shared source entries. On the
// 10M-edge generated index (170k sources), every backlink of its 10,000
// sample targets left 28 MiB of entries; with half the slots, sources
// sharing one pushed each other out and a random first page of 100 took
// 92-117 µs in process rather than 76-85.
const sharedSourceSlots = 1 << 18

func newSharedSources(slots int) *sharedSources {
	return &sharedSources{cache: newSourceCache(slots)}
}

// generation is the generation to put entries read from a snapshot taken
// after it.
func (s *sharedSources) generation() uint64 { return s.gen.Load() }

// get returns the entry of source id built with scores, nil if there is
// none. s may be nil.
func (s *sharedSources) get(id uint64, scores *rank.Scores) *sourceEntry {
	if s == nil {
		return nil
	}
	if e := s.cache.get(id); e != nil && e.scores == scores {
		return e
	}
	return nil
}

// put adds e, read from a snapshot taken after generation gen, unless an
// invalidation has come since. s may be nil.
func (s *sharedSources) put(e *sourceEntry, gen uint64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() == gen {
		s.cache.put(e)
	}
}

// invalidate drops the entries of ids, once their new records are
// committed.
func (s *sharedSources) invalidate(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen.Add(1)
	for _, id := range ids {
		s.cache.drop(id)
	}
}

func newRowCache(max int) *rowCache {
	return &rowCache{sources: newSourceCache(max), max: max}
}

// sourceCache holds the source entries of rows by source id (see ids.go),
// one slot per id modulo its size: ids are dense, so until they outnumber
// the slots no two sources share one, and a lookup is one read with no
// hashing. It is safe for concurrent use: the builders of an export share
// one, so that each source is read once and its entry held once. Entries
// are never changed once put, so a lookup takes no lock: a lock's atomic
// instructions would make each lookup wait for the cache misses of the
// last, where lookups in a row (sourcesOf) overlap them.
type sourceCache struct {
	slots []atomic.Pointer[sourceEntry] // a power of two of them
}

func newSourceCache(max int) *sourceCache {
	n := 1
	for n < max {
		n <<= 1
	}
	return &sourceCache{slots: make([]atomic.Pointer[sourceEntry], n)}
}

// get returns the entry of source id, nil if the cache does not hold it.
func (c *sourceCache) get(id uint64) *sourceEntry {
	e := c.slots[id&uint64(len(c.slots)-1)].Load()
	if e == nil || e.id != id {
		return nil
	}
	return e
}

// put adds the entry e, in place of the one in its slot.
func (c *sourceCache) put(e *sourceEntry) {
	c.slots[e.id&uint64(len(c.slots)-1)].Store(e)
}

// drop removes the entry of source id, if the cache holds it.
func (c *sourceCache) drop(id uint64) {
	slot := &c.slots[id&uint64(len(c.slots)-1)]
	if e := slot.Load(); e != nil && e.id == id {
		slot.CompareAndSwap(e, nil)
	}
}

// source returns the source record at key, nil if there is none. One
// iterator seeking from key to key reads them for a fraction of a Get each,
// which sets up an iterator per call.
func (c *rowCache) source(r pebble.Reader, key []byte) ([]byte, error) {
	if c.srcIt == nil {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixSourceID}, UpperBound: []byte{store.PrefixSourceID + 1}})
		if err != nil {
			return nil, err
		}
		c.srcIt = it
	}
	if !c.srcIt.SeekGE(key) || !bytes.Equal(c.srcIt.Key(), key) {
		return nil, c.srcIt.Error()
	}
	return c.srcIt.Value(), nil
}

// close releases the cache's iterator.
func (c *rowCache) close() error {
	if c.srcIt == nil {
		return nil
	}
	err := c.srcIt.Close()
	c.srcIt = nil
	return err
}

// backlink builds the answer row of an edge, with what the index knows of
// its source page.
func (ix *Index) backlink(r pebble.Reader, row *edgeRow, c *rowCache) (*lgv1.Backlink, error) {
	src := c.page
	if src == nil {
		var err error
		if src, err = ix.sourceOf(r, row, c); err != nil {
			return nil, err
		}
	}
	return c.build(row, src)
}

// sourceOf returns the entry of a row's source page, from the cache or
// else from its record in r.
func (ix *Index) sourceOf(r pebble.Reader, row *edgeRow, c *rowCache) (*sourceEntry, error) {
	id := row.k.source
	if src := c.sources.get(id); src != nil {
		return src, nil
	}
	scores := ix.rankScores()
	if src := c.shared.get(id, scores); src != nil {
		return src, nil
	}
	raw, err := c.source(r, sourceIDKey(id))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("indexer: edge %q names source id %d, which has no record", row.key, id)
	}
	src, err := newSourceEntry(r, id, raw, scores)
	if err != nil {
		return nil, err
	}
	c.sources.put(src)
	c.shared.put(src, c.gen)
	return src, nil
}

// newSourceEntry decodes the record raw of source id, with its authority
// in scores.
func newSourceEntry(r pebble.Reader, id uint64, raw []byte, scores *rank.Scores) (*sourceEntry, error) {
	val, err := decodeSourceValue(raw, true, nil)
	if err != nil {
		return nil, fmt.Errorf("%w (source id %d)", err, id)
	}
	u, err := urlnorm.UnSURT(val.surt)
	if err != nil {
		return nil, fmt.Errorf("indexer: corrupt source %q (id %d): %w", val.surt, id, err)
	}
	text := u + val.title
	src := &sourceEntry{id: id, url: text[:len(u)], title: text[len(u):], status: val.status, plain: plainFields(u, val.title), scores: scores}
	if scores.Any() {
		src.authority = scores.Domain(urlnorm.ReversedHost(urlnorm.RegistrableDomain(urlnorm.Host(u))))
	}
	if src.pageAuthority, err = scores.Page(r, val.surt); err != nil {
		return nil, err
	}
	return src, nil
}

// loadSources fills c with the entries of the sources with the lowest
// ids, as many as it has slots for, reading their records in key order.
// An export of the whole index needs every source: read in order, a block
// of records is read once, where looked up as rows name them, each lookup
// may read (and decompress) a block the export's scan has pushed out of
// Pebble's cache.
func (ix *Index) loadSources(ctx context.Context, r pebble.Reader, c *sourceCache) error {
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{store.PrefixSourceID}, UpperBound: []byte{store.PrefixSourceID + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	scores := ix.rankScores()
	for it.First(); it.Valid(); it.Next() {
		id, n := store.ReadID(it.Key()[1:])
		if n == 0 {
			return fmt.Errorf("indexer: malformed source key %q", it.Key())
		}
		if id >= uint64(len(c.slots)) {
			break // its slot is a lower id's
		}
		src, err := newSourceEntry(r, id, it.Value(), scores)
		if err != nil {
			return err
		}
		c.put(src)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return it.Error()
}

// sourcesOf sets srcs[i] to the entry of rows[i]'s source, and reads a
// byte of every cache line of the entries' text. An export's rows name
// sources in no order, so each slot, entry and text is a cache miss. Each
// loop below has one of those per row and no row waits for another's, so
// the processor has many of them in flight at once, where building and
// encoding rows one by one would wait for each in turn.
func (ix *Index) sourcesOf(r pebble.Reader, rows []edgeRow, srcs []*sourceEntry, c *rowCache) error {
	slots, mask := c.sources.slots, uint64(len(c.sources.slots)-1)
	for i := range rows {
		srcs[i] = slots[rows[i].k.source&mask].Load()
	}
	for i := range rows {
		if src := srcs[i]; src != nil && src.id != rows[i].k.source {
			srcs[i] = nil
		}
	}
	var sum byte
	for i := range rows {
		src := srcs[i]
		if src == nil {
			var err error
			if src, err = ix.sourceOf(r, &rows[i], c); err != nil {
				return err
			}
			srcs[i] = src
		}
		for j := 0; j < len(src.url); j += 64 {
			sum += src.url[j]
		}
		for j := 0; j < len(src.title); j += 64 {
			sum += src.title[j]
		}
	}
	c.touched += sum
	return nil
}

// build fills the answer row of an edge whose source is src.
func (c *rowCache) build(row *edgeRow, src *sourceEntry) (*lgv1.Backlink, error) {
	k, v := &row.k, &row.v
	if c.tgtURL == "" || c.tgtSURT != k.targetSURT {
		tgt, err := urlnorm.UnSURT(k.targetSURT)
		if err != nil {
			return nil, fmt.Errorf("indexer: corrupt target in key %q: %w", row.key, err)
		}
		c.tgtSURT, c.tgtURL = k.targetSURT, tgt
	}
	bl := c.newBacklink()
	*bl = lgv1.Backlink{
		SourceUrl:           src.url,
		TargetUrl:           c.tgtURL,
		AnchorText:          k.anchor,
		Rel:                 v.rel,
		Type:                k.typ,
		RedirectStatus:      v.redirectStatus,
		Nofollow:            !v.flags.follow(),
		SourceAuthority:     src.authority,
		SourcePageAuthority: src.pageAuthority,
		FirstSeen:           c.timestamp(v.firstSeen),
		LastSeen:            c.timestamp(v.lastSeen),
	}
	for _, h := range v.history {
		bl.History = append(bl.History, &lgv1.LinkEvent{
			LostAt: timestamppb.New(time.UnixMilli(h.lostAt)), Reason: h.reason, ReturnedAt: timestamppb.New(time.UnixMilli(h.returnedAt)),
		})
	}
	if v.lostAt != 0 {
		bl.LostReason = v.lostReason
		bl.LostAt = c.timestamp(v.lostAt)
	}
	bl.SourceTitle, bl.SourceStatus = src.title, src.status
	return bl, nil
}

// ScanEdges calls fn for every edge in the index, live and lost, in key
// order, from one consistent snapshot. It stops at the first error fn
// returns and returns it.
func (ix *Index) ScanEdges(ctx context.Context, fn func(bl *lgv1.Backlink, live bool) error) error {
	return ix.Export(ctx, ExportQuery{Filter: &lgv1.Filter{IncludeLost: true}}, func(bl *lgv1.Backlink, _ []byte) error {
		return fn(bl, bl.LostAt == nil)
	})
}
