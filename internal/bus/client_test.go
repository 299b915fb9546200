package bus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"0-63", 0, 64, true},
		{"0-31", 0, 32, true},
		{"32-63", 32, 64, true},
		{"7", 7, 8, true},
		{" 3 - 5 ", 3, 6, true},
		{"0-64", 0, 0, false}, // past the last shard
		{"5-3", 0, 0, false},
		{"-1", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
		{"1-2-3", 0, 0, false},
	} {
		lo, hi, err := ParseRange(c.in, 64)
		if (err == nil) != c.ok || c.ok && (lo != c.lo || hi != c.hi) {
			t.Errorf("ParseRange(%q) = %d, %d, %v; want %d, %d ok=%v", c.in, lo, hi, err, c.lo, c.hi, c.ok)
		}
	}
}

// NodeRange splits the shards into consecutive ranges that cover each
// shard exactly once and differ in size by at most one.
func TestNodeRangeCoversEveryShardOnce(t *testing.T) {
	for _, shards := range []int{1, 3, 64, 100} {
		for nodes := 1; nodes <= shards && nodes <= 10; nodes++ {
			next, smallest, largest := 0, shards, 0
			for i := range nodes {
				lo, hi := NodeRange(i, nodes, shards)
				if lo != next || hi <= lo {
					t.Fatalf("%d shards, %d nodes: node %d has [%d, %d), want it to start at %d", shards, nodes, i, lo, hi, next)
				}
				next = hi
				smallest, largest = min(smallest, hi-lo), max(largest, hi-lo)
			}
			if next != shards || largest-smallest > 1 {
				t.Errorf("%d shards, %d nodes: cover up to %d, sizes %d..%d", shards, nodes, next, smallest, largest)
			}
		}
	}
}

// The streams record the shard count; a node with another is refused, and
// clients read it back.
func TestStreamsRecordTheShardCount(t *testing.T) {
	js := startJetStream(t)
	ctx := context.Background()
	if _, err := Shards(ctx, js); !errors.Is(err, ErrNoStreams) {
		t.Fatalf("before any node: %v, want ErrNoStreams", err)
	}
	cfg := DefaultConfig()
	cfg.Shards = 16
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("again: %v", err)
	}
	if n, err := Shards(ctx, js); n != 16 || err != nil {
		t.Fatalf("Shards = %d, %v; want 16", n, err)
	}
	cfg.Shards = 32
	if err := EnsureStreams(ctx, js, cfg); !errors.Is(err, ErrShardMismatch) {
		t.Fatalf("a node with 32 shards: %v, want ErrShardMismatch", err)
	}
}

// A node whose shards overlap another node's consumer is refused with the
// name of that consumer.
func TestOverlappingShardConsumers(t *testing.T) {
	js := startJetStream(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := ShardConsumer(ctx, js, PagesStream, 0, 32, 64, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := ShardConsumer(ctx, js, PagesStream, 32, 64, 64, cfg); err != nil {
		t.Fatalf("a disjoint range: %v", err)
	}
	_, err := ShardConsumer(ctx, js, PagesStream, 16, 48, 64, cfg)
	if err == nil || !strings.Contains(err.Error(), "shard-0-32") || !strings.Contains(err.Error(), "overlapping --shards") {
		t.Fatalf("an overlapping range: %v, want an error naming shard-0-32", err)
	}
}

// startJetStream starts an embedded server for the test and connects to it.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	emb, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A NATS server without JetStream is named as such, not as "no responders".
func TestNoJetStreamIsNamed(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	err = EnsureStreams(context.Background(), js, DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "no JetStream (start nats-server with -js") {
		t.Errorf("EnsureStreams without JetStream: %v", err)
	}
}

// The workers' consumer never drops a fetch task (the workers bound the
// deliveries), also where an earlier version created it with a bound.
func TestFetchTasksAreNeverDropped(t *testing.T) {
	js := startJetStream(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	// As versions before this one left it.
	if _, err := js.UpdateConsumer(ctx, FetchStream, jetstream.ConsumerConfig{Durable: WorkersConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: cfg.AckWait, MaxDeliver: 5, MaxAckPending: 10000}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, FetchStream, WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.MaxDeliver; got != -1 {
		t.Errorf("MaxDeliver %d, want -1 (unbounded)", got)
	}
}

// A role started before its NATS server says that it is waiting, and for
// which server, instead of waiting in silence.
func TestDialSaysItIsWaiting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), dialFirstLog+time.Second)
	defer cancel()
	_, err = Dial(ctx, ClientConfig{URLs: url, Name: "test"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want the context's deadline", err)
	}
	if out := logs.String(); !strings.Contains(out, "NATS not reachable yet") || !strings.Contains(out, url) {
		t.Errorf("logged %q while waiting, want a warning naming %s", out, url)
	}
}
