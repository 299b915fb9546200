// Package bus owns linkgraph's JetStream topology: the streams, their
// subjects and consumers, and the embedded NATS server used by the
// all-in-one commands. Every role talks to the others only through the
// streams declared here, so all-in-one and cluster mode differ only in
// where the NATS server runs.
//
// Streams (all work-queue retention, so a message lives until acked):
//
//	FETCH  fetch.<shard>  frontier -> workers: a URL whose host is ready
//	PAGES  pages.<shard>  worker -> shard owning the page: the fetch result
//	LINKS  links.<shard>  shard of the source -> shard of the targets: edges
package bus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names and the durable consumer names on them.
const (
	FetchStream = "FETCH"
	PagesStream = "PAGES"
	LinksStream = "LINKS"

	// WorkersConsumer is the one durable pull consumer all workers share.
	WorkersConsumer = "workers"
)

// DefaultShards is the number of shards when none is configured. It is fixed
// at install: changing it re-homes every domain.
const DefaultShards = 64

// DefaultAckWait is how long a fetch task may stay unacknowledged before
// JetStream hands it to another worker. It must exceed the worst-case fetch
// time (request timeout plus publishing the result).
const DefaultAckWait = 2 * time.Minute

// FetchSubject, PagesSubject and LinksSubject name the subject of one shard.
func FetchSubject(shard int) string { return "fetch." + strconv.Itoa(shard) }
func PagesSubject(shard int) string { return "pages." + strconv.Itoa(shard) }
func LinksSubject(shard int) string { return "links." + strconv.Itoa(shard) }

// Config describes the topology; the zero value is not valid, use
// DefaultConfig.
type Config struct {
	// Shards is the shard count S (default DefaultShards).
	Shards int
	// Replicas is the stream replication factor (default 1; 3 in a cluster).
	Replicas int
	// AckWait for fetch tasks (default DefaultAckWait).
	AckWait time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Shards: DefaultShards, Replicas: 1, AckWait: DefaultAckWait}
}

// EnsureStreams creates or updates the three streams and the shared worker
// consumer. It is idempotent and safe to call from every role at start-up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	switch have, err := recordedShards(ctx, js); {
	case errors.Is(err, ErrNoStreams):
	case err != nil:
		return err
	case have != 0 && have != cfg.Shards:
		return fmt.Errorf("%w: the streams were created for %d shards, this node has %d; the shard count is fixed at install", ErrShardMismatch, have, cfg.Shards)
	}
	meta := map[string]string{metaShards: strconv.Itoa(cfg.Shards)}
	for _, s := range []jetstream.StreamConfig{
		// Fetch tasks are deduplicated by message id (see frontier) for the
		// window in which a frontier may republish after a crash.
		{Name: FetchStream, Subjects: []string{"fetch.>"}, Duplicates: 10 * time.Minute},
		{Name: PagesStream, Subjects: []string{"pages.>"}},
		{Name: LinksStream, Subjects: []string{"links.>"}},
	} {
		s.Retention = jetstream.WorkQueuePolicy
		s.Storage = jetstream.FileStorage
		s.Replicas = cfg.Replicas
		s.Metadata = meta
		if _, err := js.CreateOrUpdateStream(ctx, s); err != nil {
			return fmt.Errorf("bus: cannot create stream %s: %w", s.Name, err)
		}
	}
	_, err := js.CreateOrUpdateConsumer(ctx, FetchStream, jetstream.ConsumerConfig{
		Durable:   WorkersConsumer,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   cfg.AckWait,
		// Never dropped: a task JetStream stops delivering would be
		// lost, its page never fetched nor revisited. The workers bound
		// the deliveries instead (crawler.WorkerConfig.MaxDeliveries).
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	})
	if err != nil {
		return fmt.Errorf("bus: cannot create consumer %s: %w", WorkersConsumer, err)
	}
	return nil
}

// ErrShardMismatch is returned by EnsureStreams when the streams belong to
// a cluster with another shard count.
var ErrShardMismatch = errors.New("bus: shard count mismatch")

// ResetConsumers deletes the worker and shard consumers, if they exist, so
// that they are created anew and deliver every unacknowledged message at
// once. Only a process that owns every consumer (the all-in-one commands)
// may call it: it is how a restart after a crash avoids waiting out the ack
// wait of the messages the dead process held.
func ResetConsumers(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := deleteConsumer(ctx, js, FetchStream, WorkersConsumer); err != nil {
		return err
	}
	return ResetShardConsumers(ctx, js, 0, cfg.Shards)
}

