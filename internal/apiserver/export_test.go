package apiserver_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/linkrow"
	"github.com/linkgraph/linkgraph/internal/store"
)

// buildExportIndex makes, through the Txn API, an index whose rows test
// the text formats: anchors and titles with commas, quotes, a newline and
// non-ASCII, a redirect, a page-level nofollow, a lost link, and enough
// links from a hub page for several batches.
func buildExportIndex(t testing.TB) *indexer.Index {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix := indexer.New(db, 4)
	crawl := func(pr *lgv1.PageResult) {
		t.Helper()
		txn := ix.Begin()
		defer txn.Close()
		out, err := txn.RecordPage(pr)
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
	a := lgv1.LinkType_LINK_TYPE_A
	crawl(&lgv1.PageResult{Url: "http://a.example/p1", Status: 200, FetchedAt: day1, Title: `Alpha, "the" page`, Links: []*lgv1.OutLink{
		{Url: "http://t.example/", AnchorText: `say "hi", then` + "\n" + `go; Über`, Rel: []string{"nofollow", "ugc"}, Type: a},
		{Url: "http://t.example/x", AnchorText: "Logo", Type: lgv1.LinkType_LINK_TYPE_IMG},
		{Url: "http://t.example/gone", AnchorText: "old", Type: a},
	}})
	crawl(&lgv1.PageResult{Url: "http://a.example/p1", Status: 200, FetchedAt: day2, Title: `Alpha, "the" page`, Links: []*lgv1.OutLink{
		{Url: "http://t.example/", AnchorText: `say "hi", then` + "\n" + `go; Über`, Rel: []string{"sponsored"}, Type: a},
		{Url: "http://t.example/x", AnchorText: "Logo", Type: lgv1.LinkType_LINK_TYPE_IMG},
	}})
	crawl(&lgv1.PageResult{Url: "http://r.example/old", Status: 301, FetchedAt: day1, Links: []*lgv1.OutLink{
		{Url: "http://t.example/new", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301},
	}})
	crawl(&lgv1.PageResult{Url: "http://n.example/", Status: 200, FetchedAt: day2, Title: "N", MetaNofollow: true, Links: []*lgv1.OutLink{
		{Url: "http://t.example/", Type: lgv1.LinkType_LINK_TYPE_CANONICAL},
	}})
	var hub []*lgv1.OutLink
	for i := range 60 {
		hub = append(hub, &lgv1.OutLink{Url: fmt.Sprintf("http://d%d.example/page", i%9), AnchorText: fmt.Sprint("link ", i), Type: a})
	}
	crawl(&lgv1.PageResult{Url: "http://hub.example/", Status: 200, FetchedAt: day2, Title: "Hub", Links: hub})
	return ix
}

// grpcExport returns the rows of an Export over gRPC and its batches'
// tokens.
func grpcExport(t *testing.T, addr string, cfg apiserver.ClientConfig, req *lgv1.ExportRequest) ([]*lgv1.Backlink, []string) {
	t.Helper()
	st, err := lgv1.NewLinkGraphServiceClient(dial(t, addr, cfg)).Export(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*lgv1.Backlink
	var tokens []string
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return rows, tokens
		}
		if err != nil {
			t.Fatalf("gRPC export %v: %v", req, err)
		}
		rows, tokens = append(rows, b.Rows...), append(tokens, b.ResumeToken)
	}
}

// download GETs /v1/export and checks that it succeeds with the headers of
// its format.
func download(t *testing.T, s testServer, query url.Values, authz string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.httpURL+apiserver.ExportPath+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, body := do(t, http.DefaultClient, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET export?%s: HTTP %d %s", query.Encode(), res.StatusCode, body)
	}
	ext, ctype := "ndjson", "application/x-ndjson"
	if query.Get("format") == "csv" {
		ext, ctype = "csv", "text/csv; charset=utf-8; header=present"
	}
	if got := res.Header.Get("Content-Type"); got != ctype {
		t.Errorf("Content-Type %q, want %q", got, ctype)
	}
	if got, want := res.Header.Get("Content-Disposition"), `attachment; filename="linkgraph-export.`+ext+`"`; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	// Go's client asks for gzip on its own and undoes it.
	if !res.Uncompressed {
		t.Errorf("the download was not gzip-compressed for a client that accepts it")
	}
	return body
}

