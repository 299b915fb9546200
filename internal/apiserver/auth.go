package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ErrBadToken is returned by LoadToken for a token file that holds no
// usable token.
var ErrBadToken = errors.New("apiserver: bad token")

// LoadToken reads a bearer token from path. Surrounding whitespace (the
// trailing newline of `echo secret > file`) is dropped; the rest must be
// one non-empty line of printable ASCII without spaces, since it travels in
// an HTTP header.
func LoadToken(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrBadToken, path)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("%w: %s holds a space, a control or a non-ASCII character", ErrBadToken, path)
		}
	}
	return tok, nil
}

// Authenticator checks "authorization: Bearer <token>" on gRPC calls and
// HTTP requests. The zero token lets everything through. It is safe for
// concurrent use.
type Authenticator struct {
	// sum is the SHA-256 of the token: comparing digests in constant time
	// leaks neither the token's bytes nor its length.
	sum [sha256.Size]byte
	on  bool
}

// NewAuthenticator returns an Authenticator for token; an empty token
// turns auth off.
func NewAuthenticator(token string) *Authenticator {
	if token == "" {
		return &Authenticator{}
	}
	return &Authenticator{sum: sha256.Sum256([]byte(token)), on: true}
}

// check returns nil when header (an Authorization value, or "" when there
// is none) carries the token, else an Unauthenticated status.
func (a *Authenticator) check(header string) error {
	if !a.on {
		return nil
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if header == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return status.Error(codes.Unauthenticated, `missing "authorization: Bearer <token>"`)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return nil
}

// healthPrefix is the method prefix of the health service, which load
// balancers and orchestrators probe without credentials.
var healthPrefix = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"

func (a *Authenticator) checkContext(ctx context.Context, method string) error {
	if !a.on || strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		// Several values could be read differently by different layers;
		// accept exactly one.
		return a.check("")
	}
	return a.check(vals[0])
}

// UnaryInterceptor rejects unary calls without the token.
func (a *Authenticator) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.checkContext(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor rejects streaming calls (including reflection) without
// the token.
func (a *Authenticator) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.checkContext(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// HTTPMiddleware answers 401 with a JSON error, as grpc-gateway renders an
// Unauthenticated status, to requests without the token.
func (a *Authenticator) HTTPMiddleware(next http.Handler) http.Handler {
	if !a.on {
		return next
	}
	// A mux only to render the error as the gateway renders its own.
	errMux, errMarshaler := runtime.NewServeMux(), &runtime.JSONPb{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values("Authorization")
		h := ""
		if len(vals) == 1 {
			h = vals[0]
		}
		if err := a.check(h); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linkgraph"`)
			runtime.HTTPError(r.Context(), errMux, errMarshaler, w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerCreds adds the token to every call of a client connection.
type bearerCreds struct {
	token  string
	secure bool
}

var _ credentials.PerRPCCredentials = bearerCreds{}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for connections the caller chose
// to make in plaintext (ClientConfig.TLS false), so that a token meant for a
// TLS connection is never sent over one without it.
func (b bearerCreds) RequireTransportSecurity() bool { return b.secure }
