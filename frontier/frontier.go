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
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
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
	// RecrawlOnly makes a run that fetches only the pages RevisitNow
	// queues (the recrawl command): it reads only the hosts' recrawl
	// queues, so the crawl's wait untouched for the next crawl; it queues
	// none of the links it finds and no due revisit, and RevisitNow leaves
	// the pages' scheduled revisits in place, so a recrawl given up halfway
	// loses none.
	RecrawlOnly bool
	// Shards is the cluster's shard count, used to pick fetch subjects.
	Shards int
	// LeaseTimeout is how long a released URL may go without a result
	// before its host's slot is freed (default DefaultLeaseTimeout). The
	// fetch task itself is redelivered by JetStream; this only keeps a lost
	// task from blocking its host forever.
	LeaseTimeout time.Duration

	// IgnoreRobots skips robots.txt entirely (default false: obey it).
	IgnoreRobots bool
	// RobotsTTL is how long a fetched robots.txt is trusted (default
	// DefaultRobotsTTL).
	RobotsTTL time.Duration
	// MaxCrawlDelay caps a robots.txt Crawl-delay (default
	// DefaultMaxCrawlDelay).
	MaxCrawlDelay time.Duration

	// MaxAttempts is how often a URL is fetched when it fails with 429, 503
	// or a network error (default DefaultMaxAttempts).
	MaxAttempts int
	// RetryBackoff is the first pause of a failing host; it doubles with
	// every consecutive failure up to MaxBackoff (defaults
	// DefaultRetryBackoff, DefaultMaxBackoff). A Retry-After header
	// replaces it, up to MaxBackoff.
	RetryBackoff, MaxBackoff time.Duration
	// MaxHostFailures consecutive failures give a host up: its queue is
	// dropped with a recorded reason (default DefaultMaxHostFailures).
	MaxHostFailures int

	// MaxPagesPerHost caps the URLs admitted per host; 0 (the default)
	// means no limit.
	MaxPagesPerHost int
	// MaxURLLength, MaxRepeatedSegments and MaxQueryParams reject URLs
	// that look like traps (defaults DefaultMaxURLLength,
	// DefaultMaxRepeatedSegments, DefaultMaxQueryParams).
	MaxURLLength, MaxRepeatedSegments, MaxQueryParams int

	// Revisit is the first interval between two fetches of a page (default
	// DefaultRevisit; negative: never revisit). It then adapts to how
	// often the page's links change, within MinRevisit and MaxRevisit
	// (defaults DefaultMinRevisit, DefaultMaxRevisit). See revisit.go.
	Revisit, MinRevisit, MaxRevisit time.Duration
}

// Defaults of the robots, retry and trap settings of Config.
const (
	DefaultRobotsTTL           = 24 * time.Hour
	DefaultMaxCrawlDelay       = 30 * time.Second
	DefaultMaxAttempts         = 3
	DefaultRetryBackoff        = time.Second
	DefaultMaxBackoff          = 5 * time.Minute
	DefaultMaxHostFailures     = 10
	DefaultMaxURLLength        = 1024
	DefaultMaxRepeatedSegments = 3
	DefaultMaxQueryParams      = 12
)

