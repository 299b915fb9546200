// Package node wires linkgraph's roles (worker, shard, gateway) into a
// running process. The all-in-one commands (crawl, serve) run every role in
// one process around an embedded NATS server; the cluster commands run one
// role each against an external NATS. The components are the same either
// way; only this wiring differs.
package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/crawler"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Config configures an all-in-one node.
type Config struct {
	// DataDir holds the index and the JetStream store.
	DataDir  string
	Store    store.Options
	Bus      bus.Config
	Frontier frontier.Config
	Worker   crawler.WorkerConfig
}

// AllInOne runs every role in one process over an embedded NATS server. It
// must be closed.
type AllInOne struct {
	cfg   Config
	log   *slog.Logger
	emb   *bus.Embedded
	nc    *nats.Conn
	js    jetstream.JetStream
	db    *store.DB
	shard *Shard

	fetchSeconds *prometheus.HistogramVec
}

// OpenAllInOne opens the data directory (failing with store.ErrLocked if
// another process has it), starts the embedded NATS server and creates the
// streams. Nothing is fetched until Run.
func OpenAllInOne(ctx context.Context, cfg Config, log *slog.Logger) (_ *AllInOne, err error) {
	n := &AllInOne{cfg: cfg, log: log, fetchSeconds: crawler.NewFetchSeconds()}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	// The lock comes first so a second process fails before touching the
	// JetStream store.
	if n.db, err = store.OpenWith(cfg.DataDir, cfg.Store); err != nil {
		return nil, err
	}
	if n.cfg.Bus.Shards, err = n.db.Shards(cfg.Bus.Shards, bus.DefaultShards); err != nil {
		if errors.Is(err, store.ErrShardCount) {
			err = fmt.Errorf("%w (keep --shards %d, or use a new --data)", err, n.cfg.Bus.Shards)
		}
		return nil, err
	}
	if err = n.db.Own(0, n.cfg.Bus.Shards); err != nil {
		return nil, fmt.Errorf("node: %s: %w", cfg.DataDir, err)
	}
	cfg = n.cfg
	if n.emb, err = bus.StartEmbedded(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.nc, err = n.emb.Connect("linkgraph"); err != nil {
		return nil, err
	}
	if n.js, err = jetstream.New(n.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err = bus.ResetConsumers(ctx, n.js, cfg.Bus); err != nil {
		return nil, err
	}
	if err = bus.EnsureStreams(ctx, n.js, cfg.Bus); err != nil {
		return nil, err
	}
	n.shard, err = newShard(ctx, n.db, n.js, cfg.Bus, 0, cfg.Bus.Shards, cfg.Frontier, log.With("role", "shard"))
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Index returns the node's index, for queries.
func (n *AllInOne) Index() *indexer.Index { return n.shard.ix }

// Frontier returns the node's frontier.
func (n *AllInOne) Frontier() *frontier.Frontier { return n.shard.fr }

// Seed puts seeds (normalized URLs) in scope and in the frontier. They go
// through the links stream like any discovered link, so seeding is the same
// in a cluster.
func (n *AllInOne) Seed(ctx context.Context, seeds []string) error {
	return seed(ctx, bus.Publisher{JS: n.js}, n.cfg.Bus.Shards, seeds)
}

// Run runs the shard and worker roles until ctx is done or one fails; a
// failed role stops the others.
func (n *AllInOne) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	w := crawler.NewWorker(n.js, n.withShards(n.cfg.Worker), n.log.With("role", "worker"))
	g.Go(func() error { return n.shard.Run(gctx) })
	g.Go(func() error { return w.Run(gctx) })
	return g.Wait()
}

func (n *AllInOne) withShards(c crawler.WorkerConfig) crawler.WorkerConfig {
	c.Shards = n.cfg.Bus.Shards
	c.FetchSeconds = n.fetchSeconds
	return c
}

// Idle reports whether the crawl has nothing left to do. It checks twice,
// apart, because a message can be between two streams for an instant.
func (n *AllInOne) Idle(ctx context.Context) (bool, error) {
	for range 2 {
		idle, err := n.shard.idle(ctx)
		if err != nil || !idle {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true, nil
}

// Close stops the NATS server and closes the index; it is safe on a
// partially opened node.
func (n *AllInOne) Close() error {
	errs := []error{closeConn(n.nc)}
	if n.emb != nil {
		n.emb.Shutdown()
	}
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// Recrawl queues the source pages of target's known backlinks for a fetch
// now (see Frontier.RevisitNow) and returns how many it queued, and
// whether more than maxSources link to the target.
func (n *AllInOne) Recrawl(ctx context.Context, target string, scope lgv1.Scope, maxSources int) (int, bool, error) {
	sources, truncated, err := n.shard.ix.Sources(ctx, target, scope, maxSources)
	if err != nil {
		return 0, false, err
	}
	if err := revisitNow(n.db, n.shard.fr, sources); err != nil {
		return 0, false, err
	}
	return len(sources), truncated, nil
}

// revisitNow queues urls in fr for a fetch now, in one batch.
func revisitNow(db *store.DB, fr *frontier.Frontier, urls []string) error {
	b := db.NewWriteBatch()
	defer b.Close()
	p := frontier.NewPending()
	for _, u := range urls {
		if _, err := urlnorm.Normalize(u); err != nil {
			fr.Abandon(p)
			return fmt.Errorf("node: cannot recrawl %q: %w", u, err)
		}
		if err := fr.RevisitNow(b, p, u); err != nil {
			fr.Abandon(p)
			return err
		}
	}
	if err := b.Commit(); err != nil {
		fr.Abandon(p)
		return fmt.Errorf("node: cannot queue the pages: %w", err)
	}
	fr.Committed(p)
	return nil
}

// Service is the API of an all-in-one node: the index's queries, and
// Recrawl, which needs the frontier.
type Service struct {
	*indexer.GRPCServer
	Node *AllInOne
}

// Recrawl implements lgv1.LinkGraphServiceServer.
func (s Service) Recrawl(ctx context.Context, req *lgv1.RecrawlRequest) (*lgv1.RecrawlResponse, error) {
	n, truncated, err := s.Node.Recrawl(ctx, req.GetTarget(), req.GetScope(), int(req.GetMaxSources()))
	if err != nil {
		return nil, indexer.Status(err)
	}
	return &lgv1.RecrawlResponse{Queued: int64(n), Truncated: truncated}, nil
}
