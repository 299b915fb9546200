package indexer_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// The change views over a web that changes across days: the links new and
// lost in a window, the state filters, and the daily velocity counts.
func TestNewLostLinksAndVelocity(t *testing.T) {
	db, ix := openIndex(t)
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return base.Add(time.Duration(d-1) * 24 * time.Hour) }
	ok := func(page string, d int, links ...*lgv1.OutLink) *lgv1.PageResult {
		return &lgv1.PageResult{Url: page, Status: 200, FetchedAt: day(d).UnixNano(), Links: links}
	}
	for _, pr := range []*lgv1.PageResult{
		ok("http://p.example/", 1, a("http://t.example/A", "a"), a("http://t.example/B", "b")),
		ok("http://q.example/", 1, a("http://t.example/A", "a")),
		ok("http://r.example/", 1, a("http://t.example/C", "c")),
		ok("http://p.example/", 3, a("http://t.example/A", "a")),
		ok("http://s.example/", 3, a("http://t.example/B", "b")),
		{Url: "http://q.example/", Status: 404, FetchedAt: day(4).UnixNano()},
		ok("http://r.example/", 4, a("http://t.example/C", "c")),
	} {
		fetch(t, db, ix, pr, false)
	}
	ctx := t.Context()
	rows := func(p *indexer.Page, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, bl := range p.Backlinks {
			out = append(out, strings.TrimPrefix(bl.SourceUrl, "http://")+bl.TargetUrl[len("http://t.example/"):])
		}
		return out
	}
	window := func(from, to int) (*timestamppb.Timestamp, *timestamppb.Timestamp) {
		return timestamppb.New(day(from).Truncate(24 * time.Hour)), timestamppb.New(day(to).Truncate(24 * time.Hour))
	}
	from, to := window(3, 4)
	if got := rows(ix.NewLinks(ctx, &lgv1.LinkChangesRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, From: from, To: to})); !slices.Equal(got, []string{"s.example/B"}) {
		t.Errorf("new links on day 3: %q", got)
	}
	from, to = window(1, 5)
	if got := rows(ix.LostLinks(ctx, &lgv1.LinkChangesRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, From: from, To: to})); !slices.Equal(got, []string{"q.example/A", "p.example/B"}) {
		t.Errorf("lost links, latest first: %q", got)
	}
	state := func(s lgv1.LinkState, f *lgv1.Filter) []string {
		if f == nil {
			f = &lgv1.Filter{}
		}
		f.State = s
		got := rows(ix.Backlinks(ctx, indexer.Query{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, Filter: f}))
		slices.Sort(got)
		return got
	}
	for _, c := range []struct {
		state lgv1.LinkState
		f     *lgv1.Filter
		want  []string
	}{
		{lgv1.LinkState_LINK_STATE_UNSPECIFIED, nil, []string{"p.example/A", "r.example/C", "s.example/B"}},
		{lgv1.LinkState_LINK_STATE_LIVE, nil, []string{"p.example/A", "r.example/C", "s.example/B"}},
		{lgv1.LinkState_LINK_STATE_LOST, nil, []string{"p.example/B", "q.example/A"}},
		{lgv1.LinkState_LINK_STATE_ALL, nil, []string{"p.example/A", "p.example/B", "q.example/A", "r.example/C", "s.example/B"}},
		{lgv1.LinkState_LINK_STATE_UNSPECIFIED, &lgv1.Filter{LostFrom: timestamppb.New(day(4).Truncate(24 * time.Hour))}, []string{"q.example/A"}},
	} {
		if got := state(c.state, c.f); !slices.Equal(got, c.want) {
			t.Errorf("state %v filter %v: %q, want %q", c.state, c.f, got, c.want)
		}
	}
	if _, err := ix.Backlinks(ctx, indexer.Query{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST,
		Filter: &lgv1.Filter{State: lgv1.LinkState_LINK_STATE_LIVE, LostFrom: timestamppb.New(day(4))}}); !errors.Is(err, indexer.ErrInvalidArgument) {
		t.Errorf("state live with lost_from: %v, want InvalidArgument", err)
	}

	from, to = window(1, 5)
	v, err := ix.Velocity(ctx, &lgv1.VelocityRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range v.Days {
		got = append(got, fmt.Sprintf("%s +%d -%d domains +%d -%d", d.Date, d.NewBacklinks, d.LostBacklinks, d.NewReferringDomains, d.LostReferringDomains))
	}
	want := []string{
		"2026-01-01 +4 -0 domains +3 -0",
		"2026-01-02 +0 -0 domains +0 -0",
		"2026-01-03 +1 -1 domains +1 -0", // p.example keeps A, so it is not a lost domain
		"2026-01-04 +0 -1 domains +0 -1", // q.example's only link
	}
	if !slices.Equal(got, want) {
		t.Errorf("velocity:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := ix.Velocity(ctx, &lgv1.VelocityRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, From: to, To: from}); !errors.Is(err, indexer.ErrInvalidArgument) {
		t.Errorf("a reversed window: %v, want InvalidArgument", err)
	}
}

// A recrawl that keeps a target but changes its links to it (anchor, type,
// rel, one of two kept) loses the old links and keeps the new ones, a 304 Not Modified sees
// the live links again and leaves the lost ones lost, and the host's
// aggregates follow, with every message delivered once or twice.
func TestRecrawlDiffsLinksPerTarget(t *testing.T) {
	for _, redeliver := range []bool{false, true} {
		t.Run(fmt.Sprint("redeliver=", redeliver), func(t *testing.T) {
			db, ix := openIndex(t)
			img := func(url, alt string) *lgv1.OutLink {
				return &lgv1.OutLink{Url: url, AnchorText: alt, Type: lgv1.LinkType_LINK_TYPE_IMG}
			}
			page := func(crawl int64, links ...*lgv1.OutLink) *lgv1.PageResult {
				return &lgv1.PageResult{Url: "http://p.example/", Status: 200, FetchedAt: crawl * 1e9, Title: "T", Links: links}
			}
			states := func() []string {
				var out []string
				q := indexer.Query{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST, PageSize: 100, Filter: &lgv1.Filter{IncludeLost: true}}
				for _, bl := range backlinkRows(t, ix, q) {
					s := fmt.Sprintf("%s %s %q %v", strings.TrimPrefix(bl.TargetUrl, "http://t.example/"), strings.TrimPrefix(bl.Type.String(), "LINK_TYPE_"), bl.AnchorText, bl.Rel)
					if bl.LostAt != nil {
						s += fmt.Sprintf(" lost@%d %s", bl.LostAt.AsTime().Unix(), strings.TrimPrefix(bl.LostReason.String(), "LOST_REASON_"))
					} else {
						s += fmt.Sprintf(" live@%d", bl.LastSeen.AsTime().Unix())
					}
					out = append(out, s)
				}
				slices.Sort(out)
				return out
			}
			check := func(when string, want []string, backlinks, anchors int64) {
				t.Helper()
				if got := states(); !slices.Equal(got, want) {
					t.Errorf("%s:\n%s\nwant\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				sum, err := ix.Summary(t.Context(), &lgv1.SummaryRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST})
				if err != nil {
					t.Fatal(err)
				}
				an, err := ix.Anchors(t.Context(), &lgv1.AnchorsRequest{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST})
				if err != nil {
					t.Fatal(err)
				}
				if sum.Summary.Backlinks != backlinks || int64(len(an.Anchors)) != anchors {
					t.Errorf("%s: summary has %d backlinks, anchors %d rows; want %d and %d", when, sum.Summary.Backlinks, len(an.Anchors), backlinks, anchors)
				}
			}
			fetch(t, db, ix, page(1, a("http://t.example/x", "old"), img("http://t.example/x", "logo"), a("http://t.example/y", "Y"), a("http://t.example/z", "Z"),
				a("http://t.example/w", "w1"), a("http://t.example/w", "w2")), redeliver)
			check("crawl 1", []string{
				`w A "w1" [] live@1`, `w A "w2" [] live@1`,
				`x A "old" [] live@1`, `x IMG "logo" [] live@1`, `y A "Y" [] live@1`, `z A "Z" [] live@1`,
			}, 6, 6)
			// x's anchor changes and its image goes, y becomes nofollow, z
			// is gone from the page, w keeps one link of two and gains one.
			fetch(t, db, ix, page(2, a("http://t.example/x", "new"), a("http://t.example/y", "Y", "nofollow"),
				a("http://t.example/w", "w3"), a("http://t.example/w", "w1")), redeliver)
			check("crawl 2", []string{
				`w A "w1" [] live@2`, `w A "w2" [] lost@2 REMOVED`, `w A "w3" [] live@2`,
				`x A "new" [] live@2`, `x A "old" [] lost@2 REMOVED`, `x IMG "logo" [] lost@2 REMOVED`,
				`y A "Y" [nofollow] live@2`, `z A "Z" [] lost@2 REMOVED`,
			}, 4, 4)
			if edges, _, _ := counters(t, ix); edges != 4 {
				t.Errorf("%d live edges counted after crawl 2, want 4", edges)
			}
			// Unchanged: the live links are seen again, the lost stay lost.
			fetch(t, db, ix, &lgv1.PageResult{Url: "http://p.example/", Status: 304, FetchedAt: 3e9}, redeliver)
			check("crawl 3 (304)", []string{
				`w A "w1" [] live@3`, `w A "w2" [] lost@2 REMOVED`, `w A "w3" [] live@3`,
				`x A "new" [] live@3`, `x A "old" [] lost@2 REMOVED`, `x IMG "logo" [] lost@2 REMOVED`,
				`y A "Y" [nofollow] live@3`, `z A "Z" [] lost@2 REMOVED`,
			}, 4, 4)
			// The page is gone: its links to both targets are lost for that.
			fetch(t, db, ix, &lgv1.PageResult{Url: "http://p.example/", Status: 404, FetchedAt: 4e9}, redeliver)
			check("crawl 4 (404)", []string{
				`w A "w1" [] lost@4 PAGE_GONE`, `w A "w2" [] lost@2 REMOVED`, `w A "w3" [] lost@4 PAGE_GONE`,
				`x A "new" [] lost@4 PAGE_GONE`, `x A "old" [] lost@2 REMOVED`, `x IMG "logo" [] lost@2 REMOVED`,
				`y A "Y" [nofollow] lost@4 PAGE_GONE`, `z A "Z" [] lost@2 REMOVED`,
			}, 0, 0)
			if edges, _, _ := counters(t, ix); edges != 0 {
				t.Errorf("%d live edges counted after crawl 4, want 0", edges)
			}
		})
	}
}
