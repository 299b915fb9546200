// Package crawler is the worker role: it takes fetch tasks from the shared
// JetStream consumer, fetches pages with Colly, extracts their links and
// publishes one PageResult per fetch to the shard that owns the page.
// Workers hold no state, so any number can join or leave at any time.
package crawler

import (
	"strings"

	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// DefaultWorkers is the number of concurrent fetches of one worker process.
const DefaultWorkers = 16

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// Concurrency is the number of fetches in flight (default DefaultWorkers).
	Concurrency int
	// FetchSeconds, if set, observes every fetch's duration, labelled by
	// kind (page, robots, sitemap) and outcome (HTTP status class or error
	// reason). See NewFetchSeconds.
	FetchSeconds *prometheus.HistogramVec
	// Shards is the cluster's shard count.
	Shards  int
	Fetcher FetcherConfig
}

// NewFetchSeconds returns the fetch latency histogram for
// WorkerConfig.FetchSeconds.
func NewFetchSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "linkgraph_fetch_duration_seconds",
		Help:    "Time from request start to full body, per fetch.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms .. 41 s
	}, []string{"kind", "outcome"})
}

// Worker runs fetches. Create with NewWorker, then Run.
type Worker struct {
	cfg WorkerConfig
	js  jetstream.JetStream
	log *slog.Logger
}

// NewWorker returns a worker that pulls from js. It does no I/O.
func NewWorker(js jetstream.JetStream, cfg WorkerConfig, log *slog.Logger) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultWorkers
	}
	return &Worker{cfg: cfg, js: js, log: log}
}

// Run fetches until ctx is done. On cancellation it stops pulling, lets
// in-flight fetches finish (each is bounded by the fetch timeout), hands
// back tasks it had pulled but not started, and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, bus.FetchStream, bus.WorkersConsumer)
	if err != nil {
		return fmt.Errorf("crawler: cannot open fetch consumer: %w", err)
	}
	// Pull only what can be worked on soon: tasks held in a buffer still
	// count against their ack wait and are invisible to other workers.
	it, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("crawler: cannot pull fetch tasks: %w", err)
	}
	// Fetches use their own context so that shutdown lets them finish and
	// publish their results instead of cutting them off.
	fetchCtx, cancelFetches := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFetches()
	fetcher := NewFetcher(fetchCtx, w.cfg.Fetcher)
	pub := bus.Publisher{JS: w.js}

	tasks := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range tasks {
				w.handle(fetchCtx, fetcher, pub, m)
			}
		}()
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var pullErr error
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			// The iterator recovers by itself; a stall long enough to miss
			// heartbeats is worth a warning, not the process.
			w.log.Warn("fetch consumer missed heartbeats; still pulling")
			continue
		}
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				pullErr = fmt.Errorf("crawler: pulling fetch tasks failed: %w", err)
			}
			break
		}
		select {
		case tasks <- m:
		case <-ctx.Done():
			_ = m.Nak() // hand it back at once
		}
	}
	close(tasks)
	wg.Wait()
	fetcher.CloseIdleConnections()
	return pullErr
}

func (w *Worker) handle(ctx context.Context, f *Fetcher, pub bus.Publisher, m jetstream.Msg) {
	task := &lgv1.FetchTask{}
	if err := proto.Unmarshal(m.Data(), task); err != nil {
		w.log.Error("dropping malformed fetch task", "err", err)
		_ = m.Term()
		return
	}
	res := f.Fetch(task)
	if w.cfg.FetchSeconds != nil {
		outcome := res.GetErrorReason()
		if outcome == "" {
			outcome = fmt.Sprintf("%dxx", res.GetStatus()/100)
		}
		kind := strings.ToLower(strings.TrimPrefix(task.GetKind().String(), "FETCH_KIND_"))
		w.cfg.FetchSeconds.WithLabelValues(kind, outcome).Observe(time.Duration(res.GetDurationNs()).Seconds())
	}
	data, err := proto.Marshal(res)
	if err != nil {
		w.log.Error("cannot encode page result", "url", task.GetUrl(), "err", err)
		_ = m.Nak()
		return
	}
	shard := urlnorm.Shard(urlnorm.Host(task.GetUrl()), w.cfg.Shards)
	wait, err := pub.Publish(ctx, bus.PagesSubject(shard), "", data)
	if err == nil {
		err = wait()
	}
	if err != nil {
		w.log.Warn("cannot publish page result; task will be redelivered", "url", task.GetUrl(), "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}
