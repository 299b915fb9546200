package indexer

import (
	"context"
	"log/slog"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// truthRanks ranks the truth's live follow links between hosts (or
// registrable domains) with package rank's graph, independently of the
// index: name -> rank.
func truthRanks(t *testing.T, w *truthWeb, nameOf func(url string) string) map[string]*lgv1.Rank {
	t.Helper()
	ids := map[string]uint32{}
	var names []string
	id := func(name string) uint32 {
		if i, ok := ids[name]; ok {
			return i
		}
		ids[name] = uint32(len(names))
		names = append(names, name)
		return ids[name]
	}
	var edges []rank.Edge
	for _, l := range w.live {
		if l.flags().follow() {
			edges = append(edges, rank.Edge{From: id(nameOf(l.source)), To: id(nameOf(l.target))})
		}
	}
	g, err := rank.NewGraph(len(names), edges)
	if err != nil {
		t.Fatal(err)
	}
	r := rank.Ranked{Names: names, PR: g.PageRank(rank.DefaultDamping, 1e-9, 200), HC: g.HarmonicExact()}
	out := map[string]*lgv1.Rank{}
	for _, rn := range r.Ranks() {
		out[rn.Name] = rn.Rank
	}
	return out
}

func hostName(u string) string   { return urlnorm.ReversedHost(urlnorm.Host(u)) }
func domainName(u string) string { return urlnorm.ReversedHost(domainOf(u)) }

// allRanks lists the stored ranks of a level.
func allRanks(t *testing.T, ranks func(context.Context, *lgv1.RanksRequest) (*lgv1.RanksResponse, error), level lgv1.RankLevel) map[string]*lgv1.Rank {
	t.Helper()
	out := map[string]*lgv1.Rank{}
	req := &lgv1.RanksRequest{Level: level, PageSize: 3}
	var last string
	for {
		resp, err := ranks(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Ranks {
			key := r.Name // in order of name, pages of their URL's SURT
			if level == lgv1.RankLevel_RANK_LEVEL_PAGE {
				key = urlnorm.SURT(r.Name)
			}
			if key <= last {
				t.Fatalf("ranks out of order: %s after %s", key, last)
			}
			last = key
			out[r.Name] = r.Rank
		}
		if req.PageToken = resp.NextPageToken; req.PageToken == "" {
			return out
		}
	}
}

func sameRanks(t *testing.T, what string, got, want map[string]*lgv1.Rank) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d ranked, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil || g.Score != w.Score || g.PagerankPos != w.PagerankPos || g.HarmonicPos != w.HarmonicPos ||
			math.Abs(g.Pagerank-w.Pagerank) > 1e-9 || math.Abs(g.Harmonic-w.Harmonic) > 1e-9 {
			t.Errorf("%s: %s ranked %v, want %v", what, name, g, w)
		}
	}
}