// TestExportDownloadCompression asks for each Content-Encoding the download
// offers, and for none, and reads the same rows back from each.
func TestExportDownloadCompression(t *testing.T) {
	s := startServer(t, buildExportIndex(t), "", nil)
	want, _ := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{}, &lgv1.ExportRequest{})
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, c := range []struct {
		accept, want string
	}{
		{"", ""},
		{"identity", ""},
		{"gzip, deflate, br", "gzip"},
		{"gzip;q=0.5, zstd", "zstd"},
		{"zstd;q=0, gzip", "gzip"},
		{"GZIP;q=0", ""},
	} {
		t.Run(c.accept, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, s.httpURL+apiserver.ExportPath+"?format=csv", nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.accept != "" {
				req.Header.Set("Accept-Encoding", c.accept)
			}
			res, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != c.want {
				t.Fatalf("Content-Encoding %q, want %q", got, c.want)
			}
			if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary %q, want Accept-Encoding", got)
			}
			var body io.Reader = res.Body
			switch c.want {
			case "gzip":
				zr, err := gzip.NewReader(res.Body) // the standard library's
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			case "zstd":
				zr, err := zstd.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				body = zr
			}
			got, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := parseCSV(t, got)
			sameRows(t, c.accept, rows, want)
		})
	}
}

// parseNDJSON reads the rows of an NDJSON download, and each row's
// resume_token when there is one.
func parseNDJSON(t *testing.T, body []byte) ([]*lgv1.Backlink, []string) {
	t.Helper()
	var rows []*lgv1.Backlink
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &keys); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %s", len(rows)+1, err, sc.Bytes())
		}
		// Every field is present, as on the other routes.
		for _, k := range linkrow.Columns() {
			if _, ok := keys[k]; !ok && k != "lost_at" {
				t.Errorf("line %d lacks %q: %s", len(rows)+1, k, sc.Bytes())
			}
		}
		var tok string
		if raw, ok := keys["resume_token"]; ok {
			if err := json.Unmarshal(raw, &tok); err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok)
		}
		bl := &lgv1.Backlink{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(sc.Bytes(), bl); err != nil {
			t.Fatalf("line %d: %v: %s", len(rows)+1, err, sc.Bytes())
		}
		rows = append(rows, bl)
	}
	return rows, tokens
}

// parseCSV reads the rows of a CSV download, and the resume_token column
// when there is one.
func parseCSV(t *testing.T, body []byte) ([]*lgv1.Backlink, []string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v", err)
	}
	if len(recs) == 0 {
		t.Fatal("no header row")
	}
	head, cols := recs[0], linkrow.Columns()
	withTokens := len(head) == len(cols)+1 && head[len(cols)] == "resume_token"
	if !slices.Equal(head[:min(len(head), len(cols))], cols) || len(head) != len(cols) && !withTokens {
		t.Fatalf("header %q, want %q", head, cols)
	}
	var rows []*lgv1.Backlink
	var tokens []string
	for _, rec := range recs[1:] {
		if withTokens {
			tokens = append(tokens, rec[len(cols)])
			rec = rec[:len(cols)]
		}
		bl, err := linkrow.Parse(rec)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, bl)
	}
	return rows, tokens
}

func parseDownload(t *testing.T, format string, body []byte) ([]*lgv1.Backlink, []string) {
	t.Helper()
	if format == "csv" {
		return parseCSV(t, body)
	}
	return parseNDJSON(t, body)
}

func sameRows(t *testing.T, what string, got, want []*lgv1.Backlink) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b *lgv1.Backlink) bool { return proto.Equal(a, b) }) {
		t.Errorf("%s: %d rows differ from the %d of the gRPC export", what, len(got), len(want))
		for i := range max(len(got), len(want)) {
			if i >= len(got) || i >= len(want) || !proto.Equal(got[i], want[i]) {
				t.Errorf("first difference at row %d:\n got %v\nwant %v", i, got[min(i, len(got)-1)], want[min(i, len(want)-1)])
				break
			}
		}
	}
}

