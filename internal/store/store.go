// Package store opens the Pebble database of a shard node and documents its
// key space in one place. Each role package (frontier, indexer) reads and
// writes only its own prefixes.
//
// Key space (one byte prefix, then the parts; SURT is urlnorm.SURT, 0 is a
// 0x00 separator that cannot occur in a normalized URL):
//
//	e SURT(target) 0 id(domain) id(source) type anchor 0 edge -> {} (indexer, reverse map; the value is in the key, see indexer.storedEdge)
//	s SURT(source)                              -> ids       (indexer, a linking page's domain and source ids, and the target shards it has links on)
//	i id(source)                                -> source    (indexer, SURT, title and status of a linking page, the base of its edges' first_seen, and its links into each target host, by id)
//	o HostSURT(domain)                          -> id        (indexer, ids of the registrable domains and hosts of linking pages, and of the target hosts source records count links into)
//	g id(domain)                                -> HostSURT  (indexer, the same, by id)
//	f SURT(source)                              -> targets   (indexer, forward list: the targets of the last crawl, on the source's shard)
//	p SURT(url)                                 -> page      (indexer, last fetch result, on the page's shard)
//	n name                                      -> counter   (indexer, totals; merge operator, see Batch)
//	u SURT(url)                                 -> seen      (frontier, URL-seen; once fetched, its revisit interval and due time)
//	v due(8 bytes BE, Unix ms) SURT(url)        -> task      (frontier, revisit schedule; see frontier/revisit.go)
//	k level('h'|'d') ReversedHost(host|domain)  -> rank      (indexer/rank, the latest ranks; see rank.Put)
//	q HostSURT(host) 0 seq(8 bytes BE)          -> task      (frontier, per-host FIFO queue)
//	w HostSURT(host) 0 seq(8 bytes BE)          -> task      (frontier, per-host recrawl queue, read before q)
//	c kind value                                -> {}        (frontier, crawl scope: kind 'h' host, 'd' domain)
//	m name                                      -> value     (store, metadata such as the shard count)
//	r HostSURT(host)                            -> robots    (frontier, last robots.txt fetch)
//	h HostSURT(host)                            -> varint    (frontier, URLs admitted, for the per-host budget)
//	a kind HostSURT(host|domain) 0 rec ...      -> Record    (indexer, backlink aggregates of a target host or domain; see indexer/agg.go)
//
// An id is a number the node assigns in the order it first sees a source
// page or domain, written as its length (1-8) and its big-endian bytes
// without leading zeros, so ids sort as numbers (AppendID; see
// indexer/ids.go). They stand in for source URLs in edge keys, which they
// make a third smaller. Pebble's data blocks hold the parts of edge keys in
// columns of their own (see edgeKeySchema).
//
// Values under n and some under a (see indexer/agg.go) are written with
// merge operations (see CounterMerger), so totals and those aggregates
// change without a read.
package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Key prefixes; see the package doc.
const (
	PrefixEdge         = 'e'
	PrefixSource       = 's'
	PrefixSourceID     = 'i'
	PrefixDomain       = 'o'
	PrefixDomainID     = 'g'
	PrefixForward      = 'f'
	PrefixPage         = 'p'
	PrefixCounter      = 'n'
	PrefixSeen         = 'u'
	PrefixQueue        = 'q'
	PrefixRecrawlQueue = 'w'
	PrefixScope        = 'c'
	PrefixMeta         = 'm'
	PrefixRobots       = 'r'
	PrefixHost         = 'h'
	PrefixAggregate    = 'a'
	PrefixRevisit      = 'v'
	PrefixRank         = 'k'
)

