package indexer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// intersectWeb is a web built for link intersect: three competitors
// (comp1.com, comp2.net, comp3.org), one's own site (own.com), and linking
// domains each in a known relation to them.
var intersectWeb = []struct {
	page  string
	links []*lgv1.OutLink
}{
	// all.org links to every competitor, from three of its hosts, twice to
	// comp1.com.
	{"http://www.all.org/a", []*lgv1.OutLink{ilink("http://www.comp1.com/"), ilink("http://comp1.com/pricing")}},
	{"http://blog.all.org/b", []*lgv1.OutLink{ilink("http://blog.comp2.net/post")}},
	{"http://all.org/", []*lgv1.OutLink{ilink("http://comp3.org/")}},
	// Two competitors each.
	{"http://pair.net/", []*lgv1.OutLink{ilink("http://www.comp1.com/"), ilink("http://comp3.org/")}},
	{"http://pairbig.io/x", []*lgv1.OutLink{ilink("http://comp2.net/"), ilink("http://blog.comp2.net/post"), ilink("http://comp3.org/")}},
	{"http://news.pairbig.io/y", []*lgv1.OutLink{ilink("http://comp2.net/")}},
	{"http://another.de/", []*lgv1.OutLink{ilink("http://comp1.com/pricing"), ilink("http://comp2.net/")}},
	// One competitor only.
	{"http://single.io/", []*lgv1.OutLink{ilink("http://comp2.net/")}},
	// Every competitor, and one's own site from another of its hosts.
	{"http://www.both.biz/", []*lgv1.OutLink{ilink("http://www.comp1.com/"), ilink("http://comp2.net/"), ilink("http://comp3.org/")}},
	{"http://blog.both.biz/", []*lgv1.OutLink{ilink("http://www.own.com/x")}},
	// Nofollow links only, and one of each.
	{"http://nofollow.info/", []*lgv1.OutLink{ilink("http://www.comp1.com/", "nofollow"), ilink("http://comp2.net/", "ugc")}},
	{"http://mixed.com/", []*lgv1.OutLink{ilink("http://www.comp1.com/"), ilink("http://comp2.net/", "nofollow")}},
	// comp1.com links to itself (internal) and to comp2.net.
	{"http://www.comp1.com/", []*lgv1.OutLink{ilink("http://comp1.com/pricing"), ilink("http://comp2.net/")}},
	{"http://shop.comp1.com/item", []*lgv1.OutLink{ilink("http://www.comp1.com/")}},
}

func ilink(url string, rel ...string) *lgv1.OutLink {
	return &lgv1.OutLink{Url: url, AnchorText: "x", Rel: rel, Type: lgv1.LinkType_LINK_TYPE_A}
}

// buildIntersectWeb indexes intersectWeb over n nodes of viewShards shards
// each, as crawlCluster does: a page on the node of its shard, its links on
// the nodes of their targets' shards.
func buildIntersectWeb(t *testing.T, n int) []*Index {
	t.Helper()
	nodes := newNodes(t, n)
	for i, p := range intersectWeb {
		recordPage(t, nodes, &lgv1.PageResult{Url: p.page, Status: 200, FetchedAt: int64(i+1) * 1e9, Links: p.links})
	}
	return nodes
}

