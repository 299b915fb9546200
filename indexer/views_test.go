package indexer

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// The view tests crawl a random web twice (with dropped, added and changed
// links, redeliveries and a late stale batch) and compare every view, from
// the aggregates and from a scan, with answers computed from the ground
// truth of which links are live.

var viewHosts = []string{
	"www.alpha.com", "blog.alpha.com", "alpha.com",
	"www.beta.org", "shop.beta.org",
	"www.gamma.co.uk", "news.gamma.co.uk",
	"delta.net", "www.epsilon.de", "127.0.0.9",
}

var viewAnchors = []string{"home", "Click here", "alpha tools", "beta shop", "", "Über uns", "news"}

type truthLink struct {
	source, target string
	typ            lgv1.LinkType
	anchor         string
	rel            []string
	pageNofollow   bool
	first, last    int64 // ms
}

func (l *truthLink) flags() linkFlags { return flagsOf(l.rel, l.pageNofollow) }

type truthWeb struct {
	pages []string
	live  map[string]*truthLink // by source, target, type, anchor
	lost  map[string]*truthLink
}

func linkID(source, target string, typ lgv1.LinkType, anchor string) string {
	return fmt.Sprintf("%s|%s|%d|%s", source, target, typ, anchor)
}

func randomLinks(r *rand.Rand, pages []string, self string) []*lgv1.OutLink {
	var out []*lgv1.OutLink
	for range 1 + r.IntN(12) {
		l := &lgv1.OutLink{
			Url:        pages[r.IntN(len(pages))],
			AnchorText: viewAnchors[r.IntN(len(viewAnchors))],
			Type:       []lgv1.LinkType{lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_IMG, lgv1.LinkType_LINK_TYPE_CANONICAL}[r.IntN(4)],
		}
		switch r.IntN(8) {
		case 0:
			l.Rel = []string{"nofollow"}
		case 1:
			l.Rel = []string{"ugc", "nofollow"}
		case 2:
			l.Rel = []string{"sponsored"}
		case 3:
			l.Rel = []string{"noopener"}
		}
		if l.Url != self {
			out = append(out, l)
		}
	}
	return out
}

// crawlWeb builds the index and the truth. It returns the Index.
func crawlWeb(t *testing.T, seed uint64) (*Index, *truthWeb) {
	t.Helper()
	nodes, w := crawlCluster(t, seed, 1)
	return nodes[0], w
}

// viewShards is the shard count of the view tests' indexes.
const viewShards = 3

// nodeOf is the node owning shard when n nodes share viewShards shards in
// consecutive ranges, as bus.NodeRange spreads them.
func nodeOf(shard, n int) int {
	for i := range n {
		if shard < (i+1)*viewShards/n {
			return i
		}
	}
	return n - 1
}