// ComputeRanks ranks the hosts and domains of the index over their live
// follow links only (nofollow, lost and internal links do not count) and
// stores the ranks as the current ones, for Ranks and the views.
func TestComputeRanksMatchesTruth(t *testing.T) {
	ix, w := crawlWeb(t, 5)
	nofollow := 0
	for _, l := range w.live {
		if !l.flags().follow() && urlnorm.Host(l.source) != urlnorm.Host(l.target) {
			nofollow++
		}
	}
	if nofollow == 0 || len(w.lost) == 0 {
		t.Fatal("the random web has no nofollow or lost links between hosts; pick another seed")
	}
	srv := &GRPCServer{Index: ix}
	meta, err := srv.ComputeRanks(context.Background(), &lgv1.ComputeRanksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	hosts, domains := truthRanks(t, w, hostName), truthRanks(t, w, domainName)
	if meta.Hosts != int64(len(hosts)) || meta.Domains != int64(len(domains)) || meta.LinksRead == 0 || meta.ComputedAt == nil {
		t.Errorf("ComputeRanks said %v; want %d hosts, %d domains", meta, len(hosts), len(domains))
	}
	sameRanks(t, "hosts", allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_HOST), hosts)
	sameRanks(t, "domains", allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_DOMAIN), domains)

	// The views read the new generation: a domain's Summary has its rank,
	// its referring domains their scores.
	sum, err := srv.Summary(context.Background(), &lgv1.SummaryRequest{Target: "beta.org", Scope: lgv1.Scope_SCOPE_DOMAIN})
	if err != nil {
		t.Fatal(err)
	}
	if want := domains["org.beta"]; sum.Summary.Rank.GetScore() != want.Score || sum.Summary.Rank.GetPagerankPos() != want.PagerankPos {
		t.Errorf("summary rank %v, want %v", sum.Summary.Rank, want)
	}
	rd, err := srv.ReferringDomains(context.Background(), &lgv1.ReferringDomainsRequest{Target: "beta.org", Scope: lgv1.Scope_SCOPE_DOMAIN})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rd.Domains {
		if want := domains[urlnorm.ReversedHost(d.Domain)].GetScore(); d.Authority != want {
			t.Errorf("referring domain %s: authority %d, want %d", d.Domain, d.Authority, want)
		}
	}

	// Bad input.
	for _, req := range []*lgv1.RanksRequest{{}, {Level: 7}, {Level: lgv1.RankLevel_RANK_LEVEL_HOST, PageSize: MaxRanksPage + 1}, {Level: lgv1.RankLevel_RANK_LEVEL_HOST, PageToken: "xyz"}} {
		if _, err := srv.Ranks(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Ranks(%v): %v, want InvalidArgument", req, err)
		}
	}
}

