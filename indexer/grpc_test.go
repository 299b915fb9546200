package indexer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// serveGRPC serves svc on a loopback port until the test ends and returns
// a client. The client's flow-control windows are fixed at gRPC's minimum
// (64 KiB) so that a server cannot run far ahead of a client that stops
// reading: what it sends past that is what a cancel has to stop.
func serveGRPC(t *testing.T, svc lgv1.LinkGraphServiceServer) lgv1.LinkGraphServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	lgv1.RegisterLinkGraphServiceServer(srv, svc)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lgv1.NewLinkGraphServiceClient(conn)
}

// recvAll reads batches until the stream ends and returns them.
func recvAll(t *testing.T, st grpc.ServerStreamingClient[lgv1.ExportBatch]) ([]*lgv1.ExportBatch, error) {
	t.Helper()
	var out []*lgv1.ExportBatch
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}

func rowsOf(batches []*lgv1.ExportBatch) []*lgv1.Backlink {
	var out []*lgv1.Backlink
	for _, b := range batches {
		out = append(out, b.Rows...)
	}
	return out
}

func exportAll(t *testing.T, c lgv1.LinkGraphServiceClient, req *lgv1.ExportRequest) []*lgv1.ExportBatch {
	t.Helper()
	st, err := c.Export(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := recvAll(t, st)
	if err != nil {
		t.Fatalf("export %v: %v", req, err)
	}
	return batches
}

// Times of the every-field index, in ns.
const (
	gday1 = int64(1714521600e9) // 2024-05-01T00:00:00Z
	gday2 = int64(1717200000e9) // 2024-06-01T00:00:00Z
)

// fieldIndex builds, through the Txn API, an index whose rows set every
// Backlink field, and returns it with the rows an export of everything
// (lost links included) must give, in key order.
func fieldIndex(t *testing.T) (*Index, []*lgv1.Backlink) {
	t.Helper()
	ix := newTestIndex(t, 3)
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
	quoted := `Alpha, "quoted"`
	crawl(&lgv1.PageResult{Url: "http://a.example/p1", Status: 200, FetchedAt: gday1, Title: "Alpha page", Links: []*lgv1.OutLink{
		{Url: "http://t.example/", AnchorText: quoted, Rel: []string{"nofollow", "ugc"}, Type: a},
		{Url: "http://t.example/x", AnchorText: "Logo", Type: lgv1.LinkType_LINK_TYPE_IMG},
		{Url: "http://t.example/gone", AnchorText: "old", Type: a},
		{Url: "http://a.example/p2", AnchorText: "next", Rel: []string{"noopener"}, Type: a},
	}})
	crawl(&lgv1.PageResult{Url: "http://r.example/old", Status: 301, FetchedAt: gday1, Links: []*lgv1.OutLink{
		{Url: "http://t.example/new", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301},
	}})
	crawl(&lgv1.PageResult{Url: "http://n.example/", Status: 200, FetchedAt: gday1, Title: "N", MetaNofollow: true, Links: []*lgv1.OutLink{
		{Url: "http://t.example/", Type: lgv1.LinkType_LINK_TYPE_CANONICAL},
	}})
	// The recrawl drops /gone and changes the rel of the first link.
	crawl(&lgv1.PageResult{Url: "http://a.example/p1", Status: 200, FetchedAt: gday2, Title: "Alpha page", Links: []*lgv1.OutLink{
		{Url: "http://t.example/", AnchorText: quoted, Rel: []string{"sponsored"}, Type: a},
		{Url: "http://t.example/x", AnchorText: "Logo", Type: lgv1.LinkType_LINK_TYPE_IMG},
		{Url: "http://a.example/p2", AnchorText: "next", Rel: []string{"noopener"}, Type: a},
	}})
	ts := func(ns int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(0, ns)) }
	want := []*lgv1.Backlink{
		{SourceUrl: "http://a.example/p1", TargetUrl: "http://a.example/p2", AnchorText: "next", Rel: []string{"noopener"}, Type: a,
			FirstSeen: ts(gday1), LastSeen: ts(gday2), SourceTitle: "Alpha page", SourceStatus: 200},
		{SourceUrl: "http://a.example/p1", TargetUrl: "http://t.example/", AnchorText: quoted, Rel: []string{"sponsored"}, Type: a,
			Nofollow: true, FirstSeen: ts(gday1), LastSeen: ts(gday2), SourceTitle: "Alpha page", SourceStatus: 200},
		{SourceUrl: "http://n.example/", TargetUrl: "http://t.example/", Type: lgv1.LinkType_LINK_TYPE_CANONICAL,
			Nofollow: true, FirstSeen: ts(gday1), LastSeen: ts(gday1), SourceTitle: "N", SourceStatus: 200},
		{SourceUrl: "http://a.example/p1", TargetUrl: "http://t.example/gone", AnchorText: "old", Type: a,
			FirstSeen: ts(gday1), LastSeen: ts(gday1), SourceTitle: "Alpha page", SourceStatus: 200, LostAt: ts(gday2), LostReason: lgv1.LostReason_LOST_REASON_REMOVED},
		{SourceUrl: "http://r.example/old", TargetUrl: "http://t.example/new", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301,
			FirstSeen: ts(gday1), LastSeen: ts(gday1), SourceStatus: 301},
		{SourceUrl: "http://a.example/p1", TargetUrl: "http://t.example/x", AnchorText: "Logo", Type: lgv1.LinkType_LINK_TYPE_IMG,
			FirstSeen: ts(gday1), LastSeen: ts(gday2), SourceTitle: "Alpha page", SourceStatus: 200},
	}
	return ix, want
}