// intersectRows renders an answer as "domain linked [backlinks...]" rows,
// checking that every row's authority is the one ReferringDomains gives
// the domain.
func intersectRows(t *testing.T, rd referringDomainsFunc, req *lgv1.IntersectRequest, domains []*lgv1.IntersectDomain) []string {
	t.Helper()
	authority := map[string]int32{}
	for _, target := range req.Targets {
		resp, err := rd(context.Background(), &lgv1.ReferringDomainsRequest{Target: target, Scope: req.Scope, Filter: req.Filter, PageSize: MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.Domains {
			authority[d.Domain] = d.Authority
		}
	}
	var rows []string
	for _, d := range domains {
		if d.Authority != authority[d.Domain] {
			t.Errorf("%s: authority %d, ReferringDomains says %d", d.Domain, d.Authority, authority[d.Domain])
		}
		if len(d.Backlinks) != len(req.Targets) {
			t.Errorf("%s: %d backlink counts for %d targets", d.Domain, len(d.Backlinks), len(req.Targets))
		}
		rows = append(rows, fmt.Sprintf("%s %d %v", d.Domain, d.TargetsLinked, d.Backlinks))
	}
	return rows
}

var competitors = []string{"comp1.com", "comp2.net", "comp3.org"}

// intersectCase is a request and the exact answer the web gives it.
type intersectCase struct {
	name string
	req  *lgv1.IntersectRequest
	want []string
}

func intersectCases() []intersectCase {
	domain, host, url := lgv1.Scope_SCOPE_DOMAIN, lgv1.Scope_SCOPE_HOST, lgv1.Scope_SCOPE_URL
	follow := &lgv1.Filter{FollowOnly: true}
	return []intersectCase{
		{"domain, at least 2, not own.com",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: 2, ExcludeTarget: "own.com"},
			[]string{
				"all.org 3 [2 1 1]",
				"pairbig.io 2 [0 3 1]",
				"another.de 2 [1 1 0]",
				"mixed.com 2 [1 1 0]",
				"nofollow.info 2 [1 1 0]",
				"pair.net 2 [1 0 1]",
			}},
		{"domain, at least 3, not own.com named by a host",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: 3, ExcludeTarget: "www.own.com"},
			[]string{"all.org 3 [2 1 1]"}},
		{"domain, at least 1 by default, no exclude",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain},
			[]string{
				"all.org 3 [2 1 1]",
				"both.biz 3 [1 1 1]",
				"pairbig.io 2 [0 3 1]",
				"another.de 2 [1 1 0]",
				"mixed.com 2 [1 1 0]",
				"nofollow.info 2 [1 1 0]",
				"pair.net 2 [1 0 1]",
				"comp1.com 1 [0 1 0]", // its links to itself do not count
				"single.io 1 [0 1 0]",
			}},
		{"domain, follow only, at least 2, not own.com",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: 2, ExcludeTarget: "own.com", Filter: follow},
			[]string{
				"all.org 3 [2 1 1]",
				"pairbig.io 2 [0 3 1]",
				"another.de 2 [1 1 0]",
				"pair.net 2 [1 0 1]",
			}},
		{"domain, follow only, at least 1",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain, Filter: follow},
			[]string{
				"all.org 3 [2 1 1]",
				"both.biz 3 [1 1 1]",
				"pairbig.io 2 [0 3 1]",
				"another.de 2 [1 1 0]",
				"pair.net 2 [1 0 1]",
				"comp1.com 1 [0 1 0]",
				"mixed.com 1 [1 0 0]",
				"single.io 1 [0 1 0]",
			}},
		{"targets in another order",
			&lgv1.IntersectRequest{Targets: []string{"comp3.org", "comp1.com"}, Scope: domain, MinTargets: 2},
			[]string{
				"all.org 2 [1 2]",
				"both.biz 2 [1 1]",
				"pair.net 2 [1 1]",
			}},
		// In host scope own.com is not www.own.com, which both.biz links to.
		{"host, at least 2, not www.own.com",
			&lgv1.IntersectRequest{Targets: []string{"www.comp1.com", "blog.comp2.net", "comp3.org"}, Scope: host, MinTargets: 2, ExcludeTarget: "www.own.com"},
			[]string{
				"all.org 3 [1 1 1]",
				"pair.net 2 [1 0 1]",
				"pairbig.io 2 [0 1 1]",
			}},
		{"host, at least 2, not own.com",
			&lgv1.IntersectRequest{Targets: []string{"www.comp1.com", "blog.comp2.net", "comp3.org"}, Scope: host, MinTargets: 2, ExcludeTarget: "own.com"},
			[]string{
				"all.org 3 [1 1 1]",
				"both.biz 2 [1 0 1]",
				"pair.net 2 [1 0 1]",
				"pairbig.io 2 [0 1 1]",
			}},
		{"url, at least 2, not the own page",
			&lgv1.IntersectRequest{Targets: []string{"http://www.comp1.com/", "http://comp3.org/"}, Scope: url, MinTargets: 2, ExcludeTarget: "http://www.own.com/x"},
			[]string{
				"all.org 2 [1 1]",
				"pair.net 2 [1 1]",
			}},
		// URL scope keeps internal links, as ReferringDomains does.
		{"url, at least 1",
			&lgv1.IntersectRequest{Targets: []string{"http://www.comp1.com/", "http://comp3.org/"}, Scope: url},
			[]string{
				"all.org 2 [1 1]",
				"both.biz 2 [1 1]",
				"pair.net 2 [1 1]",
				"comp1.com 1 [1 0]",
				"mixed.com 1 [1 0]",
				"nofollow.info 1 [1 0]",
				"pairbig.io 1 [0 1]",
			}},
		{"an own site nobody links to",
			&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: 3, ExcludeTarget: "nobody.example"},
			[]string{"all.org 3 [2 1 1]", "both.biz 3 [1 1 1]"}},
	}
}

