// Package apiserver serves the public linkgraph.v1 API and dials it: a gRPC
// server with health and reflection, the HTTP/JSON mirror of its unary calls
// through grpc-gateway and the HTTP download of its Export call, optional
// bearer-token auth on both, and the TLS and token wiring of the clients
// (the CLI's --server mode).
//
// The gateway calls the service in process rather than through a loopback
// gRPC connection, so an HTTP request costs no second hop; because gRPC
// interceptors do not run on that path, the gateway checks the token itself
// with the same Authenticator the interceptors use.
package apiserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	goruntime "runtime"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// GatewayPrefix is the path under which Server.Gateway answers; mount the
// handler there.
const GatewayPrefix = "/v1/"

// Config says what a Server serves and how.
type Config struct {
	// Service answers the queries. Required.
	Service lgv1.LinkGraphServiceServer
	// Token, when not empty, must come with every call as
	// "authorization: Bearer <Token>", except health checks. Default: no auth.
	Token string
	// TLS, when not nil, makes the gRPC server speak TLS with it (see
	// LoadServerTLS); the caller serves the gateway's HTTP listener with the
	// same config. Default: plaintext.
	TLS *tls.Config
	// ExportStall is how long an HTTP download may wait for its client to
	// take more bytes before it is given up (default DefaultExportStall):
	// a client that stops reading must not hold an export open for ever.
	ExportStall time.Duration
}

// DefaultExportStall is Config.ExportStall when it is zero.
const DefaultExportStall = time.Minute

// ErrNoService is returned by New when Config.Service is nil.
var ErrNoService = errors.New("apiserver: no service")

// Server is the gRPC server of LinkGraphService (with health and
// reflection) and its HTTP/JSON gateway. Its methods are safe for
// concurrent use. It holds no listener: run GRPC.Serve on one and mount
// Gateway on an HTTP server; Stop ends both gracefully.
type Server struct {
	// GRPC serves linkgraph.v1.LinkGraphService, grpc.health.v1.Health and
	// reflection.
	GRPC *grpc.Server
	// Health reports SERVING for "" and the service from New on.
	Health  *health.Server
	gateway http.Handler
	metrics []prometheus.Collector
}

// Register adds the server's metrics to reg: grpc-go's standard
// grpc_server_* (calls started and handled by method and code, handling
// time) and linkgraph_http_request_duration_seconds for /v1/.
func (s *Server) Register(reg prometheus.Registerer) error {
	for _, c := range s.metrics {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// New builds a Server; it does no I/O.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, ErrNoService
	}
	svc := cfg.Service
	auth := NewAuthenticator(cfg.Token)
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(0.0005, 2, 16)), // 0.5 ms .. 16 s
	))
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(serverCodec),
		// Calls run on a pool of goroutines whose stacks have grown to
		// what a query needs, not on a new goroutine each: growing the
		// stack took 4% of the CPU of bench/query's pages of 100. (The
		// option is marked experimental; past the pool, grpc-go starts a
		// goroutine per call as without it.)
		grpc.NumStreamWorkers(uint32(4 * goruntime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(metrics.UnaryServerInterceptor(), auth.UnaryInterceptor),
		grpc.ChainStreamInterceptor(metrics.StreamServerInterceptor(), auth.StreamInterceptor),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	srv := grpc.NewServer(opts...)
	lgv1.RegisterLinkGraphServiceServer(srv, svc)
	metrics.InitializeMetrics(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(lgv1.LinkGraphService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	gw, marshaler, err := newGateway(svc)
	if err != nil {
		return nil, err
	}
	// The download is served beside the gateway, not by it: grpc-gateway's
	// in-process handlers do not stream. It sits behind the same auth and
	// query normalization.
	mux := http.NewServeMux()
	mux.Handle("GET "+ExportPath, &exportHandler{svc: svc, mux: gw, marshaler: marshaler, stall: cmp.Or(cfg.ExportStall, DefaultExportStall)})
	// Pages of up to 10,000 rows of URLs shrink about tenfold with gzip,
	// for the clients that accept it (small answers go as they are).
	mux.Handle("/", gzhttp.GzipHandler(gw))
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		runtime.HTTPError(r.Context(), gw, marshaler, w, r, err)
	}
	httpSeconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "linkgraph_http_request_duration_seconds",
		Help:    "Time to answer a request of the HTTP/JSON API under /v1/, by status code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"code"})
	// Auth first, so that nothing of an unauthenticated request's body is
	// read.
	gateway := promhttp.InstrumentHandlerDuration(httpSeconds, auth.HTTPMiddleware(limitBody(headAsGet(normalizeQuery(mux, fail)), fail)))
	return &Server{GRPC: srv, Health: hs, gateway: gateway, metrics: []prometheus.Collector{metrics, httpSeconds}}, nil
}

// Gateway is the HTTP/JSON mirror of the unary calls (GET /v1/backlinks, /v1/new-links, /v1/lost-links, /v1/velocity,
// /v1/referring-domains, /v1/anchors, /v1/summary, /v1/outlinks, /v1/intersect; routes in
// api/linkgraph/v1/linkgraph_gateway.yaml) and the NDJSON/CSV download of
// Export (GET /v1/export, see ExportPath), to be mounted at GatewayPrefix.
// Errors are JSON {"code", "message", "details"} with the HTTP status
// grpc-gateway maps the gRPC code to: 400 for InvalidArgument (an unknown
// query parameter or JSON body field included), 401 for Unauthenticated;
// and 405 with an Allow header for a method a route does not take (GET
// routes take HEAD), 413 for a body over MaxBodyBytes.
func (s *Server) Gateway() http.Handler { return s.gateway }

// Stop marks the service not serving and stops the gRPC server after the
// calls in flight end. The caller shuts its HTTP server down itself.
func (s *Server) Stop() {
	s.Health.Shutdown()
	s.GRPC.GracefulStop()
}

// newGateway registers the in-process handlers on a grpc-gateway mux and
// returns it with its JSON marshaler.
func newGateway(svc lgv1.LinkGraphServiceServer) (*runtime.ServeMux, runtime.Marshaler, error) {
	// Field names as in the proto, the same names the query parameters and
	// the CLI's JSON use; unpopulated fields are emitted so that every row
	// has every key and next_page_token is always present.
	marshaler := &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		// An unknown field in a request body is refused (400), as an
		// unknown query parameter is: a misspelt field would otherwise be
		// dropped unseen.
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithRoutingErrorHandler(routingError),
		// Without it a form POST to a GET route is served as the GET with
		// the form as its parameters, past normalizeQuery's check of
		// unknown ones, and a wrong method is not always a 405.
		runtime.WithDisablePathLengthFallback(),
	)
	// The context only bounds the registration; handlers use each request's.
	if err := lgv1.RegisterLinkGraphServiceHandlerServer(context.Background(), mux, svc); err != nil {
		return nil, nil, fmt.Errorf("cannot register the HTTP gateway: %w", err)
	}
	return mux, marshaler, nil
}
