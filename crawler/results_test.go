package crawler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/bus/bustest"
)

// Results handed in together go out as one PAGES message per shard, split
// at the limit, and each reaches the stream once.
func TestResultPublisherGroups(t *testing.T) {
	result := func(i int) []byte {
		data, err := proto.Marshal(&lgv1.PageResult{Url: fmt.Sprintf("http://a.example/%d", i), Status: 200})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	size := len(result(0))
	for _, tc := range []struct {
		name     string
		limit    int
		shards   []int // of result i
		messages int
	}{
		{"one message a shard", 1 << 20, []int{0, 1, 0, 0, 1}, 2},
		// Room for two results (the second with its two-byte tag and
		// one-byte length), not three.
		{"split at the limit", 2*size + 3, []int{0, 0, 0, 0, 0}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bc := bus.DefaultConfig()
			bc.Shards = 2
			js := bustest.JetStream(t, bc)
			p := newResultPublisher(bus.Publisher{JS: js}, tc.limit, len(tc.shards))
			var wg sync.WaitGroup
			errs := make(chan error, len(tc.shards))
			for i, shard := range tc.shards {
				wg.Go(func() { errs <- p.publish(shard, result(i)) })
			}
			// All handed in before run starts: one round.
			for len(p.in) < len(tc.shards) {
				time.Sleep(time.Millisecond)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.run(ctx)
			}()
			wg.Wait()
			p.close()
			<-done
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			st, err := js.Stream(ctx, bus.PagesStream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(info.State.LastSeq); got != tc.messages {
				t.Errorf("%d PAGES messages, want %d", got, tc.messages)
			}
			var urls []string
			for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
				raw, err := st.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				if len(raw.Data) > tc.limit {
					t.Errorf("message %d: %d bytes, over the limit of %d", seq, len(raw.Data), tc.limit)
				}
				first := &lgv1.PageResult{}
				if err := proto.Unmarshal(raw.Data, first); err != nil {
					t.Fatal(err)
				}
				for _, pr := range append([]*lgv1.PageResult{first}, first.GetMore()...) {
					var i int
					fmt.Sscanf(pr.GetUrl(), "http://a.example/%d", &i)
					if want := bus.PagesSubject(tc.shards[i]); raw.Subject != want {
						t.Errorf("result %d published on %s, want %s", i, raw.Subject, want)
					}
					urls = append(urls, pr.GetUrl())
				}
			}
			slices.Sort(urls)
			var want []string
			for i := range tc.shards {
				want = append(want, fmt.Sprintf("http://a.example/%d", i))
			}
			slices.Sort(want)
			if !slices.Equal(urls, want) {
				t.Errorf("results published: %v, want each of %v once", urls, want)
			}
		})
	}
}
