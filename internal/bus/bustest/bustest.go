// Package bustest starts package bus's embedded NATS server for the tests
// of other packages; each is stopped when its test ends.
package bustest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkgraph/linkgraph/internal/bus"
)

// Conn starts an embedded NATS server with JetStream and connects to it.
func Conn(t testing.TB) *nats.Conn {
	t.Helper()
	emb, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream starts an embedded server as Conn does and creates the
// streams of cfg on it.
func JetStream(t testing.TB, cfg bus.Config) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), js, cfg); err != nil {
		t.Fatal(err)
	}
	return js
}

// StreamState returns the state of stream name: the messages it holds and
// the last sequence it stored.
func StreamState(t testing.TB, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}
