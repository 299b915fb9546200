package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/crawler"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/node"
)

// The cluster roles: worker, shard and gateway each run one role against an
// external NATS server, and seed queues URLs in a running cluster. See
// docs/operations.md.

// clusterFlags are the flags of every cluster role: the NATS connection
// and logging.
type clusterFlags struct {
	nats     bus.ClientConfig
	logLevel string
}

func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nats.URLs, "nats", bus.DefaultURL, "NATS server URLs, comma-separated")
	fs.StringVar(&f.nats.Creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed)")
	fs.StringVar(&f.nats.TLSCA, "nats-tls-ca", "", "PEM file of the CA that signs the NATS servers' certificates")
	fs.StringVar(&f.nats.TLSCert, "nats-tls-cert", "", "PEM client certificate for NATS mutual TLS (needs --nats-tls-key)")
	fs.StringVar(&f.nats.TLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// graceFlag registers --shutdown-grace, checked by checkGrace.
func graceFlag(fs *flag.FlagSet, what string) *time.Duration {
	return fs.Duration("shutdown-grace", crawler.DefaultShutdownGrace, "on SIGTERM, how long "+what+" may take to finish before it is cut off")
}

func checkGrace(d time.Duration) error {
	if d <= 0 {
		return usagef("--shutdown-grace %v: must be positive", d)
	}
	return nil
}

func (f *clusterFlags) check() error {
	var errs []error
	if (f.nats.TLSCert == "") != (f.nats.TLSKey == "") {
		errs = append(errs, usagef("give --nats-tls-cert and --nats-tls-key together"))
	}
	for _, file := range []struct{ flag, path string }{{"--nats-creds", f.nats.Creds}, {"--nats-tls-ca", f.nats.TLSCA}, {"--nats-tls-cert", f.nats.TLSCert}, {"--nats-tls-key", f.nats.TLSKey}} {
		if file.path == "" {
			continue
		}
		if _, err := os.Stat(file.path); err != nil {
			errs = append(errs, usagef("%s: %w", file.flag, err))
		}
	}
	return errors.Join(errs...)
}

// noArgs refuses positional arguments.
func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// version is the binary's module version, in the semver form NATS
// micro services require.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; len(v) > 1 && v[0] == 'v' {
			return v[1:]
		}
	}
	return "0.0.0-dev"
}

type workerCmd struct{}

func (*workerCmd) name() string { return "worker" }
func (*workerCmd) synopsis() string {
	return "cluster role: fetch pages from the shared fetch queue (stateless)"
}

func (c *workerCmd) run(ctx context.Context, args []string, _, stderr io.Writer) error {
	paceCollector(rolesGCPercent)
	fs := newFlagSet("worker", "worker [flags]", stderr)
	var cf clusterFlags
	var ff fetchFlags
	cf.register(fs)
	ff.register(fs, crawler.DefaultWorkers)
	grace := graceFlag(fs, "fetches in flight (their tasks are then handed back)")
	httpAddr := fs.String("http-addr", ":9090", "HTTP listen address for /metrics, /healthz and /readyz")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	wc, errs := ff.config()
	if err := errors.Join(noArgs(pos), cf.check(), checkGrace(*grace), errors.Join(errs...)); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	log = log.With("role", "worker")
	ops, err := listenOps("--http-addr", *httpAddr, nil)
	if err != nil {
		return err
	}
	defer ops.close()
	wc.FetchSeconds, wc.Redeliveries, wc.ShutdownGrace = crawler.NewFetchSeconds(), crawler.NewRedeliveries(), *grace
	ops.Reg.MustRegister(wc.FetchSeconds, wc.Redeliveries)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.run(gctx) })
	g.Go(func() error {
		cf.nats.Name = "worker"
		cl, err := node.Connect(gctx, cf.nats, log)
		if err != nil {
			return startErr(gctx, err)
		}
		defer cl.Close()
		ops.setReady(true)
		log.Info("worker started", "nats", cf.nats.URLs, "shards", cl.Shards, "concurrency", wc.Concurrency, "http", ops.Addr())
		return cl.RunWorker(gctx, wc, log)
	})
	return g.Wait()
}

// startErr is what a role returns when its start was cut short: nothing if
// it was told to stop, the error otherwise.
func startErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type shardCmd struct{}

func (*shardCmd) name() string { return "shard" }
func (*shardCmd) synopsis() string {
	return "cluster role: frontier and index of a fixed range of shards (stateful)"
}

// ordinalSuffix is the trailing number of a StatefulSet pod's hostname.
var ordinalSuffix = regexp.MustCompile(`-(\d+)$`)