// crawlCluster builds the web's index split over n nodes, each with its own
// store: a page is recorded on the node of its shard, and its links are
// applied on the nodes of their targets' shards, as in a cluster.
func crawlCluster(t *testing.T, seed uint64, n int) ([]*Index, *truthWeb) {
	t.Helper()
	nodes := newNodes(t, n)
	on := func(url string) *Index { return nodes[nodeOf(nodes[0].shardOf(url), n)] }
	type staleBatch struct {
		shard int
		lb    *lgv1.LinkBatch
	}
	r := rand.New(rand.NewPCG(seed, 1))
	w := &truthWeb{live: map[string]*truthLink{}, lost: map[string]*truthLink{}}
	for i := range 80 {
		h := viewHosts[i%len(viewHosts)]
		w.pages = append(w.pages, fmt.Sprintf("http://%s/p%d", h, i))
	}
	current := map[string][]*lgv1.OutLink{}
	var stale []staleBatch
	record := func(page string, at int64, links []*lgv1.OutLink, nofollow bool) {
		txn := on(page).Begin()
		defer txn.Close()
		out, err := txn.RecordPage(&lgv1.PageResult{Url: page, Status: 200, Title: "T " + page, FetchedAt: at * 1e6, Links: links, MetaNofollow: nofollow})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, shard := range slices.Sorted(maps.Keys(out)) {
			lb := out[shard]
			for range 1 + r.IntN(2) { // sometimes redelivered
				txn := nodes[nodeOf(shard, n)].Begin()
				if err := txn.ApplyLinks(lb); err != nil {
					t.Fatal(err)
				}
				if err := txn.Commit(); err != nil {
					t.Fatal(err)
				}
				txn.Close()
			}
			if at == 1000 {
				stale = append(stale, staleBatch{shard, lb})
			}
		}
		// The truth: the page's current links are live, the others lost.
		seen := map[string]bool{}
		for _, l := range links {
			id := linkID(page, l.Url, l.Type, l.AnchorText)
			if seen[id] {
				continue // a repeat on the page is the same link; the first counts
			}
			seen[id] = true
			tl := w.live[id]
			if tl == nil {
				tl = w.lost[id]
				delete(w.lost, id)
			}
			if tl == nil {
				tl = &truthLink{source: page, target: l.Url, typ: l.Type, anchor: l.AnchorText, first: at}
			}
			tl.rel, tl.pageNofollow, tl.last = l.Rel, nofollow, at
			w.live[id] = tl
		}
		for _, l := range current[page] {
			if id := linkID(page, l.Url, l.Type, l.AnchorText); !seen[id] && w.live[id] != nil {
				w.lost[id] = w.live[id]
				delete(w.live, id)
			}
		}
		current[page] = links
	}
	for _, p := range w.pages {
		record(p, 1000, randomLinks(r, w.pages, p), r.IntN(10) == 0)
	}
	// A recrawl of half the pages: some keep their links with other rel
	// tokens, some get new ones.
	for i, p := range w.pages {
		switch i % 4 {
		case 0:
			record(p, 2000, randomLinks(r, w.pages, p), r.IntN(10) == 0)
		case 1:
			links := slices.Clone(current[p])
			for j, l := range links {
				l = proto.Clone(l).(*lgv1.OutLink)
				l.Rel = []string{"ugc"}
				links[j] = l
			}
			record(p, 2000, links[:len(links)/2+1], false)
		}
	}
	// A late batch of the first crawl changes nothing.
	for _, sb := range stale[:10] {
		txn := nodes[nodeOf(sb.shard, n)].Begin()
		if err := txn.ApplyLinks(sb.lb); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		txn.Close()
	}
	for _, ix := range nodes {
		storeViewRanks(t, ix)
	}
	return nodes, w
}

// newNodes opens n empty indexes of viewShards shards, closed when the
// test ends.
func newNodes(t *testing.T, n int) []*Index {
	t.Helper()
	nodes := make([]*Index, n)
	for i := range nodes {
		nodes[i] = newTestIndex(t, viewShards)
	}
	return nodes
}

