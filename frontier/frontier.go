// Package frontier decides what gets fetched and when, for the hosts of the
// shards a node owns: the persistent URL-seen set, per-host FIFO queues in
// Pebble, crawl scope and depth, and politeness (at most PerHostConcurrency
// requests in flight per host, at least Delay between the end of one and the
// start of the next).
//
// A URL enters through Offer (inside the caller's Pebble batch, so it is
// recorded exactly when the link that found it is) and leaves through Run,
// which publishes a FetchTask when the URL's host is ready. Done tells the
// frontier a fetch has ended. Only hosts' scheduling state lives in memory;
// queued URLs stay on disk.
package frontier

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// ScopeMode says which discovered URLs are fetched. Out-of-scope links are
// still indexed as targets.
type ScopeMode string

const (
	ScopeHost   ScopeMode = "host"   // only the hosts of the seeds
	ScopeDomain ScopeMode = "domain" // the registrable domains of the seeds
	ScopeAll    ScopeMode = "all"    // everything
)

// Defaults of Config.
const (
	DefaultDelay              = time.Second
	DefaultPerHostConcurrency = 1
	DefaultLeaseTimeout       = 15 * time.Minute
	refillSize                = 64
)

// Config configures a Frontier.
type Config struct {
	// Scope defaults to ScopeHost.
	Scope ScopeMode
	// MaxDepth is the largest link distance from a seed that is fetched;
	// 0 (the default) means no limit.
	MaxDepth int
	// Delay is the least time between the end of one request to a host and
	// the start of the next (default DefaultDelay; 0 allowed).
	Delay time.Duration
	// PerHostConcurrency is the most requests in flight to one host
	// (default DefaultPerHostConcurrency).
	PerHostConcurrency int
	// MaxPages stops releasing URLs after this many in this run; 0 (the
	// default) means no limit.
	MaxPages int
	// Shards is the cluster's shard count, used to pick fetch subjects.
	Shards int
	// LeaseTimeout is how long a released URL may go without a result
	// before its host's slot is freed (default DefaultLeaseTimeout). The
	// fetch task itself is redelivered by JetStream; this only keeps a lost
	// task from blocking its host forever.
	LeaseTimeout time.Duration
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Scope {
	case ScopeHost, ScopeDomain, ScopeAll:
	default:
		errs = append(errs, fmt.Errorf("frontier: scope %q is not one of host, domain, all", c.Scope))
	}
	if c.MaxDepth < 0 {
		errs = append(errs, fmt.Errorf("frontier: max depth %d is negative", c.MaxDepth))
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("frontier: delay %v is negative", c.Delay))
	}
	if c.PerHostConcurrency < 1 {
		errs = append(errs, fmt.Errorf("frontier: per-host concurrency %d must be at least 1", c.PerHostConcurrency))
	}
	if c.MaxPages < 0 {
		errs = append(errs, fmt.Errorf("frontier: max pages %d is negative", c.MaxPages))
	}
	if c.Shards < 1 {
		errs = append(errs, fmt.Errorf("frontier: shards %d must be at least 1", c.Shards))
	}
	return errors.Join(errs...)
}

// Publisher publishes one fetch task. msgID deduplicates a task republished
// after a crash. Every call's outcome must be known when the returned wait
// function returns.
type Publisher interface {
	PublishTask(ctx context.Context, subject, msgID string, data []byte) (wait func() error, err error)
}

// Stats is a snapshot of the frontier's state.
type Stats struct {
	Queued   int64 // URLs waiting in host queues
	InFlight int   // released URLs without a result yet
	Released int   // URLs released in this run
	Hosts    int   // hosts known to the scheduler
}

// Frontier schedules the fetches of one shard node. It is safe for
// concurrent use. Offer must be called from a single goroutine (the one
// applying link batches), because queue order follows commit order.
type Frontier struct {
	db  *store.DB
	cfg Config
	pub Publisher
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	hosts     map[string]*host // by HostSURT
	ready     []*host          // hosts that may release now, FIFO
	waiting   hostHeap         // hosts with work whose next slot is in the future
	seq       uint64           // last queue sequence number used
	scopeHost map[string]bool
	scopeDom  map[string]bool
	queued    int64
	inflight  int
	released  int
	wake      chan struct{}
	seen      *seenCache // recently seen URLs, to skip disk lookups
}

