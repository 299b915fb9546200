package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

// Times of the two crawls of the query test index, in ns.
const (
	qday1 = int64(1714521600e9) // 2024-05-01T00:00:00Z
	qday2 = int64(1717200000e9) // 2024-06-01T00:00:00Z
)

// buildQueryIndex writes a small index into a new data directory through
// the public Txn API, as the shard role does, and closes it. Links to
// http://t.example/:
//
//	http://a.example/p1     "Alpha"  nofollow    (day 1)
//	http://b.example/       "Beta"               (day 2)
//	http://t.example/about  "Home"   internal    (day 2)
//
// and http://b.example/ links to http://t.example/x with an image "Logo".
func buildQueryIndex(t *testing.T) string {
	t.Helper()
	dir, db, ix := newTestIndex(t)
	defer db.Close()
	crawl := func(page string, at int64, links ...*lgv1.OutLink) {
		t.Helper()
		recordPage(t, ix, &lgv1.PageResult{Url: page, Status: 200, FetchedAt: at, Title: "T " + page, Links: links})
	}
	link := func(url, anchor string, typ lgv1.LinkType, rel ...string) *lgv1.OutLink {
		return &lgv1.OutLink{Url: url, AnchorText: anchor, Rel: rel, Type: typ}
	}
	crawl("http://a.example/p1", qday1, link("http://t.example/", "Alpha", lgv1.LinkType_LINK_TYPE_A, "nofollow"))
	crawl("http://b.example/", qday2,
		link("http://t.example/", "Beta, with a comma", lgv1.LinkType_LINK_TYPE_A),
		link("http://t.example/x", "Logo", lgv1.LinkType_LINK_TYPE_IMG))
	crawl("http://t.example/about", qday2, link("http://t.example/", "Home", lgv1.LinkType_LINK_TYPE_A))
	return dir
}

// newTestIndex opens an index in a new data directory; close db.
func newTestIndex(t *testing.T) (string, *store.DB, *indexer.Index) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return dir, db, indexer.New(db, shards)
}

// recordPage records a fetched page and applies its links, as a shard
// node does.
func recordPage(t *testing.T, ix *indexer.Index, pr *lgv1.PageResult) {
	t.Helper()
	commit := func(txn *indexer.Txn) {
		t.Helper()
		defer txn.Close()
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	txn := ix.Begin()
	out, err := txn.RecordPage(pr)
	if err != nil {
		txn.Close()
		t.Fatal(err)
	}
	commit(txn)
	for _, lb := range out {
		txn := ix.Begin()
		if err := txn.ApplyLinks(lb); err != nil {
			txn.Close()
			t.Fatal(err)
		}
		commit(txn)
	}
}

// serveIndex serves the index in dir over gRPC on 127.0.0.1, and its
// HTTP/JSON mirror, as serve does, until the test ends, and returns the
// gRPC address and the HTTP base URL.
func serveIndex(t *testing.T, dir string, cfg apiserver.Config) (grpcAddr, httpURL string) {
	t.Helper()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Service = &indexer.GRPCServer{Index: indexer.New(db, shards)}
	srv, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC.Serve(lis)
	mux := http.NewServeMux()
	mux.Handle(apiserver.GatewayPrefix, srv.Gateway())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		srv.Stop()
		db.Close()
	})
	return lis.Addr().String(), hs.URL
}