func diffRows(t *testing.T, what string, got, want []*lgv1.Backlink) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b *lgv1.Backlink) bool { return proto.Equal(a, b) }) {
		var g, w strings.Builder
		for _, b := range got {
			fmt.Fprintf(&g, "  %v\n", b)
		}
		for _, b := range want {
			fmt.Fprintf(&w, "  %v\n", b)
		}
		t.Errorf("%s: got\n%swant\n%s", what, g.String(), w.String())
	}
}

func TestGRPCExportEveryField(t *testing.T) {
	ix, want := fieldIndex(t)
	c := serveGRPC(t, &GRPCServer{Index: ix})

	all := exportAll(t, c, &lgv1.ExportRequest{Filter: &lgv1.Filter{IncludeLost: true}})
	diffRows(t, "whole index with lost links", rowsOf(all), want)
	if len(all) != 1 || all[0].ResumeToken == "" {
		t.Errorf("want one batch with a resume token, got %d batches", len(all))
	}

	var live []*lgv1.Backlink
	for _, b := range want {
		if b.LostAt == nil {
			live = append(live, b)
		}
	}
	diffRows(t, "whole index", rowsOf(exportAll(t, c, &lgv1.ExportRequest{})), live)

	// Batches of two: three batches, each ending where the next begins.
	batches := exportAll(t, c, &lgv1.ExportRequest{Filter: &lgv1.Filter{IncludeLost: true}, BatchSize: 2})
	if len(batches) != 3 {
		t.Errorf("batch_size 2: %d batches, want 3", len(batches))
	}
	diffRows(t, "batch_size 2", rowsOf(batches), want)

	// A slice: the host t.example, internal links kept as exports do, follow only.
	got := rowsOf(exportAll(t, c, &lgv1.ExportRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, Filter: &lgv1.Filter{FollowOnly: true}}))
	diffRows(t, "host t.example, follow only", got, []*lgv1.Backlink{want[4], want[5]})

	// An export with no rows sends no batch and ends normally.
	if b := exportAll(t, c, &lgv1.ExportRequest{Target: "http://none.example/"}); len(b) != 0 {
		t.Errorf("empty export: %d batches", len(b))
	}
}

// observedServer is the real GRPCServer with a record of the batches its
// Export sent and of its return, to see the scan stop on a cancel.
type observedServer struct {
	*GRPCServer
	sent atomic.Int64
	done chan error
}

type countingStream struct {
	grpc.ServerStreamingServer[lgv1.ExportBatch]
	n *atomic.Int64
}

