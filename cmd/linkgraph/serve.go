package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/node"
)

// Default listen addresses of serve.
const (
	DefaultGRPCAddr = "127.0.0.1:7070"
	DefaultHTTPAddr = "127.0.0.1:7071"
)

type serveCmd struct{}

func (*serveCmd) name() string { return "serve" }
func (*serveCmd) synopsis() string {
	return "crawl and answer queries over gRPC, long-running (all-in-one)"
}

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (c *serveCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	paceCollector(rolesGCPercent)
	fs := newFlagSet("serve", "serve [flags] [--seed URL]...", stderr)
	var f crawlFlags
	f.register(fs)
	var seedArgs stringList
	fs.Var(&seedArgs, "seed", "seed URL to crawl from (repeatable)")
	addr := fs.String("grpc-addr", DefaultGRPCAddr, "gRPC listen address")
	httpAddr := fs.String("http-addr", DefaultHTTPAddr, "HTTP listen address for the HTTP/JSON API under /v1/, /metrics, /healthz and /readyz")
	tokenFile := fs.String("auth-token-file", "", "require \"authorization: Bearer <token>\" with the token in this file on every gRPC call but health checks and every /v1/ request")
	tlsCert := fs.String("tls-cert", "", "serve gRPC and HTTP over TLS with this PEM certificate chain (needs --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	rankEvery := fs.Duration("rank-every", 24*time.Hour, "rank hosts and domains when the stored ranks are this old (a fresh index first after 10 minutes); 0 ranks only on request (linkgraph rank --server)")
	rankPages := fs.Bool("rank-pages", false, "with --rank-every: rank pages too (memory grows with the page graph)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q: give seeds with --seed", pos[0])
	}
	if *rankEvery < 0 {
		return usagef("--rank-every %s: must not be negative", *rankEvery)
	}
	token, tlsConfig, err := apiFlags(*tokenFile, *tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	seeds, err := normalizeSeeds(seedArgs)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
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
	n, err := node.OpenAllInOne(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Seed(ctx, seeds); err != nil {
		return err
	}

	srv := &indexer.GRPCServer{Index: n.Index()}
	api, err := apiserver.New(apiserver.Config{Service: node.Service{GRPCServer: srv, Node: n}, Token: token, TLS: tlsConfig})
	if err != nil {
		return err
	}
	if token != "" && tlsConfig == nil && !isLoopback(lis.Addr()) {
		log.Warn("--auth-token-file without TLS on a non-loopback address: tokens cross the network in clear text", "grpc_addr", lis.Addr())
	}

	if err := n.Register(ops.Reg); err != nil {
		return err
	}
	if err := api.Register(ops.Reg); err != nil {
		return err
	}
	// The HTTP/JSON mirror shares this listener with the metrics rather than
	// the gRPC one, so that gRPC keeps grpc-go's own HTTP/2 transport (its
	// http.Handler mode is much slower) and /v1/ needs no protocol sniffing.
	ops.Mux.Handle(apiserver.GatewayPrefix, api.Gateway())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error { return ops.run(gctx) })
	g.Go(func() error { return serveGRPC(gctx, api, lis, 5*time.Second) })
	if *rankEvery > 0 {
		g.Go(func() error {
			return indexer.RankEvery(gctx, srv, *rankEvery, &lgv1.ComputeRanksRequest{Pages: *rankPages}, log)
		})
	}
	ops.setReady(true)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stderr, "linkgraph serving gRPC on %s, HTTP on %s://%s (data %s)\n", lis.Addr(), scheme, ops.Addr(), cfg.DataDir)
	return g.Wait()
}

// isLoopback reports whether a listener's address is on the loopback
// interface, where a token in clear text stays on the machine.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serveGRPC serves api on lis until ctx is done, then stops it gracefully,
// cutting off the calls still running (a long export) after grace.
func serveGRPC(ctx context.Context, api *apiserver.Server, lis net.Listener, grace time.Duration) error {
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		t := time.AfterFunc(grace, api.GRPC.Stop)
		defer t.Stop()
		api.Stop()
	})
	err := api.GRPC.Serve(lis)
	if !stop() {
		<-stopped // Serve returned because of the stop: wait until it is done
	}
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("gRPC server: %w", err)
	}
	return nil
}