// On a cluster the gateway gathers the host links of both nodes, ranks
// them once and stores the ranks on every node: they equal those of one
// index holding the whole web, whichever node is asked.
func TestGatewayComputeRanks(t *testing.T) {
	const seed = 6
	whole, _ := crawlWeb(t, seed)
	nodes, _ := crawlCluster(t, seed, 2)
	nc, _ := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	ctx := context.Background()
	meta, err := gw.ComputeRanks(ctx, &lgv1.ComputeRanksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	one := &GRPCServer{Index: whole}
	wantMeta, err := one.ComputeRanks(ctx, &lgv1.ComputeRanksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Hosts != wantMeta.Hosts || meta.HostLinks != wantMeta.HostLinks || meta.Domains != wantMeta.Domains ||
		meta.DomainLinks != wantMeta.DomainLinks || meta.LinksRead != wantMeta.LinksRead {
		t.Errorf("gateway ranked %v, one index %v", meta, wantMeta)
	}
	for _, level := range []lgv1.RankLevel{lgv1.RankLevel_RANK_LEVEL_HOST, lgv1.RankLevel_RANK_LEVEL_DOMAIN} {
		want := allRanks(t, one.Ranks, level)
		sameRanks(t, "gateway "+level.String(), allRanks(t, func(ctx context.Context, r *lgv1.RanksRequest) (*lgv1.RanksResponse, error) {
			return gw.Ranks(ctx, r)
		}, level), want)
		for i, n := range nodes {
			sameRanks(t, "node "+string(rune('0'+i))+" "+level.String(), allRanks(t, (&GRPCServer{Index: n}).Ranks, level), want)
		}
	}
	// A Summary through the gateway shows the rank its node holds.
	got, err := gw.Summary(ctx, &lgv1.SummaryRequest{Target: "www.beta.org", Scope: lgv1.Scope_SCOPE_HOST})
	if err != nil {
		t.Fatal(err)
	}
	want, err := one.Summary(ctx, &lgv1.SummaryRequest{Target: "www.beta.org", Scope: lgv1.Scope_SCOPE_HOST})
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary.Rank.GetScore() != want.Summary.Rank.GetScore() || got.Summary.Rank == nil ||
		!slices.Equal(got.Summary.ReferringDomainsByAuthority, want.Summary.ReferringDomainsByAuthority) {
		t.Errorf("gateway summary rank %v %v, one index %v %v", got.Summary.Rank, got.Summary.ReferringDomainsByAuthority,
			want.Summary.Rank, want.Summary.ReferringDomainsByAuthority)
	}
}

// RankEvery ranks at once when the stored ranks are older than the
// interval, then again every interval, and returns when canceled.
func TestRankEvery(t *testing.T) {
	ix, _ := crawlWeb(t, 7) // ranks stored at 1 ms past the epoch: overdue
	srv := &GRPCServer{Index: ix}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RankEvery(ctx, srv, 50*time.Millisecond, &lgv1.ComputeRanksRequest{}, slog.New(slog.DiscardHandler))
	}()
	seen := map[time.Time]bool{}
	for deadline := time.Now().Add(30 * time.Second); len(seen) < 3; {
		resp, err := srv.Ranks(context.Background(), &lgv1.RanksRequest{Level: lgv1.RankLevel_RANK_LEVEL_DOMAIN, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.ComputedAt.AsTime()] = true
		if time.Now().After(deadline) {
			t.Fatalf("rankings seen after 30s: %v", seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RankEvery returned %v", err)
	}
}

// With pages, ComputeRanks also ranks every page over the live follow
// links between pages, and backlinks carry their source page's score.
func TestComputeRanksWithPages(t *testing.T) {
	ix, w := crawlWeb(t, 8)
	srv := &GRPCServer{Index: ix}
	meta, err := srv.ComputeRanks(context.Background(), &lgv1.ComputeRanksRequest{Pages: true})
	if err != nil {
		t.Fatal(err)
	}
	pages := truthRanks(t, w, func(u string) string { return u })
	if meta.Pages != int64(len(pages)) || meta.PageLinks == 0 {
		t.Errorf("ComputeRanks said %d pages, %d links; want %d pages", meta.Pages, meta.PageLinks, len(pages))
	}
	sameRanks(t, "pages", allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_PAGE), pages)
	n := 0
	for _, bl := range allBacklinks(t, ix, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN}) {
		if want := pages[bl.SourceUrl].GetScore(); bl.SourcePageAuthority != want {
			t.Errorf("%s: source_page_authority %d, want %d", bl.SourceUrl, bl.SourcePageAuthority, want)
		}
		if bl.SourcePageAuthority > 0 {
			n++
		}
	}
	if n == 0 {
		t.Error("no backlink has a source page authority")
	}
	// A URL's Summary has its page rank.
	for u, want := range pages {
		sum, err := srv.Summary(context.Background(), &lgv1.SummaryRequest{Target: u})
		if err != nil {
			t.Fatal(err)
		}
		if got := sum.Summary.GetRank(); got.GetScore() != want.Score || got.GetPagerankPos() != want.PagerankPos {
			t.Errorf("Summary(%s).rank = %v, want %v", u, got, want)
		}
	}
	// A ranking without pages drops the page ranks with the rest.
	if _, err := srv.ComputeRanks(context.Background(), &lgv1.ComputeRanksRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_PAGE); len(got) != 0 {
		t.Errorf("%d page ranks left after a ranking without pages", len(got))
	}
}

// Only live follow links between hosts (or domains) count: on a web where
// a.com links to b.com, c.com links to b.com with rel=nofollow, b.com
// links within itself, www.d.com links to d.com (other host, same domain)
// and e.com's link to b.com is lost, the host graph is a.com -> b.com and
// www.d.com -> d.com over hosts a.com, b.com, www.d.com and d.com, and the
// domain graph is a.com -> b.com (d.com a node without links).
func TestRanksCountOnlyFollowLinksBetweenHosts(t *testing.T) {
	nodes := newNodes(t, 1)
	ix := nodes[0]
	record := func(page string, at int64, links ...*lgv1.OutLink) {
		recordPage(t, nodes, &lgv1.PageResult{Url: page, Status: 200, FetchedAt: at * 1e6, Links: links})
	}
	link := func(u string, rel ...string) *lgv1.OutLink {
		return &lgv1.OutLink{Url: u, Type: lgv1.LinkType_LINK_TYPE_A, Rel: rel}
	}
	record("http://a.com/", 1000, link("http://b.com/"))
	record("http://c.com/", 1000, link("http://b.com/", "nofollow"))
	record("http://b.com/x", 1000, link("http://b.com/y"))
	record("http://www.d.com/", 1000, link("http://d.com/"))
	record("http://e.com/", 1000, link("http://b.com/"))
	record("http://e.com/", 2000) // the link is gone
	// Before any ranking every referring domain has authority 0, whether
	// the Summary comes from the aggregates or a scan.
	for _, x := range []*Index{ix, {db: ix.db, shards: ix.shards, scanOnly: true}} {
		sum, err := x.Summary(context.Background(), &lgv1.SummaryRequest{Target: "b.com", Scope: lgv1.Scope_SCOPE_DOMAIN})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{2, 0, 0, 0, 0, 0, 0, 0, 0, 0}; !slices.Equal(sum.Summary.ReferringDomainsByAuthority, want) {
			t.Errorf("unranked: referring domains by authority %v, want %v", sum.Summary.ReferringDomainsByAuthority, want)
		}
	}
	srv := &GRPCServer{Index: ix}
	meta, err := srv.ComputeRanks(context.Background(), &lgv1.ComputeRanksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Hosts != 4 || meta.HostLinks != 2 || meta.Domains != 3 || meta.DomainLinks != 1 || meta.LinksRead != 3 {
		t.Errorf("ranked %v; want 4 hosts, 2 host links, 3 domains, 1 domain link, 3 links read", meta)
	}
	hosts := allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_HOST)
	if !slices.Equal(slices.Sorted(maps.Keys(hosts)), []string{"com.a", "com.b", "com.d", "com.d.www"}) {
		t.Errorf("hosts ranked: %v", slices.Sorted(maps.Keys(hosts)))
	}
	// Domains: a -> b, d alone. PageRank: p(a) = p(d) = .05 + .85 (p(b) + p(d)) / 3
	// and p(b) = p(a) + .85 p(a); so p(a) = p(d) = 1/3.85 and p(b) = 1.85/3.85.
	domains := allRanks(t, srv.Ranks, lgv1.RankLevel_RANK_LEVEL_DOMAIN)
	a, b, d := domains["com.a"], domains["com.b"], domains["com.d"]
	if a == nil || b == nil || d == nil || len(domains) != 3 {
		t.Fatalf("domains ranked: %v", domains)
	}
	if math.Abs(a.Pagerank-d.Pagerank) > 1e-9 || math.Abs(b.Pagerank-1.85*a.Pagerank) > 1e-9 || math.Abs(a.Pagerank+b.Pagerank+d.Pagerank-1) > 1e-9 {
		t.Errorf("domain PageRank a %v b %v d %v", a.Pagerank, b.Pagerank, d.Pagerank)
	}
	if b.Score != 100 || b.PagerankPos != 1 || b.Harmonic != 1 || a.Harmonic != 0 || d.Harmonic != 0 {
		t.Errorf("b.com ranked %v, a.com %v, d.com %v", b, a, d)
	}
}

// A gateway does not rank pages: that needs the page graph on one machine.
func TestGatewayRefusesPageRanks(t *testing.T) {
	nodes, _ := crawlCluster(t, 1, 2)
	nc, _ := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	if _, err := gw.ComputeRanks(context.Background(), &lgv1.ComputeRanksRequest{Pages: true}); status.Code(err) != codes.Unimplemented {
		t.Errorf("gateway ComputeRanks with pages: %v, want Unimplemented", err)
	}
}