// Options tune Open. The zero value is the defaults.
type Options struct {
	// CacheSize is the Pebble block cache in bytes. Default
	// DefaultCacheSize(). A query whose blocks are not cached reads and
	// decompresses them.
	CacheSize int64
	// ZstdLevel is the zstd level of the bottom level's blocks, where
	// nearly all of the index ends up. Default DefaultZstdLevel; at most
	// MaxZstdLevel. A higher level takes less disk and more CPU in every
	// compaction into that level: on the 2M-edge generated index, 15 took
	// 26.0 bytes an edge against 27.1 at 7, and generate wrote 12-21%
	// fewer edges a second, its full compaction 5 times slower.
	// Tables keep the level they were written with; any level reads.
	ZstdLevel int
	// BlockSize is the size of the bottom level's data blocks before
	// compression. Default DefaultBlockSize; from MinBlockSize to
	// MaxBlockSize. Larger blocks give zstd more to match (see Rewrite),
	// but a read that misses the block cache decompresses a whole block.
	// Tables keep the size they were written with.
	BlockSize int
	// MustExist makes Open fail with ErrNoIndex, creating nothing, when dir
	// holds no index: for commands that only read one, to which a mistyped
	// directory would otherwise be a new, empty index.
	MustExist bool
}

// ErrNoIndex is returned by Open with Options.MustExist when the directory
// holds no index.
var ErrNoIndex = errors.New("no linkgraph index there")

// ErrShardCount is returned by Shards when the data directory was created
// with another shard count.
var ErrShardCount = errors.New("store: shard count differs from the one this data directory was created with")

// ErrLocked is returned by Open when another process uses the data directory.
var ErrLocked = errors.New("store: data directory is in use by another linkgraph process")

// DB is a shard node's Pebble database plus the lock on its directory. It is
// safe for concurrent use and must be closed.
type DB struct {
	*pebble.DB
	lock      *os.File
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the index under dir/index. It takes an
// exclusive lock on dir first, so a second process on the same data
// directory fails fast with ErrLocked instead of waiting or corrupting it.
func Open(dir string) (*DB, error) { return OpenWith(dir, Options{}) }

// OpenWith is Open with options.
func OpenWith(dir string, o Options) (*DB, error) {
	opts, err := o.pebbleOptions()
	if err != nil {
		return nil, err
	}
	if o.MustExist && !hasIndex(dir) {
		return nil, noIndex(dir)
	}
	return openLocked(dir, opts, o.CacheSize)
}

// noIndex is ErrNoIndex for dir.
func noIndex(dir string) error {
	return fmt.Errorf("%w: %s (give the --data directory a crawl or generate wrote)", ErrNoIndex, dir)
}

// openLocked takes dir's lock, deletes what a Rewrite cut short left beside
// the index, and opens the index under dir/index with opts and a block
// cache of cacheSize bytes (0: DefaultCacheSize), bringing it to the
// current layout. Closing the DB releases the lock.
func openLocked(dir string, opts *pebble.Options, cacheSize int64) (*DB, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	d, err := func() (*DB, error) {
		if err := os.RemoveAll(filepath.Join(dir, rewriteScratch)); err != nil {
			return nil, fmt.Errorf("store: cannot remove %s: %w", filepath.Join(dir, rewriteScratch), err)
		}
		if err := checkKeySchema(filepath.Join(dir, "index")); err != nil {
			return nil, fmt.Errorf("store: %s: %w", dir, err)
		}
		// Filter and index blocks must stay cached: every URL-seen and
		// edge-exists lookup consults them (Pebble's default cache is 8 MiB).
		opts.Cache = pebble.NewCache(cmp.Or(cacheSize, DefaultCacheSize()))
		defer opts.Cache.Unref() // the DB holds its own reference
		db, err := pebble.Open(filepath.Join(dir, "index"), opts)
		if err != nil {
			if errors.Is(err, pebble.ErrDBDoesNotExist) {
				return nil, noIndex(dir)
			}
			return nil, fmt.Errorf("store: cannot open index in %s: %w", dir, err)
		}
		d := &DB{DB: db, lock: lock}
		if err := d.checkLayout(); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: %s: %w", dir, err)
		}
		return d, nil
	}()
	if err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

// lockDir creates dir if needed and takes an exclusive lock on it, so a
// second process on the same data directory fails fast with ErrLocked
// instead of waiting or corrupting it. Closing the file releases the lock.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: cannot create data directory %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: cannot open lock file in %s: %w", dir, err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s (stop the other process or use another --data)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("store: cannot lock %s: %w", dir, err)
	}
	return lock, nil
}