// recordPage records a fetched page on the node of its shard and applies
// its links on the nodes of their targets' shards, as a cluster does.
func recordPage(t *testing.T, nodes []*Index, pr *lgv1.PageResult) {
	t.Helper()
	commit := func(txn *Txn) {
		t.Helper()
		defer txn.Close()
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	n := len(nodes)
	txn := nodes[nodeOf(nodes[0].shardOf(pr.Url), n)].Begin()
	out, err := txn.RecordPage(pr)
	if err != nil {
		txn.Close()
		t.Fatal(err)
	}
	commit(txn)
	for _, shard := range slices.Sorted(maps.Keys(out)) {
		txn := nodes[nodeOf(shard, n)].Begin()
		if err := txn.ApplyLinks(out[shard]); err != nil {
			txn.Close()
			t.Fatal(err)
		}
		commit(txn)
	}
}

// viewAuthority is the authority the view tests store for each domain, as
// a ranking would (every node of a cluster holds all ranks); epsilon.de
// is unranked, and two domains tie.
var viewAuthority = map[string]int32{"alpha.com": 73, "beta.org": 40, "gamma.co.uk": 15, "delta.net": 100, "127.0.0.9": 40}

func storeViewRanks(t *testing.T, ix *Index) {
	t.Helper()
	w := rank.NewWriter(ix.db, 1)
	for d, s := range viewAuthority {
		if err := w.Put(rank.LevelDomain, urlnorm.ReversedHost(d), &lgv1.Rank{Score: s, PagerankPos: int64(101 - s)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(&lgv1.ComputeRanksResponse{Domains: int64(len(viewAuthority)), ComputedAt: ts(1)}); err != nil {
		t.Fatal(err)
	}
	ix.reloadScores()
}

func domainOf(u string) string { return urlnorm.RegistrableDomain(urlnorm.Host(u)) }

// selectTruth returns the live links to a target scope passing keep.
func (w *truthWeb) selectTruth(target string, scope lgv1.Scope, internal bool, keep func(*truthLink) bool) []*truthLink {
	var out []*truthLink
	for _, l := range w.live {
		var in bool
		switch scope {
		case lgv1.Scope_SCOPE_URL:
			in = l.target == target
		case lgv1.Scope_SCOPE_PREFIX:
			in = strings.HasPrefix(l.target, target)
		case lgv1.Scope_SCOPE_HOST:
			in = urlnorm.Host(l.target) == target
		case lgv1.Scope_SCOPE_DOMAIN:
			in = domainOf(l.target) == target
		}
		if in && (internal || domainOf(l.source) != domainOf(l.target)) && (keep == nil || keep(l)) {
			out = append(out, l)
		}
	}
	return out
}

func truthSummary(links []*truthLink) *lgv1.Summary {
	s := &lgv1.Summary{ByType: map[string]int64{}, ByTld: map[string]int64{}}
	pages, hosts, domains := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var first, last int64
	for _, l := range links {
		s.Backlinks++
		f := l.flags()
		if f.follow() {
			s.Follow++
		}
		if f&(flagNofollow|flagPageNofollow) != 0 {
			s.Nofollow++
		}
		if f&flagUGC != 0 {
			s.Ugc++
		}
		if f&flagSponsored != 0 {
			s.Sponsored++
		}
		s.ByType[typeName(l.typ)]++
		s.ByTld[publicSuffix(domainOf(l.source))]++
		pages[l.source], hosts[urlnorm.Host(l.source)], domains[domainOf(l.source)] = true, true, true
		if first == 0 || l.first < first {
			first = l.first
		}
		last = max(last, l.last)
	}
	s.ReferringPages, s.ReferringHosts, s.ReferringDomains = int64(len(pages)), int64(len(hosts)), int64(len(domains))
	if s.Backlinks > 0 {
		s.FirstSeen, s.LastSeen = ts(first), ts(last)
	}
	s.ReferringDomainsByAuthority = make([]int64, 10)
	for d := range domains {
		s.ReferringDomainsByAuthority[min(viewAuthority[d]/10, 9)]++
	}
	return s
}

type viewCase struct {
	name     string
	target   string
	scope    lgv1.Scope
	internal bool
}

func viewCases() []viewCase {
	var cs []viewCase
	for _, h := range viewHosts {
		cs = append(cs, viewCase{"host " + h, h, lgv1.Scope_SCOPE_HOST, false})
	}
	for _, d := range []string{"alpha.com", "beta.org", "gamma.co.uk", "delta.net", "127.0.0.9"} {
		cs = append(cs, viewCase{"domain " + d, d, lgv1.Scope_SCOPE_DOMAIN, false})
		cs = append(cs, viewCase{"domain internal " + d, d, lgv1.Scope_SCOPE_DOMAIN, true})
	}
	return cs
}

func internalFilter(include bool) *lgv1.Filter {
	if include {
		return &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}
	}
	return nil
}

func TestSummaryMatchesTruth(t *testing.T) {
	ix, w := crawlWeb(t, 1)
	scan := &Index{db: ix.db, shards: ix.shards, scanOnly: true}
	for _, c := range viewCases() {
		want := truthSummary(w.selectTruth(c.target, c.scope, c.internal, nil))
		if want.Backlinks == 0 {
			t.Fatalf("%s: the random web has no links to it; pick another seed", c.name)
		}
		if s, ok := viewAuthority[c.target]; ok && c.scope == lgv1.Scope_SCOPE_DOMAIN {
			want.Rank = &lgv1.Rank{Score: s, PagerankPos: int64(101 - s)}
		}
		for name, x := range map[string]*Index{"aggregates": ix, "scan": scan} {
			got, err := x.Summary(context.Background(), &lgv1.SummaryRequest{Target: c.target, Scope: c.scope, Filter: internalFilter(c.internal)})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got.Summary, want) {
				t.Errorf("%s from %s:\n got %v\nwant %v", c.name, name, got.Summary, want)
			}
		}
	}
}

func TestReferringDomainsAndAnchorsMatchTruth(t *testing.T) {
	ix, w := crawlWeb(t, 2)
	scan := &Index{db: ix.db, shards: ix.shards, scanOnly: true}
	for _, c := range viewCases() {
		links := w.selectTruth(c.target, c.scope, c.internal, nil)
		domains := map[string]*lgv1.ReferringDomain{}
		anchors := map[string]*lgv1.Anchor{}
		anchorDomains := map[string]bool{}
		for _, l := range links {
			d := domainOf(l.source)
			rd := domains[d]
			if rd == nil {
				rd = &lgv1.ReferringDomain{Domain: d, FirstSeen: ts(l.first), LastSeen: ts(l.last), Authority: viewAuthority[d]}
				domains[d] = rd
			}
			rd.Backlinks++
			if l.flags().follow() {
				rd.FollowBacklinks++
			}
			if l.first < rd.FirstSeen.AsTime().UnixMilli() {
				rd.FirstSeen = ts(l.first)
			}
			if l.last > rd.LastSeen.AsTime().UnixMilli() {
				rd.LastSeen = ts(l.last)
			}
			a := anchors[l.anchor]
			if a == nil {
				a = &lgv1.Anchor{AnchorText: l.anchor}
				anchors[l.anchor] = a
			}
			a.Backlinks++
			if !anchorDomains[l.anchor+"|"+d] {
				anchorDomains[l.anchor+"|"+d] = true
				a.ReferringDomains++
			}
		}
		var wantD []*lgv1.ReferringDomain
		for _, d := range domains {
			wantD = append(wantD, d)
		}
		sort.Slice(wantD, func(i, j int) bool {
			if wantD[i].Backlinks != wantD[j].Backlinks {
				return wantD[i].Backlinks > wantD[j].Backlinks
			}
			return wantD[i].Domain < wantD[j].Domain
		})
		var wantA []*lgv1.Anchor
		for _, a := range anchors {
			wantA = append(wantA, a)
		}
		sort.Slice(wantA, func(i, j int) bool {
			if wantA[i].Backlinks != wantA[j].Backlinks {
				return wantA[i].Backlinks > wantA[j].Backlinks
			}
			return wantA[i].AnchorText < wantA[j].AnchorText
		})
		for name, x := range map[string]*Index{"aggregates": ix, "scan": scan} {
			req := &lgv1.ReferringDomainsRequest{Target: c.target, Scope: c.scope, Filter: internalFilter(c.internal), PageSize: 2}
			gotD := allReferringDomains(t, x, req)
			if !slices.EqualFunc(gotD, wantD, func(a, b *lgv1.ReferringDomain) bool { return proto.Equal(a, b) }) {
				t.Errorf("%s referring domains from %s:\n got %v\nwant %v", c.name, name, gotD, wantD)
			}
			// By authority: highest first, then most backlinks, then name.
			byAuth := slices.Clone(wantD)
			slices.SortStableFunc(byAuth, func(a, b *lgv1.ReferringDomain) int { return int(b.Authority - a.Authority) })
			req.PageToken, req.OrderBy = "", lgv1.ReferringDomainOrder_REFERRING_DOMAIN_ORDER_AUTHORITY
			gotD = allReferringDomains(t, x, req)
			if !slices.EqualFunc(gotD, byAuth, func(a, b *lgv1.ReferringDomain) bool { return proto.Equal(a, b) }) {
				t.Errorf("%s referring domains by authority from %s:\n got %v\nwant %v", c.name, name, gotD, byAuth)
			}
			var gotA []*lgv1.Anchor
			areq := &lgv1.AnchorsRequest{Target: c.target, Scope: c.scope, Filter: internalFilter(c.internal), PageSize: 3}
			for {
				resp, err := x.Anchors(context.Background(), areq)
				if err != nil {
					t.Fatal(err)
				}
				gotA = append(gotA, resp.Anchors...)
				if areq.PageToken = resp.NextPageToken; areq.PageToken == "" {
					break
				}
			}
			if !slices.EqualFunc(gotA, wantA, func(a, b *lgv1.Anchor) bool { return proto.Equal(a, b) }) {
				t.Errorf("%s anchors from %s:\n got %v\nwant %v", c.name, name, gotA, wantA)
			}
		}
	}
}

// allReferringDomains pages through a ReferringDomains request.
func allReferringDomains(t *testing.T, ix *Index, req *lgv1.ReferringDomainsRequest) []*lgv1.ReferringDomain {
	t.Helper()
	var out []*lgv1.ReferringDomain
	for {
		resp, err := ix.ReferringDomains(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Domains...)
		if req.PageToken = resp.NextPageToken; req.PageToken == "" {
			return out
		}
	}
}

func linkString(source, target string, typ lgv1.LinkType, anchor string) string {
	return fmt.Sprintf("%s -> %s %v %q", source, target, typ, anchor)
}

// allBacklinks pages through a query with a small page size.
func allBacklinks(t *testing.T, ix *Index, q Query) []*lgv1.Backlink {
	t.Helper()
	q.PageSize = 3
	var out []*lgv1.Backlink
	for {
		p, err := ix.Backlinks(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Backlinks...)
		if q.PageToken = p.NextPageToken; q.PageToken == "" {
			return out
		}
	}
}

func TestBacklinkFiltersMatchTruth(t *testing.T) {
	ix, w := crawlWeb(t, 3)
	ms := func(x int64) *timestamppb.Timestamp { return ts(x) }
	filters := []struct {
		name string
		f    *lgv1.Filter
		keep func(*truthLink) bool
	}{
		{"none", nil, nil},
		{"follow only", &lgv1.Filter{FollowOnly: true}, func(l *truthLink) bool { return l.flags().follow() }},
		{"types", &lgv1.Filter{Types: []lgv1.LinkType{lgv1.LinkType_LINK_TYPE_IMG, lgv1.LinkType_LINK_TYPE_CANONICAL}},
			func(l *truthLink) bool { return l.typ != lgv1.LinkType_LINK_TYPE_A }},
		{"first seen from", &lgv1.Filter{FirstSeenFrom: ms(1500)}, func(l *truthLink) bool { return l.first >= 1500 }},
		{"first seen to", &lgv1.Filter{FirstSeenTo: ms(1500)}, func(l *truthLink) bool { return l.first < 1500 }},
		{"last seen from", &lgv1.Filter{LastSeenFrom: ms(2000)}, func(l *truthLink) bool { return l.last >= 2000 }},
		{"last seen to", &lgv1.Filter{LastSeenTo: ms(2000)}, func(l *truthLink) bool { return l.last < 2000 }},
		{"anchor contains", &lgv1.Filter{AnchorContains: "HERE"}, func(l *truthLink) bool { return strings.Contains(strings.ToLower(l.anchor), "here") }},
		{"min authority", &lgv1.Filter{MinAuthority: 40}, func(l *truthLink) bool { return viewAuthority[domainOf(l.source)] >= 40 }},
		{"min authority 100", &lgv1.Filter{MinAuthority: 100}, func(l *truthLink) bool { return viewAuthority[domainOf(l.source)] == 100 }},
	}
	cases := append(viewCases(),
		viewCase{"prefix", "http://www.alpha.com/p1", lgv1.Scope_SCOPE_PREFIX, true},
		viewCase{"prefix of a host", "http://delta.net/", lgv1.Scope_SCOPE_PREFIX, true},
		viewCase{"url", "http://www.beta.org/p3", lgv1.Scope_SCOPE_URL, true})
	for _, c := range cases {
		for _, f := range filters {
			fl := proto.Clone(f.f).(*lgv1.Filter)
			if fl == nil {
				fl = &lgv1.Filter{}
			}
			if c.internal {
				fl.Internal = lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE
			}
			var want []string
			for _, l := range w.selectTruth(c.target, c.scope, c.internal, f.keep) {
				want = append(want, linkString(l.source, l.target, l.typ, l.anchor))
			}
			var got []string
			for _, bl := range allBacklinks(t, ix, Query{Target: c.target, Scope: c.scope, Filter: fl}) {
				got = append(got, linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText))
				if a := viewAuthority[domainOf(bl.SourceUrl)]; bl.SourceAuthority != a {
					t.Errorf("%s: source_authority of %s is %d, want %d", c.name, bl.SourceUrl, bl.SourceAuthority, a)
				}
			}
			slices.Sort(want)
			if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
				t.Errorf("%s, filter %s:\n got %q\nwant %q", c.name, f.name, got, want)
			}
			// The summary of a filtered selection comes from a scan.
			s, err := ix.Summary(context.Background(), &lgv1.SummaryRequest{Target: c.target, Scope: c.scope, Filter: fl})
			if err != nil {
				t.Fatal(err)
			}
			if s.Summary.Backlinks != int64(len(want)) {
				t.Errorf("%s, filter %s: summary backlinks %d, want %d", c.name, f.name, s.Summary.Backlinks, len(want))
			}
		}
	}
}