// withDefaults fills zero fields with their documented defaults.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Scope == "" {
		c.Scope = ScopeHost
	}
	def(&c.PerHostConcurrency, DefaultPerHostConcurrency)
	defDur(&c.LeaseTimeout, DefaultLeaseTimeout)
	defDur(&c.RobotsTTL, DefaultRobotsTTL)
	defDur(&c.MaxCrawlDelay, DefaultMaxCrawlDelay)
	def(&c.MaxAttempts, DefaultMaxAttempts)
	defDur(&c.RetryBackoff, DefaultRetryBackoff)
	defDur(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.MaxHostFailures, DefaultMaxHostFailures)
	def(&c.MaxURLLength, DefaultMaxURLLength)
	def(&c.MaxRepeatedSegments, DefaultMaxRepeatedSegments)
	def(&c.MaxQueryParams, DefaultMaxQueryParams)
	defDur(&c.Revisit, DefaultRevisit)
	if c.Revisit > 0 {
		defDur(&c.MinRevisit, min(DefaultMinRevisit, c.Revisit))
		defDur(&c.MaxRevisit, max(DefaultMaxRevisit, c.Revisit))
	}
	return c
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
	for _, v := range []struct {
		name string
		v    int
	}{{"max attempts", c.MaxAttempts}, {"max host failures", c.MaxHostFailures}, {"max pages per host", c.MaxPagesPerHost},
		{"max URL length", c.MaxURLLength}, {"max repeated segments", c.MaxRepeatedSegments}, {"max query params", c.MaxQueryParams}} {
		if v.v < 0 {
			errs = append(errs, fmt.Errorf("frontier: %s %d is negative", v.name, v.v))
		}
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"robots TTL", c.RobotsTTL}, {"max crawl delay", c.MaxCrawlDelay}, {"retry backoff", c.RetryBackoff}, {"max backoff", c.MaxBackoff},
		{"min revisit", c.MinRevisit}, {"max revisit", c.MaxRevisit}} {
		if v.d < 0 {
			errs = append(errs, fmt.Errorf("frontier: %s %v is negative", v.name, v.d))
		}
	}
	if c.MinRevisit > 0 && c.MaxRevisit > 0 && c.MinRevisit > c.MaxRevisit {
		errs = append(errs, fmt.Errorf("frontier: min revisit %v is longer than max revisit %v", c.MinRevisit, c.MaxRevisit))
	} else if c.Revisit > 0 && (c.MinRevisit > 0 && c.MinRevisit > c.Revisit || c.MaxRevisit > 0 && c.MaxRevisit < c.Revisit) {
		errs = append(errs, fmt.Errorf("frontier: revisit %v must be between min revisit %v and max revisit %v", c.Revisit, c.MinRevisit, c.MaxRevisit))
	}
	return errors.Join(errs...)
}

// Publisher publishes one fetch task (or, on a pages subject, the result
// the frontier records for a revisit robots.txt now forbids). msgID
// deduplicates a task republished after a crash. Every call's outcome must be known when the returned wait
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
	// ReadyHosts may release a URL now.
	ReadyHosts int
}

// Frontier schedules the fetches of one shard node. It is safe for
// concurrent use.
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

	uncommitted map[*Pending]uint64 // offers in flight -> their lowest sequence number
	blocked     map[*host]struct{}  // hosts whose next entries are not visible yet

	nextDue      int64 // Unix ms of the earliest scheduled revisit; 0: none
	promoting    bool  // promoteDue is scanning
	promotingMin int64 // earliest revisit scheduled during that scan
}

// A host's URLs wait in two queues, lanes: the pages RevisitNow queues (a
// recrawl asked for them now) go before those the crawl found.
const (
	laneRecrawl = iota
	laneCrawl
	lanes
)

// lanePrefix is the key prefix of each lane's queues.
var lanePrefix = [lanes]byte{store.PrefixRecrawlQueue, store.PrefixQueue}

// lane is one of a host's queues.
type lane struct {
	queued int64        // on disk, not yet buffered
	buf    []queuedTask // read ahead from disk, in order
	cursor []byte       // last queue key read into buf
}

type host struct {
	key      string
	lanes    [lanes]lane
	inflight map[string]time.Time // url -> release time
	nextAt   time.Time
	inReady  bool
	heapIdx  int // -1 when not in waiting

	robots         *robots // nil: not known yet
	robotsInFlight bool
	robotsFails    int
	fails          int       // consecutive failed fetches
	givenUp        string    // reason the host was given up, "" if not
	givenUpSkip    string    // skip reason of its URLs, if not SkipHostGivenUp
	givenUpAt      time.Time // a host given up for failures is tried again MinRevisit later
	admitted       int64     // URLs ever queued, for MaxPagesPerHost; -1 unknown
}

type queuedTask struct {
	key    []byte // nil for tasks not on disk (robots.txt)
	lane   int
	task   *lgv1.FetchTask
	reason string // why a dropped task is not fetched
}

