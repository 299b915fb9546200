package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PrepareFunc is the first stage of a pipelined batch handler: it does the
// work on msgs that may overlap with the previous batch's second stage and
// returns that second stage, finish, which must make the batch durable.
// barrier blocks until every earlier batch's finish has returned; prepare
// calls it before touching anything those batches may still write.
type PrepareFunc func(ctx context.Context, msgs []jetstream.Msg, barrier func()) (finish func() error, err error)

// maxFinishing bounds the finish stages of ConsumePipelined in flight.
const maxFinishing = 4

// The pull requests of ConsumePipelined: a lost one is noticed after two
// heartbeats.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// ConsumePipelined pulls from c and handles batches of up to maxBatch
// messages: it waits for one message, then takes whatever else has already
// arrived, so batches grow with load and latency stays low when idle. Each
// batch goes through two stages: while batches'
// finish stages run (typically waiting for publish acks and an fsync), the
// next batches are prepared. Up to maxFinishing finish stages run at once,
// so that their fsyncs are grouped instead of queued one behind the other;
// each batch is acked when its own finish returns.
func ConsumePipelined(ctx context.Context, c jetstream.Consumer, maxBatch int, log *slog.Logger, prepare PrepareFunc) error {
	stream := c.CachedInfo().Stream
	// Short pull requests with frequent heartbeats: now and then a pull
	// request ends on the server without the iterator noticing, and it
	// only pulls again after two missed heartbeats. With nats.go's
	// defaults (30s requests, 15s heartbeats) that stalled a crawl for
	// some 30 seconds in one run out of three of bench/e2e -hosts 1000.
	it, err := c.Messages(jetstream.PullMaxMessages(2*maxBatch), jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("bus: cannot pull: %w", err)
	}
	in := make(chan jetstream.Msg, maxBatch)
	pullErr := make(chan error, 1)
	go func() {
		// Owned by ConsumePipelined: ends when it.Stop is called below.
		defer close(in)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				log.Warn("consumer missed heartbeats; still pulling", "stream", stream)
				continue
			}
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					pullErr <- err
				}
				return
			}
			in <- m
		}
	}()
	// finishing tracks the finish stages in flight; barrier waits for all.
	var finishing sync.WaitGroup
	slots := make(chan struct{}, maxFinishing)
	barrier := finishing.Wait
	defer func() {
		barrier()
		it.Stop()
		for range in { // unblock and wait for the puller; unacked messages are redelivered
		}
	}()

	for {
		batch := make([]jetstream.Msg, 0, maxBatch)
		select {
		case <-ctx.Done():
			return nil
		case err := <-pullErr:
			return fmt.Errorf("bus: pulling failed: %w", err)
		case m, ok := <-in:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		finish, err := prepare(ctx, batch, barrier)
		if err != nil {
			barrier()
			settle(log, batch, err)
			continue
		}
		slots <- struct{}{}
		finishing.Add(1)
		go func() {
			// Owned by ConsumePipelined, which waits for it through barrier.
			defer finishing.Done()
			defer func() { <-slots }()
			settle(log, batch, finish())
		}()
	}
}

// settle acks a batch that was applied, or hands it back for redelivery.
func settle(log *slog.Logger, batch []jetstream.Msg, err error) {
	if err != nil {
		log.Error("batch failed, will be redelivered", "messages", len(batch), "err", err)
		for _, m := range batch {
			_ = m.NakWithDelay(time.Second)
		}
		return
	}
	for _, m := range batch {
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; message will be redelivered and applied again (idempotent)", "err", err)
		}
	}
}
