package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxBodyBytes bounds the body of a request under GatewayPrefix; a larger
// one is answered 413. The one body the API takes, ComputeRanks'
// {"pages": true}, is a few bytes: 64 KiB leaves room for any client's
// formatting while a client cannot make the server hold more.
const MaxBodyBytes = 64 << 10

// limitBody answers 413 to a request whose body is over MaxBodyBytes and
// hands next the body read into memory otherwise. Reading it here, rather
// than capping the reader the gateway decodes, keeps the status: the
// generated handlers turn every decoding error into a 400.
func limitBody(next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	tooLarge := &runtime.HTTPStatusError{
		HTTPStatus: http.StatusRequestEntityTooLarge,
		Err:        status.Errorf(codes.ResourceExhausted, "request body over %d bytes: the API's request bodies are small JSON objects", MaxBodyBytes),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > MaxBodyBytes {
			// Refused unread: the server closes the connection rather than
			// drain a large body the handler left.
			fail(w, r, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				fail(w, r, tooLarge)
			} else {
				fail(w, r, status.Errorf(codes.InvalidArgument, "cannot read the request body: %v", err))
			}
			return
		}
		r2 := *r
		r2.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, &r2)
	})
}

// headAsGet serves HEAD on a GET route as GET: grpc-gateway routes HEAD to
// no handler. The server sends no body in answer to HEAD whatever the
// handler writes.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt, ok := routes[r.URL.Path]; ok && r.Method == http.MethodHead && rt.method == http.MethodGet {
			r2 := *r
			r2.Method = http.MethodGet
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// routingError is the gateway mux's RoutingErrorHandlerFunc. A known path
// asked with another method is 405 with an Allow header (grpc-gateway's
// default is 501 without one); that includes ExportPath, which is not a
// gateway route and so reaches the mux as a 404. The rest is left to
// runtime.DefaultRoutingErrorHandler.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	rt, ok := routes[r.URL.Path]
	if (httpStatus == http.StatusMethodNotAllowed || httpStatus == http.StatusNotFound) && ok && !rt.takes(r.Method) {
		w.Header().Set("Allow", rt.allow())
		runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
			HTTPStatus: http.StatusMethodNotAllowed,
			Err:        status.Error(codes.Unimplemented, fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, rt.allow())),
		})
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}
