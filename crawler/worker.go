// Package crawler is the worker role: it takes fetch tasks from the shared
// JetStream consumer, fetches pages with Colly, extracts their links and
// publishes one PageResult per fetch to the shard that owns the page (the
// results ready at the same time share a message, see resultPublisher).
// Workers hold no state, so any number can join or leave at any time.
package crawler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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
	// Redeliveries, if set, counts fetch tasks received again after another
	// delivery was not acked (a worker died, or failed to publish), by kind.
	// See NewRedeliveries.
	Redeliveries *prometheus.CounterVec
	// ShutdownGrace is how long in-flight fetches may run on after Run's
	// context ends; then they are cut off and their tasks handed back
	// (default DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// MaxDeliveries is how often a fetch task may be delivered without a
	// result: a worker that receives it once more reports it abandoned
	// (lgv1.ErrorReasonAbandoned) instead of fetching it, so that a page
	// that crashes or hangs its workers is not tried forever, nor lost
	// (default DefaultMaxDeliveries).
	MaxDeliveries int
	// Shards is the cluster's shard count.
	Shards  int
	Fetcher FetcherConfig
}

// DefaultMaxDeliveries is WorkerConfig.MaxDeliveries when it is zero.
const DefaultMaxDeliveries = 5

// DefaultShutdownGrace leaves in-flight fetches time to finish within
// Kubernetes' default 30s termination grace period.
const DefaultShutdownGrace = 25 * time.Second

// NewRedeliveries returns the counter for WorkerConfig.Redeliveries.
func NewRedeliveries() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linkgraph_fetch_redeliveries_total",
		Help: "Fetch tasks received again because an earlier delivery was not acknowledged, by kind (page, robots, sitemap).",
	}, []string{"kind"})
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
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	return &Worker{cfg: cfg, js: js, log: log}
}

// Run fetches until ctx is done. On cancellation it stops pulling, hands
// back tasks it had pulled but not started, lets in-flight fetches finish
// for up to ShutdownGrace, then cuts off the rest and hands their tasks
// back too, and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, bus.FetchStream, bus.WorkersConsumer)
	if err != nil {
		return fmt.Errorf("crawler: cannot open fetch consumer: %w", err)
	}
	// Fetches use their own context so that shutdown lets them finish and
	// publish their results instead of cutting them off.
	fetchCtx, cancelFetches := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFetches()
	fetcher := NewFetcher(fetchCtx, w.cfg.Fetcher)
	defer fetcher.CloseIdleConnections()
	out := newResultPublisher(bus.Publisher{JS: w.js}, bus.MaxData(w.js), w.cfg.Concurrency)
	published := make(chan struct{})
	go func() {
		// Owned by Run: ends at out.close, after the last fetch below.
		defer close(published)
		out.run(fetchCtx)
	}()
	grace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.cfg.ShutdownGrace, cancelFetches)
		context.AfterFunc(fetchCtx, func() { t.Stop() })
	})
	defer grace()

	// A worker pulls only as many tasks as it has free slots: a task
	// waiting in a worker's buffer would be invisible to the others, count
	// against its ack wait, and be fetched again if the worker died.
	slots := make(chan struct{}, w.cfg.Concurrency)
	for range w.cfg.Concurrency {
		slots <- struct{}{}
	}
	var fetches sync.WaitGroup
	defer func() {
		fetches.Wait()
		out.close()
		<-published
	}()
	for {
		select {
		case <-slots:
		case <-ctx.Done():
			return nil
		}
		free := 1
	more:
		for free < w.cfg.Concurrency {
			select {
			case <-slots:
				free++
			default:
				break more
			}
		}
		got, err := w.pull(ctx, cons, free, func(m jetstream.Msg) {
			fetches.Add(1)
			go func() {
				// Owned by Run, which waits for it through fetches.
				defer fetches.Done()
				defer func() { slots <- struct{}{} }()
				if ctx.Err() != nil {
					_ = m.Nak() // pulled as shutdown began: hand it back at once
					return
				}
				w.handle(fetchCtx, fetcher, out, m)
			}()
		})
		for range free - got {
			slots <- struct{}{}
		}
		if err != nil {
			return err
		}
	}
}

// pullWait is how long one pull request waits for tasks.
const pullWait = 5 * time.Second