// queryCases are command lines (without --data/--server) whose output must
// be the same whichever way the index is reached.
var queryCases = [][]string{
	{"backlinks", "http://t.example/"},
	{"backlinks", "--format", "tsv", "http://t.example/"},
	{"backlinks", "--format", "csv", "http://t.example/"},
	{"backlinks", "--format", "json", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--page-size", "1", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--limit", "2", "--page-size", "1", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--scope", "host", "t.example"},
	{"backlinks", "--format", "tsv", "--scope", "domain", "--internal", "include", "t.example"},
	{"backlinks", "--format", "tsv", "--follow-only", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--types", "img", "--scope", "host", "t.example"},
	{"backlinks", "--format", "tsv", "--first-seen-from", "2024-05-15", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--anchor-contains", "alp", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--order", "first_seen", "--desc", "http://t.example/"},
	{"backlinks", "--format", "tsv", "--one-per-domain", "--scope", "domain", "t.example"},
	{"domains", "--format", "tsv", "--scope", "domain", "t.example"},
	{"domains", "t.example", "--scope", "domain"},
	{"anchors", "--format", "csv", "http://t.example/"},
	{"anchors", "http://t.example/"},
	{"stats", "--format", "tsv", "--scope", "domain", "t.example"},
	{"stats", "--format", "json", "--scope", "domain", "t.example"},
	{"stats", "--scope", "domain", "t.example"},
	{"outlinks", "--format", "tsv", "http://b.example/"},
	{"outlinks", "--format", "json", "http://b.example/"},
}

// TestQueryCommandsLocalAndRemoteAgree runs every query command on the
// index directory and then against a server on the same index: the output
// must be byte for byte the same.
func TestQueryCommandsLocalAndRemoteAgree(t *testing.T) {
	dir := buildQueryIndex(t)
	local := map[string]string{}
	for _, args := range queryCases {
		code, out, errOut := runCLI(t, append(slices.Clone(args), "--data", dir)...)
		if code != 0 {
			t.Errorf("%q --data: exit %d: %s", args, code, errOut)
		}
		local[strings.Join(args, " ")] = out
	}
	addr, _ := serveIndex(t, dir, apiserver.Config{})
	for _, args := range queryCases {
		code, out, errOut := runCLI(t, append(slices.Clone(args), "--server", addr)...)
		if code != 0 {
			t.Errorf("%q --server: exit %d: %s", args, code, errOut)
			continue
		}
		if want := local[strings.Join(args, " ")]; out != want {
			t.Errorf("%q: --server printed\n%s\n--data printed\n%s", args, out, want)
		}
	}
}

// tsvRows runs a command with --format tsv and returns the first field of
// each row after checking the header.
func tsvRows(t *testing.T, header []string, args ...string) []string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != strings.Join(header, "\t") {
		t.Fatalf("%q: header %q, want %q", args, lines[0], strings.Join(header, "\t"))
	}
	var rows []string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Join(strings.Split(l, "\t")[:2], " "))
	}
	return rows
}

