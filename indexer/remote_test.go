package indexer

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/bus/bustest"
)

// startNodes serves each node's shards over an embedded NATS server, as
// shard nodes do, and returns the connection and the query services.
func startNodes(t *testing.T, nodes []*Index) (*nats.Conn, []*QueryService) {
	t.Helper()
	nc := bustest.Conn(t)
	var svcs []*QueryService
	for i, ix := range nodes {
		lo, hi := bus.NodeRange(i, len(nodes), viewShards)
		q, err := ServeQueries(nc, ix, lo, hi, "0.0.0-test", nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Stop() })
		svcs = append(svcs, q)
	}
	return nc, svcs
}

// A gateway over two nodes answers every view exactly as one index holding
// the whole web does: the same rows, counts and page tokens (backlinks: the
// same rows).
func TestGatewayAnswersAsOneIndex(t *testing.T) {
	const seed = 9
	whole, w := crawlWeb(t, seed)
	nodes, _ := crawlCluster(t, seed, 2)
	for i := range viewShards {
		if nodeOf(i, 2) != nodeOf(0, 2) {
			break
		}
		if i == viewShards-1 {
			t.Fatal("every shard is on one node")
		}
	}
	nc, _ := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	one := serveGRPC(t, &GRPCServer{Index: whole})
	ctx := context.Background()

	same := func(what string, got, want proto.Message, gerr, werr error) {
		t.Helper()
		if status.Code(gerr) != status.Code(werr) {
			t.Fatalf("%s: gateway error %v, one index %v", what, gerr, werr)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s:\ngateway   %v\none index %v", what, got, want)
		}
	}
	type query struct {
		name, target string
		scope        lgv1.Scope
		filter       *lgv1.Filter
	}
	var queries []query
	for _, c := range viewCases() {
		queries = append(queries, query{c.name, c.target, c.scope, internalFilter(c.internal)})
	}
	for _, p := range w.pages[:12] {
		queries = append(queries, query{"url " + p, p, lgv1.Scope_SCOPE_URL, nil},
			query{"url follow " + p, p, lgv1.Scope_SCOPE_URL, &lgv1.Filter{FollowOnly: true}})
	}
	queries = append(queries, query{"prefix", "http://www.alpha.com/", lgv1.Scope_SCOPE_PREFIX, nil})
	for _, c := range queries {
		target, scope, what := c.target, c.scope, c.name
		sreq := &lgv1.SummaryRequest{Target: target, Scope: scope, Filter: c.filter}
		g1, e1 := gw.Summary(ctx, sreq)
		o1, e2 := one.Summary(ctx, sreq)
		same("summary "+what, g1, o1, e1, e2)

		rreq := &lgv1.ReferringDomainsRequest{Target: target, Scope: scope, Filter: c.filter, PageSize: 3}
		for {
			g, e1 := gw.ReferringDomains(ctx, rreq)
			o, e2 := one.ReferringDomains(ctx, rreq)
			same("referring domains "+what, g, o, e1, e2)
			if rreq.PageToken = o.GetNextPageToken(); rreq.PageToken == "" {
				break
			}
		}
		areq := &lgv1.AnchorsRequest{Target: target, Scope: scope, Filter: c.filter, PageSize: 3}
		g2, e1 := gw.Anchors(ctx, areq)
		o2, e2 := one.Anchors(ctx, areq)
		same("anchors "+what, g2, o2, e1, e2)

		// Within a target, backlinks come in the order each index first
		// saw their source domains and pages (ids of its own), so the
		// pages hold the same rows in all, not in the same order.
		all := func(s lgv1.LinkGraphServiceClient) ([]string, error) {
			breq := &lgv1.BacklinksRequest{Target: target, Scope: scope, Filter: c.filter, PageSize: 4}
			var rows []string
			for {
				r, err := s.Backlinks(ctx, breq)
				if err != nil {
					return nil, err
				}
				for _, bl := range r.GetBacklinks() {
					rows = append(rows, prototext.Format(bl))
				}
				if breq.PageToken = r.GetNextPageToken(); breq.PageToken == "" {
					return rows, nil
				}
			}
		}
		g3, e1 := all(gw)
		o3, e2 := all(one)
		if status.Code(e1) != status.Code(e2) {
			t.Fatalf("backlinks %s: gateway error %v, one index %v", what, e1, e2)
		}
		slices.Sort(g3)
		slices.Sort(o3)
		if !slices.Equal(g3, o3) {
			t.Errorf("backlinks %s: gateway paged through %d rows, one index %d, or other rows:\ngateway   %v\none index %v", what, len(g3), len(o3), g3, o3)
		}
	}
	// Outlinks: the page's node asks the other for its targets' edges.
	for _, p := range w.pages {
		req := &lgv1.OutlinksRequest{Source: p, PageSize: 1000, Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}}
		g, e1 := gw.Outlinks(ctx, req)
		o, e2 := one.Outlinks(ctx, req)
		same("outlinks "+p, g, o, e1, e2)
	}
	// The streams page through the unary views.
	st, err := gw.StreamBacklinks(ctx, &lgv1.BacklinksRequest{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN})
	if err != nil {
		t.Fatal(err)
	}
	streamed := 0
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
		streamed++
	}
	if want := len(w.selectTruth("alpha.com", lgv1.Scope_SCOPE_DOMAIN, false, nil)); streamed != want || want == 0 {
		t.Errorf("streamed %d backlinks of alpha.com, want %d", streamed, want)
	}
}