func (c *shardCmd) run(ctx context.Context, args []string, _, stderr io.Writer) error {
	paceCollector(rolesGCPercent)
	fs := newFlagSet("shard", "shard --shards FIRST-LAST|auto [flags]", stderr)
	var cf clusterFlags
	var ff frontierFlags
	cf.register(fs)
	ff.register(fs)
	data := fs.String("data", DefaultDataDir, "data directory of this node (index and frontier)")
	var sf storeFlags
	sf.register(fs)
	rangeFlag := fs.String("shards", "", "the shards this node owns: FIRST-LAST (inclusive, e.g. 0-31), or auto to take share --ordinal of --shard-nodes")
	nodes := fs.Int("shard-nodes", 0, "with --shards auto: the number of shard nodes")
	ordinal := fs.Int("ordinal", -1, "with --shards auto: this node's number, 0 to --shard-nodes - 1 (default: the trailing number of the hostname, as in a StatefulSet)")
	total := fs.Int("shard-count", bus.DefaultShards, "the cluster's shard count S, fixed at install (the same on every node)")
	replicas := fs.Int("replicas", 1, "replicas of the JetStream streams (3 on a NATS cluster)")
	ackWait := fs.Duration("fetch-ack-wait", bus.DefaultAckWait, "how long a fetch task may stay unacknowledged before another worker gets it; must exceed the workers' --timeout")
	httpAddr := fs.String("http-addr", ":9090", "HTTP listen address for /metrics, /healthz and /readyz")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	fc, errs := ff.config(max(*total, 1))
	errs = append(errs, noArgs(pos), cf.check())
	if *total < 1 || *total > 1<<16 {
		errs = append(errs, usagef("--shard-count %d: must be between 1 and 65536", *total))
	}
	if *replicas < 1 || *replicas > 5 {
		errs = append(errs, usagef("--replicas %d: JetStream allows 1 to 5", *replicas))
	}
	if *ackWait <= 0 {
		errs = append(errs, usagef("--fetch-ack-wait %v: must be positive", *ackWait))
	}
	so, err := sf.options()
	errs = append(errs, err)
	if *data == "" {
		errs = append(errs, usagef("--data must not be empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	lo, hi, err := shardRange(*rangeFlag, *nodes, *ordinal, *total)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	log = log.With("role", "shard", "shards", fmt.Sprintf("%d-%d", lo, hi-1))
	ops, err := listenOps("--http-addr", *httpAddr, nil)
	if err != nil {
		return err
	}
	defer ops.close()
	bc := bus.DefaultConfig()
	bc.Shards, bc.Replicas, bc.AckWait = *total, *replicas, *ackWait
	cfg := node.ShardConfig{DataDir: *data, Store: so, NATS: cf.nats, Bus: bc, Lo: lo, Hi: hi, Frontier: fc, Version: version()}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.run(gctx) })
	g.Go(func() error {
		n, err := node.OpenShardNode(gctx, cfg, log)
		if err != nil {
			return startErr(gctx, err)
		}
		defer n.Close()
		if err := n.Register(ops.Reg); err != nil {
			return err
		}
		ops.setReady(true)
		log.Info("shard node started", "nats", cf.nats.URLs, "data", *data, "http", ops.Addr())
		// At SIGTERM the node stops pulling and finishes the batches in
		// hand: those are acked once committed, the rest comes back to the
		// node's next life.
		return n.Run(gctx)
	})
	return g.Wait()
}

// shardRange resolves --shards to the half-open range [lo, hi).
func shardRange(spec string, nodes, ordinal, total int) (lo, hi int, err error) {
	if spec != "auto" {
		if spec == "" {
			return 0, 0, usagef("--shards is required: FIRST-LAST (e.g. 0-%d for all shards) or auto", total-1)
		}
		if nodes != 0 || ordinal != -1 {
			return 0, 0, usagef("--shard-nodes and --ordinal go with --shards auto only")
		}
		lo, hi, err := bus.ParseRange(spec, total)
		if err != nil {
			return 0, 0, usagef("--shards: %w", err)
		}
		return lo, hi, nil
	}
	if nodes < 1 || nodes > total {
		return 0, 0, usagef("--shards auto needs --shard-nodes between 1 and --shard-count (%d)", total)
	}
	if ordinal == -1 {
		host, err := os.Hostname()
		if err != nil {
			return 0, 0, fmt.Errorf("--shards auto: cannot read the hostname for the ordinal: %w (give --ordinal)", err)
		}
		m := ordinalSuffix.FindStringSubmatch(host)
		if m == nil {
			return 0, 0, usagef("--shards auto: hostname %q does not end in -<ordinal>; give --ordinal", host)
		}
		ordinal, _ = strconv.Atoi(m[1])
	}
	if ordinal < 0 || ordinal >= nodes {
		return 0, 0, usagef("--ordinal %d: must be between 0 and --shard-nodes - 1 (%d)", ordinal, nodes-1)
	}
	lo, hi = bus.NodeRange(ordinal, nodes, total)
	return lo, hi, nil
}

type gatewayCmd struct{}

func (*gatewayCmd) name() string { return "gateway" }
func (*gatewayCmd) synopsis() string {
	return "cluster role: answer gRPC and HTTP/JSON queries by asking the shard nodes (stateless)"
}

func (c *gatewayCmd) run(ctx context.Context, args []string, _, stderr io.Writer) error {
	paceCollector(rolesGCPercent)
	fs := newFlagSet("gateway", "gateway [flags]", stderr)
	var cf clusterFlags
	cf.register(fs)
	addr := fs.String("grpc-addr", ":7070", "gRPC listen address")
	httpAddr := fs.String("http-addr", ":7071", "HTTP listen address for the HTTP/JSON API under /v1/, /metrics, /healthz and /readyz")
	tokenFile := fs.String("auth-token-file", "", "require \"authorization: Bearer <token>\" with the token in this file on every gRPC call but health checks and every /v1/ request")
	tlsCert := fs.String("tls-cert", "", "serve gRPC and HTTP over TLS with this PEM certificate chain (needs --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	grace := graceFlag(fs, "queries and exports in flight")
	rankEvery := fs.Duration("rank-every", 0, "rank the cluster's hosts and domains when the stored ranks are this old; 0 (the default) ranks only on request: linkgraph rank --server ADDR, or linkgraph rank --nats URLS (in its own process, as the Helm chart's CronJob does). Set it on one gateway only: each would rank")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var errRank error
	if *rankEvery < 0 {
		errRank = fmt.Errorf("--rank-every %s: must not be negative", *rankEvery)
	}
	if err := errors.Join(noArgs(pos), cf.check(), checkGrace(*grace), errRank); err != nil {
		return usageError{err}
	}
	token, tlsConfig, err := apiFlags(*tokenFile, *tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	log = log.With("role", "gateway")
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --grpc-addr %s: %w", *addr, err)
	}
	defer lis.Close()
	ops, err := listenOps("--http-addr", *httpAddr, tlsConfig)
	if err != nil {
		return err
	}
	defer ops.close()

	cf.nats.Name = "gateway"
	// Until the cluster is there, /v1/ says why rather than 404.
	pending := apiserver.NewPending(fmt.Sprintf("waiting for the cluster (NATS at %s)", redactURLs(cf.nats.URLs)))
	ops.Mux.Handle(apiserver.GatewayPrefix, pending)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.run(gctx) })
	g.Go(func() error {
		log.Info("waiting for the cluster", "nats", redactURLs(cf.nats.URLs))
		cl, err := node.Connect(gctx, cf.nats, log)
		if err != nil {
			return startErr(gctx, err)
		}
		defer cl.Close()
		gw := indexer.NewGateway(cl.NC, cl.Shards)
		api, err := apiserver.New(apiserver.Config{Service: gw, Token: token, TLS: tlsConfig})
		if err != nil {
			return err
		}
		if *rankEvery > 0 {
			g.Go(func() error { return indexer.RankEvery(gctx, gw, *rankEvery, &lgv1.ComputeRanksRequest{}, log) })
		}
		if err := api.Register(ops.Reg); err != nil {
			return err
		}
		pending.Serve(api.Gateway())
		ops.setReady(true)
		log.Info("gateway started", "nats", redactURLs(cf.nats.URLs), "shards", cl.Shards, "grpc", lis.Addr(), "http", ops.Addr())
		return serveGRPC(gctx, api, lis, *grace)
	})
	return g.Wait()
}

