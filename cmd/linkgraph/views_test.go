package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/testweb"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// The maintained aggregates of a crawled web (summary, referring domains,
// anchors of every host and domain) equal what the web's ground truth says,
// and so do the backlinks of every host with each filter.
func TestViewsOfACrawledWeb(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 2})
	dir := t.TempDir()
	args := append([]string{"crawl", "--data", dir, "--allow-private-networks", "--delay", "0",
		"--per-host-concurrency", "4", "--workers", "8"}, web.Seeds()...)
	if code, out, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("crawl exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		t.Fatal(err)
	}
	checkViews(t, web, &indexer.GRPCServer{Index: indexer.New(db, shards)})
}

// viewsAPI is the part of the service checkViews asks: an index's
// GRPCServer, or a gateway through remoteAPI.
type viewsAPI interface {
	Summary(context.Context, *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error)
	ReferringDomains(context.Context, *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error)
	Anchors(context.Context, *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error)
	Backlinks(context.Context, *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error)
}

// checkViews checks the summary, referring domains and anchors of every
// host and domain of a completely crawled web, and the follow backlinks
// with internal links, against the web's ground truth.
func checkViews(t *testing.T, web *testweb.Web, ix viewsAPI) {
	t.Helper()
	ctx := context.Background()
	domainOf := func(u string) string { return urlnorm.RegistrableDomain(urlnorm.Host(u)) }
	type scope struct {
		name  string
		scope lgv1.Scope
		in    func(target string) bool
	}
	var scopes []scope
	for _, seed := range web.Seeds() {
		host := urlnorm.Host(seed)
		scopes = append(scopes,
			scope{host, lgv1.Scope_SCOPE_HOST, func(t string) bool { return urlnorm.Host(t) == host }},
			scope{domainOf(seed), lgv1.Scope_SCOPE_DOMAIN, func(t string) bool { return domainOf(t) == domainOf(seed) }})
	}
	externals := 0
	for _, sc := range scopes {
		var links []testweb.Edge
		for _, e := range web.Edges() {
			if sc.in(e.Target) && domainOf(e.Source) != domainOf(e.Target) {
				links = append(links, e)
			}
		}
		externals += len(links)
		follow := func(e testweb.Edge) bool { return !e.PageNoFollow && !nofollowRel(e.Rel) }

		want := &lgv1.Summary{ByType: map[string]int64{}}
		pages, hosts, domains := map[string]bool{}, map[string]bool{}, map[string]bool{}
		wantDomains := map[string][2]int64{}
		wantAnchors := map[string]int64{}
		anchorDomains := map[string]map[string]bool{}
		for _, e := range links {
			want.Backlinks++
			if follow(e) {
				want.Follow++
			}
			want.ByType[linkTypeName(e.Type)]++
			pages[e.Source], hosts[urlnorm.Host(e.Source)], domains[domainOf(e.Source)] = true, true, true
			d := wantDomains[domainOf(e.Source)]
			d[0]++
			if follow(e) {
				d[1]++
			}
			wantDomains[domainOf(e.Source)] = d
			wantAnchors[e.Anchor]++
			if anchorDomains[e.Anchor] == nil {
				anchorDomains[e.Anchor] = map[string]bool{}
			}
			anchorDomains[e.Anchor][domainOf(e.Source)] = true
		}
		want.ReferringPages, want.ReferringHosts, want.ReferringDomains = int64(len(pages)), int64(len(hosts)), int64(len(domains))

		s, err := ix.Summary(ctx, &lgv1.SummaryRequest{Target: sc.name, Scope: sc.scope})
		if err != nil {
			t.Fatal(err)
		}
		got := s.GetSummary()
		if got.Backlinks != want.Backlinks || got.Follow != want.Follow || got.ReferringPages != want.ReferringPages ||
			got.ReferringHosts != want.ReferringHosts || got.ReferringDomains != want.ReferringDomains || !maps.Equal(got.ByType, want.ByType) {
			t.Errorf("summary of %s:\n got %v\nwant %v", sc.name, got, want)
		}

		rd, err := ix.ReferringDomains(ctx, &lgv1.ReferringDomainsRequest{Target: sc.name, Scope: sc.scope, PageSize: indexer.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		gotDomains := map[string][2]int64{}
		for _, d := range rd.Domains {
			gotDomains[d.Domain] = [2]int64{d.Backlinks, d.FollowBacklinks}
		}
		if !maps.Equal(gotDomains, wantDomains) {
			t.Errorf("referring domains of %s:\n got %v\nwant %v", sc.name, gotDomains, wantDomains)
		}

		an, err := ix.Anchors(ctx, &lgv1.AnchorsRequest{Target: sc.name, Scope: sc.scope, PageSize: indexer.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		gotAnchors := map[string]string{}
		for _, a := range an.Anchors {
			gotAnchors[a.AnchorText] = fmt.Sprint(a.Backlinks, a.ReferringDomains)
		}
		wantA := map[string]string{}
		for a, n := range wantAnchors {
			wantA[a] = fmt.Sprint(n, len(anchorDomains[a]))
		}
		if !maps.Equal(gotAnchors, wantA) {
			t.Errorf("anchors of %s:\n got %v\nwant %v", sc.name, gotAnchors, wantA)
		}

		// Backlinks with the follow-only filter, internal links included.
		var wantRows, gotRows []string
		for _, e := range web.Edges() {
			if sc.in(e.Target) && follow(e) {
				wantRows = append(wantRows, e.Source+" "+e.Target+" "+e.Anchor)
			}
		}
		q := &lgv1.BacklinksRequest{Target: sc.name, Scope: sc.scope, PageSize: 50,
			Filter: &lgv1.Filter{FollowOnly: true, Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}}
		for {
			p, err := ix.Backlinks(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range p.Backlinks {
				gotRows = append(gotRows, b.SourceUrl+" "+b.TargetUrl+" "+b.AnchorText)
			}
			if q.PageToken = p.NextPageToken; q.PageToken == "" {
				break
			}
		}
		slices.Sort(wantRows)
		slices.Sort(gotRows)
		if !slices.Equal(gotRows, wantRows) {
			t.Errorf("follow backlinks of %s: got %d rows, want %d", sc.name, len(gotRows), len(wantRows))
		}
	}
	if externals == 0 {
		t.Fatal("the test web has no links between its hosts")
	}
}