func TestBacklinkOrders(t *testing.T) {
	ix, w := crawlWeb(t, 4)
	for _, c := range viewCases() {
		want := len(w.selectTruth(c.target, c.scope, c.internal, nil))
		domains := map[string]bool{}
		for _, l := range w.selectTruth(c.target, c.scope, c.internal, nil) {
			domains[domainOf(l.source)] = true
		}
		for _, order := range []lgv1.BacklinkOrder{0, 1, 2, 3, 5} {
			for _, desc := range []bool{false, true} {
				for _, one := range []bool{false, true} {
					name := fmt.Sprintf("%s order %v desc %v one per domain %v", c.name, order, desc, one)
					q := Query{Target: c.target, Scope: c.scope, Filter: internalFilter(c.internal), Order: order, Descending: desc, OnePerDomain: one}
					got := allBacklinks(t, ix, q)
					// Sorted, without repeats, complete.
					key := func(bl *lgv1.Backlink) string {
						var k string
						switch order {
						case lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN:
							k = fmt.Sprintf("%020d", bl.FirstSeen.AsTime().UnixMilli())
						case lgv1.BacklinkOrder_BACKLINK_ORDER_LAST_SEEN:
							k = fmt.Sprintf("%020d", bl.LastSeen.AsTime().UnixMilli())
						case lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_DOMAIN:
							k = urlnorm.HostSURT(domainOf(bl.SourceUrl)) + "\x00"
						case lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_AUTHORITY:
							k = fmt.Sprintf("%03d", viewAuthority[domainOf(bl.SourceUrl)])
						}
						return k + string(indexKey(t, ix, bl))
					}
					for i := 1; i < len(got); i++ {
						a, b := key(got[i-1]), key(got[i])
						if desc {
							a, b = b, a
						}
						if a >= b {
							t.Fatalf("%s: rows %d and %d out of order:\n%v\n%v", name, i-1, i, got[i-1], got[i])
						}
					}
					if !one {
						if len(got) != want {
							t.Errorf("%s: %d rows, want %d", name, len(got), want)
						}
						continue
					}
					seen := map[string]bool{}
					for _, bl := range got {
						d := domainOf(bl.SourceUrl)
						if seen[d] {
							t.Errorf("%s: domain %s twice", name, d)
						}
						seen[d] = true
					}
					if len(seen) != len(domains) {
						t.Errorf("%s: %d domains, want %d", name, len(seen), len(domains))
					}
				}
			}
		}
	}
}

