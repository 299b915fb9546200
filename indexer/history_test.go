package indexer_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/store"
)

// fetch records one fetch result and applies its edge batches, twice when
// redeliver is set, as a redelivered stream message would.
func fetch(t *testing.T, db *store.DB, ix *indexer.Index, pr *lgv1.PageResult, redeliver bool) {
	t.Helper()
	for range 1 + btoi(redeliver) {
		b := ix.Begin()
		out, err := b.RecordPage(proto.CloneOf(pr))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		for _, lb := range out {
			for range 1 + btoi(redeliver) {
				apply(t, db, ix, lb)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// linkStates renders every link to t.example, live and lost, with its
// lost reason and history (times in crawl numbers).
func linkStates(t *testing.T, ix *indexer.Index) []string {
	t.Helper()
	var out []string
	q := indexer.Query{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: 100,
		Filter: &lgv1.Filter{IncludeLost: true, Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}}
	at := func(ms int64) int64 { return ms / 1000 }
	for _, bl := range backlinkRows(t, ix, q) {
		s := fmt.Sprintf("%s -> %s", strings.TrimPrefix(bl.SourceUrl, "http://"), strings.TrimPrefix(bl.TargetUrl, "http://t.example/"))
		if bl.LostAt != nil {
			s += fmt.Sprintf(" lost@%d %s", at(bl.LostAt.AsTime().UnixMilli()), strings.TrimPrefix(bl.LostReason.String(), "LOST_REASON_"))
		} else {
			s += fmt.Sprintf(" live@%d", at(bl.LastSeen.AsTime().UnixMilli()))
		}
		for _, h := range bl.History {
			s += fmt.Sprintf(" [lost@%d %s back@%d]", at(h.LostAt.AsTime().UnixMilli()), strings.TrimPrefix(h.Reason.String(), "LOST_REASON_"), at(h.ReturnedAt.AsTime().UnixMilli()))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func backlinkRows(t *testing.T, ix *indexer.Index, q indexer.Query) []*lgv1.Backlink {
	t.Helper()
	var out []*lgv1.Backlink
	for {
		p, err := ix.Backlinks(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Backlinks...)
		if q.PageToken = p.NextPageToken; q.PageToken == "" {
			return out
		}
	}
}

// A web that changes between crawls: each way a link can be lost gives its
// reason, a link that comes back is live again with the period it was lost
// in its history, and redelivering every message changes nothing.
func TestLostReasonsAndHistory(t *testing.T) {
	for _, redeliver := range []bool{false, true} {
		t.Run(fmt.Sprint("redeliver=", redeliver), func(t *testing.T) {
			db, ix := openIndex(t)
			ok := func(page string, crawl int64, links ...*lgv1.OutLink) *lgv1.PageResult {
				return &lgv1.PageResult{Url: page, Status: 200, FetchedAt: crawl * 1e9, Title: "T", Links: links}
			}
			with := func(pr *lgv1.PageResult, f func(*lgv1.PageResult)) *lgv1.PageResult { f(pr); return pr }
			steps := [][]*lgv1.PageResult{
				{ // crawl 1: every page links to t.example
					ok("http://p.example/", 1, a("http://t.example/a", "A"), a("http://t.example/b", "B"), a("http://t.example/c", "C")),
					ok("http://n.example/", 1, a("http://t.example/n", "N")),
					ok("http://u.example/", 1, a("http://t.example/u", "U")),
					ok("http://r.example/", 1, a("http://t.example/r", "R")),
					ok("http://d.example/", 1, a("http://t.example/d", "D")),
				},
				{ // crawl 2: removed, noindex, unreachable, robots, gone
					ok("http://p.example/", 2, a("http://t.example/a", "A"), a("http://t.example/b", "B")),
					with(ok("http://n.example/", 2, a("http://t.example/n", "N")), func(pr *lgv1.PageResult) { pr.MetaNoindex = true }),
					{Url: "http://u.example/", FetchedAt: 2e9, ErrorReason: "timeout"},
					{Url: "http://r.example/", FetchedAt: 2e9, ErrorReason: lgv1.ErrorReasonRobotsDisallowed},
					{Url: "http://d.example/", FetchedAt: 2e9, Status: 410},
				},
				{ // crawl 3: p.example gone, then back with a at crawl 4
					{Url: "http://p.example/", FetchedAt: 3e9, Status: 404},
					ok("http://u.example/", 3, a("http://t.example/u", "U")),
				},
				{
					ok("http://p.example/", 4, a("http://t.example/a", "A")),
				},
				{ // crawl 5: p.example redirects
					{Url: "http://p.example/", FetchedAt: 5e9, Status: 301, Links: []*lgv1.OutLink{{Url: "http://t.example/new", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301}}},
				},
			}
			for _, step := range steps {
				for _, pr := range step {
					fetch(t, db, ix, pr, redeliver)
				}
			}
			want := []string{
				"d.example/ -> d lost@2 PAGE_GONE",
				"n.example/ -> n lost@2 NOINDEX",
				"p.example/ -> a lost@5 REDIRECTED [lost@3 PAGE_GONE back@4]",
				"p.example/ -> b lost@3 PAGE_GONE",
				"p.example/ -> c lost@2 REMOVED",
				"p.example/ -> new live@5",
				"r.example/ -> r lost@2 ROBOTS_DISALLOWED",
				"u.example/ -> u live@3 [lost@2 HOST_UNREACHABLE back@3]",
			}
			if got := linkStates(t, ix); !slices.Equal(got, want) {
				t.Errorf("links:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if edges, _, _ := counters(t, ix); edges != 2 {
				t.Errorf("%d live edges counted, want 2", edges)
			}
			// A late, older message changes nothing either.
			fetch(t, db, ix, ok("http://p.example/", 2, a("http://t.example/a", "A")), false)
			if got := linkStates(t, ix); !slices.Equal(got, want) {
				t.Errorf("after a late crawl 2:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// A link that flaps keeps only its latest periods.
func TestHistoryIsBounded(t *testing.T) {
	db, ix := openIndex(t)
	for i := range int64(40) {
		var links []*lgv1.OutLink
		if i%2 == 0 {
			links = append(links, a("http://t.example/x", "X"))
		}
		fetch(t, db, ix, &lgv1.PageResult{Url: "http://f.example/", Status: 200, FetchedAt: (i + 1) * 1e9, Links: links}, false)
	}
	rows := backlinkRows(t, ix, indexer.Query{Target: "http://t.example/x", Filter: &lgv1.Filter{IncludeLost: true}})
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	h := rows[0].History
	if len(h) != 16 || h[15].ReturnedAt.AsTime().Unix() != 39 || h[0].LostAt.AsTime().Unix() != 8 {
		t.Errorf("history of %d periods, last back at %v, first lost at %v; want the latest 16 (lost at 8 .. back at 39)",
			len(h), h[len(h)-1].ReturnedAt.AsTime().Unix(), h[0].LostAt.AsTime().Unix())
	}
}