// Link intersect lists exactly the domains the web says, in order, over
// gRPC, with every page size.
func TestIntersectAnswersExactly(t *testing.T) {
	nodes := buildIntersectWeb(t, 1)
	ix := nodes[0]
	c := serveGRPC(t, &GRPCServer{Index: ix})
	ctx := context.Background()
	for _, tc := range intersectCases() {
		resp, err := c.Intersect(ctx, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.NextPageToken != "" {
			t.Errorf("%s: a next page token on a page of %d rows", tc.name, len(resp.Domains))
		}
		if got := intersectRows(t, ix.ReferringDomains, tc.req, resp.Domains); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
		// Pages of any size add up to the whole answer, the last without
		// a token.
		for size := int32(1); size <= int32(len(tc.want)); size++ {
			req := proto.CloneOf(tc.req)
			req.PageSize = size
			var got []*lgv1.IntersectDomain
			for pages := 0; ; pages++ {
				if pages > len(tc.want) {
					t.Fatalf("%s by %d: more pages than rows", tc.name, size)
				}
				p, err := c.Intersect(ctx, req)
				if err != nil {
					t.Fatalf("%s by %d: %v", tc.name, size, err)
				}
				if len(p.Domains) > int(size) {
					t.Fatalf("%s by %d: a page of %d", tc.name, size, len(p.Domains))
				}
				got = append(got, p.Domains...)
				if req.PageToken = p.NextPageToken; req.PageToken == "" {
					break
				}
			}
			if !slices.EqualFunc(got, resp.Domains, func(a, b *lgv1.IntersectDomain) bool { return proto.Equal(a, b) }) {
				t.Errorf("%s by %d: pages give %q", tc.name, size, intersectRows(t, ix.ReferringDomains, tc.req, got))
			}
		}
	}
}

// intersectAuthority is the authority stored for some linking domains, as
// a ranking would store it on every node; the others are unranked (0).
var intersectAuthority = map[string]int32{"pair.net": 40, "mixed.com": 40, "nofollow.info": 7, "both.biz": 90}

func storeIntersectRanks(t *testing.T, ix *Index) {
	t.Helper()
	w := rank.NewWriter(ix.db, 1)
	for d, s := range intersectAuthority {
		if err := w.Put(rank.LevelDomain, urlnorm.ReversedHost(d), &lgv1.Rank{Score: s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(&lgv1.ComputeRanksResponse{Domains: int64(len(intersectAuthority)), ComputedAt: ts(1)}); err != nil {
		t.Fatal(err)
	}
}

// Rows linking to as many targets sort by the authority the index holds,
// highest first, then by backlinks in all, on one index and through a
// gateway, page by page too.
func TestIntersectOrdersByAuthority(t *testing.T) {
	whole := buildIntersectWeb(t, 1)[0]
	nodes := buildIntersectWeb(t, 2)
	for _, ix := range append([]*Index{whole}, nodes...) {
		storeIntersectRanks(t, ix)
	}
	nc, _ := startNodes(t, nodes)
	ctx := context.Background()
	want := []string{"both.biz 90", "all.org 0", "mixed.com 40", "pair.net 40", "nofollow.info 7", "pairbig.io 0", "another.de 0"}
	for name, c := range map[string]lgv1.LinkGraphServiceClient{
		"one index": serveGRPC(t, &GRPCServer{Index: whole}),
		"gateway":   serveGRPC(t, NewGateway(nc, viewShards)),
	} {
		for _, size := range []int32{0, 3} {
			req := &lgv1.IntersectRequest{Targets: competitors, Scope: lgv1.Scope_SCOPE_DOMAIN, MinTargets: 2, PageSize: size}
			var got []string
			for {
				p, err := c.Intersect(ctx, req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, d := range p.Domains {
					got = append(got, fmt.Sprintf("%s %d", d.Domain, d.Authority))
				}
				if req.PageToken = p.NextPageToken; req.PageToken == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, page size %d:\n got %q\nwant %q", name, size, got, want)
			}
		}
	}
}

// The domains held at once are bounded: past the bound the answer is an
// InvalidArgument that says what to do. Domains that can no longer reach
// min_targets are not held.
func TestIntersectBoundsMemory(t *testing.T) {
	ix := buildIntersectWeb(t, 1)[0]
	ctx := context.Background()
	all := &lgv1.IntersectRequest{Targets: competitors, Scope: lgv1.Scope_SCOPE_DOMAIN}
	// Nine domains link to the competitors.
	if _, err := intersect(ctx, ix.ReferringDomains, all, 9); err != nil {
		t.Errorf("9 domains with a bound of 9: %v", err)
	}
	_, err := intersect(ctx, ix.ReferringDomains, all, 8)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "narrow the filter") {
		t.Errorf("9 domains with a bound of 8: %v, want InvalidArgument asking for a narrower filter", err)
	}
	// own.com's one linking domain counts too.
	excl := proto.CloneOf(all)
	excl.ExcludeTarget = "own.com"
	if _, err := intersect(ctx, ix.ReferringDomains, excl, 8); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("1 + 8 domains with a bound of 8: %v, want InvalidArgument", err)
	}
	// With all three needed only comp1.com's six domains are held.
	three := proto.CloneOf(all)
	three.MinTargets = 3
	resp, err := intersect(ctx, ix.ReferringDomains, three, 6)
	if err != nil {
		t.Fatalf("min_targets 3 with a bound of 6: %v", err)
	}
	if got := intersectRows(t, ix.ReferringDomains, three, resp.Domains); !slices.Equal(got, []string{"all.org 3 [2 1 1]", "both.biz 3 [1 1 1]"}) {
		t.Errorf("min_targets 3: %q", got)
	}
}

// Bad requests are InvalidArgument, with a message that names the mistake.
func TestIntersectRejectsBadInput(t *testing.T) {
	ix := buildIntersectWeb(t, 1)[0]
	c := serveGRPC(t, &GRPCServer{Index: ix})
	ctx := context.Background()
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("c%d.example", i)
	}
	domain := lgv1.Scope_SCOPE_DOMAIN
	first, err := c.Intersect(ctx, &lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: 2})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page: %v, token %q", err, first.GetNextPageToken())
	}
	tampered := []byte(first.NextPageToken)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		req  *lgv1.IntersectRequest
		want string
	}{
		{&lgv1.IntersectRequest{Scope: domain}, "0 targets; give 1 to 10"},
		{&lgv1.IntersectRequest{Targets: eleven, Scope: domain}, "11 targets; give 1 to 10"},
		{&lgv1.IntersectRequest{Targets: []string{"comp1.com", " "}, Scope: domain}, "targets[1] is empty"},
		{&lgv1.IntersectRequest{Targets: []string{"http://comp1.com/", "not a url"}}, `target "not a url" is not an absolute http(s) URL`},
		{&lgv1.IntersectRequest{Targets: []string{"http://comp1.com/", "not a url"}}, "(targets[1])"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: 4}, "min_targets 4 out of range 1..3"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, MinTargets: -1}, "min_targets -1 out of range 1..3"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: lgv1.Scope(99)}, "unknown scope"},
		{&lgv1.IntersectRequest{Targets: []string{"comp1.com", "www.comp1.com"}, Scope: domain}, `targets[0] "comp1.com" and targets[1] "www.comp1.com" both select comp1.com`},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, ExcludeTarget: "http://"}, "(exclude_target)"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, Filter: &lgv1.Filter{Types: []lgv1.LinkType{42}}}, "unknown link type"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: MaxPageSize + 1}, "page_size 10001 out of range"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: 2, PageToken: string(tampered)}, "page_token is not valid"},
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: 2, PageToken: "garbage"}, "page_token is not valid"},
		// A token of another query: the same targets, another min_targets.
		{&lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: 2, MinTargets: 2, PageToken: first.NextPageToken}, "page_token is not valid"},
	} {
		_, err := c.Intersect(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
			t.Errorf("%v: %v, want InvalidArgument saying %q", tc.req, err, tc.want)
		}
	}
	// The token is good for its own query.
	if _, err := c.Intersect(ctx, &lgv1.IntersectRequest{Targets: competitors, Scope: domain, PageSize: 2, PageToken: first.NextPageToken}); err != nil {
		t.Errorf("the next page: %v", err)
	}
}

