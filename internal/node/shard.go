package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// shardBatch is the most stream messages applied in one Pebble batch.
const shardBatch = 64

// Shard is the shard role for shards [lo, hi): it records fetch results of
// its pages, applies edge updates to its reverse map, and runs the frontier
// of its hosts.
type Shard struct {
	db  *store.DB
	ix  *indexer.Index
	fr  *frontier.Frontier
	pub bus.Publisher
	bus bus.Config
	log *slog.Logger

	pages, links jetstream.Consumer
	// linksLimit bounds the LINKS messages the shard publishes: the
	// server's max_payload less headroom.
	linksLimit int
	// lo and hi bound the shards this node owns: a page's edge batches
	// for them are applied where the page is recorded (see
	// preparePages), not sent through the links stream.
	lo, hi int
	// applyMu is held by a Txn that applies edge batches from its first
	// ApplyLinks to its commit: the index's aggregates are read, changed
	// and written by one such Txn at a time, and both consumers apply.
	applyMu sync.Mutex
	// lastCommit is closed once the last Txn that applied local edge
	// batches has committed (or failed to); guarded by applyMu. See
	// applyLocal.
	lastCommit chan struct{}

	// pendingPages counts the pages of batches prepared but not committed.
	pendingMu    sync.Mutex
	pendingPages map[string]int
}

func newShard(ctx context.Context, db *store.DB, js jetstream.JetStream, bc bus.Config, lo, hi int, fc frontier.Config, log *slog.Logger) (*Shard, error) {
	s := &Shard{pendingPages: make(map[string]int), db: db, ix: indexer.New(db, bc.Shards), pub: bus.Publisher{JS: js}, bus: bc, log: log,
		linksLimit: bus.MaxData(js), lo: lo, hi: hi}
	fc.Shards = bc.Shards
	fr, err := frontier.Open(db, fc, s.pub, log.With("component", "frontier"))
	if err != nil {
		return nil, err
	}
	s.fr = fr
	if s.pages, err = bus.ShardConsumer(ctx, js, bus.PagesStream, lo, hi, bc.Shards, bc); err != nil {
		return nil, err
	}
	if s.links, err = bus.ShardConsumer(ctx, js, bus.LinksStream, lo, hi, bc.Shards, bc); err != nil {
		return nil, err
	}
	return s, nil
}

// Run consumes both streams and releases fetch tasks until ctx is done.
func (s *Shard) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bus.ConsumePipelined(ctx, s.pages, shardBatch, s.log, s.preparePages) })
	g.Go(func() error { return bus.ConsumePipelined(ctx, s.links, shardBatch, s.log, s.prepareLinks) })
	g.Go(func() error { return s.fr.Run(ctx) })
	return g.Wait()
}