// A whole-index export through the gateway visits both nodes, gives every
// row once, and resumes from any batch's token with the rows after it.
func TestGatewayExportAndResume(t *testing.T) {
	const seed = 4
	whole, _ := crawlWeb(t, seed)
	nodes, _ := crawlCluster(t, seed, 2)
	nc, _ := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	one := serveGRPC(t, &GRPCServer{Index: whole})
	key := func(rows []*lgv1.Backlink) []string {
		var out []string
		for _, r := range rows {
			out = append(out, linkString(r.SourceUrl, r.TargetUrl, r.Type, r.AnchorText)+" "+r.SourceTitle)
		}
		return out
	}
	for _, req := range []*lgv1.ExportRequest{
		{BatchSize: 7},
		{BatchSize: 5, Filter: &lgv1.Filter{IncludeLost: true}},
		{BatchSize: 3, Target: "beta.org", Scope: lgv1.Scope_SCOPE_DOMAIN},
	} {
		batches := exportAll(t, gw, req)
		got := key(rowsOf(batches))
		want := key(rowsOf(exportAll(t, one, req)))
		if len(want) == 0 {
			t.Fatalf("%v: nothing to export", req)
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Fatalf("%v: gateway exported %d rows, one index %d", req, len(got), len(want))
		}
		for _, i := range []int{0, len(batches) / 2, len(batches) - 1} {
			r := proto.CloneOf(req)
			r.ResumeToken = batches[i].ResumeToken
			rest := key(rowsOf(exportAll(t, gw, r)))
			done := 0
			for _, b := range batches[:i+1] {
				done += len(b.Rows)
			}
			if !slices.Equal(rest, got[done:]) {
				t.Errorf("%v resumed after batch %d: %d rows, want %d", req, i, len(rest), len(got)-done)
			}
		}
	}
	st, err := gw.Export(context.Background(), &lgv1.ExportRequest{ResumeToken: "n9.x"})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("export with a bad resume token: %v, want InvalidArgument", err)
	}
}

// The gateway refuses bad input itself, and says Unavailable when no node
// serves a shard.
func TestGatewayErrors(t *testing.T) {
	nodes, w := crawlCluster(t, 3, 2)
	nc, svcs := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	ctx := context.Background()
	if _, err := gw.Backlinks(ctx, &lgv1.BacklinksRequest{Target: "not a url"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad target: %v, want InvalidArgument", err)
	}
	if _, err := gw.Backlinks(ctx, &lgv1.BacklinksRequest{Target: w.pages[0], PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad page token: %v, want InvalidArgument from the node", err)
	}
	if err := svcs[1].Stop(); err != nil {
		t.Fatal(err)
	}
	var down string
	for _, p := range w.pages {
		if nodeOf(nodes[0].shardOf(p), 2) == 1 {
			down = p
			break
		}
	}
	_, err := gw.Backlinks(ctx, &lgv1.BacklinksRequest{Target: down})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("shard without a node: %v, want Unavailable", err)
	}
	st, err := gw.Export(ctx, &lgv1.ExportRequest{})
	if err == nil {
		for err == nil {
			_, err = st.Recv()
		}
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("export with a node down: %v, want Unavailable", err)
	}
}