// pebbleOptions are the Pebble options o stands for, but for the block
// cache, which openLocked makes.
func (o Options) pebbleOptions() (*pebble.Options, error) {
	level := cmp.Or(o.ZstdLevel, DefaultZstdLevel)
	if level < 1 || level > MaxZstdLevel {
		return nil, fmt.Errorf("store: zstd level %d: must be from 1 to %d", level, MaxZstdLevel)
	}
	blockSize := cmp.Or(o.BlockSize, DefaultBlockSize)
	if blockSize < MinBlockSize || blockSize > MaxBlockSize {
		return nil, fmt.Errorf("store: block size %d KiB: must be from %d to %d KiB", blockSize>>10, MinBlockSize>>10, MaxBlockSize>>10)
	}
	opts := &pebble.Options{
		Merger:             CounterMerger,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       64 << 20,
		Logger:             quietLogger{},
		ErrorIfNotExists:   o.MustExist,
		KeySchema:          edgeKeySchema.Name,
		KeySchemas:         keySchemas,
	}
	// Most point reads (URL-seen, new aggregate records) are for keys
	// that do not exist; a bloom filter answers those without reading
	// data blocks. Edge keys are left out of it, and aggregates in the
	// bottom level (see edgelessBloom and bottomBloom); the levels between
	// take level 0's.
	opts.Levels[0].FilterPolicy = edgelessBloom
	opts.Levels[len(opts.Levels)-1].FilterPolicy = bottomBloom
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return compression(level) })
	// 64 KiB blocks instead of 32 took the 10M-edge generated index from
	// 62.0 to 58.6 bytes/edge (128 KiB: 58.2, the aggregates and edges a
	// little larger) with no change bench/query could tell apart.
	for i := range opts.Levels {
		opts.Levels[i].BlockSize = DefaultBlockSize
	}
	opts.Levels[len(opts.Levels)-1].BlockSize = blockSize
	return opts, nil
}

// DefaultZstdLevel is the zstd level of the bottom level unless
// Options.ZstdLevel says otherwise, and MaxZstdLevel the highest it takes
// (zstd's levels above it need far more memory to compress).
const (
	DefaultZstdLevel = 7
	MaxZstdLevel     = 19
)

// DefaultBlockSize is the data block size of every level unless
// Options.BlockSize says otherwise for the bottom one; MinBlockSize and
// MaxBlockSize bound Options.BlockSize.
const (
	DefaultBlockSize = 64 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 1 << 20
)

// compression is Pebble's "Good" settings with zstd at level (rather than
// 3) in the bottom level. The index is mostly URLs and anchor text, which
// zstd on large blocks shrinks far better than Snappy; the upper levels
// keep cheap compression, so flushes and their compactions stay fast, and
// nearly all data ends up in the bottom level. On the 2M-edge generated
// index, levels 3, 7, 9 and 12 took 34.1, 32.5, 32.4 and 32.1 bytes an
// edge, and its full compaction 2.1, 3.8, 5.6 and 8.3 s.
func compression(level int) pebble.DBCompressionSettings {
	cs := pebble.DBCompressionGood
	bottom := *cs.Levels[len(cs.Levels)-1]
	bottom.Name = fmt.Sprintf("linkgraph-zstd%d", level)
	bottom.DataBlocks.Level = uint8(level)
	bottom.ValueBlocks.Level = uint8(level)
	cs.Name = "linkgraph"
	cs.Levels[len(cs.Levels)-1] = &bottom
	return cs
}

// keyBloom is a bloom filter of every key but those whose first byte is
// in skip.
type keyBloom struct {
	bloom.FilterPolicy
	name string
	skip string
}