// TestExportDownloads checks that the NDJSON and CSV downloads parse back
// to the rows of the gRPC Export of the same request, whole index and
// slices, and that an empty export is a valid empty file.
func TestExportDownloads(t *testing.T) {
	s := startServer(t, buildExportIndex(t), "", nil)
	cases := []struct {
		name  string
		query url.Values
		req   *lgv1.ExportRequest
	}{
		{"whole index", url.Values{}, &lgv1.ExportRequest{}},
		{"with lost links, batches of 7", url.Values{"filter.include_lost": {"true"}, "batch_size": {"7"}},
			&lgv1.ExportRequest{Filter: &lgv1.Filter{IncludeLost: true}}},
		{"host, short names, a date", url.Values{"target": {"t.example"}, "scope": {"host"}, "filter.types": {"a,canonical"}, "filter.first_seen_from": {"2024-05-15"}},
			&lgv1.ExportRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, Filter: &lgv1.Filter{
				Types:         []lgv1.LinkType{lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_CANONICAL},
				FirstSeenFrom: timestamppb.New(time.Date(2024, 5, 15, 0, 0, 0, 0, time.UTC))}}},
		{"domain, follow only", url.Values{"target": {"d3.example"}, "scope": {"SCOPE_DOMAIN"}, "filter.follow_only": {"true"}},
			&lgv1.ExportRequest{Target: "d3.example", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{FollowOnly: true}}},
		{"nothing", url.Values{"target": {"http://none.example/"}}, &lgv1.ExportRequest{Target: "http://none.example/"}},
	}
	for _, c := range cases {
		want, _ := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{}, c.req)
		if c.name != "nothing" && len(want) == 0 {
			t.Fatalf("%s: the gRPC export is empty", c.name)
		}
		for _, format := range []string{"ndjson", "csv"} {
			t.Run(c.name+" "+format, func(t *testing.T) {
				q := merge(c.query, url.Values{"format": {format}})
				body := download(t, s, q, "")
				got, tokens := parseDownload(t, format, body)
				sameRows(t, format, got, want)
				if len(tokens) != 0 {
					t.Errorf("resume tokens without resume_tokens=true")
				}
				if format == "csv" && c.name == "nothing" && string(body) != strings.Join(linkrow.Columns(), ",")+"\n" {
					t.Errorf("empty CSV export: %q, want the header row", body)
				}
				if format == "ndjson" && c.name == "nothing" && len(body) != 0 {
					t.Errorf("empty NDJSON export: %q", body)
				}
			})
		}
	}
	// format defaults to NDJSON.
	got, _ := parseNDJSON(t, download(t, s, url.Values{}, ""))
	want, _ := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{}, &lgv1.ExportRequest{})
	sameRows(t, "default format", got, want)
}

// merge merges query values; later ones win.
func merge(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = x
		}
	}
	return out
}

// TestExportDownloadResume breaks downloads after some complete rows (the
// client stops reading and hangs up) and resumes them with the token of the
// last complete row: every row comes exactly once. A token of a gRPC batch
// resumes a download too.
func TestExportDownloadResume(t *testing.T) {
	s := startServer(t, buildExportIndex(t), "", nil)
	base := url.Values{"filter.include_lost": {"true"}}
	want, grpcTokens := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{}, &lgv1.ExportRequest{Filter: &lgv1.Filter{IncludeLost: true}, BatchSize: 10})

	for _, format := range []string{"ndjson", "csv"} {
		q := merge(base, url.Values{"format": {format}, "resume_tokens": {"true"}})
		all, tokens := parseDownload(t, format, download(t, s, q, ""))
		sameRows(t, format+" with tokens", all, want)
		if len(tokens) != len(all) {
			t.Fatalf("%s: %d tokens for %d rows", format, len(tokens), len(all))
		}
		for _, cut := range []int{0, 1, len(all) / 2, len(all) - 2} {
			// A broken transfer: the client read cut+1 rows and hung up.
			part := breakDownload(t, s, q, format, cut+1)
			rows, toks := parseDownload(t, format, part)
			if len(rows) != cut+1 {
				t.Fatalf("%s: read %d rows, want %d", format, len(rows), cut+1)
			}
			rest, _ := parseDownload(t, format, download(t, s, merge(q, url.Values{"resume_token": {toks[cut]}}), ""))
			sameRows(t, fmt.Sprintf("%s broken after %d rows and resumed", format, cut+1), append(rows, rest...), want)
		}
		// The token of the third gRPC batch of ten.
		rest, _ := parseDownload(t, format, download(t, s, merge(base, url.Values{"format": {format}, "resume_token": {grpcTokens[2]}}), ""))
		sameRows(t, format+" resumed from a gRPC token", rest, want[30:])
	}
}

