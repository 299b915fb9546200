package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsServer is the HTTP listener every long-running command has: /metrics
// (Prometheus), /healthz (the process is up) and /readyz (it is ready for
// work: 503 until markReady and again once shutdown starts). serve and the
// gateway mount the HTTP/JSON API on its mux too.
type opsServer struct {
	Mux   *http.ServeMux
	Reg   *prometheus.Registry
	ready atomic.Bool
	lis   net.Listener
	srv   *http.Server
	tls   *tls.Config
	// grace is how long requests in flight may run once shutdown starts
	// (default opsGrace).
	grace time.Duration
}

// Defaults of the ops server: a keep-alive connection idle for opsIdle is
// closed, so that idle clients cannot hold every file descriptor; requests
// in flight when shutdown starts get opsGrace to finish.
const (
	opsIdle  = 2 * time.Minute
	opsGrace = 5 * time.Second
)

// listenOps listens on addr at once, so that probes get answers while the
// process is still starting; tlsConfig, if not nil, serves HTTPS.
func listenOps(flagName, addr string, tlsConfig *tls.Config) (*opsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s %s: %w", flagName, addr, err)
	}
	o := &opsServer{Mux: http.NewServeMux(), Reg: prometheus.NewRegistry(), lis: lis, tls: tlsConfig, grace: opsGrace}
	o.Reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.Mux.Handle("GET /metrics", promhttp.HandlerFor(o.Reg, promhttp.HandlerOpts{}))
	o.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	o.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !o.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	o.srv = &http.Server{Handler: o.Mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: opsIdle, TLSConfig: tlsConfig}
	return o, nil
}

// Addr is the address listened on.
func (o *opsServer) Addr() net.Addr { return o.lis.Addr() }

func (o *opsServer) setReady(r bool) { o.ready.Store(r) }

// run serves until ctx is done, then marks the process not ready and shuts
// the server down, letting requests in flight finish for o.grace; those
// still running then (a download its client stopped reading) are cut off,
// since the process was asked to stop.
func (o *opsServer) run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		// Owned by run, which waits for it below.
		var err error
		if o.tls != nil {
			err = o.srv.ServeTLS(o.lis, "", "")
		} else {
			err = o.srv.Serve(o.lis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("HTTP server: %w", err)
	case <-ctx.Done():
	}
	o.setReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	err := o.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		slog.Warn("HTTP requests still running at the end of the shutdown grace are cut off", "grace", o.grace)
		err = o.srv.Close()
	}
	return errors.Join(err, <-errc)
}

// close releases the listener of a server that never ran.
func (o *opsServer) close() { o.lis.Close() }
