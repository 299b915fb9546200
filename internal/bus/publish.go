package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes to the streams asynchronously: a call returns at once
// with a wait function that reports whether JetStream stored the message.
// Callers publish a batch, then wait for all of it, which is several times
// faster than publishing synchronously. Safe for concurrent use.
type Publisher struct {
	JS jetstream.JetStream
}

// Publish publishes data on subject; msgID, if not empty, lets JetStream
// drop a duplicate published within the stream's duplicate window.
func (p Publisher) Publish(ctx context.Context, subject, msgID string, data []byte) (func() error, error) {
	m := &nats.Msg{Subject: subject, Data: data}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	f, err := p.JS.PublishMsgAsync(m, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: cannot publish on %s: %w", subject, err)
	}
	return func() error {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				return ErrDuplicate
			}
			return nil
		case err := <-f.Err():
			return fmt.Errorf("bus: publish on %s failed: %w", subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// MaxData is the most data one message can carry on js's connection: the
// server's max_payload (1 MiB by default) less room for the subject and
// headers.
func MaxData(js jetstream.JetStream) int {
	return int(js.Conn().MaxPayload()) - 4<<10
}

// ErrDuplicate is returned by a wait function of Publish when JetStream
// dropped the message as a duplicate of one with the same id: it was
// stored before, by an earlier life of the publisher.
var ErrDuplicate = errors.New("bus: duplicate of a message stored before")

// PublishTask implements frontier.Publisher.
func (p Publisher) PublishTask(ctx context.Context, subject, msgID string, data []byte) (func() error, error) {
	return p.Publish(ctx, subject, msgID, data)
}
