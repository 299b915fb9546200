package main

import (
	"net/http"
	"sync/atomic"
	"time"

	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"io"
	"net"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
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
	httpAddr := fs.String("http-addr", DefaultHTTPAddr, "HTTP listen address for /metrics, /healthz and /readyz")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q: give seeds with --seed", pos[0])
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

	srv := grpc.NewServer()
	lgv1.RegisterLinkGraphServiceServer(srv, &indexer.GRPCServer{Index: n.Index()})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(lgv1.LinkGraphService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.Register(reg); err != nil {
		return err
	}
	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error {
		if err := hsrv.Serve(hlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		ready.Store(false)
		hs.Shutdown()
		srv.GracefulStop()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hsrv.Shutdown(sctx)
	})
	ready.Store(true)
	fmt.Fprintf(stderr, "linkgraph serving gRPC on %s, HTTP on %s (data %s)\n", lis.Addr(), hlis.Addr(), cfg.DataDir)
	return g.Wait()
}