// ResetShardConsumers deletes the consumers of the shard node owning
// [lo, hi), for the same reason as ResetConsumers: that node is their only
// reader, so at its start nothing else holds their messages.
// It refuses, with ErrShardsInUse, consumers that a live reader is pulling
// from: another node started with the same --shards, whose consumers the
// reset would delete from under it.
func ResetShardConsumers(ctx context.Context, js jetstream.JetStream, lo, hi int) error {
	name := shardConsumerName(lo, hi)
	for _, stream := range []string{PagesStream, LinksStream} {
		c, err := js.Consumer(ctx, stream, name)
		if err == nil {
			info, err := c.Info(ctx)
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("bus: cannot read consumer %s on %s: %w", name, stream, err)
			}
			if err == nil && info.NumWaiting > 0 {
				return fmt.Errorf("%w: shards %d-%d are being read (consumer %s on %s has %d pull requests pending): another shard node runs with the same --shards; stop it first", ErrShardsInUse, lo, hi-1, name, stream, info.NumWaiting)
			}
		}
	}
	for _, stream := range []string{PagesStream, LinksStream} {
		if err := deleteConsumer(ctx, js, stream, name); err != nil {
			return err
		}
	}
	return nil
}

// ErrShardsInUse is returned by ResetShardConsumers when another node reads
// the shards.
var ErrShardsInUse = errors.New("bus: shards in use by another node")

// deleteConsumer deletes a consumer; one that does not exist is not an
// error.
func deleteConsumer(ctx context.Context, js jetstream.JetStream, stream, name string) error {
	err := js.DeleteConsumer(ctx, stream, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("bus: cannot reset consumer %s on %s: %w", name, stream, err)
	}
	return nil
}

func shardConsumerName(lo, hi int) string { return fmt.Sprintf("shard-%d-%d", lo, hi) }

// ShardConsumer creates (or updates) the durable consumer through which the
// shard node owning shards [lo, hi) reads stream (PagesStream or
// LinksStream).
func ShardConsumer(ctx context.Context, js jetstream.JetStream, stream string, lo, hi, total int, cfg Config) (jetstream.Consumer, error) {
	prefix := map[string]string{PagesStream: "pages.", LinksStream: "links."}[stream]
	if prefix == "" {
		return nil, fmt.Errorf("bus: no shard consumer for stream %q", stream)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       shardConsumerName(lo, hi),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1, // a shard must never drop an update; errors are retried
		MaxAckPending: 20000,
	}
	if lo == 0 && hi == total {
		cc.FilterSubject = prefix + ">"
	} else {
		for s := lo; s < hi; s++ {
			cc.FilterSubjects = append(cc.FilterSubjects, prefix+strconv.Itoa(s))
		}
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cc)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errConsumerNotUnique {
		return nil, fmt.Errorf("bus: cannot create consumer %s on %s: %w; another consumer reads some of shards %d-%d (%s): another node runs with an overlapping --shards, or a node of an earlier layout left it (see Re-sharding in docs/operations.md)",
			cc.Durable, stream, err, lo, hi-1, strings.Join(overlapping(ctx, js, stream, cc.Durable), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("bus: cannot create consumer %s on %s: %w", cc.Durable, stream, err)
	}
	return c, nil
}

// errConsumerNotUnique is JetStream's error code for a consumer whose
// subjects overlap another's on a work-queue stream.
const errConsumerNotUnique = 10100

// overlapping names the shard consumers of stream other than name.
func overlapping(ctx context.Context, js jetstream.JetStream, stream, name string) []string {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return []string{"cannot list: " + err.Error()}
	}
	var out []string
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		if n != name && strings.HasPrefix(n, "shard-") {
			out = append(out, n)
		}
	}
	return out
}

// Embedded is a NATS server with JetStream running inside this process, with
// no network listener: the all-in-one commands talk to it in-process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream storing under
// dataDir/nats. Close it with Shutdown.
func StartEmbedded(dataDir string) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "linkgraph",
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
		// Page results carry up to 10k links.
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: cannot configure embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("bus: embedded NATS server did not become ready within 30s")
	}
	return &Embedded{srv: srv}, nil
}

// Connect opens an in-process client connection to the embedded server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("bus: cannot connect to embedded NATS server: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until its store is flushed.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