func (c countingStream) Send(b *lgv1.ExportBatch) error {
	err := c.ServerStreamingServer.Send(b)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

func (s *observedServer) Export(req *lgv1.ExportRequest, stream grpc.ServerStreamingServer[lgv1.ExportBatch]) error {
	err := s.GRPCServer.Export(req, countingStream{stream, &s.sent})
	s.done <- err
	return err
}

// bigIndex has n links with 200-byte anchors, several MiB of rows: far
// more than the client's flow-control window.
func bigIndex(t *testing.T, n int) *Index {
	t.Helper()
	ix := newTestIndex(t, 3)
	pad := strings.Repeat("x", 200)
	for p := 0; p < n; p += 500 {
		var links []*lgv1.OutLink
		for i := p; i < min(n, p+500); i++ {
			links = append(links, &lgv1.OutLink{Url: fmt.Sprintf("http://t%d.example/%d", i%7, i), AnchorText: pad, Type: lgv1.LinkType_LINK_TYPE_A})
		}
		txn := ix.Begin()
		out, err := txn.RecordPage(&lgv1.PageResult{Url: fmt.Sprintf("http://s.example/%d", p), Status: 200, FetchedAt: gday1, Links: links})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		txn.Close()
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
	return ix
}

func TestGRPCExportCancelStopsTheScan(t *testing.T) {
	const n = 20000
	srv := &observedServer{GRPCServer: &GRPCServer{Index: bigIndex(t, n)}, done: make(chan error, 1)}
	c := serveGRPC(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := c.Export(ctx, &lgv1.ExportRequest{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	select {
	case err := <-srv.done:
		if status.Code(err) != codes.Canceled {
			t.Errorf("server's Export returned %v, want Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server's Export did not return after the client canceled")
	}
	// The window lets the server run ahead by about 64 KiB, some thirty
	// batches of ten 230-byte rows, not the whole export.
	sent := srv.sent.Load()
	t.Logf("the server sent %d batches of 10 of %d rows", sent, n)
	if sent*10 >= n/2 {
		t.Errorf("the server went on after the cancel")
	}
}

// TestGRPCExportResume breaks transfers after some batches, resumes each
// with the token of the last batch received, and checks that every row
// comes exactly once.
func TestGRPCExportResume(t *testing.T) {
	ix, w := crawlWeb(t, 11)
	c := serveGRPC(t, &GRPCServer{Index: ix})
	var want []string
	for _, l := range w.live {
		want = append(want, linkString(l.source, l.target, l.typ, l.anchor))
	}
	slices.Sort(want)
	key := func(bl *lgv1.Backlink) string {
		return linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText)
	}
	full := rowsOf(exportAll(t, c, &lgv1.ExportRequest{BatchSize: 7}))
	var fullKeys []string
	for _, bl := range full {
		fullKeys = append(fullKeys, key(bl))
	}
	if !slices.Equal(slices.Sorted(slices.Values(fullKeys)), want) {
		t.Fatalf("export: %d rows, want the %d live links", len(full), len(want))
	}

	for _, breakAfter := range []int{1, 5, len(full)/7 - 1} {
		t.Run(fmt.Sprint("break after ", breakAfter, " batches"), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			st, err := c.Export(ctx, &lgv1.ExportRequest{BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			var got []*lgv1.Backlink
			var token string
			for range breakAfter {
				b, err := st.Recv()
				if err != nil {
					t.Fatal(err)
				}
				got, token = append(got, b.Rows...), b.ResumeToken
			}
			// The rest of the stream may already be on its way: it is
			// dropped, as a broken connection drops it.
			cancel()
			got = append(got, rowsOf(exportAll(t, c, &lgv1.ExportRequest{BatchSize: 7, ResumeToken: token}))...)
			var keys []string
			for _, bl := range got {
				keys = append(keys, key(bl))
			}
			if !slices.Equal(keys, fullKeys) {
				t.Errorf("broken and resumed: %d rows, want the %d of one export in the same order", len(keys), len(fullKeys))
			}
			diffRows(t, "broken and resumed", got, full)
		})
	}

	// The token of the last batch resumes to nothing.
	batches := exportAll(t, c, &lgv1.ExportRequest{BatchSize: 7})
	if rest := exportAll(t, c, &lgv1.ExportRequest{ResumeToken: batches[len(batches)-1].ResumeToken}); len(rest) != 0 {
		t.Errorf("resumed after the last batch: %d batches", len(rest))
	}
}

func TestGRPCExportRejectsBadInput(t *testing.T) {
	ix, _ := crawlWeb(t, 12)
	c := serveGRPC(t, &GRPCServer{Index: ix})
	first := exportAll(t, c, &lgv1.ExportRequest{BatchSize: 5})[0]
	tok := first.ResumeToken
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 1
	domainTok := exportAll(t, c, &lgv1.ExportRequest{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, BatchSize: 1})[0].ResumeToken

	for name, req := range map[string]*lgv1.ExportRequest{
		"batch size negative":         {BatchSize: -1},
		"batch size over the max":     {BatchSize: MaxExportBatch + 1},
		"target not a URL":            {Target: "ht!tp://x"},
		"relative target":             {Target: "/p1"},
		"unknown scope":               {Target: "alpha.com", Scope: 42},
		"unknown link type":           {Filter: &lgv1.Filter{Types: []lgv1.LinkType{99}}},
		"bad timestamp":               {Filter: &lgv1.Filter{FirstSeenFrom: &timestamppb.Timestamp{Nanos: -1}}},
		"exclude internal, no target": {Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE}},
		"tampered token":              {ResumeToken: string(tampered)},
		"garbage token":               {ResumeToken: "garbage"},
		"token of another filter":     {ResumeToken: tok, Filter: &lgv1.Filter{FollowOnly: true}},
		"token of another target":     {ResumeToken: tok, Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN},
		"token of a domain export":    {ResumeToken: domainTok},
	} {
		st, err := c.Export(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		batches, err := recvAll(t, st)
		if status.Code(err) != codes.InvalidArgument || len(batches) != 0 {
			t.Errorf("%s: %d batches, %v; want InvalidArgument before any batch", name, len(batches), err)
		}
		if req.ResumeToken != "" && !strings.Contains(err.Error(), "resume_token is not valid") {
			t.Errorf("%s: %v does not name resume_token", name, err)
		}
	}
	// The largest batch size is allowed.
	if b := exportAll(t, c, &lgv1.ExportRequest{BatchSize: MaxExportBatch}); len(b) != 1 {
		t.Errorf("batch_size %d: %d batches, want 1", MaxExportBatch, len(b))
	}
}
