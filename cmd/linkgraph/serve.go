package main

import (
	"context"
	"errors"
	"fmt"
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

// DefaultGRPCAddr is where serve listens for gRPC by default.
const DefaultGRPCAddr = "127.0.0.1:7070"

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

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		hs.Shutdown()
		srv.GracefulStop()
		return nil
	})
	fmt.Fprintf(stderr, "linkgraph serving gRPC on %s (data %s)\n", lis.Addr(), cfg.DataDir)
	return g.Wait()
}