// breakDownload reads a download with resume tokens until it has n
// complete rows (and the header of a CSV), then closes the connection, and
// returns what it read.
func breakDownload(t *testing.T, s testServer, q url.Values, format string, n int) []byte {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get(s.httpURL + apiserver.ExportPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close() // before the end of the body: the connection is dropped
	var out []byte
	br := bufio.NewReader(res.Body)
	if format == "csv" {
		n++ // the header
	}
	for lines := 0; lines < n; {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", lines, err)
		}
		out = append(out, line...)
		// A CSV field may hold a newline: a record is complete when its
		// quotes are balanced.
		if format != "csv" || bytes.Count(out, []byte{'"'})%2 == 0 {
			lines++
		}
	}
	return out
}

func TestExportDownloadBadInputIs400(t *testing.T) {
	s := startServer(t, buildExportIndex(t), "", nil)
	_, tokens := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{}, &lgv1.ExportRequest{BatchSize: 5})
	tampered := []byte(tokens[0])
	tampered[len(tampered)/2] ^= 1
	for _, q := range []url.Values{
		{"format": {"xml"}},
		{"format": {"parquet"}},
		{"resume_tokens": {"maybe"}},
		{"target": {"ht!tp://x"}},
		{"target": {"t.example"}, "scope": {"bogus"}},
		{"target": {"t.example"}, "scope": {"99"}},
		{"batch_size": {"10001"}},
		{"batch_size": {"-1"}},
		{"batch_size": {"ten"}},
		{"resume_token": {string(tampered)}},
		{"resume_token": {"garbage"}},
		{"resume_token": {tokens[0]}, "filter.follow_only": {"true"}},
		{"resume_token": {tokens[0]}, "target": {"t.example"}, "scope": {"host"}},
		{"filter.types": {"a,nope"}},
		{"filter.first_seen_from": {"yesterday"}},
		{"filter.internal": {"exclude"}},
	} {
		for _, format := range []string{"", "csv"} {
			if format != "" && q.Has("format") {
				continue
			}
			if format != "" {
				q = merge(q, url.Values{"format": {format}})
			}
			t.Run(q.Encode(), func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, s.httpURL+apiserver.ExportPath+"?"+q.Encode(), nil)
				if err != nil {
					t.Fatal(err)
				}
				res, body := do(t, http.DefaultClient, req)
				var st struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(body, &st); err != nil {
					t.Errorf("body is not a JSON error: %s", body)
				}
				if res.StatusCode != http.StatusBadRequest || st.Code != int(codes.InvalidArgument) || st.Message == "" {
					t.Errorf("HTTP %d %s, want 400 with code 3 and a message", res.StatusCode, body)
				}
				if cd := res.Header.Get("Content-Disposition"); cd != "" {
					t.Errorf("an error came with Content-Disposition %q", cd)
				}
			})
		}
	}
	// Only GET downloads.
	res, err := http.Post(s.httpURL+apiserver.ExportPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Error("POST /v1/export: 200")
	}
}

func TestExportDownloadAuth(t *testing.T) {
	const token = "export-token"
	s := startServer(t, buildExportIndex(t), token, nil)
	for _, authz := range []string{"", "Bearer wrong", "Basic " + token} {
		code, body := get(t, http.DefaultClient, s.httpURL, apiserver.ExportPath, url.Values{"format": {"csv"}}, authz)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), `"code":16`) {
			t.Errorf("Authorization %q: HTTP %d %s, want 401 with code 16", authz, code, body)
		}
	}
	want, _ := grpcExport(t, s.grpcAddr, apiserver.ClientConfig{Token: token}, &lgv1.ExportRequest{})
	got, _ := parseCSV(t, download(t, s, url.Values{"format": {"csv"}}, "Bearer "+token))
	sameRows(t, "with the token", got, want)
}

// failingService is the real service whose Export fails after its first
// batch, as a read error of the index would, to see what the client of a
// download gets then.
type failingService struct{ *indexer.GRPCServer }

