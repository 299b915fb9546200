package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/bus/bustest"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// The link batches of a batch of pages go out as one message per target
// shard, each under the limit unless one batch alone is over it, and every
// batch arrives once, in the order it was added.
func TestLinkGroups(t *testing.T) {
	batch := func(i, anchorBytes int) *lgv1.LinkBatch {
		return &lgv1.LinkBatch{SourceUrl: fmt.Sprintf("http://s.example/%d", i),
			Edges: []*lgv1.Edge{{TargetUrl: "http://t.example/", AnchorText: strings.Repeat("a", anchorBytes)}}}
	}
	// Room for two batches with 50-byte anchors (and the tag and length
	// of the second), not three.
	two := 2*proto.Size(batch(0, 50)) + 4
	for _, tc := range []struct {
		name     string
		limit    int
		shards   []int // target shard of batch i
		anchors  []int // anchor bytes of batch i
		messages []int // the batches of each message published, by shard then order
	}{
		{"one message a shard", 1 << 20, []int{0, 1, 0, 1, 0}, []int{10, 10, 10, 10, 10}, []int{3, 2}},
		{"split at the limit", two, []int{0, 0, 0, 0, 0}, []int{50, 50, 50, 50, 50}, []int{2, 2, 1}},
		{"a batch over the limit goes alone", 100, []int{0, 0, 0}, []int{10, 500, 10}, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type message struct {
				shard int
				first *lgv1.LinkBatch
				size  int
			}
			var got []message
			publish := func(shard int, data []byte) error {
				m := &lgv1.LinkBatch{}
				if err := proto.Unmarshal(data, m); err != nil {
					return err
				}
				got = append(got, message{shard, m, len(data)})
				return nil
			}
			g := linkGroups{limit: tc.limit}
			for i, shard := range tc.shards {
				if err := g.add(shard, batch(i, tc.anchors[i]), publish); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.flush(publish); err != nil {
				t.Fatal(err)
			}
			var sizes []int
			next := map[int]int{} // the next batch expected, by shard
			for _, m := range got {
				all := append([]*lgv1.LinkBatch{m.first}, m.first.GetMore()...)
				sizes = append(sizes, len(all))
				if m.size > tc.limit && len(all) > 1 {
					t.Errorf("a message of %d bytes holds %d batches, limit %d", m.size, len(all), tc.limit)
				}
				for _, lb := range all {
					var i int
					fmt.Sscanf(lb.GetSourceUrl(), "http://s.example/%d", &i)
					for next[m.shard] < len(tc.shards) && tc.shards[next[m.shard]] != m.shard {
						next[m.shard]++
					}
					if i != next[m.shard] {
						t.Errorf("shard %d: batch %d arrived, want batch %d", m.shard, i, next[m.shard])
					}
					next[m.shard]++
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.messages) {
				t.Errorf("batches a message: %v, want %v", sizes, tc.messages)
			}
		})
	}
}

// A shard node that owns every shard applies a batch of pages' edge
// batches itself, publishing none, and indexes every link. One that owns
// some publishes them all, one LINKS message per target shard: applying
// its own would hold the apply lock until the commit, which waits for the
// others to be stored.
func TestShardGroupsLinkBatches(t *testing.T) {
	const shards, pages, targets = 2, 5, 10
	for _, own := range []int{shards, 1} {
		t.Run(fmt.Sprintf("owning %d of %d shards", own, shards), func(t *testing.T) {
			s, apply := newTestShardOwning(t, shards, own)
			ctx := context.Background()
			targetShards := map[int]bool{}
			var results []*lgv1.PageResult
			for p := range pages {
				pr := &lgv1.PageResult{Url: fmt.Sprintf("http://a.example/%d", p), Status: 200, FetchedAt: 1e18}
				for i := range targets {
					host := fmt.Sprintf("t%d.example", i)
					targetShards[urlnorm.Shard(host, shards)] = true
					pr.Links = append(pr.Links, &lgv1.OutLink{Url: "http://" + host + "/", AnchorText: "t", Type: lgv1.LinkType_LINK_TYPE_A})
				}
				results = append(results, pr)
			}
			if len(targetShards) != shards {
				t.Fatal("the targets are all in one shard: the test shows nothing")
			}
			apply(results...)

			wantMessages, wantLive := len(targetShards), 0 // the LINKS messages are left in the stream
			if own == shards {
				wantMessages, wantLive = 0, pages*targets
			}
			if got := bustest.StreamState(t, s.pub.JS, bus.LinksStream).LastSeq; got != uint64(wantMessages) {
				t.Errorf("%d LINKS messages for %d pages, want %d", got, pages, wantMessages)
			}
			live := 0
			err := s.ix.ScanEdges(ctx, func(_ *lgv1.Backlink, isLive bool) error {
				if isLive {
					live++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if live != wantLive {
				t.Errorf("%d live edges, want %d", live, wantLive)
			}
		})
	}
}

// A PAGES message with several results (PageResult.more, as workers
// publish them) records each page, and each page's record holds only its
// own result.
func TestShardRecordsGroupedResults(t *testing.T) {
	s, apply := newTestShard(t, 1)
	ctx := context.Background()
	result := func(i int) *lgv1.PageResult {
		return &lgv1.PageResult{Url: fmt.Sprintf("http://a.example/%d", i), Status: 200, FetchedAt: 1e18,
			Links: []*lgv1.OutLink{{Url: "http://t.example/", AnchorText: fmt.Sprint(i), Type: lgv1.LinkType_LINK_TYPE_A}}}
	}
	first := result(0)
	first.More = []*lgv1.PageResult{result(1), result(2)}
	apply(first)

	var anchors []string
	err := s.ix.ScanEdges(ctx, func(bl *lgv1.Backlink, isLive bool) error {
		if isLive {
			anchors = append(anchors, bl.GetAnchorText())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(anchors)
	if fmt.Sprint(anchors) != "[0 1 2]" {
		t.Errorf("live links with anchors %v, want one from each page: [0 1 2]", anchors)
	}
	raw, closer, err := s.db.Get(append([]byte{store.PrefixPage}, urlnorm.SURT(first.GetUrl())...))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	rec := &lgv1.PageResult{}
	if err := proto.Unmarshal(raw, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.GetMore()) != 0 {
		t.Errorf("the record of %s holds %d more results", first.GetUrl(), len(rec.GetMore()))
	}
}