// Open loads the frontier's persistent state (scope, queue sizes) from db.
// Call Run to start releasing.
func Open(db *store.DB, cfg Config, pub Publisher, log *slog.Logger) (*Frontier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Frontier{
		db: db, cfg: cfg, pub: pub, log: log, now: time.Now,
		hosts: make(map[string]*host), scopeHost: make(map[string]bool), scopeDom: make(map[string]bool),
		wake: make(chan struct{}, 1), seen: newSeenCache(seenCacheSize),
		uncommitted: make(map[*Pending]uint64), blocked: make(map[*host]struct{}),
	}
	if err := f.loadNextDue(); err != nil {
		return nil, err
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
	for _, l := range f.lanes() {
		if err := f.loadLane(l); err != nil {
			return err
		}
	}
	// A task's message id is its queue key, and JetStream drops an id it
	// saw in its duplicate window. The keys left in the queue say nothing
	// of those already released, so a shard restarted with an empty queue
	// numbered its new tasks from 0 again and JetStream dropped them. The
	// clock's nanoseconds are past every number an earlier run used.
	f.seq = max(f.seq, uint64(time.Now().UnixNano()))
	for _, h := range f.hosts {
		f.scheduleLocked(h)
	}
	return nil
}

// loadLane counts the URLs queued in lane l.
func (f *Frontier) loadLane(l int) error {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: []byte{lanePrefix[l]}, UpperBound: []byte{lanePrefix[l] + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		hk, seq, ok := splitQueueKey(it.Key())
		if !ok {
			continue
		}
		f.hostLocked(hk).lanes[l].queued++
		f.queued++
		f.seq = max(f.seq, seq)
	}
	return it.Error()
}

// lanes returns the lanes this run reads, in order: a RecrawlOnly run only
// the recrawls'.
func (f *Frontier) lanes() []int {
	if f.cfg.RecrawlOnly {
		return recrawlLanes
	}
	return allLanes
}

var allLanes, recrawlLanes = []int{laneRecrawl, laneCrawl}, []int{laneRecrawl}

func queueKey(prefix byte, hostKey string, seq uint64) []byte {
	k := make([]byte, 0, 2+len(hostKey)+8)
	k = append(k, prefix)
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
		h = &host{key: key, inflight: make(map[string]time.Time), heapIdx: -1, admitted: -1}
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
	counts map[laneKey]int // URLs queued
	seen   map[uint64]struct{}
}

// laneKey names a host's lane.
type laneKey struct {
	host string
	lane int
}

// NewPending returns an empty Pending.
func NewPending() *Pending {
	return &Pending{counts: make(map[laneKey]int), seen: make(map[uint64]struct{})}
}

// Offer queues url (a page, or a sitemap if sitemap is set) at depth within
// b if it is in scope, within the depth and per-host limits, does not look
// like a trap and was not seen before; p records it for Committed. Skips
// other than scope are counted by reason in b.
func (f *Frontier) Offer(b *store.Batch, p *Pending, url string, depth int32, sitemap bool) error {
	if f.cfg.RecrawlOnly || !f.InScope(url) {
		return nil
	}
	h := f.seen.hash(url)
	if _, dup := p.seen[h]; dup || f.seen.has(h) {
		return nil
	}
	if f.cfg.MaxDepth > 0 && int(depth) > f.cfg.MaxDepth && !sitemap {
		b.Count(CounterSkipped(SkipDepth), 1)
		return nil
	}
	if reason := trapReason(&f.cfg, url); reason != "" {
		b.Count(CounterSkipped(reason), 1)
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
	hk := urlnorm.HostSURT(urlnorm.Host(url))
	if f.cfg.MaxPagesPerHost > 0 && !sitemap {
		n, err := f.admit(b, hk)
		if err != nil {
			return err
		}
		if n > int64(f.cfg.MaxPagesPerHost) {
			b.Count(CounterSkipped(SkipHostBudget), 1)
			return nil
		}
	}
	if err := b.Set(seenKey, nil, nil); err != nil {
		return err
	}
	p.seen[h] = struct{}{}
	kind := lgv1.FetchKind_FETCH_KIND_PAGE
	if sitemap {
		kind = lgv1.FetchKind_FETCH_KIND_SITEMAP
		b.Count(counterSitemapsQueued, 1)
	}
	return f.enqueue(b.Batch, p, hk, &lgv1.FetchTask{Url: url, Depth: depth, Kind: kind})
}

// Requeue queues task again, for another attempt after a transient failure.
func (f *Frontier) Requeue(b *store.Batch, p *Pending, task *lgv1.FetchTask) error {
	b.Count(counterRetries, 1)
	return f.enqueue(b.Batch, p, urlnorm.HostSURT(urlnorm.Host(task.GetUrl())), task)
}

func (f *Frontier) enqueue(b *pebble.Batch, p *Pending, hk string, task *lgv1.FetchTask) error {
	l := laneCrawl
	if task.GetRecrawl() || f.cfg.RecrawlOnly {
		l = laneRecrawl
	}
	f.mu.Lock()
	f.seq++
	seq := f.seq
	if _, ok := f.uncommitted[p]; !ok {
		f.uncommitted[p] = seq
	}
	f.mu.Unlock()
	data, err := proto.Marshal(&lgv1.FetchTask{Url: task.GetUrl(), Depth: task.GetDepth(), Kind: task.GetKind(), Attempt: task.GetAttempt(),
		Revisit: task.GetRevisit(), Etag: task.GetEtag(), LastModified: task.GetLastModified(), Recrawl: l == laneRecrawl})
	if err != nil {
		return err
	}
	p.counts[laneKey{hk, l}]++
	return b.Set(queueKey(lanePrefix[l], hk, seq), data, nil)
}

// admit counts one more URL admitted for host hk and returns the count.
func (f *Frontier) admit(b *store.Batch, hk string) (int64, error) {
	f.mu.Lock()
	h := f.hostLocked(hk)
	n := h.admitted
	f.mu.Unlock()
	if f.cfg.MaxPagesPerHost > 0 && n >= int64(f.cfg.MaxPagesPerHost) {
		return n + 1, nil // over budget for good: no need to write (link farms)
	}
	key := append([]byte{store.PrefixHost}, hk...)
	if n < 0 {
		raw, closer, err := b.Get(key)
		switch {
		case err == nil:
			n, _ = binary.Varint(raw)
			closer.Close()
		case errors.Is(err, pebble.ErrNotFound):
			n = 0
		default:
			return 0, err
		}
	}
	n++
	f.mu.Lock()
	h.admitted = n
	f.mu.Unlock()
	return n, b.Set(key, binary.AppendVarint(nil, n), nil)
}

// Committed tells the scheduler that the batch holding p's offers has
// committed: their URLs are now queued and seen.
func (f *Frontier) Committed(p *Pending) {
	for h := range p.seen {
		f.seen.add(h)
	}
	f.mu.Lock()
	delete(f.uncommitted, p)
	for k, n := range p.counts {
		h := f.hostLocked(k.host)
		h.lanes[k.lane].queued += int64(n)
		f.queued += int64(n)
		f.scheduleLocked(h)
	}
	f.unblockLocked()
	f.mu.Unlock()
	clear(p.counts)
	clear(p.seen)
	f.signal()
}

// Abandon tells the frontier that the batch holding p's offers will not
// commit.
func (f *Frontier) Abandon(p *Pending) {
	f.mu.Lock()
	delete(f.uncommitted, p)
	f.unblockLocked()
	f.mu.Unlock()
	clear(p.counts)
	clear(p.seen)
	f.signal()
}

// visibleLocked is the highest queue sequence number below which every
// entry is committed (or abandoned). Queue reads stop there: two writers
// (the link and the page appliers) commit in their own order, and a host's
// read cursor must never pass an entry that has yet to appear.
func (f *Frontier) visibleLocked() uint64 {
	v := f.seq
	for _, low := range f.uncommitted {
		v = min(v, low-1)
	}
	return v
}

// unblockLocked reschedules hosts whose queue reads stopped at the
// visibility limit.
func (f *Frontier) unblockLocked() {
	for h := range f.blocked {
		delete(f.blocked, h)
		f.scheduleLocked(h)
	}
}

// Outcome says how a fetch ended, for Done.
type Outcome struct {
	URL  string
	Kind lgv1.FetchKind
	// Status is the HTTP status, 0 if there was no response.
	Status int32
	// ErrorReason is set when there was no response.
	ErrorReason string
	// RetryAfter is the server's Retry-After, 0 if none.
	RetryAfter time.Duration
	// RobotsTxt is the body of a robots.txt fetch.
	RobotsTxt []byte
}

// Transient reports whether a fetch outcome is worth another attempt: the
// server asked to come back later, or the network failed in a way that may
// pass.
func (o Outcome) Transient() bool {
	switch o.ErrorReason {
	case "timeout", "reset", "refused":
		return true
	}
	return o.Status == 429 || o.Status == 503
}

// Done tells the frontier that a fetch it released has ended, and how: it
// frees the host's slot, applies the delay (or the robots Crawl-delay, or
// Retry-After, or a backoff after failures) and records robots.txt rules.
func (f *Frontier) Done(o Outcome) {
	hk := urlnorm.HostSURT(urlnorm.Host(o.URL))
	f.mu.Lock()
	defer f.signal()
	defer f.mu.Unlock()
	h := f.hosts[hk]
	if h == nil {
		return
	}
	if _, ok := h.inflight[o.URL]; ok {
		delete(h.inflight, o.URL)
		f.inflight--
	}
	now := f.now()
	if o.Kind == lgv1.FetchKind_FETCH_KIND_ROBOTS {
		h.robotsInFlight = false
		failed := o.ErrorReason != "" || o.Status >= 500
		if failed {
			h.robotsFails++
		} else {
			h.robotsFails = 0
		}
		h.robots = parseRobots(o.Status, o.ErrorReason, o.RobotsTxt, now, f.cfg.RobotsTTL, f.cfg.MaxCrawlDelay)
		if failed {
			// RFC 9309: an unreachable robots.txt disallows everything for
			// now. Its URLs wait while robots.txt is retried with backoff,
			// and the host is given up after MaxAttempts tries.
			h.robots.expires = now.Add(backoff(f.cfg.RetryBackoff, h.robotsFails, f.cfg.MaxBackoff))
			h.nextAt = h.robots.expires
			switch {
			case h.givenUp != "":
			case o.ErrorReason == lgv1.ErrorReasonPrivateAddress:
				// It will never be allowed: no point in trying again.
				h.givenUp, h.givenUpSkip = givenUpPrivate, SkipPrivateAddress
			case h.robotsFails >= f.cfg.MaxAttempts:
				h.givenUp = fmt.Sprintf("robots.txt unreachable after %d attempts, last: %s", h.robotsFails, describe(o))
				h.givenUpAt = now
			}
			if h.givenUp != "" {
				h.nextAt = now
				f.log.Warn("giving up host", "host", h.key, "reason", h.givenUp)
			}
			f.scheduleLocked(h)
			return
		}
	}
	if o.ErrorReason == lgv1.ErrorReasonPrivateAddress {
		// The page itself is refused when robots.txt was still valid from
		// a run that allowed private networks. Its other URLs would be
		// refused too: drop them now, as after a refused robots.txt.
		if h.givenUp == "" {
			h.givenUp, h.givenUpSkip = givenUpPrivate, SkipPrivateAddress
			f.log.Warn("giving up host", "host", h.key, "reason", h.givenUp)
		}
		h.nextAt = now
		f.scheduleLocked(h)
		return
	}
	wait := f.delayLocked(h)
	switch {
	case o.Transient() || (o.Status >= 500 && o.Status < 600):
		h.fails++
		wait = backoff(max(f.cfg.RetryBackoff, wait), h.fails, f.cfg.MaxBackoff)
		if o.RetryAfter > 0 {
			wait = min(o.RetryAfter, f.cfg.MaxBackoff)
		}
		if h.fails >= f.cfg.MaxHostFailures && h.givenUp == "" {
			h.givenUp = fmt.Sprintf("%d consecutive failures, last: %s", h.fails, describe(o))
			h.givenUpAt = now
			f.log.Warn("giving up host", "host", h.key, "reason", h.givenUp)
		}
	case o.ErrorReason == "":
		h.fails = 0
	}
	if next := now.Add(wait); next.After(h.nextAt) {
		h.nextAt = next
	}
	f.scheduleLocked(h)
}

// givenUpPrivate is why a host the workers refuse to connect to is given
// up; the flag is named because only the operator can change that.
const givenUpPrivate = "resolves to a private address (refused without --allow-private-networks)"

func describe(o Outcome) string {
	if o.ErrorReason != "" {
		return o.ErrorReason
	}
	return fmt.Sprintf("HTTP %d", o.Status)
}

// delayLocked is the least time between two requests to h: the configured
// delay, or the host's robots.txt Crawl-delay if longer.
func (f *Frontier) delayLocked(h *host) time.Duration {
	d := f.cfg.Delay
	if h.robots != nil {
		d = max(d, h.robots.crawlDelay)
	}
	return d
}

// Retry reports whether a failed fetch of task should be queued again
// (with Requeue) rather than recorded as final.
func (f *Frontier) Retry(task *lgv1.FetchTask, o Outcome) bool {
	if !o.Transient() || int(task.GetAttempt())+1 >= f.cfg.MaxAttempts {
		return false
	}
	hk := urlnorm.HostSURT(urlnorm.Host(task.GetUrl()))
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[hk]
	return h == nil || h.givenUp == ""
}

// Stats returns a snapshot of the frontier's counters.
func (f *Frontier) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Queued: f.queued, InFlight: f.inflight, Released: f.released, Hosts: len(f.hosts), ReadyHosts: len(f.ready)}
}