type failAfterFirst struct {
	grpc.ServerStreamingServer[lgv1.ExportBatch]
	sent int
}

var errDisk = errors.New("disk read error")

func (f *failAfterFirst) Send(b *lgv1.ExportBatch) error {
	if f.sent++; f.sent > 1 {
		return errDisk
	}
	return f.ServerStreamingServer.Send(b)
}

func (s failingService) Export(req *lgv1.ExportRequest, stream grpc.ServerStreamingServer[lgv1.ExportBatch]) error {
	return s.GRPCServer.Export(req, &failAfterFirst{ServerStreamingServer: stream})
}

// TestExportDownloadErrorAbortsTheTransfer checks that an error after the
// first rows makes the download fail for the client rather than end as a
// shorter, valid-looking file.
func TestExportDownloadErrorAbortsTheTransfer(t *testing.T) {
	ix := buildExportIndex(t)
	srv, err := apiserver.New(apiserver.Config{Service: failingService{&indexer.GRPCServer{Index: ix}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	mux := http.NewServeMux()
	mux.Handle(apiserver.GatewayPrefix, srv.Gateway())
	hs := httptestServer(t, mux)
	for _, format := range []string{"ndjson", "csv"} {
		res, err := http.Get(hs + apiserver.ExportPath + "?batch_size=5&format=" + format)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d, want 200 with the first batch", format, res.StatusCode)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: read %d bytes, then %v; want io.ErrUnexpectedEOF", format, len(body), err)
		}
		if rows, _ := parseDownload(t, format, completeLines(body)); len(rows) != 5 {
			t.Errorf("%s: %d rows before the abort, want the first batch of 5", format, len(rows))
		}
	}
	// An error before the first row is still a status.
	code, body := get(t, http.DefaultClient, hs, apiserver.ExportPath, url.Values{"target": {"ht!tp://x"}}, "")
	if code != http.StatusBadRequest {
		t.Errorf("bad target: HTTP %d %s, want 400", code, body)
	}
}

// completeLines cuts b after its last newline.
func completeLines(b []byte) []byte {
	return b[:bytes.LastIndexByte(b, '\n')+1]
}

// httptestServer serves h on a loopback port until the test ends and
// returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

// endlessService exports the same batch until sending fails.
type endlessService struct {
	*indexer.GRPCServer
	ended chan error
}

func (s endlessService) Export(req *lgv1.ExportRequest, stream grpc.ServerStreamingServer[lgv1.ExportBatch]) error {
	b := &lgv1.ExportBatch{}
	for range 100 {
		b.Rows = append(b.Rows, &lgv1.Backlink{SourceUrl: "http://s.example/" + strings.Repeat("x", 200), TargetUrl: "http://t.example/"})
	}
	for {
		if err := stream.Send(b); err != nil {
			s.ended <- err
			return err
		}
	}
}

// TestExportDownloadStalledClientIsCutOff starts an endless download and
// stops reading it: once the client has taken nothing for ExportStall the
// export ends, rather than hold its goroutines and snapshot for ever.
func TestExportDownloadStalledClientIsCutOff(t *testing.T) {
	svc := endlessService{GRPCServer: &indexer.GRPCServer{Index: buildExportIndex(t)}, ended: make(chan error, 1)}
	srv, err := apiserver.New(apiserver.Config{Service: svc, ExportStall: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	mux := http.NewServeMux()
	mux.Handle(apiserver.GatewayPrefix, srv.Gateway())
	// Small socket buffers on both sides, so that the server's writes
	// block soon after the client stops reading, as over a slow link.
	ts := httptest.NewUnstartedServer(mux)
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	hs := ts.URL
	// A small receive buffer, so that the server's writes block soon
	// after the client stops reading, as over a slow link.
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(8 << 10)
		}
		return c, err
	}}}
	res, err := client.Get(hs + apiserver.ExportPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadFull(res.Body, make([]byte, 1<<20)); err != nil {
		t.Fatalf("the first MiB: %v", err)
	}
	stalled := time.Now()
	// The client reads nothing more, and keeps the connection open.
	select {
	case err := <-svc.ended:
		t.Logf("the export ended %v after the client stalled: %v", time.Since(stalled).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("the export still runs 30s after its client stopped reading")
	}
}

// smallBuffers accepts connections with a 16 KiB send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return c, err
}
