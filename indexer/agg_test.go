package indexer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// keysUnder counts the index's keys that start with prefix.
func keysUnder(t *testing.T, ix *Index, prefix string) int {
	t.Helper()
	n := 0
	if err := scanPrefix(context.Background(), ix.db, []byte(prefix), func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// An anchor's referring domains stay exact while its record holds them
// inline, when they outgrow it and spill into 'A' records, as its links
// are lost down to none (when it starts inline again), and when every
// batch is delivered twice.
func TestAnchorDomainsSpill(t *testing.T) {
	ix := newTestIndex(t, 1)
	ctx := context.Background()
	const target = "http://target.example/page"
	// The target is its domain's only linked host: its records are the
	// domain's (see ownRecords).
	scope := aggScope(aggKindDomain, urlnorm.HostSURT("target.example"))
	at := int64(1e12)
	live := map[string]string{} // source -> its domain, for the live links
	link := func(domain, page int, op lgv1.EdgeOp) {
		t.Helper()
		at += 1e9
		source := fmt.Sprintf("http://p%d.d%d.com/", page, domain)
		lb := &lgv1.LinkBatch{SourceUrl: source, SourceStatus: 200, FetchedAt: at,
			Edges: []*lgv1.Edge{{TargetUrl: target, AnchorText: "spill", Type: lgv1.LinkType_LINK_TYPE_A, Op: op}}}
		applyBatch(t, ix, lb)
		applyBatch(t, ix, lb) // redelivered: changes nothing
		if op == lgv1.EdgeOp_EDGE_OP_SEEN {
			live[source] = fmt.Sprintf("d%d.com", domain)
		} else {
			delete(live, source)
		}
	}
	check := func(step string, spilled bool) {
		t.Helper()
		domains := map[string]bool{}
		for _, d := range live {
			domains[d] = true
		}
		resp, err := ix.Anchors(ctx, &lgv1.AnchorsRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, a := range resp.Anchors {
			got += fmt.Sprintf("%q %d links %d domains; ", a.AnchorText, a.Backlinks, a.ReferringDomains)
		}
		want := ""
		if len(live) > 0 {
			want = fmt.Sprintf("%q %d links %d domains; ", "spill", len(live), len(domains))
		}
		if got != want {
			t.Errorf("%s: anchors %s, want %s", step, got, want)
		}
		n := keysUnder(t, ix, scope+string(recAnchorDomain))
		if spilled != (n > 0) || (spilled && n != len(domains)) {
			t.Errorf("%s: %d 'A' records for %d domains, spilled %v", step, n, len(domains), spilled)
		}
	}
	const seen, removed = lgv1.EdgeOp_EDGE_OP_SEEN, lgv1.EdgeOp_EDGE_OP_REMOVED
	link(0, 0, seen)
	link(0, 1, seen)
	check("one domain, two links", false)
	for d := 1; d < maxInlineDomains; d++ {
		link(d, 0, seen)
	}
	check("as many domains as the record holds", false)
	link(maxInlineDomains, 0, seen)
	link(maxInlineDomains, 1, seen)
	check("one domain more: spilled", true)
	link(0, 0, removed)
	check("a domain loses one of two links", true)
	link(0, 1, removed)
	check("a domain loses its last link", true)
	for d := 1; d <= maxInlineDomains; d++ {
		link(d, 0, removed)
	}
	check("one link left", true)
	link(maxInlineDomains, 1, removed)
	check("no links", false)
	link(7, 0, seen)
	check("a link again: inline again", false)
}

// Pages of referring domains and anchors of every size come in the views'
// order, most links first and then by name, across ranks and into the
// domains and anchors without a rank key (whose names sort otherwise than
// their keys: a domain's key is its SURT).
func TestRankedPages(t *testing.T) {
	ix := newTestIndex(t, 1)
	ctx := context.Background()
	const target = "http://target.example/"
	tlds := []string{"com", "org", "net", "io"}
	domainLinks := map[string]int64{}
	anchorLinks := map[string]int64{}
	anchorDomains := map[string]map[string]bool{}
	for i := range 40 {
		domain := fmt.Sprintf("%c%d.%s", 'a'+i%5, i, tlds[i%4])
		n := 1
		switch {
		case i%6 == 0:
			n = 20 + i
		case i%3 == 0:
			n = 2 + i%4
		}
		for j := range n {
			anchor := fmt.Sprintf("anchor %d", (i*7+j)%13)
			if i%2 == 1 {
				anchor = "single " + domain
			}
			lb := &lgv1.LinkBatch{SourceUrl: fmt.Sprintf("http://p%d.%s/", j, domain), SourceStatus: 200, FetchedAt: 1e12,
				Edges: []*lgv1.Edge{{TargetUrl: target, AnchorText: anchor, Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN}}}
			applyBatch(t, ix, lb)
			domainLinks[domain]++
			anchorLinks[anchor]++
			if anchorDomains[anchor] == nil {
				anchorDomains[anchor] = map[string]bool{}
			}
			anchorDomains[anchor][domain] = true
		}
	}
	order := func(m map[string]int64, row func(name string, n int64) string) []string {
		names := slices.Collect(maps.Keys(m))
		slices.SortFunc(names, func(a, b string) int { return compareCounts(m[a], a, m[b], b) })
		var out []string
		for _, name := range names {
			out = append(out, row(name, m[name]))
		}
		return out
	}
	wantD := order(domainLinks, func(d string, n int64) string { return fmt.Sprintf("%s %d", d, n) })
	wantA := order(anchorLinks, func(a string, n int64) string { return fmt.Sprintf("%s %d %d", a, n, len(anchorDomains[a])) })
	for _, size := range []int32{1, 2, 3, 7, 40, 100} {
		var gotD []string
		for _, d := range allReferringDomains(t, ix, &lgv1.ReferringDomainsRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: size}) {
			gotD = append(gotD, fmt.Sprintf("%s %d", d.Domain, d.Backlinks))
		}
		if !slices.Equal(gotD, wantD) {
			t.Errorf("referring domains by %d:\n got %q\nwant %q", size, gotD, wantD)
		}
		var gotA []string
		areq := &lgv1.AnchorsRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: size}
		for {
			resp, err := ix.Anchors(ctx, areq)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range resp.Anchors {
				gotA = append(gotA, fmt.Sprintf("%s %d %d", a.AnchorText, a.Backlinks, a.ReferringDomains))
			}
			if areq.PageToken = resp.NextPageToken; areq.PageToken == "" {
				break
			}
		}
		if !slices.Equal(gotA, wantA) {
			t.Errorf("anchors by %d:\n got %q\nwant %q", size, gotA, wantA)
		}
	}
}

// A page that reads many records stops when its call is cancelled, in the
// ranks (ranked.example: anchors with rank keys) and in the tail of
// records without one (tail.example).
func TestRankedPageStopsWhenCancelled(t *testing.T) {
	ix := newTestIndex(t, 1)
	txn := ix.Begin()
	defer txn.Close()
	for _, target := range []string{"ranked.example", "tail.example"} {
		for i := range 1100 {
			for j := range map[string]int{"ranked.example": minRankedLinks, "tail.example": 1}[target] {
				lb := &lgv1.LinkBatch{SourceUrl: fmt.Sprintf("http://p%d.d%d.com/", j, i), SourceStatus: 200, FetchedAt: 1e12,
					Edges: []*lgv1.Edge{{TargetUrl: "http://" + target + "/", AnchorText: fmt.Sprintf("anchor %d", i), Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN}}}
				if err := txn.ApplyLinks(lb); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, target := range []string{"ranked.example", "tail.example"} {
		_, err := ix.Anchors(ctx, &lgv1.AnchorsRequest{Target: target, Scope: lgv1.Scope_SCOPE_HOST, PageSize: 100})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("anchors of %s with a cancelled context: %v, want context.Canceled", target, err)
		}
	}
}

// A scope's referring hosts stay exact while a referring domain's record
// holds its hosts inline, when they outgrow it and spill into 'h' records,
// as their links are lost down to none (when it starts inline again), and
// when every batch is delivered twice.
func TestReferringHostsSpill(t *testing.T) {
	ix := newTestIndex(t, 1)
	ctx := context.Background()
	const target = "http://target.example/page"
	// The target is its domain's only linked host: its records are the
	// domain's (see ownRecords).
	scope := aggScope(aggKindDomain, urlnorm.HostSURT("target.example"))
	at := int64(1e12)
	live := map[string]string{} // source -> its host, for the live links
	link := func(domain string, host, page int, op lgv1.EdgeOp) {
		t.Helper()
		at += 1e9
		h := fmt.Sprintf("h%d.%s", host, domain)
		source := fmt.Sprintf("http://%s/p%d", h, page)
		lb := &lgv1.LinkBatch{SourceUrl: source, SourceStatus: 200, FetchedAt: at,
			Edges: []*lgv1.Edge{{TargetUrl: target, AnchorText: "x", Type: lgv1.LinkType_LINK_TYPE_A, Op: op}}}
		applyBatch(t, ix, lb)
		applyBatch(t, ix, lb) // redelivered: changes nothing
		if op == lgv1.EdgeOp_EDGE_OP_SEEN {
			live[source] = h
		} else {
			delete(live, source)
		}
	}
	check := func(step string, spilled int) {
		t.Helper()
		hosts, domains := map[string]bool{}, map[string]bool{}
		for _, h := range live {
			hosts[h] = true
			domains[urlnorm.RegistrableDomain(h)] = true
		}
		resp, err := ix.Summary(ctx, &lgv1.SummaryRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST})
		if err != nil {
			t.Fatal(err)
		}
		s := resp.GetSummary()
		if s.GetBacklinks() != int64(len(live)) || s.GetReferringHosts() != int64(len(hosts)) || s.GetReferringDomains() != int64(len(domains)) {
			t.Errorf("%s: %d backlinks from %d hosts in %d domains, want %d, %d, %d", step,
				s.GetBacklinks(), s.GetReferringHosts(), s.GetReferringDomains(), len(live), len(hosts), len(domains))
		}
		n := keysUnder(t, ix, scope+string(recHost))
		if n != spilled {
			t.Errorf("%s: %d 'h' records, want %d", step, n, spilled)
		}
	}
	const seen, removed = lgv1.EdgeOp_EDGE_OP_SEEN, lgv1.EdgeOp_EDGE_OP_REMOVED
	link("a.org", 0, 0, seen)
	link("a.org", 0, 1, seen)
	link("b.net", 0, 0, seen)
	check("two domains, one with two links", 0)
	for h := 1; h < maxInlineHosts; h++ {
		link("a.org", h, 0, seen)
	}
	check("as many hosts as the record holds", 0)
	link("a.org", maxInlineHosts, 0, seen)
	link("a.org", maxInlineHosts, 1, seen)
	check("one host more: spilled", maxInlineHosts+1)
	link("a.org", 0, 0, removed)
	check("a host loses one of two links", maxInlineHosts+1)
	link("a.org", 0, 1, removed)
	check("a host loses its last link", maxInlineHosts)
	for h := 1; h <= maxInlineHosts; h++ {
		link("a.org", h, 0, removed)
	}
	check("one link left", 1)
	link("a.org", maxInlineHosts, 1, removed)
	check("no links from the domain", 0)
	link("a.org", 7, 0, seen)
	check("a link again: inline again", 0)
}

// A host that is its domain's only linked host has no records of its own:
// its views read the domain's. When another host of the domain gets a link
// (here, in the middle of a batch), the first host's records are copied
// from the domain's, and from then on each host keeps its own. At every
// step the views of both hosts and the domain answer as a scan does.
func TestHostRecordsFollowTheirDomain(t *testing.T) {
	ix := newTestIndex(t, 1)
	scan := &Index{db: ix.db, shards: ix.shards, scanOnly: true}
	ctx := context.Background()
	own := func(host string) int { return keysUnder(t, ix, aggScope(aggKindHost, urlnorm.HostSURT(host))) }
	crawl := func(source string, at int64, links ...[2]string) {
		t.Helper()
		lb := &lgv1.LinkBatch{SourceUrl: source, SourceStatus: 200, FetchedAt: at * 1e9, Sweep: true}
		for _, l := range links {
			lb.Edges = append(lb.Edges, &lgv1.Edge{TargetUrl: l[0], AnchorText: l[1], Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN})
		}
		applyBatch(t, ix, lb)
		applyBatch(t, ix, lb)
	}
	check := func(step string, targets ...string) {
		t.Helper()
		for _, target := range targets {
			scope := lgv1.Scope_SCOPE_HOST
			if target == "shop.com" {
				scope = lgv1.Scope_SCOPE_DOMAIN
			}
			views := func(x *Index) string {
				s, err := x.Summary(ctx, &lgv1.SummaryRequest{Target: target, Scope: scope})
				if err != nil {
					t.Fatal(err)
				}
				d, err := x.ReferringDomains(ctx, &lgv1.ReferringDomainsRequest{Target: target, Scope: scope})
				if err != nil {
					t.Fatal(err)
				}
				a, err := x.Anchors(ctx, &lgv1.AnchorsRequest{Target: target, Scope: scope})
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(s, d, a)
			}
			if got, want := views(ix), views(scan); got != want {
				t.Errorf("%s, %s:\naggregates %s\nscan       %s", step, target, got, want)
			}
		}
	}
	crawl("http://p1.src.org/", 1, [2]string{"http://www.shop.com/a", "A"}, [2]string{"http://www.shop.com/b", "B"})
	check("one host", "www.shop.com", "blog.shop.com", "shop.com")
	if n := own("www.shop.com"); n != 0 {
		t.Errorf("the domain's only host has %d records of its own", n)
	}
	crawl("http://p2.other.net/", 2, [2]string{"http://blog.shop.com/x", "X"}, [2]string{"http://www.shop.com/a", "A"})
	check("a second host", "www.shop.com", "blog.shop.com", "shop.com")
	if own("www.shop.com") == 0 || own("blog.shop.com") == 0 {
		t.Errorf("hosts of a domain with two linked hosts have %d and %d records of their own", own("www.shop.com"), own("blog.shop.com"))
	}
	crawl("http://p1.src.org/", 3, [2]string{"http://www.shop.com/a", "A"})
	lost := &lgv1.LinkBatch{SourceUrl: "http://p1.src.org/", SourceStatus: 200, FetchedAt: 3e9,
		Edges: []*lgv1.Edge{{TargetUrl: "http://www.shop.com/b", Op: lgv1.EdgeOp_EDGE_OP_UNLINKED}}}
	applyBatch(t, ix, lost)
	if s, err := ix.Summary(ctx, &lgv1.SummaryRequest{Target: "www.shop.com", Scope: lgv1.Scope_SCOPE_HOST}); err != nil || s.Summary.GetBacklinks() != 2 {
		t.Fatalf("www.shop.com after a lost link: %v, %v; want 2 backlinks", s, err)
	}
	check("a link lost", "www.shop.com", "blog.shop.com", "shop.com")
}

// Opening an index of layout 8, which kept rank keys for records of 2 and
// 3 links, deletes those keys and leaves the views' answers as they were;
// the index is then of the current layout.
func TestUpgradeDropsLowRanks(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix := New(db, 1)
	for i := range 30 {
		domain := fmt.Sprintf("d%d.com", i)
		for j := range 1 + i%7 {
			applyBatch(t, ix, &lgv1.LinkBatch{SourceUrl: fmt.Sprintf("http://p%d.%s/", j, domain), SourceStatus: 200, FetchedAt: 1e12,
				Edges: []*lgv1.Edge{{TargetUrl: "http://target.example/", AnchorText: fmt.Sprintf("anchor %d", i%5), Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN}}})
		}
	}
	views := func(ix *Index) []string {
		t.Helper()
		var rows []string
		for _, d := range allReferringDomains(t, ix, &lgv1.ReferringDomainsRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: 4}) {
			rows = append(rows, fmt.Sprintf("domain %s %d", d.Domain, d.Backlinks))
		}
		req := &lgv1.AnchorsRequest{Target: "target.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: 2}
		for {
			resp, err := ix.Anchors(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range resp.Anchors {
				rows = append(rows, fmt.Sprintf("anchor %s %d %d", a.AnchorText, a.Backlinks, a.ReferringDomains))
			}
			if req.PageToken = resp.NextPageToken; req.PageToken == "" {
				return rows
			}
		}
	}
	want := views(ix)
	ranks := func(db *store.DB) (low, other int) {
		t.Helper()
		err := scanPrefix(context.Background(), db, []byte{store.PrefixAggregate}, func(suffix string, _ []byte) error {
			_, rest, ok := splitAggKey("a" + suffix)
			switch {
			case !ok || rest[0] != recDomainsByLinks && rest[0] != recAnchorsByLinks:
			case rest[1] == rankOf2or3:
				low++
			default:
				other++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return low, other
	}
	_, wantOther := ranks(db)
	if wantOther == 0 {
		t.Fatal("the index has no rank keys to keep")
	}
	// Layout 8: rank keys for the records of 2 and 3 links too.
	b := db.NewBatch()
	err = scanPrefix(context.Background(), db, []byte{store.PrefixAggregate}, func(suffix string, val []byte) error {
		scope, rest, ok := splitAggKey("a" + suffix)
		if !ok || rest[0] != recDomain && rest[0] != recAnchor {
			return nil
		}
		rec, err := store.DecodeRecord(val)
		if err != nil {
			return err
		}
		if n := rec.Fields[0]; n != 2 && n != 3 {
			return nil
		}
		ranked := map[byte]byte{recDomain: recDomainsByLinks, recAnchor: recAnchorsByLinks}[rest[0]]
		return b.Set([]byte(scope+string([]byte{ranked, rankOf2or3})+rest[1:]), nil, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("mlayout"), binary.AppendUvarint(nil, 8), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if low, _ := ranks(db); low == 0 {
		t.Fatal("the layout-8 index has no rank keys of 2 or 3 links")
	}
	db.Close()

	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if low, other := ranks(db); low != 0 || other != wantOther {
		t.Errorf("after the upgrade: %d rank keys of 2 or 3 links (want 0) and %d others (want %d)", low, other, wantOther)
	}
	raw, closer, err := db.Get([]byte("mlayout"))
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := binary.Uvarint(raw); l != store.Layout {
		t.Errorf("layout %d after the upgrade, want %d", l, store.Layout)
	}
	closer.Close()
	if got := views(New(db, 1)); !slices.Equal(got, want) {
		t.Errorf("views after the upgrade:\n got %q\nwant %q", got, want)
	}
}
