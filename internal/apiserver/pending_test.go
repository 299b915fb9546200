package apiserver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/linkgraph/linkgraph/internal/apiserver"
)

// A Pending answers 503 with a JSON error that says why until it is given
// the API, then hands every request to it.
func TestPending(t *testing.T) {
	p := apiserver.NewPending("waiting for the cluster (NATS at nats://127.0.0.1:4222)")
	mux := http.NewServeMux()
	mux.Handle(apiserver.GatewayPrefix, p)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	res, body := send(t, http.MethodGet, hs.URL+"/v1/backlinks?target=x.example", nil, "")
	msg := wantError(t, "pending", res, body, http.StatusServiceUnavailable, codes.Unavailable)
	if msg != "not ready: waiting for the cluster (NATS at nats://127.0.0.1:4222)" {
		t.Errorf("pending: message %q", msg)
	}
	p.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") }))
	if res, body := send(t, http.MethodGet, hs.URL+"/v1/backlinks", nil, ""); res.StatusCode != http.StatusOK || string(body) != "api" {
		t.Errorf("served: HTTP %d %q, want the API's answer", res.StatusCode, body)
	}
}