func TestOneLinkPerDomainForURL(t *testing.T) {
	ix, w := crawlWeb(t, 5)
	for _, target := range w.pages {
		want := map[string][]string{} // domain -> its sources' links as keyed in the index
		for _, l := range w.selectTruth(target, lgv1.Scope_SCOPE_URL, true, nil) {
			d := domainOf(l.source)
			key := indexKey(t, ix, &lgv1.Backlink{SourceUrl: l.source, TargetUrl: target, Type: l.typ, AnchorText: l.anchor})
			want[d] = append(want[d], string(key))
		}
		for _, desc := range []bool{false, true} {
			got := allBacklinks(t, ix, Query{Target: target, OnePerDomain: true, Descending: desc})
			if len(got) != len(want) {
				t.Fatalf("%s desc %v: %d rows, want one for each of %d domains", target, desc, len(got), len(want))
			}
			for _, bl := range got {
				ls := want[domainOf(bl.SourceUrl)]
				slices.Sort(ls)
				first := ls[0]
				if desc {
					first = ls[len(ls)-1]
				}
				if g := string(indexKey(t, ix, bl)); g != first {
					t.Errorf("%s desc %v: got %q for its domain, want the first in order %q", target, desc, g, first)
				}
			}
		}
	}
}

func TestOutlinksMatchTruth(t *testing.T) {
	ix, w := crawlWeb(t, 6)
	for _, p := range w.pages {
		var want []string
		for _, l := range w.live {
			if l.source == p {
				want = append(want, fmt.Sprintf("%s seen %d..%d", linkString(l.source, l.target, l.typ, l.anchor), l.first, l.last))
			}
		}
		var got []string
		req := &lgv1.OutlinksRequest{Source: p, PageSize: 2}
		for {
			resp, err := ix.Outlinks(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, bl := range resp.Links {
				if bl.SourceTitle != "T "+p {
					t.Errorf("%s: source title %q", p, bl.SourceTitle)
				}
				got = append(got, fmt.Sprintf("%s seen %d..%d", linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText),
					bl.FirstSeen.AsTime().UnixMilli(), bl.LastSeen.AsTime().UnixMilli()))
			}
			if req.PageToken = resp.NextPageToken; req.PageToken == "" {
				break
			}
		}
		slices.Sort(want)
		if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Errorf("outlinks of %s:\n got %q\nwant %q", p, got, want)
		}
	}
}