func TestBacklinksCommandFormatsAndPaging(t *testing.T) {
	dir := buildQueryIndex(t)
	all := []string{"http://a.example/p1 http://t.example/", "http://b.example/ http://t.example/", "http://t.example/about http://t.example/"}

	// Paging one row at a time returns every row once; --limit stops early.
	got := tsvRows(t, tsvColumns, "backlinks", "--data", dir, "--format", "tsv", "--page-size", "1", "http://t.example/")
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("paged: %q, want %q", got, all)
	}
	if got := tsvRows(t, tsvColumns, "backlinks", "--data", dir, "--format", "tsv", "--page-size", "1", "--limit", "2", "http://t.example/"); len(got) != 2 {
		t.Errorf("--limit 2: %d rows %q", len(got), got)
	}
	// No rows still prints the header.
	if got := tsvRows(t, tsvColumns, "backlinks", "--data", dir, "--format", "tsv", "http://nobody.example/"); len(got) != 0 {
		t.Errorf("no backlinks: %q", got)
	}
	if code, out, _ := runCLI(t, "backlinks", "--data", dir, "http://nobody.example/"); code != 0 || out != "no backlinks found\n" {
		t.Errorf("empty table: exit %d %q", code, out)
	}

	// CSV: a header row, quoting where needed.
	code, out, errOut := runCLI(t, "backlinks", "--data", dir, "--format", "csv", "http://t.example/")
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv does not parse: %v\n%s", err, out)
	}
	if !slices.Equal(recs[0], tsvColumns) || len(recs) != 4 {
		t.Fatalf("csv: header %q and %d records, want %q and 3 rows", recs[0], len(recs)-1, tsvColumns)
	}
	var anchors []string
	for _, r := range recs[1:] {
		anchors = append(anchors, r[2])
	}
	if !slices.Contains(anchors, "Beta, with a comma") {
		t.Errorf("csv anchors %q lack the one with a comma", anchors)
	}

	// JSON: one object per line, each a Backlink with the proto field names.
	code, out, errOut = runCLI(t, "backlinks", "--data", dir, "--format", "json", "http://t.example/")
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("json: %d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("json line does not parse: %v: %s", err, l)
		}
		if m["target_url"] != "http://t.example/" || m["source_url"] == "" {
			t.Errorf("json line %s", l)
		}
		var b lgv1.Backlink
		if err := protojson.Unmarshal([]byte(l), &b); err != nil {
			t.Errorf("json line is not a Backlink: %v", err)
		}
	}

	// The table has a header and a line per row.
	code, out, _ = runCLI(t, "backlinks", "--data", dir, "http://t.example/")
	if code != 0 || !strings.HasPrefix(out, "SOURCE ") || strings.Count(out, "\n") != 4 {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

// TestQueryCommandsFilters checks the flags reach the query; it relies on
// the filters, views and orders of the indexer.
func TestQueryCommandsFilters(t *testing.T) {
	dir := buildQueryIndex(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"backlinks", "--scope", "host", "t.example"},
			[]string{"http://a.example/p1 http://t.example/", "http://b.example/ http://t.example/", "http://b.example/ http://t.example/x"}},
		{[]string{"backlinks", "--scope", "domain", "--internal", "include", "t.example"},
			[]string{"http://a.example/p1 http://t.example/", "http://b.example/ http://t.example/", "http://b.example/ http://t.example/x", "http://t.example/about http://t.example/"}},
		{[]string{"backlinks", "--follow-only", "http://t.example/"},
			[]string{"http://b.example/ http://t.example/", "http://t.example/about http://t.example/"}},
		{[]string{"backlinks", "--types", "img,redirect", "--scope", "host", "t.example"},
			[]string{"http://b.example/ http://t.example/x"}},
		{[]string{"backlinks", "--first-seen-from", "2024-05-15", "http://t.example/"},
			[]string{"http://b.example/ http://t.example/", "http://t.example/about http://t.example/"}},
		{[]string{"backlinks", "--last-seen-to", "2024-05-15T00:00:00Z", "http://t.example/"},
			[]string{"http://a.example/p1 http://t.example/"}},
		{[]string{"backlinks", "--anchor-contains", "ALP", "http://t.example/"},
			[]string{"http://a.example/p1 http://t.example/"}},
		{[]string{"backlinks", "--scope", "prefix", "http://t.example/x"},
			[]string{"http://b.example/ http://t.example/x"}},
		{[]string{"backlinks", "--scope", "domain", "--one-per-domain", "t.example"},
			nil}, // checked by count below
		{[]string{"outlinks", "http://b.example/"},
			[]string{"http://b.example/ http://t.example/", "http://b.example/ http://t.example/x"}},
	}
	for _, c := range cases {
		got := tsvRows(t, tsvColumns, append(c.args, "--data", dir, "--format", "tsv")...)
		if c.want == nil {
			if len(got) != 2 {
				t.Errorf("%q: %q, want one row for each of a.example and b.example", c.args, got)
			}
			continue
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	// Ordered by first seen, newest first: a.example (day 1) comes last.
	got := tsvRows(t, tsvColumns, "backlinks", "--data", dir, "--format", "tsv", "--order", "first_seen", "--desc", "http://t.example/")
	if len(got) != 3 || got[2] != "http://a.example/p1 http://t.example/" {
		t.Errorf("--order first_seen --desc: %q", got)
	}

	domains := tsvRows(t, []string{"domain", "backlinks", "follow_backlinks", "first_seen", "last_seen", "authority"},
		"domains", "--data", dir, "--format", "tsv", "--scope", "domain", "t.example")
	if want := []string{"b.example 2", "a.example 1"}; !slices.Equal(domains, want) {
		t.Errorf("domains: %q, want %q", domains, want)
	}
	anchors := tsvRows(t, []string{"anchor_text", "backlinks", "referring_domains"}, "anchors", "--data", dir, "--format", "tsv", "http://t.example/")
	slices.Sort(anchors)
	if want := []string{"Alpha 1", "Beta, with a comma 1", "Home 1"}; !slices.Equal(anchors, want) {
		t.Errorf("anchors: %q, want %q", anchors, want)
	}
	stats := tsvRows(t, []string{"metric", "value"}, "stats", "--data", dir, "--format", "tsv", "--scope", "domain", "t.example")
	for _, want := range []string{"backlinks 3", "referring_pages 2", "referring_domains 2", "follow 2", "nofollow 1", "type.a 2", "type.img 1"} {
		if !slices.Contains(stats, want) {
			t.Errorf("stats lacks %q: %q", want, stats)
		}
	}
	code, out, errOut := runCLI(t, "stats", "--data", dir, "--format", "json", "--scope", "domain", "t.example")
	var sum lgv1.Summary
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("stats json: exit %d, %q %s", code, out, errOut)
	}
	if err := protojson.Unmarshal([]byte(out), &sum); err != nil || sum.Backlinks != 3 {
		t.Errorf("stats json: %v %v", &sum, err)
	}
}