var (
	// edgelessBloom leaves the edges out. The index looks an edge up only
	// on a recrawl, for a link the page had before, which is nearly always
	// there: a filter answers nothing for those, and the edges' entries
	// took 1.25 bytes an edge. A lookup of an edge that is not there reads
	// a data block of each level whose tables span its key.
	edgelessBloom = keyBloom{bloom.FilterPolicy(10), "linkgraph.bloom-without-edges.10", string(PrefixEdge)}
	// bottomBloom, for the bottom level, leaves the aggregates out too: a
	// record that is not there yet (a scope's new referring domain or
	// anchor) is looked for next to the scope's records that the same
	// batch reads, so its data block is nearly always cached. Their
	// entries took 0.5 bytes an edge on the 10M-edge generated index,
	// which generate wrote no slower without them (21.1k edges/s). The
	// upper levels keep them: tables of level 0 overlap, and a missing
	// record would read a block of each.
	bottomBloom = keyBloom{bloom.FilterPolicy(10), "linkgraph.bloom-without-edges-aggregates.10", string([]byte{PrefixEdge, PrefixAggregate})}
)

func (p keyBloom) Name() string { return p.name }

func (p keyBloom) skips(key []byte) bool {
	return len(key) > 0 && strings.IndexByte(p.skip, key[0]) >= 0
}

func (p keyBloom) MayContain(ft pebble.FilterType, filter, key []byte) bool {
	return p.skips(key) || p.FilterPolicy.MayContain(ft, filter, key)
}

func (p keyBloom) NewWriter(ft pebble.FilterType) pebble.FilterWriter {
	return keyBloomWriter{p.FilterPolicy.NewWriter(ft), p}
}

type keyBloomWriter struct {
	pebble.FilterWriter
	p keyBloom
}

func (w keyBloomWriter) AddKey(key []byte) {
	if !w.p.skips(key) {
		w.FilterWriter.AddKey(key)
	}
}

// Layout is the version of the key space and value encodings. A data
// directory written with an earlier layout is upgraded in place when every
// step from it has an upgrade (RegisterUpgrade), and refused otherwise,
// rather than misread; one written with a later layout is refused.
const Layout = 9

// ErrLayout is returned by Open for a data directory written by a linkgraph
// with another index layout.
var ErrLayout = errors.New("the index was written by another version of linkgraph (index layout differs); crawl into a new --data")

// An Upgrade rewrites, in place, an index of one layout into the next. It
// must be safe to run again over its own partial work: Open records the new
// layout only once it returns, so an upgrade cut short (a kill, a full
// disk) runs again at the next Open.
type Upgrade func(*pebble.DB) error

// upgrades[from] turns layout from into from+1.
var upgrades = map[uint64]Upgrade{}

// RegisterUpgrade registers the upgrade from layout from to from+1. The
// package that owns the keys it changes registers it, in an init function.
func RegisterUpgrade(from uint64, u Upgrade) {
	if _, dup := upgrades[from]; dup || from >= Layout {
		panic(fmt.Sprintf("store: RegisterUpgrade(%d): registered twice, or not before layout %d", from, Layout))
	}
	upgrades[from] = u
}

var layoutKey = []byte{PrefixMeta, 'l', 'a', 'y', 'o', 'u', 't'}

func (d *DB) checkLayout() error {
	raw, closer, err := d.Get(layoutKey)
	switch {
	case err == nil:
		have, _ := binary.Uvarint(raw)
		closer.Close()
		return d.upgrade(have)
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	// Layout 1 did not record itself; it is recognisable by its edges.
	it, err := d.NewIter(&pebble.IterOptions{LowerBound: []byte{PrefixEdge}, UpperBound: []byte{PrefixEdge + 1}})
	if err != nil {
		return err
	}
	old := it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if old {
		return fmt.Errorf("%w: layout 1, this binary reads %d", ErrLayout, Layout)
	}
	return d.Set(layoutKey, binary.AppendUvarint(nil, Layout), pebble.Sync)
}

// upgrade brings an index of layout have to Layout, one registered step
// at a time, or refuses it with ErrLayout, changing nothing, when a step
// has no upgrade.
func (d *DB) upgrade(have uint64) error {
	if have > Layout {
		return fmt.Errorf("%w: layout %d, this binary reads %d (upgrade linkgraph)", ErrLayout, have, Layout)
	}
	for l := have; l < Layout; l++ {
		if upgrades[l] == nil {
			return fmt.Errorf("%w: layout %d, this binary reads %d and upgrades from layout %d on", ErrLayout, have, Layout, oldestUpgradable())
		}
	}
	for ; have < Layout; have++ {
		if err := upgrades[have](d.DB); err != nil {
			return fmt.Errorf("store: upgrading the index from layout %d to %d: %w", have, have+1, err)
		}
		if err := d.Set(layoutKey, binary.AppendUvarint(nil, have+1), pebble.Sync); err != nil {
			return err
		}
	}
	return nil
}

// oldestUpgradable is the oldest layout Open upgrades.
func oldestUpgradable() uint64 {
	l := uint64(Layout)
	for upgrades[l-1] != nil {
		l--
	}
	return l
}

// Close flushes and closes the database and releases the lock. Calls after
// the first return the first call's result.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = d.DB.Close()
		if err := d.lock.Close(); d.closeErr == nil {
			d.closeErr = err
		}
	})
	return d.closeErr
}

