package graphgen_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

func newWeb(t testing.TB, cfg graphgen.Config) *graphgen.Web {
	t.Helper()
	w, err := graphgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// digest hashes every fetch result of w in order.
func digest(t *testing.T, w *graphgen.Web) [32]byte {
	t.Helper()
	h := sha256.New()
	err := w.Each(context.Background(), func(f graphgen.Fetch) error {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(f.Result)
		h.Write(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	cfg := graphgen.Config{Seed: 7, Edges: 20000, HubBacklinks: 500, DomainBacklinks: 400}
	a, b := digest(t, newWeb(t, cfg)), digest(t, newWeb(t, cfg))
	if a != b {
		t.Fatal("two graphs of the same config differ")
	}
	cfg.Seed = 8
	if c := digest(t, newWeb(t, cfg)); c == a {
		t.Fatal("seeds 7 and 8 gave the same graph")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  graphgen.Config
		want int // problems reported
	}{
		{"ok", graphgen.Config{Edges: 1000}, 0},
		{"no edges", graphgen.Config{}, 1},
		{"negative", graphgen.Config{Edges: 1000, HubBacklinks: -1, DomainBacklinks: -1}, 2},
		{"hubs too big", graphgen.Config{Edges: 1000, HubBacklinks: 300, DomainBacklinks: 300}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, graphgen.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != tc.want {
				t.Fatalf("got %d problems (%v), want %d", n, err, tc.want)
			}
			if _, err := graphgen.New(tc.cfg); !errors.Is(err, graphgen.ErrConfig) {
				t.Fatalf("New: got %v, want ErrConfig", err)
			}
		})
	}
}

// edgeID identifies a link as the index does.
type edgeID struct {
	src, tgt, anchor string
	typ              lgv1.LinkType
}

// edge is what the index should hold for a link.
type edge struct {
	rel               []string
	redirect          int32
	first, last, lost int64 // Unix ms; lost 0 when live
	srcTitle          string
	srcStatus         int32
}

// model replays the fetches of w into the edges a correct index holds:
// the first occurrence of a link on a page wins, a second fetch updates
// what it still has and marks the rest lost.
func model(t *testing.T, w *graphgen.Web) map[edgeID]*edge {
	t.Helper()
	edges := make(map[edgeID]*edge)
	bySource := make(map[string][]edgeID)
	err := w.Each(context.Background(), func(f graphgen.Fetch) error {
		pr := f.Result
		at := pr.FetchedAt / 1e6
		now := make(map[edgeID]bool)
		for _, l := range pr.Links {
			id := edgeID{pr.Url, l.Url, l.AnchorText, l.Type}
			if now[id] {
				continue
			}
			now[id] = true
			e := edges[id]
			if e == nil {
				e = &edge{first: at}
				edges[id] = e
				bySource[pr.Url] = append(bySource[pr.Url], id)
			} else if !f.Recrawl {
				t.Errorf("first fetch of %s repeats link %v", pr.Url, id)
			}
			e.rel, e.redirect, e.last, e.lost = l.Rel, l.RedirectStatus, at, 0
		}
		for _, id := range bySource[pr.Url] {
			edges[id].srcTitle, edges[id].srcStatus = pr.Title, pr.Status
			if !now[id] {
				edges[id].lost = at
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return edges
}

func TestShape(t *testing.T) {
	cfg := graphgen.Config{Seed: 1, Edges: 150000, HubBacklinks: 6000, DomainBacklinks: 5000}
	w := newWeb(t, cfg)
	edges := model(t, w)
	live := 0
	indeg := make(map[string]int)
	hubDomain := 0
	byType := make(map[lgv1.LinkType]int)
	var nofollow, ugc, sponsored, nonASCII, bareURL, empty, clickHere int
	for id, e := range edges {
		for _, u := range []string{id.src, id.tgt} {
			if n, err := urlnorm.Normalize(u); err != nil || n != u {
				t.Fatalf("URL %q is not normalized (%q, %v)", u, n, err)
			}
		}
		if len(id.anchor) > indexer.MaxAnchorBytes || !utf8.ValidString(id.anchor) || strings.TrimSpace(id.anchor) != id.anchor || strings.Contains(id.anchor, "  ") {
			t.Fatalf("anchor %q is not as the extractor makes them", id.anchor)
		}
		if id.src == id.tgt {
			t.Fatalf("self link on %s", id.src)
		}
		if e.lost != 0 {
			continue
		}
		live++
		indeg[id.tgt]++
		byType[id.typ]++
		if (id.typ == lgv1.LinkType_LINK_TYPE_REDIRECT) != (e.redirect != 0) {
			t.Fatalf("link %v has redirect status %d", id, e.redirect)
		}
		if d := w.HubDomain(); urlnorm.RegistrableDomain(urlnorm.Host(id.tgt)) == d && urlnorm.RegistrableDomain(urlnorm.Host(id.src)) != d {
			hubDomain++
		}
		for _, r := range e.rel {
			switch r {
			case "nofollow":
				nofollow++
			case "ugc":
				ugc++
			case "sponsored":
				sponsored++
			}
		}
		for _, r := range id.anchor {
			if r >= utf8.RuneSelf {
				nonASCII++
				break
			}
		}
		switch {
		case id.anchor == "":
			empty++
		case strings.HasPrefix(id.anchor, "http"):
			bareURL++
		case strings.EqualFold(id.anchor, "click here"):
			clickHere++
		}
	}
	if int64(live) != cfg.Edges {
		t.Errorf("%d live links, want %d", live, cfg.Edges)
	}
	if got := indeg[w.HubURL()]; int64(got) != cfg.HubBacklinks {
		t.Errorf("hub %s has %d backlinks, want %d", w.HubURL(), got, cfg.HubBacklinks)
	}
	if int64(hubDomain) != cfg.DomainBacklinks {
		t.Errorf("hub domain %s has %d backlinks from other domains, want %d", w.HubDomain(), hubDomain, cfg.DomainBacklinks)
	}
	// Power law: a few targets collect a large share, most have one or two.
	var counts []int
	for u, n := range indeg {
		if u != w.HubURL() {
			counts = append(counts, n)
		}
	}
	slices.Sort(counts)
	median, top := counts[len(counts)/2], counts[len(counts)-1]
	top1 := 0
	for _, n := range counts[len(counts)-len(counts)/100:] {
		top1 += n
	}
	t.Logf("%d live links, %d targets, in-degree median %d, max %d, top 1%% of targets hold %.0f%% of links",
		live, len(counts), median, top, 100*float64(top1)/float64(live))
	if median > 2 || top < 200*median || float64(top1) < 0.2*float64(live) {
		t.Errorf("in-degree is not power-law-like: median %d, max %d, top 1%% %d of %d", median, top, top1, live)
	}
	share := func(n int) float64 { return float64(n) / float64(live) }
	t.Logf("types %v; nofollow %.1f%%, ugc %.1f%%, sponsored %.1f%%, non-ASCII anchors %.1f%%, bare URLs %.1f%%, empty %.1f%%, click here %.2f%%",
		byType, 100*share(nofollow), 100*share(ugc), 100*share(sponsored), 100*share(nonASCII), 100*share(bareURL), 100*share(empty), 100*share(clickHere))
	for typ := range lgv1.LinkType_name {
		lt := lgv1.LinkType(typ)
		if lt != lgv1.LinkType_LINK_TYPE_UNSPECIFIED && lt != lgv1.LinkType_LINK_TYPE_SITEMAP && byType[lt] == 0 {
			t.Errorf("no links of type %v", lt)
		}
	}
	if s := share(nofollow); s < 0.05 || s > 0.2 {
		t.Errorf("nofollow share %.3f, want about 0.1", s)
	}
	for name, n := range map[string]int{"ugc": ugc, "sponsored": sponsored, "non-ASCII": nonASCII, "bare URL": bareURL, "empty": empty, "click here": clickHere} {
		if n == 0 {
			t.Errorf("no %s anchors or rels", name)
		}
	}
	// Hosts spread over domains with multi-label suffixes too.
	suffixes := make(map[string]bool)
	for u := range indeg {
		d := urlnorm.RegistrableDomain(urlnorm.Host(u))
		suffixes[d[strings.IndexByte(d, '.')+1:]] = true
	}
	for _, s := range []string{"com", "org", "de", "co.uk"} {
		if !suffixes[s] {
			t.Errorf("no targets under .%s", s)
		}
	}
}

// TestWrite writes a small graph into a real index and reads every link
// back: the index must hold exactly the links the fetches carried, with
// their attributes and first/last seen, and the planted hubs must have
// their exact counts through the query API.
func TestWrite(t *testing.T) {
	ctx := context.Background()
	cfg := graphgen.Config{Seed: 3, Edges: 60000, HubBacklinks: 3000, DomainBacklinks: 2500}
	w := newWeb(t, cfg)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix := indexer.New(db, 1)
	st, err := graphgen.Write(ctx, ix, w, graphgen.WriteOptions{PagesPerTxn: 100})
	if err != nil {
		t.Fatal(err)
	}
	if st.Fetches != w.Fetches() || st.Recrawls != w.Recrawls() || st.Recrawls == 0 || st.Lost == 0 {
		t.Fatalf("write stats %+v; want %d fetches, %d recrawls, some lost", st, w.Fetches(), w.Recrawls())
	}

	want := model(t, w)
	got := 0
	err = ix.ScanEdges(ctx, func(bl *lgv1.Backlink, live bool) error {
		got++
		id := edgeID{bl.SourceUrl, bl.TargetUrl, bl.AnchorText, bl.Type}
		e := want[id]
		switch {
		case e == nil:
			t.Errorf("index has a link that was never generated: %v", id)
		case live != (e.lost == 0):
			t.Errorf("%v: live %v, want %v", id, live, e.lost == 0)
		case !slices.Equal(bl.Rel, e.rel) || bl.RedirectStatus != e.redirect:
			t.Errorf("%v: rel %q redirect %d, want %q %d", id, bl.Rel, bl.RedirectStatus, e.rel, e.redirect)
		case bl.FirstSeen.AsTime().UnixMilli() != e.first || bl.LastSeen.AsTime().UnixMilli() != e.last:
			t.Errorf("%v: seen %v..%v, want %d..%d", id, bl.FirstSeen.AsTime(), bl.LastSeen.AsTime(), e.first, e.last)
		case e.lost != 0 && bl.LostAt.AsTime().UnixMilli() != e.lost:
			t.Errorf("%v: lost at %v, want %d", id, bl.LostAt.AsTime(), e.lost)
		case bl.SourceTitle != e.srcTitle || bl.SourceStatus != e.srcStatus:
			t.Errorf("%v: source %q %d, want %q %d", id, bl.SourceTitle, bl.SourceStatus, e.srcTitle, e.srcStatus)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Errorf("index has %d links, generated %d", got, len(want))
	}
	counters, err := ix.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if counters[indexer.CounterEdges] != cfg.Edges {
		t.Errorf("edge counter %d, want %d", counters[indexer.CounterEdges], cfg.Edges)
	}

	if n := countBacklinks(t, ix, w.HubURL(), lgv1.Scope_SCOPE_URL, ""); int64(n) != cfg.HubBacklinks {
		t.Errorf("Backlinks(%s) pages through %d links, want %d", w.HubURL(), n, cfg.HubBacklinks)
	}
	if n := countBacklinks(t, ix, w.HubDomain(), lgv1.Scope_SCOPE_DOMAIN, w.HubDomain()); int64(n) != cfg.DomainBacklinks {
		t.Errorf("Backlinks(%s, domain) pages through %d links from other domains, want %d", w.HubDomain(), n, cfg.DomainBacklinks)
	}
}

// countBacklinks pages through the backlinks of target, skipping links
// from the registrable domain skip (whether or not the index already
// leaves internal links out).
func countBacklinks(t *testing.T, ix *indexer.Index, target string, scope lgv1.Scope, skip string) int {
	t.Helper()
	q := indexer.Query{Target: target, Scope: scope, PageSize: indexer.MaxPageSize}
	n := 0
	for {
		page, err := ix.Backlinks(context.Background(), q)
		if err != nil {
			t.Fatalf("Backlinks(%s): %v", target, err)
		}
		for _, bl := range page.Backlinks {
			if skip == "" || urlnorm.RegistrableDomain(urlnorm.Host(bl.SourceUrl)) != skip {
				n++
			}
		}
		if page.NextPageToken == "" {
			return n
		}
		q.PageToken = page.NextPageToken
	}
}

func TestSampleTargets(t *testing.T) {
	w := newWeb(t, graphgen.Config{Seed: 5, Edges: 30000, HubBacklinks: 1000, DomainBacklinks: 1000})
	edges := model(t, w)
	live := make(map[string]bool)
	for id, e := range edges {
		if e.lost == 0 {
			live[id.tgt] = true
		}
	}
	s, err := w.SampleTargets(200)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 200 {
		t.Fatalf("got %d targets, want 200", len(s))
	}
	for _, u := range s {
		if !live[u] || u == w.HubURL() || urlnorm.RegistrableDomain(urlnorm.Host(u)) == w.HubDomain() {
			t.Errorf("sample target %s: live %v, or a hub", u, live[u])
		}
	}
}

// BenchmarkGenerate measures the generator alone, in links per second.
func BenchmarkGenerate(b *testing.B) {
	w := newWeb(b, graphgen.Config{Seed: 1, Edges: 200000, HubBacklinks: 10000, DomainBacklinks: 10000})
	b.ResetTimer()
	links := 0
	for range b.N {
		err := w.Each(context.Background(), func(f graphgen.Fetch) error {
			links += len(f.Result.Links)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(links)/b.Elapsed().Seconds(), "links/s")
}