func TestQueryCommandsUsageErrors(t *testing.T) {
	dir := buildQueryIndex(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backlinks", "--data", dir, "--format", "xml", "http://t.example/"}, `--format "xml"`},
		{[]string{"backlinks", "--data", dir, "--scope", "planet", "http://t.example/"}, `--scope "planet"`},
		{[]string{"backlinks", "--data", dir, "--types", "a,bogus", "http://t.example/"}, `unknown link type "bogus"`},
		{[]string{"backlinks", "--data", dir, "--types", "unspecified", "http://t.example/"}, `unknown link type "unspecified"`},
		{[]string{"backlinks", "--data", dir, "--internal", "maybe", "http://t.example/"}, `--internal "maybe"`},
		{[]string{"backlinks", "--data", dir, "--first-seen-from", "yesterday", "http://t.example/"}, "--first-seen-from"},
		{[]string{"backlinks", "--data", dir, "--last-seen-from", "2024-06-01", "--last-seen-to", "2024-05-01", "http://t.example/"}, "range is empty"},
		{[]string{"backlinks", "--data", dir, "--order", "random", "http://t.example/"}, `--order "random"`},
		{[]string{"backlinks", "--data", dir, "--limit", "-1", "http://t.example/"}, "--limit -1"},
		{[]string{"backlinks", "--data", dir, "--page-size", "10001", "http://t.example/"}, "--page-size 10001"},
		{[]string{"backlinks", "--data", dir, "--server", "127.0.0.1:1", "http://t.example/"}, "not both"},
		{[]string{"backlinks", "--data", dir, "--token-file", tokenFile, "http://t.example/"}, "need --server"},
		{[]string{"backlinks", "--server", "127.0.0.1:1", "--token-file", filepath.Join(dir, "missing"), "http://t.example/"}, "--token-file"},
		{[]string{"backlinks", "--data", dir}, "exactly one TARGET"},
		{[]string{"backlinks", "--data", dir, "http://t.example/", "http://u.example/"}, "exactly one TARGET"},
		{[]string{"backlinks", "--data", dir, "not a url"}, "not a url"},
		{[]string{"domains", "--data", dir, "--format", "yaml", "t.example"}, `--format "yaml"`},
		{[]string{"domains", "--data", dir}, "exactly one TARGET"},
		{[]string{"anchors", "--data", dir, "--scope", "x", "t.example"}, `--scope "x"`},
		{[]string{"stats", "--data", dir, "--limit", "5", "t.example"}, "limit"},
		{[]string{"stats", "--data", dir, "--scope", "domain", "--types", "nope", "t.example"}, `unknown link type "nope"`},
		{[]string{"outlinks", "--data", dir, "--scope", "host", "http://b.example/"}, "scope"},
		{[]string{"outlinks", "--data", dir}, "exactly one URL"},
		{[]string{"outlinks", "--data", dir, "--state", "all", "http://b.example/"}, "-state"}, // not a flag of outlinks
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
	// Several bad flags are reported together.
	_, _, errOut := runCLI(t, "backlinks", "--data", dir, "--format", "xml", "--scope", "planet", "http://t.example/")
	if !strings.Contains(errOut, "--format") || !strings.Contains(errOut, "--scope") {
		t.Errorf("want both bad flags reported, got %q", errOut)
	}
	// A server that is not there is a runtime failure.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	if code, _, errOut := runCLI(t, "backlinks", "--server", addr, "http://t.example/"); code != 1 || !strings.Contains(errOut, "Unavailable") {
		t.Errorf("no server: exit %d, stderr %q; want exit 1 saying Unavailable", code, errOut)
	}
}

// TestQueryCommandsAuthAndTLS asks a server that wants a token over TLS.
func TestQueryCommandsAuthAndTLS(t *testing.T) {
	dir := buildQueryIndex(t)
	tmp := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, tmp)
	tc, err := apiserver.LoadServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile, wrongFile := filepath.Join(tmp, "token"), filepath.Join(tmp, "wrong")
	os.WriteFile(tokenFile, []byte("right-token\n"), 0o600)
	os.WriteFile(wrongFile, []byte("wrong-token\n"), 0o600)
	addr, _ := serveIndex(t, dir, apiserver.Config{Token: "right-token", TLS: tc})

	q := []string{"backlinks", "--server", addr, "--format", "json", "http://t.example/"}
	if code, out, errOut := runCLI(t, append(q, "--tls-ca", certFile, "--token-file", tokenFile)...); code != 0 || strings.Count(out, `"source_url"`) != 3 {
		t.Errorf("right token over TLS: exit %d %q %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, append(q, "--insecure", "--token-file", tokenFile)...); code != 0 {
		t.Errorf("--insecure: exit %d %s", code, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-ca", certFile}, "Unauthenticated"},
		{[]string{"--tls-ca", certFile, "--token-file", wrongFile}, "Unauthenticated"},
		{[]string{"--token-file", tokenFile}, "Unavailable"},          // plaintext to a TLS server
		{[]string{"--tls", "--token-file", tokenFile}, "Unavailable"}, // the system roots do not know the certificate
	} {
		if code, _, errOut := runCLI(t, append(slices.Clone(q), c.args...)...); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 saying %s", c.args, code, errOut, c.want)
		}
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key into dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linkgraph test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
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
