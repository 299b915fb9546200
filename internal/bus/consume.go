package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler applies a batch of messages. It returns nil only once the
// effects of every message are durable; the messages are then acked. On error
// the whole batch is redelivered later, so a handler must be idempotent.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) error

// ConsumeBatches pulls from c and calls h with batches of up to maxBatch
// messages: it waits for one message, then takes whatever else has already
// arrived, so batches grow with load and latency stays low when idle. It
// returns when ctx is done (after finishing the batch in hand) or when
// pulling fails for good.
func ConsumeBatches(ctx context.Context, c jetstream.Consumer, maxBatch int, log *slog.Logger, h BatchHandler) error {
	it, err := c.Messages(jetstream.PullMaxMessages(2 * maxBatch))
	if err != nil {
		return fmt.Errorf("bus: cannot pull: %w", err)
	}
	in := make(chan jetstream.Msg, maxBatch)
	pullErr := make(chan error, 1)
	go func() {
		// Owned by ConsumeBatches: ends when it.Stop is called below.
		defer close(in)
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					pullErr <- err
				}
				return
			}
			in <- m
		}
	}()
	defer func() {
		it.Stop()
		for range in { // unblock and wait for the puller; unacked messages are redelivered
		}
	}()

	batch := make([]jetstream.Msg, 0, maxBatch)
	for {
		batch = batch[:0]
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
		if err := h(ctx, batch); err != nil {
			log.Error("batch failed, will be redelivered", "messages", len(batch), "err", err)
			for _, m := range batch {
				_ = m.NakWithDelay(time.Second)
			}
			continue
		}
		for _, m := range batch {
			if err := m.Ack(); err != nil {
				log.Warn("ack failed; message will be redelivered and applied again (idempotent)", "err", err)
			}
		}
	}
}