// redactURLs is urls (comma-separated) without their user info, for logs
// and HTTP answers: NATS takes a token as the user name (nats://TOKEN@host),
// which url.URL.Redacted would keep.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// apiFlags loads the API server's token and TLS flags.
func apiFlags(tokenFile, cert, key string) (token string, tlsConfig *tls.Config, err error) {
	if (cert == "") != (key == "") {
		return "", nil, usagef("give --tls-cert and --tls-key together")
	}
	if tokenFile != "" {
		if token, err = apiserver.LoadToken(tokenFile); err != nil {
			return "", nil, usagef("--auth-token-file: %w", err)
		}
	}
	if cert != "" {
		if tlsConfig, err = apiserver.LoadServerTLS(cert, key); err != nil {
			return "", nil, usagef("--tls-cert/--tls-key: %w", err)
		}
	}
	return token, tlsConfig, nil
}

type seedCmd struct{}

func (*seedCmd) name() string { return "seed" }
func (*seedCmd) synopsis() string {
	return "queue seed URLs in a running cluster (their hosts come into scope)"
}

func (c *seedCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", "seed [flags] URL...", stderr)
	var cf clusterFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "give up if the cluster does not take the seeds within this time")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return usageError{err}
	}
	if *timeout <= 0 {
		return usagef("--timeout %v: must be positive", *timeout)
	}
	if len(pos) == 0 {
		return usagef("give at least one seed URL")
	}
	seeds, err := normalizeSeeds(pos)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	// Seeding is a one-shot command: fail rather than wait forever for a
	// cluster that is not there.
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cf.nats.Name = "seed"
	cl, err := node.Connect(ctx, cf.nats, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Seed(ctx, seeds); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queued %d seed(s) in a cluster of %d shards\n", len(seeds), cl.Shards)
	return nil
}