// pull fetches up to n tasks, handing each to start, and returns how many
// came. An idle queue is not an error, nor is shutdown.
//
// It takes what is queued now without waiting for a full batch: a pull of
// n tasks returns only when n came or its wait ran out, so while the
// frontier releases tasks one by one it would hold the worker's freed
// slots for the whole wait. Only when nothing is queued does it wait, for
// one task.
func (w *Worker) pull(ctx context.Context, cons jetstream.Consumer, n int, start func(jetstream.Msg)) (int, error) {
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, fmt.Errorf("crawler: cannot pull fetch tasks: %w", err)
	}
	if got := w.take(ctx, batch, start); got > 0 || ctx.Err() != nil {
		return got, nil
	}
	pctx, cancel := context.WithTimeout(ctx, pullWait)
	defer cancel()
	if batch, err = cons.Fetch(1, jetstream.FetchContext(pctx)); err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, fmt.Errorf("crawler: cannot pull fetch tasks: %w", err)
	}
	return w.take(ctx, batch, start), nil
}

// take hands the tasks of a pulled batch to start and returns how many
// there were.
func (w *Worker) take(ctx context.Context, batch jetstream.MessageBatch, start func(jetstream.Msg)) int {
	got := 0
	for m := range batch.Messages() {
		got++
		start(m)
	}
	switch err := batch.Error(); {
	case err == nil, ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		w.log.Warn("fetch consumer missed heartbeats; still pulling")
	default:
		// A lost connection or a restarting server: the connection
		// reconnects by itself; wait a moment instead of spinning.
		w.log.Warn("pulling fetch tasks failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return got
}

func (w *Worker) handle(ctx context.Context, f *Fetcher, out *resultPublisher, m jetstream.Msg) {
	task := &lgv1.FetchTask{}
	if err := proto.Unmarshal(m.Data(), task); err != nil {
		w.log.Error("dropping malformed fetch task", "err", err)
		_ = m.Term()
		return
	}
	kind := strings.ToLower(strings.TrimPrefix(task.GetKind().String(), "FETCH_KIND_"))
	md, err := m.Metadata()
	if err == nil && md.NumDelivered > 1 && w.cfg.Redeliveries != nil {
		w.cfg.Redeliveries.WithLabelValues(kind).Inc()
	}
	var res *lgv1.PageResult
	if err == nil && md.NumDelivered > uint64(w.cfg.MaxDeliveries) {
		res = abandoned(task, md.NumDelivered)
		w.log.Warn("fetch task delivered too often without a result; reporting it abandoned instead of fetching it", "url", task.GetUrl(), "deliveries", md.NumDelivered)
	} else {
		res = f.Fetch(task)
		if ctx.Err() != nil {
			// Cut off by shutdown: the fetch did not fail, it was abandoned.
			_ = m.Nak()
			return
		}
	}
	if w.cfg.FetchSeconds != nil && res.GetErrorReason() != lgv1.ErrorReasonAbandoned {
		outcome := res.GetErrorReason()
		if outcome == "" {
			outcome = fmt.Sprintf("%dxx", res.GetStatus()/100)
		}
		w.cfg.FetchSeconds.WithLabelValues(kind, outcome).Observe(time.Duration(res.GetDurationNs()).Seconds())
	}
	data, err := marshalFitting(res, bus.MaxData(w.js))
	if err != nil {
		w.log.Error("cannot encode page result", "url", task.GetUrl(), "err", err)
		_ = m.Nak()
		return
	}
	shard := urlnorm.Shard(urlnorm.Host(task.GetUrl()), w.cfg.Shards)
	if err := out.publish(shard, data); err != nil {
		w.log.Warn("cannot publish page result; task will be redelivered", "url", task.GetUrl(), "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}

// abandoned is the result reported for a task delivered deliveries times
// without one.
func abandoned(task *lgv1.FetchTask, deliveries uint64) *lgv1.PageResult {
	res := resultOf(task)
	res.ErrorReason, res.FetchedAt = lgv1.ErrorReasonAbandoned, time.Now().UnixNano()
	res.ErrorDetail = fmt.Sprintf("delivered %d times without a result: workers crashed, hung or could not publish on it", deliveries)
	return res
}

// marshalFitting encodes res within limit bytes, dropping links from the
// end (counted as skipped) if the NATS server allows less than a page with
// many links needs: a result that cannot be published would be lost.
func marshalFitting(res *lgv1.PageResult, limit int) ([]byte, error) {
	data, err := proto.Marshal(res)
	for err == nil && len(data) > limit && len(res.Links) > 0 {
		keep := int(float64(len(res.Links)) * float64(limit) / float64(len(data)) * 0.95)
		keep = min(keep, len(res.Links)-1)
		res.SkippedLinks += int32(len(res.Links) - keep)
		res.Links = res.Links[:keep]
		data, err = proto.Marshal(res)
	}
	return data, err
}
