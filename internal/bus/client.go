package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is the NATS server the cluster roles connect to by default.
const DefaultURL = "nats://127.0.0.1:4222"

// MinPayload is the smallest max_payload a NATS server must allow: a page
// result carries up to 10k links, several MB.
const MinPayload = 8 << 20

// ClientConfig says how a cluster role connects to an external NATS server.
type ClientConfig struct {
	// URLs are the servers, comma-separated (default DefaultURL).
	URLs string
	// Creds is a credentials file (JWT and NKey seed); default none.
	Creds string
	// TLSCA, TLSCert and TLSKey are PEM files: the CA that signs the
	// servers' certificates, and a client certificate for mutual TLS.
	// Default: no TLS unless the URL says tls://.
	TLSCA, TLSCert, TLSKey string
	// Name names the connection in the server's monitoring (e.g. "worker").
	Name string
}

// dialFirstLog is how long Dial waits for its first connection before it
// says so, and dialLogEvery how often it says so again.
const (
	dialFirstLog = time.Second
	dialLogEvery = 30 * time.Second
)

// Dial connects to NATS. It retries the first connection until ctx is done,
// so that a role may start before its NATS server, and reconnects forever
// afterwards. log reports disconnections and reconnections.
func Dial(ctx context.Context, cfg ClientConfig, log *slog.Logger) (*nats.Conn, error) {
	if cfg.URLs == "" {
		cfg.URLs = DefaultURL
	}
	opts := []nats.Option{
		nats.Name("linkgraph " + cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// Not when this process closes the connection; a server that
			// shuts down cleanly gives no error, and is news too.
			if err != nil || !nc.IsClosed() {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("bus: give the NATS client certificate and key together")
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: cannot connect to NATS at %s: %w", cfg.URLs, err)
	}
	// With RetryOnFailedConnect, Connect returns at once; wait here so the
	// caller knows whether the server is reachable, and say so while it
	// is not: a role waiting for its NATS server is otherwise silent.
	start, nextLog := time.Now(), time.Now().Add(dialFirstLog)
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("bus: NATS at %s not reachable: %w", cfg.URLs, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if nc.IsClosed() {
			return nil, fmt.Errorf("bus: connection to NATS at %s closed: %w", cfg.URLs, nc.LastError())
		}
		if now := time.Now(); now.After(nextLog) {
			log.Warn("NATS not reachable yet; still trying", "url", cfg.URLs, "waited", now.Sub(start).Round(time.Second), "err", nc.LastError())
			nextLog = now.Add(dialLogEvery)
		}
	}
	if mp := nc.MaxPayload(); mp < MinPayload {
		log.Warn("the NATS server's max_payload is below what large pages need; results of pages with many links will be cut to fit",
			"max_payload", mp, "want", MinPayload)
	}
	return nc, nil
}

// metaShards is the stream metadata key holding the cluster's shard count,
// so that workers and gateways learn it from NATS instead of a flag that
// could disagree.
const metaShards = "linkgraph_shards"

// ErrNoStreams is returned by Shards while no shard node has created the
// streams yet.
var ErrNoStreams = errors.New("bus: the linkgraph streams do not exist yet (no shard node has started)")

// Shards returns the shard count recorded on the streams by the shard
// nodes.
func Shards(ctx context.Context, js jetstream.JetStream) (int, error) {
	n, err := recordedShards(ctx, js)
	if err == nil && n == 0 {
		err = fmt.Errorf("bus: stream %s has no shard count (metadata %s); start a shard node to set it", FetchStream, metaShards)
	}
	return n, err
}

// recordedShards returns the shard count in the streams' metadata, 0 if
// none is recorded, and ErrNoStreams if there are no streams.
func recordedShards(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, FetchStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, ErrNoStreams
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		// No JetStream API answered: the server runs without it.
		return 0, fmt.Errorf("bus: the NATS server has no JetStream (start nats-server with -js, or jetstream {} in its config): %w", err)
	}
	if err != nil {
		return 0, fmt.Errorf("bus: cannot read stream %s: %w", FetchStream, err)
	}
	v, ok := s.CachedInfo().Config.Metadata[metaShards]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("bus: stream %s has a bad shard count (metadata %s=%q)", FetchStream, metaShards, v)
	}
	return n, nil
}

// WaitShards waits until the streams and the workers' consumer exist and
// returns the shard count. It is how workers and gateways may start before
// the shard nodes.
func WaitShards(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (int, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		n, err := Shards(ctx, js)
		if err == nil {
			// The streams come first, then the workers' consumer.
			if _, err = js.Consumer(ctx, FetchStream, WorkersConsumer); err == nil {
				return n, nil
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				err = ErrNoStreams
			}
		}
		if !errors.Is(err, ErrNoStreams) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return 0, err
		}
		log.Info("waiting for a shard node to create the streams", "err", err)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// ParseRange parses a shard range: "3" or "0-31" (inclusive), within
// [0, shards). It returns the half-open range [lo, hi).
func ParseRange(s string, shards int) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	last := lo
	var err2 error
	if isRange {
		last, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("shard range %q: want FIRST-LAST (inclusive), e.g. 0-31, or one shard number", s)
	}
	if lo < 0 || last < lo || last >= shards {
		return 0, 0, fmt.Errorf("shard range %q: want 0 <= FIRST <= LAST < %d (the shard count)", s, shards)
	}
	return lo, last + 1, nil
}

// NodeRange is the share [lo, hi) of node ordinal (0-based) of n nodes:
// consecutive shards, the shares differing in size by at most one.
func NodeRange(ordinal, n, shards int) (lo, hi int) {
	return ordinal * shards / n, (ordinal + 1) * shards / n
}
