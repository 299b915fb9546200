package indexer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/store"

	"google.golang.org/protobuf/proto"
)

const shards = 4

func openIndex(t testing.TB) (*store.DB, *indexer.Index) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, indexer.New(db, shards)
}

// crawl records a fetch of page with links at time at (ns) and applies the
// resulting edge batches, as the shard role does.
func crawl(t *testing.T, db *store.DB, ix *indexer.Index, page string, at int64, links ...*lgv1.OutLink) []*lgv1.LinkBatch {
	t.Helper()
	b := ix.Begin()
	defer b.Close()
	out, err := b.RecordPage(&lgv1.PageResult{Url: page, Status: 200, FetchedAt: at, Title: "T " + page, Links: links})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var batches []*lgv1.LinkBatch
	for _, lb := range out {
		apply(t, db, ix, lb)
		batches = append(batches, lb)
	}
	return batches
}

func apply(t *testing.T, db *store.DB, ix *indexer.Index, lb *lgv1.LinkBatch) {
	t.Helper()
	b := ix.Begin()
	defer b.Close()
	if err := b.ApplyLinks(lb); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func a(url, anchor string, rel ...string) *lgv1.OutLink {
	return &lgv1.OutLink{Url: url, AnchorText: anchor, Rel: rel, Type: lgv1.LinkType_LINK_TYPE_A}
}

func backlinks(t *testing.T, ix *indexer.Index, q indexer.Query) []string {
	t.Helper()
	var out []string
	for {
		p, err := ix.Backlinks(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Backlinks {
			lost := ""
			if b.LastSeen.AsTime().UnixMilli() < 0 {
				lost = "?"
			}
			out = append(out, fmt.Sprintf("%s -> %s %q %v%s", b.SourceUrl, b.TargetUrl, b.AnchorText, b.Rel, lost))
		}
		if p.NextPageToken == "" {
			return out
		}
		q.PageToken = p.NextPageToken
	}
}

func counters(t *testing.T, ix *indexer.Index) (edges, targets, pages int64) {
	t.Helper()
	c, err := ix.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[indexer.CounterEdges], c[indexer.CounterTargets], c[indexer.CounterPages]
}

// A target counts once however many pages link to it, also for an Index
// that did not see the first link (a restarted node caches nothing).
func TestTargetsCountOnce(t *testing.T) {
	db, ix := openIndex(t)
	const ms = int64(1e6)
	crawl(t, db, ix, "http://a.example/", 1000*ms, a("http://b.example/x", "X"), a("http://b.example/y", "Y"))
	crawl(t, db, ix, "http://c.example/", 1000*ms, a("http://b.example/x", "X"))
	restarted := indexer.New(db, shards)
	crawl(t, db, restarted, "http://d.example/", 2000*ms, a("http://b.example/x", "X"), a("http://b.example/y", "Y again"), a("http://b.example/z", "Z"))
	if _, tg, _ := counters(t, restarted); tg != 3 {
		t.Fatalf("targets %d, want 3 (x, y and z)", tg)
	}
}

func TestApplyIsIdempotentAndTracksRemovals(t *testing.T) {
	db, ix := openIndex(t)
	const ms = int64(1e6)
	batches := crawl(t, db, ix, "http://a.example/", 1000*ms,
		a("http://b.example/x", "X", "nofollow"), a("http://b.example/y", "Y"), a("http://c.example/", "C"))
	if e, tg, p := counters(t, ix); e != 3 || tg != 3 || p != 1 {
		t.Fatalf("after first crawl: edges %d targets %d pages %d, want 3 3 1", e, tg, p)
	}
	// Redelivery of every batch changes nothing.
	for _, lb := range batches {
		apply(t, db, ix, lb)
	}
	if e, tg, _ := counters(t, ix); e != 3 || tg != 3 {
		t.Fatalf("after redelivery: edges %d targets %d, want 3 3", e, tg)
	}

	got := backlinks(t, ix, indexer.Query{Target: "http://b.example/x"})
	want := []string{`http://a.example/ -> http://b.example/x "X" [nofollow]`}
	if !slices.Equal(got, want) {
		t.Fatalf("backlinks = %q, want %q", got, want)
	}
	p, _ := ix.Backlinks(context.Background(), indexer.Query{Target: "http://b.example/x"})
	if bl := p.Backlinks[0]; !bl.Nofollow || bl.SourceTitle != "T http://a.example/" || bl.SourceStatus != 200 ||
		bl.FirstSeen.AsTime().UnixMilli() != 1000 || bl.LastSeen.AsTime().UnixMilli() != 1000 {
		t.Fatalf("backlink fields wrong: %v", bl)
	}

	// A recrawl without /y marks it lost; the old crawl arriving late
	// changes nothing.
	crawl(t, db, ix, "http://a.example/", 2000*ms, a("http://b.example/x", "X", "nofollow"), a("http://c.example/", "C"))
	// Targets count every target ever linked; edges only live ones.
	if e, tg, p := counters(t, ix); e != 2 || tg != 3 || p != 1 {
		t.Fatalf("after recrawl: edges %d targets %d pages %d, want 2 3 1", e, tg, p)
	}
	for _, lb := range batches {
		apply(t, db, ix, lb)
	}
	if e, tg, _ := counters(t, ix); e != 2 || tg != 3 {
		t.Fatalf("after late old batch: edges %d targets %d, want 2 3", e, tg)
	}
	if got := backlinks(t, ix, indexer.Query{Target: "http://b.example/y"}); len(got) != 0 {
		t.Fatalf("lost link still live: %q", got)
	}
	if got := backlinks(t, ix, indexer.Query{Target: "http://b.example/y", Filter: &lgv1.Filter{IncludeLost: true}}); len(got) != 1 {
		t.Fatalf("lost link not kept: %q", got)
	}
	p, _ = ix.Backlinks(context.Background(), indexer.Query{Target: "http://b.example/x"})
	if bl := p.Backlinks[0]; bl.FirstSeen.AsTime().UnixMilli() != 1000 || bl.LastSeen.AsTime().UnixMilli() != 2000 {
		t.Fatalf("first/last seen = %v/%v, want 1000/2000 ms", bl.FirstSeen.AsTime().UnixMilli(), bl.LastSeen.AsTime().UnixMilli())
	}
	// The link comes back: live again.
	crawl(t, db, ix, "http://a.example/", 3000*ms, a("http://b.example/y", "Y"))
	if got := backlinks(t, ix, indexer.Query{Target: "http://b.example/y"}); len(got) != 1 {
		t.Fatalf("returned link not live: %q", got)
	}
}

// A recrawl's batch that names one edge twice, with different rel (a
// LinkBatch need not come from RecordPage, which drops such repeats),
// leaves one edge, as its later mention has it: each lookup of the edge
// sees the writes of the batch before it.
func TestEdgeNamedTwiceInABatch(t *testing.T) {
	db, ix := openIndex(t)
	const ms = int64(1e6)
	crawl(t, db, ix, "http://a.example/", 1000*ms, a("http://b.example/x", "X"))
	b := ix.Begin()
	defer b.Close()
	out, err := b.RecordPage(&lgv1.PageResult{Url: "http://a.example/", Status: 200, FetchedAt: 2000 * ms, Links: []*lgv1.OutLink{a("http://b.example/x", "X")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, lb := range out {
		again := proto.Clone(lb.Edges[0]).(*lgv1.Edge)
		again.Rel = []string{"nofollow"}
		lb.Edges = append(lb.Edges, again)
		apply(t, db, ix, lb)
	}
	got := backlinks(t, ix, indexer.Query{Target: "http://b.example/x", Filter: &lgv1.Filter{IncludeLost: true}})
	if want := []string{`http://a.example/ -> http://b.example/x "X" [nofollow]`}; !slices.Equal(got, want) {
		t.Fatalf("backlinks = %q, want %q", got, want)
	}
	if e, _, _ := counters(t, ix); e != 1 {
		t.Fatalf("edges %d, want 1", e)
	}
}

func TestScopesAndPaging(t *testing.T) {
	db, ix := openIndex(t)
	targets := []string{
		"http://example.co.uk/", "https://example.co.uk/s", "http://www.example.co.uk/p?q=1",
		"http://deep.sub.example.co.uk/", "http://example.co.uk:8080/port", "http://example-other.co.uk/",
	}
	for i := range 30 {
		var links []*lgv1.OutLink
		for _, tg := range targets {
			links = append(links, a(tg, fmt.Sprintf("to %s from %d", tg, i)))
		}
		crawl(t, db, ix, fmt.Sprintf("http://src%02d.example/page", i), int64(i+1)*1e9, links...)
	}
	cases := []struct {
		target string
		scope  lgv1.Scope
		want   int
	}{
		{"http://example.co.uk/", lgv1.Scope_SCOPE_URL, 30},
		{"HTTP://Example.CO.uk:80/#x", lgv1.Scope_SCOPE_URL, 30},
		{"example.co.uk", lgv1.Scope_SCOPE_HOST, 60},
		{"www.example.co.uk", lgv1.Scope_SCOPE_HOST, 30},
		{"example.co.uk", lgv1.Scope_SCOPE_DOMAIN, 150},
		{"https://deep.sub.example.co.uk/x", lgv1.Scope_SCOPE_DOMAIN, 150},
		{"example-other.co.uk", lgv1.Scope_SCOPE_DOMAIN, 30},
	}
	for _, c := range cases {
		for _, size := range []int{7, 100} {
			got := backlinks(t, ix, indexer.Query{Target: c.target, Scope: c.scope, PageSize: size})
			if len(got) != c.want {
				t.Errorf("%s %v page %d: %d rows, want %d", c.target, c.scope, size, len(got), c.want)
			}
			if !slices.Equal(slices.Compact(slices.Clone(got)), got) || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
				t.Errorf("%s %v page %d: repeated rows", c.target, c.scope, size)
			}
		}
	}
}

func TestPagingWhileWriting(t *testing.T) {
	db, ix := openIndex(t)
	for i := range 50 {
		crawl(t, db, ix, fmt.Sprintf("http://s%03d.example/", i*2), 1e9, a("http://t.example/", "t"))
	}
	q := indexer.Query{Target: "http://t.example/", PageSize: 10}
	seen := map[string]bool{}
	for i := 0; ; i++ {
		p, err := ix.Backlinks(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Backlinks {
			if seen[b.SourceUrl] {
				t.Fatalf("row %s returned twice", b.SourceUrl)
			}
			seen[b.SourceUrl] = true
		}
		if p.NextPageToken == "" {
			break
		}
		q.PageToken = p.NextPageToken
		// New sources land before and after the cursor.
		crawl(t, db, ix, fmt.Sprintf("http://s%03d.example/", i*2+1), 2e9, a("http://t.example/", "t"))
	}
	for i := range 50 {
		if s := fmt.Sprintf("http://s%03d.example/", i*2); !seen[s] {
			t.Errorf("row %s present from the start was lost while paging", s)
		}
	}
}

func TestBadQueries(t *testing.T) {
	db, ix := openIndex(t)
	crawl(t, db, ix, "http://a.example/", 1e9, a("http://b.example/", "b"), a("http://c.example/", "c"))
	p, err := ix.Backlinks(context.Background(), indexer.Query{Target: "b.example", Scope: lgv1.Scope_SCOPE_DOMAIN, PageSize: 1})
	if err != nil || p.NextPageToken != "" {
		t.Fatalf("single row: %v %v", p, err)
	}
	crawl(t, db, ix, "http://z.example/", 1e9, a("http://b.example/", "b"))
	p, err = ix.Backlinks(context.Background(), indexer.Query{Target: "http://b.example/", PageSize: 1})
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("want a next page: %v %v", p, err)
	}
	tok := p.NextPageToken
	tampered := []byte(tok)
	tampered[len(tampered)-2] ^= 1
	for _, q := range []indexer.Query{
		{Target: ""},
		{Target: "not a url"},
		{Target: "/relative"},
		{Target: "mailto:x@example.com"},
		{Target: "http://b.example/", PageSize: -1},
		{Target: "http://b.example/", PageSize: indexer.MaxPageSize + 1},
		{Target: "http://b.example/", Scope: lgv1.Scope(99)},
		{Target: "http://b.example/", PageToken: string(tampered)},
		{Target: "http://b.example/", PageToken: "!!!"},
		{Target: "http://c.example/", PageToken: tok},                       // another target's token
		{Target: "b.example", Scope: lgv1.Scope_SCOPE_HOST, PageToken: tok}, // another scope's token
		{Target: "com", Scope: lgv1.Scope_SCOPE_DOMAIN},                     // a public suffix, not a domain
		{Target: "http://co.uk/", Scope: lgv1.Scope_SCOPE_DOMAIN},
	} {
		if _, err := ix.Backlinks(context.Background(), q); !errors.Is(err, indexer.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v, want ErrInvalidArgument", q, err)
		}
	}
	long := "http://b.example/" + strings.Repeat("a", 5000)
	if _, err := ix.Backlinks(context.Background(), indexer.Query{Target: long}); !errors.Is(err, indexer.ErrInvalidArgument) || len(err.Error()) > 400 {
		t.Errorf("a 5 KB target: %d bytes of error, want ErrInvalidArgument in at most 400: %v", len(err.Error()), err)
	}
	// The views refuse a public suffix too, rather than count nothing.
	if _, err := ix.Summary(context.Background(), &lgv1.SummaryRequest{Target: "co.uk", Scope: lgv1.Scope_SCOPE_DOMAIN}); !errors.Is(err, indexer.ErrInvalidArgument) {
		t.Errorf("Summary of co.uk: %v, want ErrInvalidArgument", err)
	}
}

// RecordFetch says whether a page's links changed since its previous
// crawl, which the revisit schedule adapts to: any link's target, anchor,
// type or rel, in any order.
func TestRecordFetchSaysWhetherLinksChanged(t *testing.T) {
	_, ix := openIndex(t)
	const page = "http://p.example/"
	at := int64(0)
	changed := func(status int32, links ...*lgv1.OutLink) bool {
		t.Helper()
		at += 1e9
		b := ix.Begin()
		defer b.Close()
		rec, err := b.RecordFetch(&lgv1.PageResult{Url: page, Status: status, FetchedAt: at, Links: links})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		return rec.Changed
	}
	x, y := a("http://t.example/x", "X"), a("http://t.example/y", "Y")
	img := &lgv1.OutLink{Url: "http://t.example/x", AnchorText: "X", Type: lgv1.LinkType_LINK_TYPE_IMG}
	for i, step := range []struct {
		status int32
		links  []*lgv1.OutLink
		want   bool
	}{
		{200, nil, false}, // no links, as before it was crawled
		{200, []*lgv1.OutLink{x, y}, true},
		{200, []*lgv1.OutLink{y, x}, false},
		{304, nil, false},
		{200, []*lgv1.OutLink{x, a("http://t.example/y", "Y2")}, true},
		{200, []*lgv1.OutLink{x, a("http://t.example/y", "Y2", "nofollow")}, true},
		{200, []*lgv1.OutLink{img, a("http://t.example/y", "Y2", "nofollow")}, true},
		{200, []*lgv1.OutLink{img, a("http://t.example/y", "Y2", "nofollow")}, false},
		{200, nil, true},
	} {
		if got := changed(step.status, step.links...); got != step.want {
			t.Errorf("fetch %d (status %d, %d links): changed %v, want %v", i+1, step.status, len(step.links), got, step.want)
		}
	}
}

// A link URL with a 0 in it (workers send normalized URLs, which have
// none) is left out, and the page's next crawl still reads its forward
// list.
func TestLinkURLWithNUL(t *testing.T) {
	db, ix := openIndex(t)
	const ms = int64(1e6)
	crawl(t, db, ix, "http://a.example/", 1000*ms, a("http://b.example/x", "X"), a("http://b.example/a\x00b", "bad"))
	if e, _, _ := counters(t, ix); e != 1 {
		t.Fatalf("edges %d after the first crawl, want 1", e)
	}
	crawl(t, db, ix, "http://a.example/", 2000*ms, a("http://b.example/y", "Y"))
	if e, _, _ := counters(t, ix); e != 1 {
		t.Fatalf("edges %d after the recrawl, want 1 (x lost, y new)", e)
	}
}

// TestPagesOutliveLaterQueries checks that a page keeps its rows while
// other queries run: queries reuse their row buffers (rowBufs).
func TestPagesOutliveLaterQueries(t *testing.T) {
	db, ix := openIndex(t)
	for i := range 20 {
		crawl(t, db, ix, fmt.Sprintf("http://src%02d.example/p", i), int64(i+1)*1e9,
			a("http://t.example/one", fmt.Sprintf("one %d", i), "nofollow"), a("http://t.example/two", fmt.Sprintf("two %d", i)))
	}
	ctx := context.Background()
	first, err := ix.Backlinks(ctx, indexer.Query{Target: "http://t.example/one"})
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(&lgv1.BacklinksResponse{Backlinks: first.Backlinks})
	for range 50 {
		if _, err := ix.Backlinks(ctx, indexer.Query{Target: "http://t.example/two"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := (&lgv1.BacklinksResponse{Backlinks: first.Backlinks}); len(first.Backlinks) != 20 || !proto.Equal(got, want) {
		t.Errorf("the first page changed under later queries:\n%v\nwas\n%v", got, want)
	}
}

// TestInternalLinksOfANewDomain checks that internal links are excluded
// once the target's domain has an id, also after a query found it without
// one (nothing linked to it yet).
func TestInternalLinksOfANewDomain(t *testing.T) {
	db, ix := openIndex(t)
	q := indexer.Query{Target: "http://t.example/x", Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE}}
	if got := backlinks(t, ix, q); len(got) != 0 {
		t.Fatalf("before any crawl: %q", got)
	}
	crawl(t, db, ix, "http://a.example/p", 1e9, a("http://t.example/x", "from a"))
	crawl(t, db, ix, "http://www.t.example/home", 2e9, a("http://t.example/x", "home"))
	want := []string{`http://a.example/p -> http://t.example/x "from a" []`}
	if got := backlinks(t, ix, q); !slices.Equal(got, want) {
		t.Errorf("internal links excluded: %q, want %q", got, want)
	}
	q.Filter = nil
	if got := backlinks(t, ix, q); len(got) != 2 {
		t.Errorf("internal links included: %q, want 2 rows", got)
	}
}
