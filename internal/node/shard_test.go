package node

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/bus/bustest"
	"github.com/linkgraph/linkgraph/internal/store"
)

// A fetch the workers report abandoned (delivered too often without a
// result) loses nothing: a page already indexed keeps its links, and is
// counted as skipped; a new page is recorded as failed, not forgotten.
func TestAbandonedFetchLosesNothing(t *testing.T) {
	s, apply := newTestShard(t, 1)
	ctx := context.Background()
	const page, fresh = "http://a.example/", "http://a.example/new"
	fetched := time.Now().Add(-time.Hour).UnixNano()
	apply(&lgv1.PageResult{Url: page, Status: 200, FetchedAt: fetched,
		Links: []*lgv1.OutLink{{Url: "http://t.example/", AnchorText: "t", Type: lgv1.LinkType_LINK_TYPE_A}}})
	apply(&lgv1.PageResult{Url: page, Revisit: true, ErrorReason: lgv1.ErrorReasonAbandoned, FetchedAt: time.Now().UnixNano()},
		&lgv1.PageResult{Url: fresh, ErrorReason: lgv1.ErrorReasonAbandoned, FetchedAt: time.Now().UnixNano()})

	var live, lost int
	err := s.ix.ScanEdges(ctx, func(bl *lgv1.Backlink, isLive bool) error {
		if isLive {
			live++
		} else {
			lost++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if live != 1 || lost != 0 {
		t.Errorf("after an abandoned revisit: %d live and %d lost links, want the page's one link live", live, lost)
	}
	counters, err := s.ix.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got := counters[frontier.CounterSkipped(frontier.SkipAbandoned)]; got != 1 {
		t.Errorf("skipped/abandoned = %d, want 1 (the revisit)", got)
	}
	if got := counters[indexer.ErrorCounter(lgv1.ErrorReasonAbandoned)]; got != 1 {
		t.Errorf("%s = %d, want 1 (the new page, recorded as failed)", indexer.ErrorCounter(lgv1.ErrorReasonAbandoned), got)
	}
}

// newTestShard opens a shard node owning all of shards shards, on a real
// store and embedded JetStream. apply publishes page results and applies
// them, and the link batches they make, as Run would.
func newTestShard(t *testing.T, shards int) (*Shard, func(...*lgv1.PageResult)) {
	return newTestShardOwning(t, shards, shards)
}

// newTestShardOwning is newTestShard for a node that owns the first own of
// shards shards; apply leaves the link batches for the others in their
// stream.
func newTestShardOwning(t *testing.T, shards, own int) (*Shard, func(...*lgv1.PageResult)) {
	t.Helper()
	return newTestShardWith(t, shards, own, frontier.Config{})
}

// newTestShardWith is newTestShardOwning with the frontier's configuration.
func newTestShardWith(t *testing.T, shards, own int, fc frontier.Config) (*Shard, func(...*lgv1.PageResult)) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bc := bus.DefaultConfig()
	bc.Shards = shards
	js := bustest.JetStream(t, bc)
	s, err := newShard(ctx, db, js, bc, 0, own, fc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	apply := func(results ...*lgv1.PageResult) {
		t.Helper()
		for _, pr := range results {
			data, _ := proto.Marshal(pr)
			if _, err := js.Publish(ctx, bus.PagesSubject(0), data); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			stream  string
			cons    jetstream.Consumer
			prepare func(context.Context, []jetstream.Msg, func()) (func() error, error)
		}{{bus.PagesStream, s.pages, s.preparePages}, {bus.LinksStream, s.links, s.prepareLinks}} {
			// Every message the work-queue stream holds (its publishers
			// had them acknowledged), waiting for them: a pull that does
			// not wait, or the consumer's count, may lag behind.
			n := int(bustest.StreamState(t, js, c.stream).Msgs)
			if n == 0 || c.stream == bus.LinksStream && own < shards {
				continue
			}
			batch, err := c.cons.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if len(msgs) != n {
				t.Fatalf("pulled %d of %d messages: %v", len(msgs), n, batch.Error())
			}
			finish, err := c.prepare(ctx, msgs, func() {})
			if err == nil {
				err = finish()
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				// Confirmed, so that the stream no longer counts it.
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return s, apply
}

// The links of a batch wait for the commit of the batch before them, which
// runs in that batch's finish stage: the anchor below gains one referring
// domain from each page, and a second batch that read the anchor's record
// before the first had committed would write it back with one.
func TestLinksWaitForThePreviousCommit(t *testing.T) {
	s, _ := newTestShard(t, 1)
	ctx := context.Background()
	page := func(url string) *lgv1.PageResult {
		return &lgv1.PageResult{Url: url, Status: 200, FetchedAt: time.Now().UnixNano(),
			Links: []*lgv1.OutLink{{Url: "http://t.example/", AnchorText: "same anchor", Type: lgv1.LinkType_LINK_TYPE_A}}}
	}

	finish1, err := preparePage(s, page("http://a.example/"))
	if err != nil {
		t.Fatal(err)
	}
	second := goPrepare(s, page("http://b.example/"))
	var p prepared
	select {
	case p = <-second:
		t.Errorf("the second batch was prepared before the first committed")
	case <-time.After(200 * time.Millisecond):
	}
	if err := finish1(); err != nil {
		t.Fatal(err)
	}
	if p.finish == nil && p.err == nil {
		p = <-second
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}

	resp, err := s.ix.Anchors(ctx, &lgv1.AnchorsRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_DOMAIN})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAnchors()) != 1 || resp.GetAnchors()[0].GetBacklinks() != 2 || resp.GetAnchors()[0].GetReferringDomains() != 2 {
		t.Errorf("anchors of t.example = %v, want \"same anchor\" with 2 backlinks from 2 domains", resp.GetAnchors())
	}
}

// A fetch's host slot is free once its result is decoded: here the
// result's links wait for the batch before to commit, and the frontier
// already counts the fetch as ended, so the host's next fetch need not wait
// for the index.
func TestFetchEndsBeforeItsLinksApply(t *testing.T) {
	s, _ := newTestShardWith(t, 1, 1, frontier.Config{IgnoreRobots: true})
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	t.Cleanup(func() {
		cancel()
		g.Wait()
	})
	g.Go(func() error { return s.fr.Run(ctx) })
	const seed = "http://a.example/"
	for shard, lb := range sourcelessBatches([]string{seed}, 1, true, false) {
		data, _ := proto.Marshal(lb)
		if _, err := s.pub.JS.Publish(ctx, bus.LinksSubject(shard), data); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := pull(s.links)
	if err != nil {
		t.Fatal(err)
	}
	finish, err := s.prepareLinks(ctx, msgs, func() {})
	if err == nil {
		err = finish()
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the seed released", func() bool { return s.fr.Stats().InFlight == 1 })

	finish1, err := preparePage(s, &lgv1.PageResult{Url: "http://b.example/", Status: 200, FetchedAt: time.Now().UnixNano(),
		Links: []*lgv1.OutLink{{Url: "http://t.example/", Type: lgv1.LinkType_LINK_TYPE_A}}})
	if err != nil {
		t.Fatal(err)
	}
	second := goPrepare(s, &lgv1.PageResult{Url: seed, Status: 200, FetchedAt: time.Now().UnixNano(),
		Links: []*lgv1.OutLink{{Url: "http://t.example/", Type: lgv1.LinkType_LINK_TYPE_A}}})
	waitFor(t, "the seed's fetch counted as ended", func() bool { return s.fr.Stats().InFlight == 0 })
	select {
	case <-second:
		t.Fatal("the seed's batch was prepared before the batch before it committed")
	default:
	}
	if err := finish1(); err != nil {
		t.Fatal(err)
	}
	p := <-second
	if p.err == nil {
		p.err = p.finish()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
}

// prepared is what preparePages returned.
type prepared struct {
	finish func() error
	err    error
}

// goPrepare runs preparePage(s, pr) in a goroutine of the caller's test.
func goPrepare(s *Shard, pr *lgv1.PageResult) <-chan prepared {
	out := make(chan prepared, 1)
	go func() {
		finish, err := preparePage(s, pr)
		out <- prepared{finish, err}
	}()
	return out
}

// preparePage publishes pr and prepares it as a batch of its own, leaving
// the batch's finish to the caller.
func preparePage(s *Shard, pr *lgv1.PageResult) (func() error, error) {
	data, _ := proto.Marshal(pr)
	if _, err := s.pub.JS.Publish(context.Background(), bus.PagesSubject(0), data); err != nil {
		return nil, err
	}
	msgs, err := pull(s.pages)
	if err != nil {
		return nil, err
	}
	return s.preparePages(context.Background(), msgs, func() {})
}

// pull takes the one message the test published to c's stream.
func pull(c jetstream.Consumer) ([]jetstream.Msg, error) {
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("pulled %d messages, want 1: %v", len(msgs), batch.Error())
	}
	return msgs, nil
}

// waitFor waits up to 10 seconds for cond, named what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}