// Shards returns the shard count of the data directory. On a new directory
// it records want (def if want is 0); later calls with a different want > 0
// fail with ErrShardCount and the recorded count, since every key's shard
// would change.
func (d *DB) Shards(want, def int) (int, error) {
	key := []byte{PrefixMeta, 's', 'h', 'a', 'r', 'd', 's'}
	raw, closer, err := d.Get(key)
	switch {
	case err == nil:
		have, _ := binary.Uvarint(raw)
		closer.Close()
		if want > 0 && int(have) != want {
			return int(have), fmt.Errorf("%w: %d, not %d", ErrShardCount, have, want)
		}
		return int(have), nil
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, err
	case want == 0:
		want = def
	}
	if err := d.Set(key, binary.AppendUvarint(nil, uint64(want)), pebble.Sync); err != nil {
		return 0, fmt.Errorf("store: cannot record shard count: %w", err)
	}
	return want, nil
}

// ErrRange is returned by Own when the data directory belongs to another
// range of shards.
var ErrRange = errors.New("store: data directory holds another range of shards")

// Own records that the data directory holds shards [lo, hi), or checks that
// it does. A directory keeps its range for life: its frontier queues and
// index hold the URLs and links of exactly those shards, and a node given
// another range would fetch or answer for shards another node also owns.
func (d *DB) Own(lo, hi int) error {
	key := []byte{PrefixMeta, 'r', 'a', 'n', 'g', 'e'}
	want := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(lo)), uint64(hi))
	raw, closer, err := d.Get(key)
	switch {
	case err == nil:
		defer closer.Close()
		hlo, n := binary.Uvarint(raw)
		hhi, _ := binary.Uvarint(raw[max(n, 0):])
		if int(hlo) != lo || int(hhi) != hi {
			return fmt.Errorf("%w: shards %d-%d, not %d-%d; moving shards between nodes is not supported yet (see Re-sharding in docs/operations.md)", ErrRange, hlo, hhi-1, lo, hi-1)
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	if err := d.Set(key, want, pebble.Sync); err != nil {
		return fmt.Errorf("store: cannot record the shard range: %w", err)
	}
	return nil
}

// Sync makes every write committed before the call durable (fsync of the
// WAL). Concurrent calls share fsyncs through Pebble's group commit, so the
// stages that ack messages can each call it once per batch.
func (d *DB) Sync() error {
	if err := d.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store: cannot sync the index: %w", err)
	}
	return nil
}

// Counter reads a merge counter; a missing key is 0.
func Counter(r pebble.Reader, key []byte) (int64, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	n, _ := binary.Varint(v)
	return n, nil
}

// AddCounter adds delta to the merge counter at key within b.
func AddCounter(b *pebble.Batch, key []byte, delta int64) error {
	var buf [binary.MaxVarintLen64]byte
	return b.Merge(key, buf[:binary.PutVarint(buf[:], delta)], nil)
}

// CounterKey is the key of the named total counter.
func CounterKey(name string) []byte {
	return append([]byte{PrefixCounter}, name...)
}

