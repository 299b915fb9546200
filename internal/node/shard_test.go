package node

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	ctx := context.Background()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bc := bus.DefaultConfig()
	bc.Shards = shards
	js := bustest.JetStream(t, bc)
	s, err := newShard(ctx, db, js, bc, 0, own, frontier.Config{}, slog.New(slog.DiscardHandler))
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
	js := s.pub.JS
	prepare := func(url string) (func() error, error) {
		data, _ := proto.Marshal(&lgv1.PageResult{Url: url, Status: 200, FetchedAt: time.Now().UnixNano(),
			Links: []*lgv1.OutLink{{Url: "http://t.example/", AnchorText: "same anchor", Type: lgv1.LinkType_LINK_TYPE_A}}})
		if _, err := js.Publish(ctx, bus.PagesSubject(0), data); err != nil {
			return nil, err
		}
		batch, err := s.pages.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
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
		return s.preparePages(ctx, msgs, func() {})
	}

	finish1, err := prepare("http://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	type prepared struct {
		finish func() error
		err    error
	}
	second := make(chan prepared, 1)
	go func() {
		finish, err := prepare("http://b.example/")
		second <- prepared{finish, err}
	}()
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