// Paging goes on while links are added: no row present from start to end
// is lost and none is returned twice.
func TestPagingWhileTheIndexChanges(t *testing.T) {
	ix, w := crawlWeb(t, 7)
	r := rand.New(rand.NewPCG(7, 7))
	for _, c := range viewCases()[:6] {
		before := map[string]bool{}
		for _, bl := range allBacklinks(t, ix, Query{Target: c.target, Scope: c.scope}) {
			before[linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText)] = true
		}
		q := Query{Target: c.target, Scope: c.scope, PageSize: 2}
		got := map[string]bool{}
		for i := 0; ; i++ {
			p, err := ix.Backlinks(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, bl := range p.Backlinks {
				s := linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText)
				if got[s] {
					t.Errorf("%s: %s returned twice", c.name, s)
				}
				got[s] = true
			}
			if q.PageToken = p.NextPageToken; q.PageToken == "" {
				break
			}
			// A new page links to the target between pages.
			src := fmt.Sprintf("http://new%d.example/p%d", r.IntN(1000), i)
			tgt := w.pages[r.IntN(len(w.pages))]
			recordPage(t, []*Index{ix}, &lgv1.PageResult{Url: src, Status: 200, FetchedAt: 3000e6, Links: []*lgv1.OutLink{{Url: tgt, AnchorText: "new", Type: lgv1.LinkType_LINK_TYPE_A}}})
		}
		for s := range before {
			if !got[s] {
				t.Errorf("%s: %s lost while paging", c.name, s)
			}
		}
	}
}