type host struct {
	key      string
	queued   int64                // on disk, not yet buffered
	buf      []queuedTask         // read ahead from disk, in order
	cursor   []byte               // last queue key read into buf
	inflight map[string]time.Time // url -> release time
	nextAt   time.Time
	inReady  bool
	heapIdx  int // -1 when not in waiting
}

type queuedTask struct {
	key  []byte
	task *lgv1.FetchTask
}

// Open loads the frontier's persistent state (scope, queue sizes) from db.
// Call Run to start releasing.
func Open(db *store.DB, cfg Config, pub Publisher, log *slog.Logger) (*Frontier, error) {
	if cfg.Scope == "" {
		cfg.Scope = ScopeHost
	}
	if cfg.PerHostConcurrency == 0 {
		cfg.PerHostConcurrency = DefaultPerHostConcurrency
	}
	if cfg.LeaseTimeout == 0 {
		cfg.LeaseTimeout = DefaultLeaseTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Frontier{
		db: db, cfg: cfg, pub: pub, log: log, now: time.Now,
		hosts: make(map[string]*host), scopeHost: make(map[string]bool), scopeDom: make(map[string]bool),
		wake: make(chan struct{}, 1), seen: newSeenCache(seenCacheSize),
	}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Frontier) load() error {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixScope}, UpperBound: []byte{store.PrefixScope + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 2 {
			continue
		}
		switch k[1] {
		case 'h':
			f.scopeHost[string(k[2:])] = true
		case 'd':
			f.scopeDom[string(k[2:])] = true
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = f.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixQueue}, UpperBound: []byte{store.PrefixQueue + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		hk, seq, ok := splitQueueKey(it.Key())
		if !ok {
			continue
		}
		h := f.hostLocked(hk)
		h.queued++
		f.queued++
		f.seq = max(f.seq, seq)
	}
	for _, h := range f.hosts {
		f.scheduleLocked(h)
	}
	return it.Error()
}

func queueKey(hostKey string, seq uint64) []byte {
	k := make([]byte, 0, 2+len(hostKey)+8)
	k = append(k, store.PrefixQueue)
	k = append(k, hostKey...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func splitQueueKey(k []byte) (hostKey string, seq uint64, ok bool) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[1 : len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

func (f *Frontier) hostLocked(key string) *host {
	h := f.hosts[key]
	if h == nil {
		h = &host{key: key, inflight: make(map[string]time.Time), heapIdx: -1}
		f.hosts[key] = h
	}
	return h
}

// AddScope puts the seed's host (or registrable domain, by the scope mode)
// in scope, within b.
func (f *Frontier) AddScope(b *pebble.Batch, seed string) error {
	h := urlnorm.Host(seed)
	var k []byte
	switch f.cfg.Scope {
	case ScopeHost:
		k = append([]byte{store.PrefixScope, 'h'}, h...)
	case ScopeDomain:
		k = append([]byte{store.PrefixScope, 'd'}, urlnorm.RegistrableDomain(h)...)
	default:
		return nil
	}
	return b.Set(k, nil, nil)
}

// ScopeAdded makes scope entries committed by AddScope take effect.
func (f *Frontier) ScopeAdded(seed string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := urlnorm.Host(seed)
	f.scopeHost[h] = true
	f.scopeDom[urlnorm.RegistrableDomain(h)] = true
}

// InScope reports whether url would be fetched under the current scope.
func (f *Frontier) InScope(url string) bool {
	h := urlnorm.Host(url)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.cfg.Scope {
	case ScopeAll:
		return true
	case ScopeDomain:
		return f.scopeDom[urlnorm.RegistrableDomain(h)]
	default:
		return f.scopeHost[h]
	}
}

// Pending collects what Offer queued in one batch, to be made visible to
// the scheduler by Committed once the batch has committed. Not safe for
// concurrent use.
type Pending struct {
	hosts map[string]int
	seen  map[uint64]struct{}
}

// NewPending returns an empty Pending.
func NewPending() *Pending {
	return &Pending{hosts: make(map[string]int), seen: make(map[uint64]struct{})}
}

// Offer queues url at depth within b if it is in scope, within the depth
// limit and not seen before; p records it for Committed.
func (f *Frontier) Offer(b *pebble.Batch, p *Pending, url string, depth int32) error {
	if f.cfg.MaxDepth > 0 && int(depth) > f.cfg.MaxDepth {
		return nil
	}
	if !f.InScope(url) {
		return nil
	}
	h := f.seen.hash(url)
	if _, dup := p.seen[h]; dup || f.seen.has(h) {
		return nil
	}
	seenKey := append([]byte{store.PrefixSeen}, urlnorm.SURT(url)...)
	if _, closer, err := b.Get(seenKey); err == nil {
		closer.Close()
		p.seen[h] = struct{}{}
		return nil
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	if err := b.Set(seenKey, nil, nil); err != nil {
		return err
	}
	p.seen[h] = struct{}{}
	hk := urlnorm.HostSURT(urlnorm.Host(url))
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	task, err := proto.Marshal(&lgv1.FetchTask{Url: url, Depth: depth})
	if err != nil {
		return err
	}
	p.hosts[hk]++
	return b.Set(queueKey(hk, seq), task, nil)
}

// Committed tells the scheduler that the batch holding p's offers has
// committed: their URLs are now queued and seen.
func (f *Frontier) Committed(p *Pending) {
	for h := range p.seen {
		f.seen.add(h)
	}
	f.mu.Lock()
	for hk, n := range p.hosts {
		h := f.hostLocked(hk)
		h.queued += int64(n)
		f.queued += int64(n)
		f.scheduleLocked(h)
	}
	f.mu.Unlock()
	clear(p.hosts)
	clear(p.seen)
	f.signal()
}

// Done tells the frontier that the fetch of url has ended. retryAfter, if
// positive, holds the host back at least that long.
func (f *Frontier) Done(url string, retryAfter time.Duration) {
	hk := urlnorm.HostSURT(urlnorm.Host(url))
	f.mu.Lock()
	h := f.hosts[hk]
	if h == nil {
		f.mu.Unlock()
		return
	}
	if _, ok := h.inflight[url]; ok {
		delete(h.inflight, url)
		f.inflight--
	}
	next := f.now().Add(max(f.cfg.Delay, retryAfter))
	if next.After(h.nextAt) {
		h.nextAt = next
	}
	f.scheduleLocked(h)
	f.mu.Unlock()
	f.signal()
}

// Stats returns a snapshot of the frontier's counters.
func (f *Frontier) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Queued: f.queued, InFlight: f.inflight, Released: f.released, Hosts: len(f.hosts)}
}

// Exhausted reports whether the frontier will release nothing more in this
// run without new URLs: nothing in flight, and nothing queued or the page
// budget spent.
func (f *Frontier) Exhausted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight > 0 {
		return false
	}
	return f.queued == 0 || f.budgetSpentLocked()
}

func (f *Frontier) budgetSpentLocked() bool {
	return f.cfg.MaxPages > 0 && f.released >= f.cfg.MaxPages
}

func (f *Frontier) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// scheduleLocked puts h where it belongs: ready, waiting for its next slot,
// or nowhere (no work or no free slot).
func (f *Frontier) scheduleLocked(h *host) {
	if h.inReady || (h.queued == 0 && len(h.buf) == 0) || len(h.inflight) >= f.cfg.PerHostConcurrency {
		return
	}
	if !h.nextAt.After(f.now()) {
		if h.heapIdx >= 0 {
			heap.Remove(&f.waiting, h.heapIdx)
		}
		h.inReady = true
		f.ready = append(f.ready, h)
		return
	}
	if h.heapIdx >= 0 {
		heap.Fix(&f.waiting, h.heapIdx)
	} else {
		heap.Push(&f.waiting, h)
	}
}

// Run releases URLs as their hosts become ready until ctx is done. It
// returns nil on cancellation and an error only if publishing fails for
// good.
func (f *Frontier) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		batch, wait := f.take()
		if len(batch) > 0 {
			if err := f.release(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		case <-timer.C:
		case <-sweep.C:
			f.expireLeases()
		}
	}
}

// take pops up to 256 tasks from ready hosts and marks them in flight. It
// returns how long to sleep when there is nothing to release.
func (f *Frontier) take() ([]queuedTask, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for f.waiting.Len() > 0 && !f.waiting[0].nextAt.After(now) {
		h := heap.Pop(&f.waiting).(*host)
		f.scheduleLocked(h)
	}
	var out []queuedTask
	for len(f.ready) > 0 && len(out) < 256 && !f.budgetSpentLocked() {
		h := f.ready[0]
		f.ready = f.ready[1:]
		h.inReady = false
		qt, err := f.popLocked(h)
		if err != nil {
			f.log.Error("cannot read host queue; will retry", "host", h.key, "err", err)
			continue
		}
		if qt.task == nil {
			continue
		}
		h.inflight[qt.task.GetUrl()] = now
		f.inflight++
		f.released++
		// The next slot opens when this fetch is Done, unless more
		// concurrency is allowed; with a delay, parallel requests to a host
		// are spaced too.
		if f.cfg.Delay > 0 {
			h.nextAt = now.Add(f.cfg.Delay)
		}
		f.scheduleLocked(h)
		out = append(out, qt)
	}
	wait := time.Hour
	if f.waiting.Len() > 0 {
		wait = f.waiting[0].nextAt.Sub(now)
	}
	return out, wait
}

// popLocked returns h's next task, refilling its buffer from disk.
func (f *Frontier) popLocked(h *host) (queuedTask, error) {
	if len(h.buf) == 0 && h.queued > 0 {
		lo := queueKey(h.key, 0)
		if h.cursor != nil {
			lo = append(append([]byte(nil), h.cursor...), 0)
		}
		it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: store.PrefixEnd(queueKey(h.key, 0)[:len(h.key)+2])})
		if err != nil {
			return queuedTask{}, err
		}
		for valid := it.First(); valid && len(h.buf) < refillSize; valid = it.Next() {
			t := &lgv1.FetchTask{}
			key := append([]byte(nil), it.Key()...)
			h.cursor = key
			h.queued--
			if err := proto.Unmarshal(it.Value(), t); err != nil {
				f.log.Error("dropping corrupt queue entry", "key", hex.EncodeToString(key), "err", err)
				f.queued--
				continue
			}
			h.buf = append(h.buf, queuedTask{key: key, task: t})
		}
		if err := it.Close(); err != nil {
			return queuedTask{}, err
		}
		if len(h.buf) == 0 {
			// The count was ahead of the disk (e.g. after a crash); trust
			// the disk.
			f.queued -= h.queued
			h.queued = 0
		}
	}
	if len(h.buf) == 0 {
		return queuedTask{}, nil
	}
	qt := h.buf[0]
	h.buf = h.buf[1:]
	f.queued--
	return qt, nil
}