// preparePages records fetch results and publishes their edge batches;
// the returned finish waits until JetStream has stored the edge batches and
// only then commits, so a crash in between re-sends them (idempotently)
// instead of losing them. While one batch waits, the next is prepared,
// unless it holds a page of the waiting batch, whose records it must read.
//
// When every edge batch is for a shard of this node and nothing else is to
// publish (the rule in an all-in-one crawl), the batches are applied in the
// same Txn, which finish commits (see applyLocal) and makes durable. That
// spares each page's links a trip through JetStream, its storage and a
// second decoding: on bench/e2e it took a page from about 1.2 to 1.0 ms of
// CPU.
//
// Not every result is a page to record: a robots.txt result feeds the
// frontier (rules, and the sitemaps it names), a fetch refused as a private
// address is only counted, and a transient failure with attempts left goes
// back to the queue instead.
func (s *Shard) preparePages(ctx context.Context, msgs []jetstream.Msg, barrier func()) (func() error, error) {
	results := make([]*lgv1.PageResult, 0, len(msgs))
	conflict := false
	s.pendingMu.Lock()
	for _, m := range msgs {
		first := &lgv1.PageResult{}
		if err := proto.Unmarshal(m.Data(), first); err != nil {
			s.log.Error("dropping malformed page result", "err", err)
			continue
		}
		// Recorded one by one: the first keeps none of the others.
		more := first.More
		first.More = nil
		for _, pr := range append([]*lgv1.PageResult{first}, more...) {
			if _, ok := s.pendingPages[pr.GetUrl()]; ok {
				conflict = true
			}
			results = append(results, pr)
		}
	}
	s.pendingMu.Unlock()
	// The fetches have ended: free their hosts' slots now rather than once
	// recorded (politeness is about the servers, not our index), so that
	// the next fetches overlap with this batch. Retries become visible
	// only at Committed, after their Retry-After is set here.
	for _, pr := range results {
		if o := outcome(pr); o.ErrorReason != lgv1.ErrorReasonRobotsDisallowed { // not a fetch: the frontier recorded it
			s.fr.Done(o)
		}
	}
	if conflict {
		barrier()
	}

	txn := s.ix.Begin()
	b := txn.Batch()
	pending := frontier.NewPending()
	var waits []func() error
	fail := func(err error) (func() error, error) {
		txn.Close()
		s.fr.Abandon(pending)
		return nil, err
	}
	groups := linkGroups{limit: s.linksLimit}
	publish := func(shard int, data []byte) error {
		w, err := s.pub.Publish(ctx, bus.LinksSubject(shard), "", data)
		if err != nil {
			return err
		}
		waits = append(waits, w)
		return nil
	}
	add := func(shard int, lb *lgv1.LinkBatch) error { return groups.add(shard, lb, publish) }
	var local []localBatch
	for _, pr := range results {
		o := outcome(pr)
		switch {
		case pr.GetKind() == lgv1.FetchKind_FETCH_KIND_ROBOTS:
			if err := s.recordRobots(b, pr, add); err != nil {
				return fail(err)
			}
			continue
		case pr.GetErrorReason() == lgv1.ErrorReasonPrivateAddress:
			// The worker refused to connect, so the page was not fetched
			// and its links are neither seen nor gone: recorded as a fetch
			// error they would all be lost as host_unreachable. It counts
			// as skipped, like the URLs of a host whose robots.txt was
			// refused, and keeps its record and links, and its revisit.
			b.Count(frontier.CounterSkipped(frontier.SkipPrivateAddress), 1)
			if err := s.fr.KeepRevisit(b, pr); err != nil {
				return fail(err)
			}
			continue
		case pr.GetErrorReason() == lgv1.ErrorReasonAbandoned && pr.GetRevisit():
			// Not fetched either, for a reason of ours: the page keeps
			// its record and links, as when refused above, and is tried
			// again at its next revisit. A new page is recorded as failed
			// below, so that it is not lost.
			b.Count(frontier.CounterSkipped(frontier.SkipAbandoned), 1)
			if err := s.fr.KeepRevisit(b, pr); err != nil {
				return fail(err)
			}
			continue
		case s.fr.Retry(&lgv1.FetchTask{Url: pr.GetUrl(), Attempt: pr.GetAttempt()}, o):
			if err := s.fr.Requeue(b, pending, &lgv1.FetchTask{Url: pr.GetUrl(), Depth: pr.GetDepth(), Kind: pr.GetKind(), Attempt: pr.GetAttempt() + 1,
				Revisit: pr.GetRevisit(), Etag: pr.GetRequestEtag(), LastModified: pr.GetRequestLastModified(), Recrawl: pr.GetRecrawl()}); err != nil {
				return fail(err)
			}
			continue
		}
		rec, err := txn.RecordFetch(pr)
		if err != nil {
			return fail(err)
		}
		if !rec.Stale {
			if err := s.fr.ScheduleRevisit(b, pr, rec.Changed); err != nil {
				return fail(err)
			}
		}
		for shard, lb := range rec.Batches {
			if shard >= s.lo && shard < s.hi {
				local = append(local, localBatch{shard, lb})
				continue
			}
			if err := add(shard, lb); err != nil {
				return fail(err)
			}
		}
	}
	if err := groups.flush(publish); err != nil {
		return fail(err)
	}
	// Applied here, the local batches would hold applyMu until the commit
	// that waits for what was published: they go the same way instead.
	commit := txn.Commit
	if len(waits) > 0 {
		for _, l := range local {
			if err := add(l.shard, l.lb); err != nil {
				return fail(err)
			}
		}
		if err := groups.flush(publish); err != nil {
			return fail(err)
		}
	} else {
		var err error
		if commit, err = s.applyLocal(txn, pending, local); err != nil {
			return fail(err)
		}
	}
	s.pendingMu.Lock()
	for _, pr := range results {
		s.pendingPages[pr.GetUrl()]++
	}
	s.pendingMu.Unlock()

	return func() error {
		defer txn.Close()
		defer func() {
			s.pendingMu.Lock()
			for _, pr := range results {
				if s.pendingPages[pr.GetUrl()]--; s.pendingPages[pr.GetUrl()] <= 0 {
					delete(s.pendingPages, pr.GetUrl())
				}
			}
			s.pendingMu.Unlock()
		}()
		committed := false
		defer func() {
			if !committed {
				s.fr.Abandon(pending)
			}
		}()
		for _, w := range waits {
			if err := w(); err != nil {
				return err
			}
		}
		if err := commit(); err != nil {
			return fmt.Errorf("cannot commit page results: %w", err)
		}
		committed = true
		// Committed even if the sync fails: the entries are in Pebble, and
		// the redelivered batch will find its retries already queued.
		err := s.db.Sync()
		s.fr.Committed(pending)
		return err
	}, nil
}