// Exhausted reports whether the frontier will release nothing more in this
// run without new URLs: nothing in flight, and nothing queued or the page
// budget spent.
func (f *Frontier) Exhausted() bool {
	if f.untilDue() == 0 {
		return false // revisits to queue
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight > 0 {
		return false
	}
	return f.queued == 0 || f.budgetSpentLocked()
}

// RevisitsDue reports whether some page is due for a revisit.
func (f *Frontier) RevisitsDue() bool { return f.untilDue() == 0 }

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
	if h.inReady || !h.hasWork() || len(h.inflight) >= f.cfg.PerHostConcurrency {
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
		if _, err := f.promoteDue(); err != nil {
			f.log.Error("cannot queue due revisits; will retry", "err", err)
		}
		batch, drops, wait := f.take()
		if d := f.untilDue(); d >= 0 {
			wait = max(min(wait, d), 10*time.Millisecond)
		}
		if len(batch)+len(drops) > 0 {
			if err := f.release(ctx, batch, drops); err != nil {
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

// take pops up to 256 tasks from ready hosts and marks them in flight; a
// host whose robots.txt is unknown or stale gets a robots.txt fetch first.
// Tasks that must not be fetched (robots disallowed, host given up) come
// back as drops, to be deleted with the released tasks. take returns how
// long to sleep when there is nothing to release.
func (f *Frontier) take() (out, drops []queuedTask, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for f.waiting.Len() > 0 && !f.waiting[0].nextAt.After(now) {
		h := heap.Pop(&f.waiting).(*host)
		f.scheduleLocked(h)
	}
	for len(f.ready) > 0 && len(out) < 256 && len(drops) < 4096 && !f.budgetSpentLocked() {
		h := f.ready[0]
		f.ready = f.ready[1:]
		h.inReady = false
		if h.nextAt.After(now) {
			// Done pushed the host's next slot back (delay, Crawl-delay,
			// Retry-After, backoff) after it was made ready.
			f.scheduleLocked(h)
			continue
		}
		qt, err := f.popLocked(h)
		if err != nil {
			f.log.Error("cannot read host queue; will retry", "host", h.key, "err", err)
			continue
		}
		if qt.task == nil {
			continue
		}
		if h.givenUp != "" && h.givenUpSkip == "" && f.cfg.MinRevisit > 0 && !now.Before(h.givenUpAt.Add(f.cfg.MinRevisit)) {
			// A host given up for failures may be back by the time its
			// pages' revisits come round again (they are kept, see
			// keepRevisit): try it afresh rather than never. A private
			// address stays refused for as long as the process runs.
			f.log.Info("trying given-up host again", "host", h.key, "given_up", h.givenUp)
			h.givenUp, h.fails, h.robotsFails = "", 0, 0
		}
		if h.givenUp != "" {
			qt.reason = cmp.Or(h.givenUpSkip, SkipHostGivenUp)
			drops = append(drops, qt)
			f.scheduleLocked(h)
			continue
		}
		if !f.cfg.IgnoreRobots {
			if h.robots == nil {
				if err := f.loadRobotsLocked(h); err != nil {
					f.log.Error("cannot read stored robots.txt; fetching it again", "host", h.key, "err", err)
				}
			}
			if h.robots == nil || !h.robots.expires.After(now) || h.robots.unreachable {
				// Put the task back and fetch robots.txt first; the host
				// stays out of the rotation until Done hears of it.
				ln := &h.lanes[qt.lane]
				ln.buf = append([]queuedTask{qt}, ln.buf...)
				f.queued++
				if h.robots != nil && h.robots.unreachable && h.robots.expires.After(now) {
					h.nextAt = h.robots.expires // not yet time to try again
					f.scheduleLocked(h)
					continue
				}
				if !h.robotsInFlight {
					h.robotsInFlight = true
					out = append(out, f.launchLocked(h, queuedTask{task: &lgv1.FetchTask{
						Url: robotsURL(qt.task.GetUrl()), Kind: lgv1.FetchKind_FETCH_KIND_ROBOTS,
					}}, now))
				}
				continue
			}
			if qt.task.GetKind() != lgv1.FetchKind_FETCH_KIND_SITEMAP && !h.robots.allowed(qt.task.GetUrl()) {
				qt.reason = SkipRobotsDisallowed
				drops = append(drops, qt)
				f.scheduleLocked(h)
				continue
			}
		}
		if countsAsPage(qt.task) {
			f.released++
		}
		out = append(out, f.launchLocked(h, qt, now))
	}
	wait = time.Hour
	if f.waiting.Len() > 0 {
		wait = f.waiting[0].nextAt.Sub(now)
	}
	return out, drops, wait
}

// launchLocked marks qt in flight on h and returns it.
func (f *Frontier) launchLocked(h *host, qt queuedTask, now time.Time) queuedTask {
	h.inflight[qt.task.GetUrl()] = now
	f.inflight++
	// The next slot opens when this fetch is Done, unless more concurrency
	// is allowed; with a delay, parallel requests to a host are spaced too.
	if d := f.delayLocked(h); d > 0 {
		h.nextAt = now.Add(d)
	}
	f.scheduleLocked(h)
	return qt
}

// robotsURL is the robots.txt URL of the scheme and host of pageURL.
func robotsURL(pageURL string) string {
	scheme, _, _ := strings.Cut(pageURL, "://")
	return scheme + "://" + urlnorm.Host(pageURL) + "/robots.txt"
}

// popLocked returns h's next task, recrawls first, refilling a lane's
// buffer from disk.
func (f *Frontier) popLocked(h *host) (queuedTask, error) {
	for _, l := range f.lanes() {
		ln := &h.lanes[l]
		if len(ln.buf) == 0 && ln.queued > 0 {
			if err := f.refillLocked(h, l); err != nil {
				return queuedTask{}, err
			}
		}
		if len(ln.buf) > 0 {
			qt := ln.buf[0]
			ln.buf = ln.buf[1:]
			f.queued--
			return qt, nil
		}
	}
	return queuedTask{}, nil
}

// refillLocked reads ahead the next entries of h's lane l.
func (f *Frontier) refillLocked(h *host, l int) error {
	ln := &h.lanes[l]
	lo := queueKey(lanePrefix[l], h.key, 0)
	if ln.cursor != nil {
		lo = append(append([]byte(nil), ln.cursor...), 0)
	}
	visible := f.visibleLocked()
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: queueKey(lanePrefix[l], h.key, visible+1)})
	if err != nil {
		return err
	}
	for valid := it.First(); valid && len(ln.buf) < refillSize; valid = it.Next() {
		t := &lgv1.FetchTask{}
		key := append([]byte(nil), it.Key()...)
		ln.cursor = key
		ln.queued--
		if err := proto.Unmarshal(it.Value(), t); err != nil {
			f.log.Error("dropping corrupt queue entry", "key", hex.EncodeToString(key), "err", err)
			f.queued--
			continue
		}
		ln.buf = append(ln.buf, queuedTask{key: key, lane: l, task: t})
	}
	if err := it.Close(); err != nil {
		return err
	}
	switch {
	case len(ln.buf) > 0:
	case visible < f.seq:
		// The rest is behind an uncommitted batch; wait for it.
		f.blocked[h] = struct{}{}
	default:
		// The count was ahead of the disk (e.g. after a crash); trust
		// the disk.
		f.queued -= ln.queued
		ln.queued = 0
	}
	return nil
}

// hasWork reports whether h has URLs queued in any lane.
func (h *host) hasWork() bool {
	for _, ln := range h.lanes {
		if ln.queued > 0 || len(ln.buf) > 0 {
			return true
		}
	}
	return false
}

// release publishes tasks and then removes them, and the drops, from the
// queues. A crash between the two republishes them with the same message
// id, which JetStream's duplicate window drops.
func (f *Frontier) release(ctx context.Context, batch, drops []queuedTask) error {
	now := f.now().UnixNano()
	waits := make([]func() error, 0, len(batch))
	for _, qt := range batch {
		qt.task.ReleasedAt = now
		data, err := proto.Marshal(qt.task)
		if err != nil {
			return err
		}
		shard := urlnorm.Shard(urlnorm.Host(qt.task.GetUrl()), f.cfg.Shards)
		id := hex.EncodeToString(qt.key)
		if qt.key == nil { // robots.txt: one per host and expiry
			id = fmt.Sprintf("robots %s %d", qt.task.GetUrl(), now)
		}
		w, err := f.pub.PublishTask(ctx, bus.FetchSubject(shard), id, data)
		if err != nil {
			return fmt.Errorf("frontier: cannot publish fetch task: %w", err)
		}
		waits = append(waits, w)
	}
	// A page robots.txt now forbids is not fetched again, but its links
	// are no longer seen either: record that for it, through the page's
	// shard like a fetch result, before the revisit is deleted.
	for _, qt := range drops {
		if !qt.task.GetRevisit() || qt.reason != SkipRobotsDisallowed {
			continue
		}
		data, err := proto.Marshal(&lgv1.PageResult{
			Url: qt.task.GetUrl(), Depth: qt.task.GetDepth(), Kind: qt.task.GetKind(), FetchedAt: now,
			ErrorReason: lgv1.ErrorReasonRobotsDisallowed,
		})
		if err != nil {
			return err
		}
		shard := urlnorm.Shard(urlnorm.Host(qt.task.GetUrl()), f.cfg.Shards)
		w, err := f.pub.PublishTask(ctx, bus.PagesSubject(shard), "", data)
		if err != nil {
			return fmt.Errorf("frontier: cannot publish a robots-disallowed result: %w", err)
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		err := w()
		if errors.Is(err, bus.ErrDuplicate) && i < len(batch) {
			// Released by this frontier's previous life, which crashed
			// before deleting it from the queue: its result came or
			// will come without this release.
			f.forget(batch[i])
			continue
		}
		if err != nil {
			return fmt.Errorf("frontier: fetch task not stored: %w", err)
		}
	}
	b := f.db.NewWriteBatch()
	defer b.Close()
	var dues []int64
	for _, qt := range append(batch, drops...) {
		if qt.key == nil {
			continue
		}
		if err := b.Delete(qt.key, nil); err != nil {
			return err
		}
		if qt.reason == "" {
			continue
		}
		b.Count(CounterSkipped(qt.reason), 1)
		if qt.task.GetRevisit() && qt.reason == SkipRobotsDisallowed {
			continue // its result, published above, schedules it
		}
		// A page fetched before keeps its revisit, in the batch that
		// takes it off the queue, so a crash cannot lose it either.
		due, err := f.keepRevisit(b, qt.task)
		if err != nil {
			return err
		}
		dues = append(dues, due)
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("frontier: cannot take released tasks off their queues: %w", err)
	}
	for _, due := range dues {
		f.noteDue(due)
	}
	return nil
}

// forget takes back the in-flight mark of a task that was not released.
func (f *Frontier) forget(qt queuedTask) {
	f.mu.Lock()
	defer f.signal()
	defer f.mu.Unlock()
	h := f.hosts[urlnorm.HostSURT(urlnorm.Host(qt.task.GetUrl()))]
	if h == nil {
		return
	}
	if _, ok := h.inflight[qt.task.GetUrl()]; ok {
		delete(h.inflight, qt.task.GetUrl())
		f.inflight--
		if countsAsPage(qt.task) {
			f.released--
		}
		f.scheduleLocked(h)
	}
}

// countsAsPage reports whether a released task counts against MaxPages:
// pages do, the sitemaps the crawl finds on its way do not (the summary's
// pages fetched does not count them either).
func countsAsPage(t *lgv1.FetchTask) bool {
	return t.GetKind() != lgv1.FetchKind_FETCH_KIND_SITEMAP
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
