package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/linkgraph/linkgraph/crawler"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

// ShardConfig configures a shard node of a cluster.
type ShardConfig struct {
	// DataDir holds the node's Pebble index and frontier.
	DataDir string
	Store   store.Options
	NATS    bus.ClientConfig
	// Bus.Shards is the cluster's shard count S, fixed at install: the
	// data directory and the streams record it and refuse another.
	Bus bus.Config
	// Lo and Hi: the node owns shards [Lo, Hi).
	Lo, Hi   int
	Frontier frontier.Config
	// Version is reported by the node's query service.
	Version string
	// LeaseTTL is how long the node's shards stay held after it stops
	// renewing them (see bus.ShardLease). Default bus.DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// ShardNode is the shard role of a cluster: frontier and index of shards
// [Lo, Hi), and their query service. It must be closed.
type ShardNode struct {
	db    *store.DB
	nc    *nats.Conn
	lease *bus.ShardLease
	shard *Shard
	query *indexer.QueryService
}

// OpenShardNode opens the data directory, connects to NATS, creates or
// checks the streams, and starts answering queries. Nothing is consumed
// until Run.
func OpenShardNode(ctx context.Context, cfg ShardConfig, log *slog.Logger) (_ *ShardNode, err error) {
	n := &ShardNode{}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.db, err = store.OpenWith(cfg.DataDir, cfg.Store); err != nil {
		return nil, err
	}
	if cfg.Bus.Shards, err = n.db.Shards(cfg.Bus.Shards, bus.DefaultShards); err != nil {
		if errors.Is(err, store.ErrShardCount) {
			err = fmt.Errorf("%w (keep --shard-count %d, or use a new --data)", err, cfg.Bus.Shards)
		}
		return nil, err
	}
	if cfg.Lo < 0 || cfg.Hi > cfg.Bus.Shards || cfg.Lo >= cfg.Hi {
		return nil, fmt.Errorf("node: shard range %d-%d is not within the %d shards of %s", cfg.Lo, cfg.Hi-1, cfg.Bus.Shards, cfg.DataDir)
	}
	if err = n.db.Own(cfg.Lo, cfg.Hi); err != nil {
		return nil, fmt.Errorf("node: %s: %w", cfg.DataDir, err)
	}
	cfg.NATS.Name = fmt.Sprintf("shard %d-%d", cfg.Lo, cfg.Hi-1)
	if n.nc, err = bus.Dial(ctx, cfg.NATS, log); err != nil {
		return nil, err
	}
	js, err := jetstream.New(n.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err = bus.EnsureStreams(ctx, js, cfg.Bus); err != nil {
		return nil, err
	}
	// The node is named by its host and data directory, which its restarts
	// keep: a restarted node takes its shards back at once.
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("node: cannot read the hostname for the shard lease: %w", err)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.lease, err = bus.AcquireShards(ctx, js, cfg.Lo, cfg.Hi, host+":"+dir, cfg.LeaseTTL, cfg.Bus.Replicas, log); err != nil {
		return nil, err
	}
	// This node is the only reader of its consumers, so whatever they
	// still hold was held by its previous life: recreate them so it comes
	// back now instead of after the ack wait.
	if err = bus.ResetShardConsumers(ctx, js, cfg.Lo, cfg.Hi); err != nil {
		return nil, err
	}
	if n.shard, err = newShard(ctx, n.db, js, cfg.Bus, cfg.Lo, cfg.Hi, cfg.Frontier, log); err != nil {
		return nil, err
	}
	revisit := func(_ context.Context, urls []string) error { return revisitNow(n.db, n.shard.fr, urls) }
	if n.query, err = indexer.ServeQueries(n.nc, n.shard.ix, cfg.Lo, cfg.Hi, cfg.Version, revisit, log.With("component", "query")); err != nil {
		return nil, err
	}
	return n, nil
}

// Run consumes the node's streams and runs its frontier until ctx is done;
// then it finishes the batches in hand (acking only what is committed) and
// returns. It stops the same way, and returns an error wrapping
// bus.ErrLeaseLost, if another node takes its shards.
func (n *ShardNode) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan error, 1)
	go func() {
		err := n.lease.Keep(ctx)
		if err != nil {
			cancel()
		}
		lost <- err
	}()
	err := n.shard.Run(ctx)
	cancel()
	return errors.Join(<-lost, err)
}

// Register adds the node's index and frontier metrics to reg.
func (n *ShardNode) Register(reg prometheus.Registerer) error {
	return reg.Register(newIndexCollector(n.shard.ix, n.shard.fr))
}

// Close stops the query service, flushes the connection and closes the
// index; it is safe on a partially opened node.
func (n *ShardNode) Close() error {
	var errs []error
	if n.query != nil {
		errs = append(errs, n.query.Stop())
	}
	if n.lease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, n.lease.Release(ctx))
		cancel()
	}
	errs = append(errs, closeConn(n.nc))
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// closeConn drains nc (delivering what it has received, flushing what it
// publishes) and waits until it is closed.
func closeConn(nc *nats.Conn) error {
	if nc == nil {
		return nil
	}
	err := nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	}
	for !nc.IsClosed() {
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// Client is a connection of a stateless role (worker, gateway, seed) to
// the cluster, with its shard count read from the streams.
type Client struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Shards int
}

// Connect connects to NATS and waits until a shard node has created the
// streams (so a worker or gateway may start first). Close the client.
func Connect(ctx context.Context, cfg bus.ClientConfig, log *slog.Logger) (*Client, error) {
	nc, err := bus.Dial(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	c := &Client{NC: nc}
	if c.JS, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if c.Shards, err = bus.WaitShards(ctx, c.JS, log); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Close flushes and closes the connection.
func (c *Client) Close() error { return closeConn(c.NC) }

// RunWorker runs a worker process's fetches until ctx is done, then stops
// pulling and ends its fetches within cfg.ShutdownGrace.
func (c *Client) RunWorker(ctx context.Context, cfg crawler.WorkerConfig, log *slog.Logger) error {
	cfg.Shards = c.Shards
	return crawler.NewWorker(c.JS, cfg, log).Run(ctx)
}

// Seed queues seeds (normalized URLs) with the shards owning them, putting
// their hosts in scope, as AllInOne.Seed does.
func (c *Client) Seed(ctx context.Context, seeds []string) error {
	return seed(ctx, bus.Publisher{JS: c.JS}, c.Shards, seeds)
}

func seed(ctx context.Context, pub bus.Publisher, shards int, seeds []string) error {
	var waits []func() error
	for sh, lb := range sourcelessBatches(seeds, shards, true, false) {
		data, err := proto.Marshal(lb)
		if err != nil {
			return err
		}
		wait, err := pub.Publish(ctx, bus.LinksSubject(sh), "", data)
		if err != nil {
			return err
		}
		waits = append(waits, wait)
	}
	for _, w := range waits {
		if err := w(); err != nil {
			return err
		}
	}
	return nil
}