func TestViewsRejectBadInput(t *testing.T) {
	ix, _ := crawlWeb(t, 8)
	ctx := context.Background()
	p, err := ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageSize: 1})
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("need a page token: %v %v", p, err)
	}
	tok := p.NextPageToken
	tampered := tok[:len(tok)-2] + "AA"
	cases := map[string]error{}
	_, cases["backlinks: token of another order"] = ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageToken: tok, Order: lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN})
	_, cases["backlinks: token of another filter"] = ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageToken: tok, Filter: &lgv1.Filter{FollowOnly: true}})
	_, cases["backlinks: tampered token"] = ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageToken: tampered})
	_, cases["backlinks: unknown type"] = ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{Types: []lgv1.LinkType{99}}})
	_, cases["backlinks: bad timestamp"] = ix.Backlinks(ctx, Query{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{FirstSeenFrom: &timestamppb.Timestamp{Nanos: -1}}})
	_, cases["domains: token of backlinks"] = ix.ReferringDomains(ctx, &lgv1.ReferringDomainsRequest{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageToken: tok})
	_, cases["domains: page size"] = ix.ReferringDomains(ctx, &lgv1.ReferringDomainsRequest{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, PageSize: MaxPageSize + 1})
	_, cases["anchors: not a URL"] = ix.Anchors(ctx, &lgv1.AnchorsRequest{Target: "ht!tp://x"})
	_, cases["summary: unknown scope"] = ix.Summary(ctx, &lgv1.SummaryRequest{Target: "alpha.com", Scope: 42})
	_, cases["summary: unknown internal"] = ix.Summary(ctx, &lgv1.SummaryRequest{Target: "alpha.com", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{Internal: 9}})
	_, cases["outlinks: relative"] = ix.Outlinks(ctx, &lgv1.OutlinksRequest{Source: "/p1"})
	_, cases["outlinks: include lost"] = ix.Outlinks(ctx, &lgv1.OutlinksRequest{Source: "http://alpha.com/p2", Filter: &lgv1.Filter{IncludeLost: true}})
	for name, err := range cases {
		if err == nil || !strings.Contains(err.Error(), "invalid argument") {
			t.Errorf("%s: got %v, want an invalid argument error", name, err)
		}
	}
}