// CounterMerger merges the values of merge operations: the total counters
// under PrefixCounter sum signed varints, and the aggregate records under
// PrefixAggregate combine field by field as their Shape says (see Record),
// so both can be updated without a read.
var CounterMerger = &pebble.Merger{
	// The name predates aggregate records; counters merge as before, so
	// data directories written before them still open.
	Name: "linkgraph.counter.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		if len(key) > 0 && key[0] == PrefixAggregate {
			r, err := DecodeRecord(value)
			if err != nil {
				return nil, fmt.Errorf("%w (key %q)", err, key)
			}
			return &recordMerger{r: r}, nil
		}
		n, _ := binary.Varint(value)
		return &sum{n: n}, nil
	},
}

type sum struct{ n int64 }

func (s *sum) MergeNewer(v []byte) error { n, _ := binary.Varint(v); s.n += n; return nil }
func (s *sum) MergeOlder(v []byte) error { n, _ := binary.Varint(v); s.n += n; return nil }
func (s *sum) Finish(bool) ([]byte, io.Closer, error) {
	return binary.AppendVarint(nil, s.n), nil, nil
}

type recordMerger struct{ r Record }

func (m *recordMerger) MergeNewer(v []byte) error { return m.merge(v) }
func (m *recordMerger) MergeOlder(v []byte) error { return m.merge(v) }
func (m *recordMerger) merge(v []byte) error {
	o, err := DecodeRecord(v)
	if err != nil {
		return err
	}
	return m.r.Merge(o)
}
func (m *recordMerger) Finish(bool) ([]byte, io.Closer, error) {
	return m.r.Append(nil), nil, nil
}

// quietLogger drops Pebble's informational chatter; errors still surface as
// returned errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Batch is an indexed Pebble batch (reads see its own writes) that also sums
// total-counter deltas in memory and writes each counter once, at Commit:
// a counter bumped per edge would pile up merge operands that every read of
// it must walk.
type Batch struct {
	*pebble.Batch
	db     *DB
	deltas map[string]int64
}

// NewWriteBatch returns an empty Batch. Close it after Commit or on error.
func (d *DB) NewWriteBatch() *Batch {
	return &Batch{Batch: d.NewIndexedBatch(), db: d, deltas: make(map[string]int64)}
}

// Count adds delta to the total counter name when the batch commits.
func (b *Batch) Count(name string, delta int64) {
	b.deltas[name] += delta
}

// Commit writes the counter deltas and commits, without waiting for the
// write to be durable: call DB.Sync before acknowledging anything that
// depends on it. (Pebble's WAL writer may still hold a NoSync batch in
// memory, so a kill -9 could lose it.)
func (b *Batch) Commit() error {
	for name, d := range b.deltas {
		if d == 0 {
			continue
		}
		if err := AddCounter(b.Batch, CounterKey(name), d); err != nil {
			return err
		}
	}
	return b.commitSorted()
}

// commitSorted commits a copy of the batch with its operations in key order
// (operations on one key keep their order). Pebble inserts a
// batch into the memtable in batch order, reusing the previous insert's
// position when keys ascend; sorted, the same writes cost about half.
func (b *Batch) commitSorted() error {
	type op struct {
		kind       pebble.InternalKeyKind
		seq        int // position in the batch, to keep one key's operations in order
		key, value []byte
	}
	ops := make([]op, 0, b.Batch.Count())
	for r := b.Reader(); ; {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		ops = append(ops, op{kind, len(ops), key, value})
	}
	slices.SortFunc(ops, func(x, y op) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return x.seq - y.seq
	})
	sorted := b.db.NewBatchWithSize(len(b.Repr()))
	defer sorted.Close()
	for _, o := range ops {
		var err error
		switch o.kind {
		case pebble.InternalKeyKindSet:
			err = sorted.Set(o.key, o.value, nil)
		case pebble.InternalKeyKindDelete:
			err = sorted.Delete(o.key, nil)
		case pebble.InternalKeyKindMerge:
			err = sorted.Merge(o.key, o.value, nil)
		default:
			err = fmt.Errorf("store: unexpected operation kind %v in batch", o.kind)
		}
		if err != nil {
			return err
		}
	}
	return sorted.Commit(pebble.NoSync)
}