// release publishes tasks and then removes them from the queues. A crash
// between the two republishes them with the same message id, which
// JetStream's duplicate window drops.
func (f *Frontier) release(ctx context.Context, batch []queuedTask) error {
	now := f.now().UnixNano()
	waits := make([]func() error, 0, len(batch))
	for _, qt := range batch {
		qt.task.ReleasedAt = now
		data, err := proto.Marshal(qt.task)
		if err != nil {
			return err
		}
		shard := urlnorm.Shard(urlnorm.Host(qt.task.GetUrl()), f.cfg.Shards)
		w, err := f.pub.PublishTask(ctx, fmt.Sprintf("fetch.%d", shard), hex.EncodeToString(qt.key), data)
		if err != nil {
			return fmt.Errorf("frontier: cannot publish fetch task: %w", err)
		}
		waits = append(waits, w)
	}
	for _, w := range waits {
		if err := w(); err != nil {
			return fmt.Errorf("frontier: fetch task not stored: %w", err)
		}
	}
	b := f.db.NewBatch()
	defer b.Close()
	for _, qt := range batch {
		if err := b.Delete(qt.key, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.NoSync)
}

func (f *Frontier) expireLeases() {
	f.mu.Lock()
	defer f.mu.Unlock()
	deadline := f.now().Add(-f.cfg.LeaseTimeout)
	for _, h := range f.hosts {
		for u, at := range h.inflight {
			if at.Before(deadline) {
				f.log.Warn("no result for released URL; freeing its host slot", "url", u)
				delete(h.inflight, u)
				f.inflight--
				f.scheduleLocked(h)
			}
		}
	}
}

// hostHeap orders hosts by their next allowed start.
type hostHeap []*host

func (h hostHeap) Len() int           { return len(h) }
func (h hostHeap) Less(i, j int) bool { return h[i].nextAt.Before(h[j].nextAt) }
func (h hostHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].heapIdx = i; h[j].heapIdx = j }
func (h *hostHeap) Push(x any)        { e := x.(*host); e.heapIdx = len(*h); *h = append(*h, e) }
func (h *hostHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}
