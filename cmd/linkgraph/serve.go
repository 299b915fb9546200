package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q: give seeds with --seed", pos[0])
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("give --tls-cert and --tls-key together")
	}
	var token string
	if *tokenFile != "" {
		if token, err = apiserver.LoadToken(*tokenFile); err != nil {
			return usagef("--auth-token-file: %w", err)
		}
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		if tlsConfig, err = apiserver.LoadServerTLS(*tlsCert, *tlsKey); err != nil {
			return usagef("--tls-cert/--tls-key: %w", err)
		}
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
	hlis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on --http-addr %s: %w", *httpAddr, err)
	}
	defer hlis.Close()
	n, err := node.OpenAllInOne(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Seed(ctx, seeds); err != nil {
		return err
	}

	api, err := apiserver.New(apiserver.Config{Service: &indexer.GRPCServer{Index: n.Index()}, Token: token, TLS: tlsConfig})
	if err != nil {
		return err
	}
	if token != "" && tlsConfig == nil && !isLoopback(lis.Addr()) {
		log.Warn("--auth-token-file without TLS on a non-loopback address: tokens cross the network in clear text", "grpc_addr", lis.Addr())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.Register(reg); err != nil {
		return err
	}
	var ready atomic.Bool
	mux := http.NewServeMux()
	// The HTTP/JSON mirror shares this listener with the metrics rather than
	// the gRPC one, so that gRPC keeps grpc-go's own HTTP/2 transport (its
	// http.Handler mode is much slower) and /v1/ needs no protocol sniffing.
	mux.Handle(apiserver.GatewayPrefix, api.Gateway())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error {
		serve := hsrv.Serve
		if tlsConfig != nil {
			serve = func(l net.Listener) error { return hsrv.ServeTLS(l, "", "") }
		}
		if err := serve(hlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := api.GRPC.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		ready.Store(false)
		api.Stop()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hsrv.Shutdown(sctx)
	})
	ready.Store(true)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stderr, "linkgraph serving gRPC on %s, HTTP on %s://%s (data %s)\n", lis.Addr(), scheme, hlis.Addr(), cfg.DataDir)
	return g.Wait()
}

// isLoopback reports whether a listener's address is on the loopback
// interface, where a token in clear text stays on the machine.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
