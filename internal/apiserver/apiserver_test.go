package apiserver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/store"
)

// Times of the two crawls of the test index, in ns.
const (
	day1 = int64(1714521600e9) // 2024-05-01T00:00:00Z
	day2 = int64(1717200000e9) // 2024-06-01T00:00:00Z
)

// buildIndex makes a small index through the public Txn API, as the shard
// role does. Links to http://t.example/:
//
//	http://a.example/p1     "Alpha"  nofollow    (day 1)
//	http://b.example/       "Beta"               (day 2)
//	http://t.example/about  "Home"   internal    (day 2)
//
// and http://b.example/ links to http://t.example/x with an image "Logo".
func buildIndex(t testing.TB) *indexer.Index {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix := indexer.New(db, 4)
	crawl := func(page string, at int64, links ...*lgv1.OutLink) {
		t.Helper()
		txn := ix.Begin()
		defer txn.Close()
		out, err := txn.RecordPage(&lgv1.PageResult{Url: page, Status: 200, FetchedAt: at, Title: "T " + page, Links: links})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, lb := range out {
			txn := ix.Begin()
			if err := txn.ApplyLinks(lb); err != nil {
				t.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			txn.Close()
		}
	}
	link := func(url, anchor string, typ lgv1.LinkType, rel ...string) *lgv1.OutLink {
		return &lgv1.OutLink{Url: url, AnchorText: anchor, Rel: rel, Type: typ}
	}
	crawl("http://a.example/p1", day1, link("http://t.example/", "Alpha", lgv1.LinkType_LINK_TYPE_A, "nofollow"))
	crawl("http://b.example/", day2,
		link("http://t.example/", "Beta", lgv1.LinkType_LINK_TYPE_A),
		link("http://t.example/x", "Logo", lgv1.LinkType_LINK_TYPE_IMG))
	crawl("http://t.example/about", day2, link("http://t.example/", "Home", lgv1.LinkType_LINK_TYPE_A))
	return ix
}

// testServer is a Server on real loopback listeners: gRPC on grpcAddr and
// the gateway under /v1/ of an HTTP server at httpURL.
type testServer struct {
	grpcAddr string
	httpURL  string
}

func startServer(t *testing.T, ix *indexer.Index, token string, tc *tls.Config) testServer {
	t.Helper()
	srv, err := apiserver.New(apiserver.Config{Service: &indexer.GRPCServer{Index: ix}, Token: token, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(apiserver.GatewayPrefix, srv.Gateway())
	hsrv := &http.Server{Handler: mux, TLSConfig: tc}
	go srv.GRPC.Serve(glis)
	scheme := "http"
	if tc != nil {
		scheme = "https"
		go hsrv.ServeTLS(hlis, "", "")
	} else {
		go hsrv.Serve(hlis)
	}
	t.Cleanup(func() {
		srv.Stop()
		hsrv.Close()
	})
	return testServer{grpcAddr: glis.Addr().String(), httpURL: scheme + "://" + hlis.Addr().String()}
}

// get does a GET of path?query with an optional Authorization header and
// returns the status code and body.
func get(t *testing.T, c *http.Client, base, path string, query url.Values, authz string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, body := do(t, c, req)
	return res.StatusCode, body
}

// do sends req and reads the whole body.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v after %d bytes", req.Method, req.URL, err, len(body))
	}
	return res, body
}

// getJSON does get and decodes a 200 body into msg with protojson.
func getJSON(t *testing.T, base, path string, query url.Values, msg proto.Message) {
	t.Helper()
	code, body := get(t, http.DefaultClient, base, path, query, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s?%s: HTTP %d %s", path, query.Encode(), code, body)
	}
	if err := protojson.Unmarshal(body, msg); err != nil {
		t.Fatalf("GET %s?%s: %v in %s", path, query.Encode(), err, body)
	}
}

func sources(bs []*lgv1.Backlink) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.SourceUrl+" -> "+b.TargetUrl)
	}
	slices.Sort(out)
	return out
}

