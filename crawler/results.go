package crawler

import (
	"context"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/linkgraph/linkgraph/internal/bus"
)

// resultPublisher publishes a worker's fetch results on PAGES. A fetch
// hands its encoded result to publish and waits for JetStream to store it.
// The results handed in while a publish is in flight go out together, one
// message per shard (the first result, the others in its more field, up to
// limit bytes): JetStream's cost is mostly per message, and under load a
// message then carries several pages, while an idle worker still publishes
// each result at once.
type resultPublisher struct {
	pub   bus.Publisher
	limit int
	in    chan *pendingResult
}

type pendingResult struct {
	shard int
	data  []byte
	done  chan error // answered once, by run
}

// moreField is the field number of PageResult.more.
const moreField = 26

func newResultPublisher(pub bus.Publisher, limit, queue int) *resultPublisher {
	return &resultPublisher{pub: pub, limit: limit, in: make(chan *pendingResult, queue)}
}

// publish publishes data, an encoded PageResult, on the shard's subject and
// returns once JetStream stored it, or why not. It must not be called after
// close.
func (p *resultPublisher) publish(shard int, data []byte) error {
	r := &pendingResult{shard: shard, data: data, done: make(chan error, 1)}
	p.in <- r
	return <-r.done
}

// close ends run once it has answered every result handed in.
func (p *resultPublisher) close() { close(p.in) }

// run publishes what publish hands in until close; ctx bounds the waits
// for JetStream's acknowledgements.
func (p *resultPublisher) run(ctx context.Context) {
	for first := range p.in {
		round := []*pendingResult{first}
	more:
		for {
			select {
			case r, ok := <-p.in:
				if !ok {
					break more
				}
				round = append(round, r)
			default:
				break more
			}
		}
		p.publishRound(ctx, round)
	}
}

// message is one PAGES message being built: its bytes and the results in
// it.
type message struct {
	data    []byte
	results []*pendingResult
}

func (p *resultPublisher) publishRound(ctx context.Context, round []*pendingResult) {
	var sent []message
	var waits []func() error
	open := map[int]*message{} // the message being filled, by shard
	send := func(shard int) {
		m := open[shard]
		delete(open, shard)
		wait, err := p.pub.Publish(ctx, bus.PagesSubject(shard), "", m.data)
		if err != nil {
			wait = func() error { return err }
		}
		sent, waits = append(sent, *m), append(waits, wait)
	}
	for _, r := range round {
		m := open[r.shard]
		grown := protowire.SizeTag(moreField) + protowire.SizeBytes(len(r.data))
		if m != nil && len(m.data)+grown > p.limit {
			send(r.shard)
			m = nil
		}
		if m == nil {
			// A copy: the results of a message are appended to its first.
			open[r.shard] = &message{data: append(make([]byte, 0, len(r.data)), r.data...), results: []*pendingResult{r}}
			continue
		}
		// A message's encoding followed by more encoded fields is the
		// encoding of the message with those fields too.
		m.data = protowire.AppendTag(m.data, moreField, protowire.BytesType)
		m.data = protowire.AppendBytes(m.data, r.data)
		m.results = append(m.results, r)
	}
	for _, r := range round { // in order of arrival, shard by shard
		if open[r.shard] != nil {
			send(r.shard)
		}
	}
	for i, wait := range waits {
		err := wait()
		for _, r := range sent[i].results {
			r.done <- err
		}
	}
}