func TestExportAllAndResume(t *testing.T) {
	ix, w := crawlWeb(t, 9)
	ctx := context.Background()
	var want []string
	for _, l := range w.live {
		want = append(want, linkString(l.source, l.target, l.typ, l.anchor))
	}
	slices.Sort(want)
	var got []string
	var positions [][]byte
	err := ix.Export(ctx, ExportQuery{}, func(bl *lgv1.Backlink, pos []byte) error {
		if bl.SourceTitle != "T "+bl.SourceUrl {
			t.Errorf("%s: source title %q", bl.SourceUrl, bl.SourceTitle)
		}
		got = append(got, linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText))
		positions = append(positions, slices.Clone(pos))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("export: %d rows, want the %d live links", len(got), len(want))
	}
	// Resuming after any row gives exactly the rows after it.
	for _, i := range []int{0, len(got) / 3, len(got) - 2} {
		tok, err := ix.ResumeToken(ExportQuery{}, positions[i])
		if err != nil {
			t.Fatal(err)
		}
		var rest []string
		err = ix.Export(ctx, ExportQuery{ResumeToken: tok}, func(bl *lgv1.Backlink, _ []byte) error {
			rest = append(rest, linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rest, got[i+1:]) {
			t.Errorf("resumed after row %d: %d rows, want %d", i, len(rest), len(got)-i-1)
		}
	}
	// A token is bound to its query.
	tok, _ := ix.ResumeToken(ExportQuery{}, positions[1])
	if err := ix.Export(ctx, ExportQuery{ResumeToken: tok, Filter: &lgv1.Filter{FollowOnly: true}}, func(*lgv1.Backlink, []byte) error { return nil }); err == nil {
		t.Error("a resume token of another export was accepted")
	}
	// A filtered export of a domain.
	var gotF, wantF []string
	for _, l := range w.selectTruth("beta.org", lgv1.Scope_SCOPE_DOMAIN, true, func(l *truthLink) bool { return l.flags().follow() }) {
		wantF = append(wantF, linkString(l.source, l.target, l.typ, l.anchor))
	}
	err = ix.Export(ctx, ExportQuery{Target: "beta.org", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{FollowOnly: true}}, func(bl *lgv1.Backlink, _ []byte) error {
		gotF = append(gotF, linkString(bl.SourceUrl, bl.TargetUrl, bl.Type, bl.AnchorText))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(wantF)
	if !slices.Equal(slices.Sorted(slices.Values(gotF)), wantF) {
		t.Errorf("filtered export: %d rows, want %d", len(gotF), len(wantF))
	}
}

// indexKey is the edge key of a row, with the ids the index gave its
// source: the order of rows in the index.
func indexKey(t *testing.T, ix *Index, bl *lgv1.Backlink) []byte {
	t.Helper()
	ids, ok, err := getSourceIDs(ix.db, urlnorm.SURT(bl.SourceUrl))
	if err != nil || !ok {
		t.Fatalf("no ids for source %s of %s (%v)", bl.SourceUrl, bl.TargetUrl, err)
	}
	return edgeKey(nil, urlnorm.SURT(bl.TargetUrl), ids.domain, ids.source, bl.Type, bl.AnchorText)
}

// firstRows gives what sorting the whole list and taking its first n does,
// for lists shorter and longer than n, with ties.
func TestFirstRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	byValue := func(a, b *int) int { return cmp.Compare(*a, *b) }
	for _, length := range []int{0, 1, 5, 99, 100, 101, 1000} {
		for _, n := range []int{0, 1, 7, 100} {
			rows := make([]int, length)
			for i := range rows {
				rows[i] = rng.IntN(50)
			}
			want := slices.Sorted(slices.Values(rows))[:min(n, length)]
			if got := firstRows(rows, n, byValue); !slices.Equal(got, want) {
				t.Errorf("%d rows, first %d: %v, want %v", length, n, got, want)
			}
		}
	}
}

// TestLinkRank checks that rank keys order counts as the views do, most
// first, and that a count moves rank only a few times as it grows.
func TestLinkRank(t *testing.T) {
	for _, n := range []int64{-1, 0, 1, minRankedLinks - 1} {
		if linkRank(n) != noRank {
			t.Errorf("linkRank(%d) = %d, want noRank", n, linkRank(n))
		}
	}
	moves := 0
	if linkRank(minRankedLinks) == noRank {
		t.Errorf("linkRank(%d) = noRank, want a rank", minRankedLinks)
	}
	for n := int64(minRankedLinks); n < 1<<20; n++ {
		a, b := linkRank(n), linkRank(n+1)
		switch {
		case b > a:
			t.Fatalf("linkRank(%d) = %d sorts after linkRank(%d) = %d", n+1, b, n, a)
		case b < a:
			moves++
		}
	}
	if moves > 4*20 {
		t.Errorf("a count moved rank %d times on its way to 2^20, want at most 80", moves)
	}
	if r := linkRank(math.MaxInt64); r == noRank || r >= linkRank(1<<61) {
		t.Errorf("linkRank(MaxInt64) = %d, want a rank before linkRank(2^61) = %d", r, linkRank(1<<61))
	}
}
