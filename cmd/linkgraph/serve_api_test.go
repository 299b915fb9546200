package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/testweb"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// TestServeHTTPGatewayWithAuthAndTLS runs serve with a token and TLS and
// asks it over HTTPS (/v1/ needs the token, /healthz does not), over gRPC
// and through the CLI.
func TestServeHTTPGatewayWithAuthAndTLS(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 5, PagesPerHost: 20})
	tmp := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, tmp)
	tokenFile := filepath.Join(tmp, "token")
	if err := os.WriteFile(tokenFile, []byte("serve-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data", t.TempDir(), "--grpc-addr", addr, "--http-addr", httpAddr,
		"--allow-private-networks", "--delay", "0", "--per-host-concurrency", "4",
		"--auth-token-file", tokenFile, "--tls-cert", certFile, "--tls-key", keyFile, "--rank-every", "2s"}
	for _, s := range web.Seeds() {
		args = append(args, "--seed", s)
	}
	ctx, errOut, stop := startCommand(t, args)

	// gRPC: health without a token, queries only with it.
	conn, err := apiserver.Dial(addr, apiserver.ClientConfig{CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 30s: %v; stderr: %s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := lgv1.NewLinkGraphServiceClient(conn).Backlinks(ctx, &lgv1.BacklinksRequest{Target: web.Seeds()[0]}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without token: got %v, want Unauthenticated", err)
	}

	// HTTPS with the certificate trusted.
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	get := func(path string, q url.Values, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+httpAddr+path+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, body
	}
	if c, body := get("/healthz", nil, ""); c != http.StatusOK {
		t.Errorf("/healthz without token: %d %s", c, body)
	}
	// The most linked target of the web, once crawled, has its backlinks
	// on /v1/backlinks.
	want := map[string]int{}
	for _, e := range web.Edges() {
		want[e.Target]++
	}
	var target string
	for tg, n := range want {
		if n > want[target] {
			target = tg
		}
	}
	q := url.Values{"target": {target}, "page_size": {"1000"}}
	for {
		c, body := get("/v1/backlinks", q, "serve-token")
		if c != http.StatusOK {
			t.Fatalf("/v1/backlinks with token: HTTP %d %s", c, body)
		}
		var res struct {
			Backlinks []json.RawMessage `json:"backlinks"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Backlinks) == want[target] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d backlinks over HTTP after 30s, want %d", target, len(res.Backlinks), want[target])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, body := get("/v1/backlinks", q, ""); c != http.StatusUnauthorized {
		t.Errorf("/v1/backlinks without token: HTTP %d %s, want 401", c, body)
	}
	if c, body := get("/v1/backlinks", q, "wrong"); c != http.StatusUnauthorized {
		t.Errorf("/v1/backlinks with a wrong token: HTTP %d %s, want 401", c, body)
	}
	if c, body := get("/v1/backlinks", url.Values{"target": {"not a url"}}, "serve-token"); c != http.StatusBadRequest {
		t.Errorf("/v1/backlinks of a bad target: HTTP %d %s, want 400", c, body)
	}

	// The CLI asks the same server.
	if c, out, e := runCLI(t, "backlinks", "--server", addr, "--tls-ca", certFile, "--token-file", tokenFile, "--format", "tsv", target); c != 0 || strings.Count(out, "\n") != want[target]+1 {
		t.Errorf("CLI: exit %d, %d lines, want %d; %s", c, strings.Count(out, "\n"), want[target]+1, e)
	}

	// Ranks: serve ranks on its schedule (--rank-every 2s: first 2s after
	// start), /v1/ranks lists them, POST /v1/ranks:compute and
	// rank --server rank again, and export --format ranks writes them.
	hosts := map[string]bool{}
	for _, e := range web.Edges() {
		hosts[urlnorm.ReversedHost(urlnorm.Host(e.Source))] = true
	}
	var ranks struct {
		Ranks      []json.RawMessage `json:"ranks"`
		ComputedAt string            `json:"computed_at"`
	}
	for ranks.ComputedAt == "" {
		c, body := get("/v1/ranks", url.Values{"level": {"host"}}, "serve-token")
		if c != http.StatusOK {
			t.Fatalf("/v1/ranks: HTTP %d %s", c, body)
		}
		if err := json.Unmarshal(body, &ranks); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("no scheduled ranking after 40s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every crawled host links out (the web's own hosts and the hosts
	// they link to are ranked; the indexer tests check the values).
	if len(ranks.Ranks) <= len(hosts) {
		t.Errorf("/v1/ranks: %d hosts ranked, want more than the %d crawled", len(ranks.Ranks), len(hosts))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+httpAddr+"/v1/ranks:compute", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer serve-token")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var computed struct {
		Hosts string `json:"hosts"`
	}
	if err := json.Unmarshal(body, &computed); res.StatusCode != http.StatusOK && res.StatusCode != http.StatusConflict || err != nil ||
		res.StatusCode == http.StatusOK && computed.Hosts != fmt.Sprint(len(ranks.Ranks)) {
		t.Errorf("POST /v1/ranks:compute: HTTP %d %s, want %d hosts", res.StatusCode, body, len(ranks.Ranks))
	}
	c, out, e := runCLI(t, "rank", "--server", addr, "--tls-ca", certFile, "--token-file", tokenFile, "--out", "-")
	for c != 0 && strings.Contains(e, "already running") { // the scheduled one
		time.Sleep(100 * time.Millisecond)
		c, out, e = runCLI(t, "rank", "--server", addr, "--tls-ca", certFile, "--token-file", tokenFile, "--out", "-")
	}
	if c != 0 || strings.Count(out, "\n") != len(ranks.Ranks)+1 || !strings.HasPrefix(out, "#harmonicc_pos") {
		t.Errorf("rank --server: exit %d %s\n%s", c, e, out)
	}
	for h := range hosts {
		if !strings.Contains(out, "\t"+h+"\n") {
			t.Errorf("rank --server: crawled host %s not ranked", h)
		}
	}
	if c, exported, e := runCLI(t, "export", "--server", addr, "--tls-ca", certFile, "--token-file", tokenFile, "--format", "ranks"); c != 0 || exported != out {
		t.Errorf("export --format ranks --server: exit %d %s\n%s\nwant\n%s", c, e, exported, out)
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after shutdown; stderr: %s", code, errOut.String())
	}
}

func TestServeAPIUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, tmp)
	empty := filepath.Join(tmp, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert and --tls-key together"},
		{[]string{"--tls-key", keyFile}, "--tls-cert and --tls-key together"},
		{[]string{"--tls-cert", keyFile, "--tls-key", certFile}, "--tls-cert/--tls-key"},
		{[]string{"--auth-token-file", filepath.Join(tmp, "missing")}, "--auth-token-file"},
		{[]string{"--auth-token-file", empty}, "is empty"},
		{[]string{"--rank-every", "-5m"}, "--rank-every -5m0s: must not be negative"},
	} {
		args := append([]string{"serve", "--data", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, c.args...)
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
}