func TestGatewayBacklinks(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)

	// The JSON uses the proto field names and has every field.
	code, body := get(t, http.DefaultClient, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}}, "")
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	var raw struct {
		Backlinks     []map[string]any `json:"backlinks"`
		NextPageToken *string          `json:"next_page_token"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(raw.Backlinks) != 3 || raw.NextPageToken == nil || *raw.NextPageToken != "" {
		t.Fatalf("want 3 backlinks and an empty next_page_token, got %s", body)
	}
	for _, key := range []string{"source_url", "target_url", "anchor_text", "first_seen", "last_seen", "nofollow", "type"} {
		if _, ok := raw.Backlinks[0][key]; !ok {
			t.Errorf("backlink lacks %q: %v", key, raw.Backlinks[0])
		}
	}

	// Paging through page tokens returns each row once.
	var all []*lgv1.Backlink
	q := url.Values{"target": {"http://t.example/"}, "page_size": {"1"}}
	for range 10 {
		var res lgv1.BacklinksResponse
		getJSON(t, s.httpURL, "/v1/backlinks", q, &res)
		if len(res.Backlinks) > 1 {
			t.Fatalf("page_size 1 gave %d rows", len(res.Backlinks))
		}
		all = append(all, res.Backlinks...)
		if res.NextPageToken == "" {
			break
		}
		q.Set("page_token", res.NextPageToken)
	}
	want := []string{"http://a.example/p1 -> http://t.example/", "http://b.example/ -> http://t.example/", "http://t.example/about -> http://t.example/"}
	if got := sources(all); !slices.Equal(got, want) {
		t.Errorf("paged rows %v, want %v", got, want)
	}
}

// TestGatewayGzip checks that a client accepting gzip gets the JSON
// compressed, and the same JSON as one that does not.
func TestGatewayGzip(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	q := url.Values{"target": {"t.example"}, "scope": {"domain"}, "filter.internal": {"include"}}
	fetch := func(accept string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, s.httpURL+"/v1/backlinks?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", accept)
		res, body := do(t, &http.Client{Transport: &http.Transport{DisableCompression: true}}, req)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d: %s", res.StatusCode, body)
		}
		return res, body
	}
	res, plain := fetch("identity")
	if enc := res.Header.Get("Content-Encoding"); enc != "" || len(plain) < 1500 {
		t.Fatalf("uncompressed answer: Content-Encoding %q, %d bytes; want none and a body over the 1 KiB that gzip starts at", enc, len(plain))
	}
	res, gz := fetch("gzip")
	if enc := res.Header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", enc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("gzip answer differs once uncompressed:\n%s\nwant\n%s", got, plain)
	}
	if len(gz) >= len(plain) {
		t.Errorf("gzip answer %d bytes, not smaller than the %d uncompressed", len(gz), len(plain))
	}
}

// TestGatewayFilters checks that query parameters reach the service: scopes
// and filters by full and short enum names, repeated values, dates. It
// relies on the filters of the indexer.
func TestGatewayFilters(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	cases := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"host scope excludes internal links",
			url.Values{"target": {"t.example"}, "scope": {"SCOPE_HOST"}},
			[]string{"http://a.example/p1 -> http://t.example/", "http://b.example/ -> http://t.example/", "http://b.example/ -> http://t.example/x"}},
		{"short scope name",
			url.Values{"target": {"t.example"}, "scope": {"host"}},
			[]string{"http://a.example/p1 -> http://t.example/", "http://b.example/ -> http://t.example/", "http://b.example/ -> http://t.example/x"}},
		{"internal included on request",
			url.Values{"target": {"t.example"}, "scope": {"domain"}, "filter.internal": {"include"}},
			[]string{"http://a.example/p1 -> http://t.example/", "http://b.example/ -> http://t.example/", "http://b.example/ -> http://t.example/x", "http://t.example/about -> http://t.example/"}},
		{"follow only",
			url.Values{"target": {"http://t.example/"}, "filter.follow_only": {"true"}},
			[]string{"http://b.example/ -> http://t.example/", "http://t.example/about -> http://t.example/"}},
		{"types by full name",
			url.Values{"target": {"t.example"}, "scope": {"host"}, "filter.types": {"LINK_TYPE_IMG"}},
			[]string{"http://b.example/ -> http://t.example/x"}},
		{"types comma-separated short names",
			url.Values{"target": {"t.example"}, "scope": {"host"}, "filter.types": {"img,a"}},
			[]string{"http://a.example/p1 -> http://t.example/", "http://b.example/ -> http://t.example/", "http://b.example/ -> http://t.example/x"}},
		{"first seen from a date",
			url.Values{"target": {"http://t.example/"}, "filter.first_seen_from": {"2024-05-15"}},
			[]string{"http://b.example/ -> http://t.example/", "http://t.example/about -> http://t.example/"}},
		{"first seen before an RFC 3339 time",
			url.Values{"target": {"http://t.example/"}, "filter.first_seen_to": {"2024-05-15T00:00:00Z"}},
			[]string{"http://a.example/p1 -> http://t.example/"}},
		{"anchor contains",
			url.Values{"target": {"http://t.example/"}, "filter.anchor_contains": {"bet"}},
			[]string{"http://b.example/ -> http://t.example/"}},
		{"prefix scope",
			url.Values{"target": {"http://t.example/x"}, "scope": {"prefix"}},
			[]string{"http://b.example/ -> http://t.example/x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var res lgv1.BacklinksResponse
			getJSON(t, s.httpURL, "/v1/backlinks", c.query, &res)
			if got := sources(res.Backlinks); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}

	t.Run("order by first seen, descending", func(t *testing.T) {
		var res lgv1.BacklinksResponse
		getJSON(t, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}, "order_by": {"first_seen"}, "descending": {"true"}}, &res)
		if len(res.Backlinks) != 3 || res.Backlinks[2].SourceUrl != "http://a.example/p1" {
			t.Errorf("want a.example (day 1) last, got %v", sources(res.Backlinks))
		}
	})
}

// TestGatewayViews asks every unary view over HTTP. The expected values
// follow the proto comments.
func TestGatewayViews(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	t.Run("referring-domains", func(t *testing.T) {
		var res lgv1.ReferringDomainsResponse
		getJSON(t, s.httpURL, "/v1/referring-domains", url.Values{"target": {"t.example"}, "scope": {"domain"}}, &res)
		got := map[string][2]int64{}
		for _, d := range res.Domains {
			got[d.Domain] = [2]int64{d.Backlinks, d.FollowBacklinks}
		}
		want := map[string][2]int64{"a.example": {1, 0}, "b.example": {2, 2}}
		if len(got) != len(want) || got["a.example"] != want["a.example"] || got["b.example"] != want["b.example"] {
			t.Errorf("got %v, want %v", got, want)
		}
		if len(res.Domains) == 2 && res.Domains[0].Domain != "b.example" {
			t.Errorf("most backlinks first: got %s first", res.Domains[0].Domain)
		}
	})
	t.Run("anchors", func(t *testing.T) {
		var res lgv1.AnchorsResponse
		getJSON(t, s.httpURL, "/v1/anchors", url.Values{"target": {"http://t.example/"}}, &res)
		var got []string
		for _, a := range res.Anchors {
			got = append(got, a.AnchorText)
		}
		slices.Sort(got)
		if want := []string{"Alpha", "Beta", "Home"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("summary", func(t *testing.T) {
		var res lgv1.SummaryResponse
		getJSON(t, s.httpURL, "/v1/summary", url.Values{"target": {"t.example"}, "scope": {"domain"}}, &res)
		sm := res.Summary
		if sm.GetBacklinks() != 3 || sm.GetReferringDomains() != 2 || sm.GetReferringPages() != 2 ||
			sm.GetFollow() != 2 || sm.GetNofollow() != 1 || sm.GetByType()["img"] != 1 || sm.GetByType()["a"] != 2 {
			t.Errorf("summary %v", sm)
		}
	})
	t.Run("outlinks", func(t *testing.T) {
		var res lgv1.OutlinksResponse
		getJSON(t, s.httpURL, "/v1/outlinks", url.Values{"source": {"http://b.example/"}}, &res)
		want := []string{"http://b.example/ -> http://t.example/", "http://b.example/ -> http://t.example/x"}
		if got := sources(res.Links); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestGatewayBadInputIs400(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	var first lgv1.BacklinksResponse
	getJSON(t, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_size": {"1"}}, &first)
	if first.NextPageToken == "" {
		t.Fatal("want a next page token")
	}
	tampered := []byte(first.NextPageToken)
	tampered[len(tampered)/2] ^= 1
	for _, c := range []struct {
		path  string
		query url.Values
	}{
		{"/v1/backlinks", url.Values{"target": {"not a url"}}},
		{"/v1/backlinks", url.Values{}},
		{"/v1/backlinks", url.Values{"target": {"mailto:x@example.com"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "scope": {"bogus"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "scope": {"99"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_size": {"-1"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_size": {"10001"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_size": {"ten"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_token": {string(tampered)}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "page_token": {"garbage"}}},
		{"/v1/backlinks", url.Values{"target": {"http://other.example/"}, "page_token": {first.NextPageToken}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "filter.first_seen_from": {"yesterday"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "filter.types": {"a,nope"}}},
		{"/v1/referring-domains", url.Values{"target": {"not a url"}}},
		{"/v1/anchors", url.Values{"target": {"http://t.example/"}, "page_size": {"10001"}}},
		{"/v1/summary", url.Values{"target": {"t.example"}, "scope": {"bogus"}}},
		{"/v1/outlinks", url.Values{"source": {"not a url"}}},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "scpoe": {"host"}}},
	} {
		t.Run(c.path+"?"+c.query.Encode(), func(t *testing.T) {
			code, body := get(t, http.DefaultClient, s.httpURL, c.path, c.query, "")
			var st struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Errorf("body is not a JSON error: %s", body)
			}
			if code != http.StatusBadRequest || st.Code != int(codes.InvalidArgument) || st.Message == "" {
				t.Errorf("HTTP %d %s, want 400 with code 3 and a message", code, body)
			}
		})
	}
	// A path with no route is 404, not a crash.
	if code, _ := get(t, http.DefaultClient, s.httpURL, "/v1/nope", nil, ""); code != http.StatusNotFound {
		t.Errorf("/v1/nope: HTTP %d, want 404", code)
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	s := startServer(t, buildIndex(t), token, nil)
	q := url.Values{"target": {"http://t.example/"}}

	for _, authz := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token, "Bearer"} {
		code, body := get(t, http.DefaultClient, s.httpURL, "/v1/backlinks", q, authz)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), `"code":16`) {
			t.Errorf("Authorization %q: HTTP %d %s, want 401 with code 16", authz, code, body)
		}
	}
	for _, authz := range []string{"Bearer " + token, "bearer " + token} {
		if code, body := get(t, http.DefaultClient, s.httpURL, "/v1/backlinks", q, authz); code != http.StatusOK {
			t.Errorf("Authorization %q: HTTP %d %s, want 200", authz, code, body)
		}
	}
	// Bad input is still 400 once authenticated.
	if code, body := get(t, http.DefaultClient, s.httpURL, "/v1/backlinks", url.Values{"target": {"nope"}}, "Bearer "+token); code != http.StatusBadRequest {
		t.Errorf("bad target with token: HTTP %d %s, want 400", code, body)
	}

	ctx := context.Background()
	req := &lgv1.BacklinksRequest{Target: "http://t.example/"}
	for _, tok := range []string{"", "wrong"} {
		conn := dial(t, s.grpcAddr, apiserver.ClientConfig{Token: tok})
		_, err := lgv1.NewLinkGraphServiceClient(conn).Backlinks(ctx, req)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: got %v, want Unauthenticated", tok, err)
		}
		// Streams and reflection need the token too.
		if st, err := lgv1.NewLinkGraphServiceClient(conn).StreamBacklinks(ctx, req); err == nil {
			if _, err := st.Recv(); status.Code(err) != codes.Unauthenticated {
				t.Errorf("token %q: stream got %v, want Unauthenticated", tok, err)
			}
		}
		if rs, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx); err == nil {
			_ = rs.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
			if _, err := rs.Recv(); status.Code(err) != codes.Unauthenticated {
				t.Errorf("token %q: reflection got %v, want Unauthenticated", tok, err)
			}
		}
		// Health answers without a token.
		if res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("token %q: health %v %v, want SERVING", tok, res, err)
		}
	}
	conn := dial(t, s.grpcAddr, apiserver.ClientConfig{Token: token})
	res, err := lgv1.NewLinkGraphServiceClient(conn).Backlinks(ctx, req)
	if err != nil || len(res.Backlinks) != 3 {
		t.Errorf("right token: %v %v, want 3 backlinks", res, err)
	}
}

func dial(t *testing.T, addr string, cfg apiserver.ClientConfig) *grpc.ClientConn {
	t.Helper()
	conn, err := apiserver.Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns their paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "linkgraph test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t, t.TempDir())
	tc, err := apiserver.LoadServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	const token = "tls-token"
	s := startServer(t, buildIndex(t), token, tc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &lgv1.BacklinksRequest{Target: "http://t.example/"}

	// Trusting the certificate, or skipping verification, works.
	for _, cfg := range []apiserver.ClientConfig{
		{CAFile: certFile, Token: token},
		{InsecureSkipVerify: true, Token: token},
	} {
		res, err := lgv1.NewLinkGraphServiceClient(dial(t, s.grpcAddr, cfg)).Backlinks(ctx, req)
		if err != nil || len(res.Backlinks) != 3 {
			t.Errorf("%+v: %v %v, want 3 backlinks", cfg, res, err)
		}
	}
	// Plaintext, or TLS that does not trust the certificate, does not.
	for _, cfg := range []apiserver.ClientConfig{{Token: token}, {TLS: true, Token: token}} {
		_, err := lgv1.NewLinkGraphServiceClient(dial(t, s.grpcAddr, cfg)).Backlinks(ctx, req)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%+v: got %v, want Unavailable", cfg, err)
		}
	}

	// HTTPS with the same certificate.
	pool := x509.NewCertPool()
	raw, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(raw)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	if code, body := get(t, hc, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}}, "Bearer "+token); code != http.StatusOK {
		t.Errorf("HTTPS: %d %s", code, body)
	}
	if code, _ := get(t, hc, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}}, ""); code != http.StatusUnauthorized {
		t.Errorf("HTTPS without token: %d, want 401", code)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := apiserver.LoadToken(write("ok", "abc123\n")); err != nil || tok != "abc123" {
		t.Errorf("got %q %v, want abc123", tok, err)
	}
	for name, content := range map[string]string{"empty": "\n", "space": "a b", "nonascii": "tök"} {
		if _, err := apiserver.LoadToken(write(name, content)); !errors.Is(err, apiserver.ErrBadToken) {
			t.Errorf("%s: got %v, want ErrBadToken", name, err)
		}
	}
	if _, err := apiserver.LoadToken(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNotExist", err)
	}
	if _, err := apiserver.Dial("127.0.0.1:1", apiserver.ClientConfig{CAFile: write("notpem", "hello")}); !errors.Is(err, apiserver.ErrNoCertificates) {
		t.Errorf("CA file without PEM: got %v, want ErrNoCertificates", err)
	}
}