func outcome(pr *lgv1.PageResult) frontier.Outcome {
	return frontier.Outcome{
		URL: pr.GetUrl(), Kind: pr.GetKind(), Status: pr.GetStatus(), ErrorReason: pr.GetErrorReason(),
		RetryAfter: time.Duration(pr.GetRetryAfterSeconds()) * time.Second, RobotsTxt: pr.GetRobotsTxt(),
	}
}

// recordRobots stores a robots.txt result for the frontier and queues the
// sitemaps it names, plus the conventional /sitemap.xml, through the links
// stream like seeds (they may belong to other shards).
func (s *Shard) recordRobots(b *store.Batch, pr *lgv1.PageResult, publish func(int, *lgv1.LinkBatch) error) error {
	hk := urlnorm.HostSURT(urlnorm.Host(pr.GetUrl()))
	if err := s.fr.RecordRobots(b.Batch, hk, pr); err != nil {
		return err
	}
	b.Count(frontier.CounterRobotsFetched, 1)
	if r := pr.GetErrorReason(); r != "" {
		b.Count(frontier.CounterRobotsError(r), 1)
	} else if pr.GetStatus() >= 500 {
		b.Count(frontier.CounterRobotsError("5xx"), 1)
	}
	base, err := urlnorm.Parse(pr.GetUrl())
	if err != nil || pr.GetErrorReason() != "" || pr.GetStatus() >= 500 {
		return nil // the host did not answer; robots.txt is fetched again later
	}
	var urls []string
	// The conventional place is a guess, fetched only where robots.txt
	// allows it; the sitemaps robots.txt names are its own invitation.
	if u, err := urlnorm.Resolve(base, "/sitemap.xml"); err == nil && s.fr.RobotsAllow(pr, u) {
		urls = append(urls, u)
	}
	if pr.GetStatus() >= 200 && pr.GetStatus() < 300 {
		for _, sm := range frontier.Sitemaps(pr.GetRobotsTxt()) {
			if u, err := urlnorm.Resolve(base, sm); err == nil {
				urls = append(urls, u)
			}
		}
	}
	for sh, lb := range sourcelessBatches(urls, s.bus.Shards, false, true) {
		if err := publish(sh, lb); err != nil {
			return err
		}
	}
	return nil
}

