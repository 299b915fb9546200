package indexer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

func applyBatch(t *testing.T, ix *Index, lb *lgv1.LinkBatch) {
	t.Helper()
	txn := ix.Begin()
	defer txn.Close()
	if err := txn.ApplyLinks(lb); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

func linkFrom(source, target string) *lgv1.LinkBatch {
	return &lgv1.LinkBatch{SourceUrl: source, SourceTitle: "T " + source, SourceStatus: 200, FetchedAt: 1e12,
		Edges: []*lgv1.Edge{{TargetUrl: target, AnchorText: "x", Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN}}}
}

// Ids go on where they stopped after the index is closed and opened
// again, a domain keeps its id, and every row still names its source.
func TestIDsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	const target = "http://target.example/"
	first := []string{"http://a.com/1", "http://b.com/1", "http://www.a.com/2"}
	second := []string{"http://c.com/1", "http://blog.a.com/3", "http://b.com/1"} // b.com/1 again
	ids := map[string]sourceIDs{}
	run := func(sources []string) {
		db, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ix := New(db, 4)
		for _, s := range sources {
			applyBatch(t, ix, linkFrom(s, target))
			got, ok, err := getSourceIDs(db, urlnorm.SURT(s))
			if err != nil || !ok {
				t.Fatalf("%s: no ids (%v)", s, err)
			}
			if was, seen := ids[s]; seen && (was.domain != got.domain || was.source != got.source) {
				t.Errorf("%s: ids %+v, were %+v", s, got, was)
			}
			for o, oid := range ids {
				if o != s && oid.source == got.source {
					t.Errorf("%s and %s share source id %d", s, o, got.source)
				}
				sameDomain := urlnorm.RegistrableDomain(urlnorm.Host(o)) == urlnorm.RegistrableDomain(urlnorm.Host(s))
				if sameDomain != (oid.domain == got.domain) {
					t.Errorf("%s (domain id %d) and %s (domain id %d): same domain %v", s, got.domain, o, oid.domain, sameDomain)
				}
			}
			ids[s] = got
		}
		p, err := ix.Backlinks(context.Background(), Query{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, bl := range p.Backlinks {
			got[bl.SourceUrl] = bl.SourceTitle
		}
		for s := range ids {
			if got[s] != "T "+s {
				t.Errorf("backlinks: source %s has title %q, want %q (rows %v)", s, got[s], "T "+s, got)
			}
		}
		if len(got) != len(ids) {
			t.Errorf("backlinks: %d sources, want %d", len(got), len(ids))
		}
	}
	run(first)
	run(second)
	if len(ids) != 5 {
		t.Fatalf("%d sources, want 5", len(ids))
	}
}

// Two shards of one node applying sources of the same new domain at once
// give it one id: the internal-link test and one link per domain compare
// domain ids.
func TestDomainIDOnePerDomain(t *testing.T) {
	ix := newTestIndex(t, 8)
	// Two targets on different shards.
	var targets []string
	for i := 0; len(targets) < 2; i++ {
		u := fmt.Sprintf("http://t%d.example/", i)
		if len(targets) == 0 || ix.shardOf(u) != ix.shardOf(targets[0]) {
			targets = append(targets, u)
		}
	}
	const domains = 50
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Go(func() {
			for d := range domains {
				txn := ix.Begin()
				err := txn.ApplyLinks(linkFrom(fmt.Sprintf("http://p%d.d%d.com/", i, d), target))
				if err == nil {
					err = txn.Commit()
				}
				txn.Close()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixDomainID}, UpperBound: []byte{store.PrefixDomainID + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	names := map[string]uint64{}
	for ok := it.First(); ok; ok = it.Next() {
		id, _ := store.ReadID(it.Key()[1:])
		if was, dup := names[string(it.Value())]; dup {
			t.Errorf("domain %s has ids %d and %d", it.Value(), was, id)
		}
		names[string(it.Value())] = id
	}
	// The registry holds hosts too (their ids count a scope's referring
	// hosts and name a domain's only linked host, see agg.go): two source
	// hosts in each domain, and the targets' hosts.
	if want := 3*domains + len(targets); len(names) != want {
		t.Errorf("%d ids, want %d: %d domains, %d source hosts and %d target hosts", len(names), want, domains, 2*domains, len(targets))
	}
	for d := range domains {
		if _, ok := names[urlnorm.HostSURT(fmt.Sprintf("d%d.com", d))]; !ok {
			t.Errorf("domain d%d.com has no id", d)
		}
	}
	for i := range targets {
		for d := range domains {
			s := fmt.Sprintf("http://p%d.d%d.com/", i, d)
			got, _, err := getSourceIDs(ix.db, urlnorm.SURT(s))
			if want := names[urlnorm.HostSURT(fmt.Sprintf("d%d.com", d))]; err != nil || got.domain != want {
				t.Errorf("%s: domain id %d, want %d (%v)", s, got.domain, want, err)
			}
		}
	}
}

// loadSources fills a cache with the sources whose ids have a slot of
// their own, each entry as a lookup would build it.
func TestLoadSources(t *testing.T) {
	ix := newTestIndex(t, 4)
	const target = "http://target.example/"
	byID := map[uint64]string{}
	for i := range 12 {
		s := fmt.Sprintf("http://s%d.example/page", i)
		applyBatch(t, ix, linkFrom(s, target))
		ids, ok, err := getSourceIDs(ix.db, urlnorm.SURT(s))
		if err != nil || !ok {
			t.Fatalf("%s: no ids (%v)", s, err)
		}
		byID[ids.source] = s
	}
	c := newSourceCache(8)
	if err := ix.loadSources(context.Background(), ix.db, c); err != nil {
		t.Fatal(err)
	}
	for id, s := range byID {
		e := c.get(id)
		if id >= 8 {
			if e != nil {
				t.Errorf("source id %d (%s) loaded into a cache of 8 slots", id, s)
			}
			continue
		}
		if e == nil {
			t.Errorf("source id %d (%s) not loaded", id, s)
			continue
		}
		if e.url != s || e.title != "T "+s || e.status != 200 {
			t.Errorf("source id %d: entry %q %q %d, want %q %q 200", id, e.url, e.title, e.status, s, "T "+s)
		}
	}
}

// newTestIndex opens an index of shards shards on a store of its own,
// closed when the test ends.
func newTestIndex(t testing.TB, shards int) *Index {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, shards)
}

// A page that links into several target shards has one s and one i record
// on the node, which names those shards, and a batch redelivered to any of
// them adds nothing.
func TestOneSourceRecordAcrossShards(t *testing.T) {
	ix := newTestIndex(t, 64)
	const page = "http://p.example/"
	var links []*lgv1.OutLink
	shards := map[int]bool{}
	for i := 0; len(shards) < 3; i++ {
		u := fmt.Sprintf("http://t%d.example/", i)
		shards[ix.shardOf(u)] = true
		links = append(links, &lgv1.OutLink{Url: u, AnchorText: "x", Type: lgv1.LinkType_LINK_TYPE_A})
	}
	txn := ix.Begin()
	out, err := txn.RecordPage(&lgv1.PageResult{Url: page, Status: 200, FetchedAt: 1e12, Title: "T", Links: links})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	for range 2 { // delivered, then redelivered
		for _, lb := range out {
			applyBatch(t, ix, lb)
		}
	}
	for _, p := range []byte{store.PrefixSource, store.PrefixSourceID} {
		it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		it.Close()
		if n != 1 {
			t.Errorf("%d %c records, want 1", n, p)
		}
	}
	ids, ok, err := getSourceIDs(ix.db, urlnorm.SURT(page))
	if err != nil || !ok {
		t.Fatalf("no ids: %v", err)
	}
	if want := slices.Sorted(maps.Keys(shards)); !slices.Equal(ids.shards, want) {
		t.Errorf("the record names shards %v, want %v", ids.shards, want)
	}
	c, err := ix.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c[CounterEdges] != int64(len(links)) {
		t.Errorf("%d live edges counted, want %d", c[CounterEdges], len(links))
	}
	for _, l := range links {
		p, err := ix.Backlinks(context.Background(), Query{Target: l.Url})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Backlinks) != 1 || p.Backlinks[0].SourceUrl != page || p.Backlinks[0].SourceTitle != "T" {
			t.Errorf("backlinks of %s: %v", l.Url, p.Backlinks)
		}
	}
}

func TestBaseCache(t *testing.T) {
	c := newBaseCache(4)
	const now = 1_780_000_000_000 // ms, in 2026
	c.put(3, now)
	c.put(3+16<<20, 7) // same slot, another id: replaces it
	c.put(5, 0)
	c.put(6, -1)            // a base before 1970 is not cached
	c.put(7, 1<<baseBits)   // nor one after 2109
	c.put(8+1<<(64-4), now) // nor an id too large to tell from others in its slot
	for _, tc := range []struct {
		id   uint64
		base int64
		ok   bool
	}{
		{3, 0, false},
		{3 + 16<<20, 7, true},
		{19, 0, false}, // slot 3, not its id
		{5, 0, true},
		{21, 0, false},
		{6, 0, false},
		{7, 0, false},
		{8 + 1<<(64-4), 0, false},
		{8, 0, false},
	} {
		if b, ok := c.get(tc.id); b != tc.base || ok != tc.ok {
			t.Errorf("get(%d) = %d, %v; want %d, %v", tc.id, b, ok, tc.base, tc.ok)
		}
	}
}

// Rows show a source's title and status as its latest applied crawl left
// them, though an earlier query put its entry in the index's cache.
func TestSourceEntriesFollowRecrawls(t *testing.T) {
	ix := newTestIndex(t, 1)
	ctx := context.Background()
	crawl := func(at int64, title string, status int32) {
		t.Helper()
		applyBatch(t, ix, &lgv1.LinkBatch{SourceUrl: "http://s.example/", SourceTitle: title, SourceStatus: status, FetchedAt: at,
			Edges: []*lgv1.Edge{{TargetUrl: "http://t.example/", AnchorText: "x", Type: lgv1.LinkType_LINK_TYPE_A, Op: lgv1.EdgeOp_EDGE_OP_SEEN}}})
	}
	check := func(title string, status int32) {
		t.Helper()
		p, err := ix.Backlinks(ctx, Query{Target: "http://t.example/", Scope: lgv1.Scope_SCOPE_URL})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Backlinks) != 1 || p.Backlinks[0].SourceTitle != title || p.Backlinks[0].SourceStatus != status {
			t.Fatalf("backlinks %v, want one from a page titled %q with status %d", p.Backlinks, title, status)
		}
	}
	crawl(1e12, "Old title", 200)
	check("Old title", 200)
	check("Old title", 200) // from the cache
	crawl(2e12, "New title", 200)
	check("New title", 200)
	crawl(3e12, "New title", 203)
	check("New title", 203)
}

// An entry read from a snapshot taken before an invalidation is not put:
// it may be the invalidated one.
func TestSharedSourcesRefuseStalePuts(t *testing.T) {
	s := newSharedSources(8)
	gen := s.generation()
	s.invalidate([]uint64{3})
	s.put(&sourceEntry{id: 3, title: "old"}, gen)
	if e := s.get(3, nil); e != nil {
		t.Fatalf("got %+v, put from before an invalidation", e)
	}
	s.put(&sourceEntry{id: 3, title: "new"}, s.generation())
	if e := s.get(3, nil); e == nil || e.title != "new" {
		t.Fatalf("got %+v, want the entry put after the invalidation", e)
	}
	s.invalidate([]uint64{3})
	if e := s.get(3, nil); e != nil {
		t.Fatalf("got %+v after its invalidation", e)
	}
}
