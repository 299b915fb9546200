package apiserver

import (
	"net/http"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Pending stands at GatewayPrefix for a Server not built yet, as a
// cluster's gateway is until NATS and the shards' streams are there: an
// http.ServeMux takes a pattern once, and a request meanwhile should hear
// why the API is not there (503, Unavailable) rather than a plain-text 404.
// It is safe for concurrent use.
type Pending struct {
	reason string
	h      atomic.Pointer[http.Handler]
	// errMux only renders the error as the gateway renders its own.
	errMux *runtime.ServeMux
}

// NewPending returns a Pending that answers every request 503 with a JSON
// error "not ready: <reason>" until Serve.
func NewPending(reason string) *Pending {
	return &Pending{reason: reason, errMux: runtime.NewServeMux()}
}

// Serve hands every later request to h, usually a Server's Gateway.
func (p *Pending) Serve(h http.Handler) { p.h.Store(&h) }

func (p *Pending) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := p.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	runtime.HTTPError(r.Context(), p.errMux, &runtime.JSONPb{}, w, r, status.Error(codes.Unavailable, "not ready: "+p.reason))
}