// prepareLinks updates the reverse map and offers in-scope targets to the
// frontier, and commits; the returned finish makes it durable, which the
// next batch does not need to wait for (it reads what was committed), and
// only then lets the frontier release the new URLs. A batch without a source
// carries seeds or sitemaps.
func (s *Shard) prepareLinks(ctx context.Context, msgs []jetstream.Msg, _ func()) (_ func() error, err error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.waitCommitted()
	txn := s.ix.Begin()
	defer txn.Close()
	pending := frontier.NewPending()
	defer func() {
		if err != nil {
			s.fr.Abandon(pending)
		}
	}()
	for _, m := range msgs {
		first := &lgv1.LinkBatch{}
		if err := proto.Unmarshal(m.Data(), first); err != nil {
			s.log.Error("dropping malformed link batch", "err", err)
			continue
		}
		for _, lb := range append([]*lgv1.LinkBatch{first}, first.GetMore()...) {
			if err := s.applyLinks(txn, pending, lb); err != nil {
				return nil, err
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return nil, fmt.Errorf("cannot commit link updates: %w", err)
	}
	return func() error {
		// Committed even if the sync fails: the entries are in Pebble and
		// the batch will be redelivered and find them seen.
		defer s.fr.Committed(pending)
		return s.db.Sync()
	}, nil
}

// localBatch is an edge batch for a shard of this node.
type localBatch struct {
	shard int
	lb    *lgv1.LinkBatch
}

// applyLocal applies the edge batches of recorded pages in their Txn and
// returns the Txn's commit, which the caller must call: the next Txn to
// apply links waits for it.
//
// The commit, mostly Pebble's memtable inserts, takes half the time of a
// batch. It runs in the batch's finish stage, so the next batch is decoded
// and its pages recorded meanwhile; only its links wait, since they read
// what this Txn's links wrote. (Recording a page reads only records of that
// page, and preparePages keeps one page out of two batches in flight.) On
// bench/e2e -rounds 3 this took the crawl from 1,494 to 1,602 pages/s
// (medians, in alternation with the build before).
func (s *Shard) applyLocal(txn *indexer.Txn, pending *frontier.Pending, local []localBatch) (func() error, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.waitCommitted()
	for _, l := range local {
		if err := s.applyLinks(txn, pending, l.lb); err != nil {
			return nil, err
		}
	}
	done := make(chan struct{})
	s.lastCommit = done
	return func() error {
		defer close(done)
		return txn.Commit()
	}, nil
}

// waitCommitted waits for the commit of the last Txn applyLocal returned.
// The caller holds applyMu.
func (s *Shard) waitCommitted() {
	if s.lastCommit != nil {
		<-s.lastCommit
	}
}

// applyLinks updates the reverse map with an edge batch and offers its
// in-scope targets to the frontier; a seed batch puts its hosts in scope.
// The caller holds applyMu.
func (s *Shard) applyLinks(txn *indexer.Txn, pending *frontier.Pending, lb *lgv1.LinkBatch) error {
	if err := txn.ApplyLinks(lb); err != nil {
		return err
	}
	b := txn.Batch()
	for _, e := range lb.GetEdges() {
		if !e.GetCrawl() || e.GetOp() != lgv1.EdgeOp_EDGE_OP_SEEN {
			continue
		}
		if lb.GetSeed() {
			if err := s.fr.AddScope(b.Batch, e.GetTargetUrl()); err != nil {
				return err
			}
			s.fr.ScopeAdded(e.GetTargetUrl())
		}
		if err := s.fr.Offer(b, pending, e.GetTargetUrl(), lb.GetSourceDepth()+1, e.GetSitemap()); err != nil {
			return err
		}
	}
	return nil
}

// idle reports whether the shard has nothing left to do: the frontier is
// exhausted and neither stream has undelivered or unacked messages.
func (s *Shard) idle(ctx context.Context) (bool, error) {
	if !s.fr.Exhausted() {
		return false, nil
	}
	for _, c := range []jetstream.Consumer{s.pages, s.links} {
		info, err := c.Info(ctx)
		if err != nil {
			return false, err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return false, nil
		}
	}
	return s.fr.Exhausted(), nil
}

// sourcelessBatches groups URLs that no page links to (seeds, sitemaps
// named by robots.txt) into one LinkBatch per target shard, to be queued
// through the links stream like discovered links. Seeds put their hosts in
// scope; sitemap URLs are fetched as sitemaps.
func sourcelessBatches(urls []string, shards int, seed, sitemap bool) map[int]*lgv1.LinkBatch {
	out := make(map[int]*lgv1.LinkBatch)
	for _, u := range urls {
		sh := urlnorm.Shard(urlnorm.Host(u), shards)
		if out[sh] == nil {
			out[sh] = &lgv1.LinkBatch{SourceDepth: -1, Seed: seed}
		}
		out[sh].Edges = append(out[sh].Edges, &lgv1.Edge{TargetUrl: u, Op: lgv1.EdgeOp_EDGE_OP_SEEN, Crawl: true, Sitemap: sitemap})
	}
	return out
}
