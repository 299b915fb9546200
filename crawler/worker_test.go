package crawler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/bus/bustest"
)

// startBus starts an embedded NATS server with the streams of one shard
// and a one-minute ack wait, and returns its JetStream.
func startBus(t *testing.T) jetstream.JetStream {
	t.Helper()
	bc := bus.DefaultConfig()
	bc.Shards, bc.AckWait = 1, time.Minute
	return bustest.JetStream(t, bc)
}

// On shutdown a worker lets a fetch in flight finish within the grace
// period and publishes its result; a fetch still running when the grace
// period ends is cut off and its task handed back at once (not after the
// ack wait), with no result published.
func TestWorkerShutdownGrace(t *testing.T) {
	for _, c := range []struct {
		name          string
		serverDelay   time.Duration // how long the page takes; 0: until the client gives up
		grace         time.Duration
		wantPublished bool
	}{
		{"finishes within grace", 300 * time.Millisecond, 10 * time.Second, true},
		{"cut off after grace", 0, 200 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				if c.serverDelay == 0 {
					<-r.Context().Done()
					return
				}
				time.Sleep(c.serverDelay)
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte(`<a href="/next">next</a>`))
			}))
			defer srv.Close()

			js := startBus(t)
			ctx := context.Background()
			task, _ := proto.Marshal(&lgv1.FetchTask{Url: srv.URL + "/page"})
			if _, err := js.Publish(ctx, bus.FetchSubject(0), task); err != nil {
				t.Fatal(err)
			}

			w := NewWorker(js, WorkerConfig{
				Concurrency: 2, Shards: 1, ShutdownGrace: c.grace,
				Fetcher: FetcherConfig{Timeout: time.Minute, AllowPrivateNetworks: true},
			}, slog.New(slog.DiscardHandler))
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(runCtx) }()
			<-started
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after shutdown")
			}

			pages, err := js.Stream(ctx, bus.PagesStream)
			if err != nil {
				t.Fatal(err)
			}
			if got := pages.CachedInfo().State.Msgs == 1; got != c.wantPublished {
				t.Errorf("page results published: %d, want published %v", pages.CachedInfo().State.Msgs, c.wantPublished)
			}
			cons, err := js.Consumer(ctx, bus.FetchStream, bus.WorkersConsumer)
			if err != nil {
				t.Fatal(err)
			}
			// Well within the one-minute ack wait: only a handed-back task
			// comes again this soon.
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			back := 0
			for m := range batch.Messages() {
				back++
				if md, err := m.Metadata(); err != nil || md.NumDelivered != 2 {
					t.Errorf("handed-back task: metadata %+v, %v; want its second delivery", md, err)
				}
			}
			if wantBack := !c.wantPublished; (back == 1) != wantBack {
				t.Errorf("%d tasks handed back, want handed back %v", back, wantBack)
			}
		})
	}
}

// A result larger than the NATS server allows is cut to fit, the dropped
// links counted as skipped, instead of failing to publish forever.
func TestMarshalFittingCutsLinks(t *testing.T) {
	res := &lgv1.PageResult{Url: "http://a.example/", Status: 200, SkippedLinks: 3}
	for i := range 5000 {
		res.Links = append(res.Links, &lgv1.OutLink{Url: fmt.Sprintf("http://b.example/%d/%s", i, strings.Repeat("x", 200))})
	}
	whole := proto.Size(res)
	for _, limit := range []int{whole + 1, whole / 2, whole / 10, 1 << 10} {
		r := proto.CloneOf(res)
		data, err := marshalFitting(r, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > limit {
			t.Errorf("limit %d: %d bytes", limit, len(data))
		}
		var back lgv1.PageResult
		if err := proto.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if got := len(back.Links) + int(back.SkippedLinks); got != 5000+3 {
			t.Errorf("limit %d: %d links kept + %d skipped, want 5003 in all", limit, len(back.Links), back.SkippedLinks)
		}
		if limit > whole && len(back.Links) != 5000 {
			t.Errorf("limit %d: cut a result that fits", limit)
		}
		if limit == whole/2 && len(back.Links) < 2000 {
			t.Errorf("limit %d: kept only %d of 5000 links", limit, len(back.Links))
		}
	}
}

// A task delivered MaxDeliveries times without a result (workers that
// crashed or hung on it) is not fetched once more, nor dropped: the next
// worker to receive it reports it abandoned and acknowledges it.
func TestWorkerReportsAbandonedTask(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	js := startBus(t)
	ctx := context.Background()
	task, _ := proto.Marshal(&lgv1.FetchTask{Url: srv.URL + "/page", Revisit: true, Etag: `"v1"`})
	if _, err := js.Publish(ctx, bus.FetchSubject(0), task); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, bus.FetchStream, bus.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	const maxDeliveries = 3
	// Deliveries that end without a result, as a worker's crash would.
	for range maxDeliveries {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			m.Nak()
		}
	}
	w := NewWorker(js, WorkerConfig{Concurrency: 1, Shards: 1, MaxDeliveries: maxDeliveries,
		Fetcher: FetcherConfig{Timeout: time.Minute, AllowPrivateNetworks: true}}, slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	pages, err := js.Stream(ctx, bus.PagesStream)
	if err != nil {
		t.Fatal(err)
	}
	var raw *jetstream.RawStreamMsg
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if raw, err = pages.GetMsg(ctx, 1); err == nil {
			break
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if raw == nil {
		t.Fatal("no result published for the task")
	}
	res := &lgv1.PageResult{}
	if err := proto.Unmarshal(raw.Data, res); err != nil {
		t.Fatal(err)
	}
	if res.GetErrorReason() != lgv1.ErrorReasonAbandoned || !res.GetRevisit() || res.GetRequestEtag() != `"v1"` || hits.Load() != 0 {
		t.Errorf("result %v after %d requests; want abandoned, the task's revisit and validators, and no request", res, hits.Load())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("task still pending (%d) or unacknowledged (%d)", info.NumPending, info.NumAckPending)
	}
}