// A gateway over two nodes, the competitors on both, answers as the one
// index does: the same rows and page tokens.
func TestGatewayIntersectAnswersAsOneIndex(t *testing.T) {
	whole := buildIntersectWeb(t, 1)[0]
	nodes := buildIntersectWeb(t, 2)
	onNode := map[int]bool{}
	for _, c := range competitors {
		onNode[nodeOf(whole.shardOf("http://"+c+"/"), 2)] = true
	}
	if len(onNode) != 2 {
		t.Fatal("the competitors are all on one node")
	}
	nc, _ := startNodes(t, nodes)
	gw := serveGRPC(t, NewGateway(nc, viewShards))
	one := serveGRPC(t, &GRPCServer{Index: whole})
	ctx := context.Background()
	for _, tc := range intersectCases() {
		req := proto.CloneOf(tc.req)
		req.PageSize = 2
		var rows []*lgv1.IntersectDomain
		for {
			g, gerr := gw.Intersect(ctx, req)
			o, oerr := one.Intersect(ctx, req)
			if gerr != nil || oerr != nil {
				t.Fatalf("%s: gateway %v, one index %v", tc.name, gerr, oerr)
			}
			if !proto.Equal(g, o) {
				t.Fatalf("%s:\ngateway   %v\none index %v", tc.name, g, o)
			}
			rows = append(rows, g.Domains...)
			if req.PageToken = g.NextPageToken; req.PageToken == "" {
				break
			}
		}
		if got := intersectRows(t, whole.ReferringDomains, tc.req, rows); !slices.Equal(got, tc.want) {
			t.Errorf("%s through the gateway:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	_, err := gw.Intersect(ctx, &lgv1.IntersectRequest{Targets: competitors, Scope: lgv1.Scope_SCOPE_DOMAIN, MinTargets: 5})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gateway, min_targets 5 of 3: %v, want InvalidArgument", err)
	}
}
