package frontier

import (
	"slices"
	"strings"
	"testing"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

func (fx *fixture) counter(name string) int64 {
	fx.t.Helper()
	n, err := store.Counter(fx.db, store.CounterKey(name))
	if err != nil {
		fx.t.Fatal(err)
	}
	return n
}

func TestRobotsFirstThenRulesAndCrawlDelay(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, RobotsTTL: time.Hour, PerHostConcurrency: 4})
	fx.offer(0, true, "http://a.example/public/1", "http://a.example/private/x", "http://a.example/public/2")
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/robots.txt"}) {
		t.Fatalf("first release = %q, want only robots.txt", got)
	}
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q before robots.txt was in", got)
	}
	fx.f.Done(Outcome{URL: "http://a.example/robots.txt", Kind: lgv1.FetchKind_FETCH_KIND_ROBOTS, Status: 200,
		RobotsTxt: []byte("User-agent: *\nDisallow: /\n\nUser-agent: LinkGraph\nDisallow: /private\nCrawl-delay: 5\n")})
	// Fetching robots.txt was a request too: the Crawl-delay follows it.
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q right after robots.txt despite its Crawl-delay", got)
	}
	fx.now = fx.now.Add(5 * time.Second)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/public/1"}) {
		t.Fatalf("after robots: %q, want public/1 only (crawl-delay spaces the rest)", got)
	}
	fx.f.Done(Outcome{URL: "http://a.example/public/1", Status: 200})
	fx.now = fx.now.Add(4 * time.Second)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q within the 5s Crawl-delay", got)
	}
	fx.now = fx.now.Add(time.Second)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/public/2"}) {
		t.Fatalf("after the Crawl-delay: %q, want public/2 (private/x disallowed)", got)
	}
	if n := fx.counter(CounterSkipped(SkipRobotsDisallowed)); n != 1 {
		t.Fatalf("robots_disallowed = %d, want 1", n)
	}
	for _, u := range fx.pub.urls() {
		if strings.Contains(u, "private") {
			t.Fatalf("disallowed URL released: %s", u)
		}
	}
}

func TestRobotsStatusRules(t *testing.T) {
	for _, c := range []struct {
		name   string
		o      Outcome
		page   bool // the page is released afterwards
		ttlish bool // trusted for the TTL, not retried soon
	}{
		{"404 allows all", Outcome{Status: 404}, true, true},
		{"403 allows all", Outcome{Status: 403}, true, true},
		{"503 disallows all for now", Outcome{Status: 503}, false, false},
		{"network error disallows all for now", Outcome{ErrorReason: "timeout"}, false, false},
		{"empty 200 allows all", Outcome{Status: 200}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, RobotsTTL: 24 * time.Hour, RetryBackoff: time.Millisecond})
			fx.offer(0, true, "http://a.example/p")
			fx.step()
			c.o.URL, c.o.Kind = "http://a.example/robots.txt", lgv1.FetchKind_FETCH_KIND_ROBOTS
			fx.f.Done(c.o)
			fx.now = fx.now.Add(10 * time.Minute) // past any backoff
			got := fx.step()
			if released := slices.Contains(got, "http://a.example/p"); released != c.page {
				t.Fatalf("released %q; page released = %v, want %v", got, released, c.page)
			}
			if !c.page && !slices.Contains(got, "http://a.example/robots.txt") {
				t.Fatalf("robots.txt not fetched again after a failure: %q", got)
			}
			if c.ttlish && slices.Contains(got, "http://a.example/robots.txt") {
				t.Fatalf("robots.txt fetched again within its TTL")
			}
		})
	}
}

func TestRobotsSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture(t, dir, Config{Scope: ScopeAll, RobotsTTL: time.Hour})
	fx.offer(0, true, "http://a.example/1", "http://a.example/no")
	fx.step()
	pr := &lgv1.PageResult{Url: "http://a.example/robots.txt", Kind: lgv1.FetchKind_FETCH_KIND_ROBOTS, Status: 200,
		FetchedAt: fx.now.UnixNano(), RobotsTxt: []byte("User-agent: *\nDisallow: /no\n")}
	b := fx.db.NewWriteBatch()
	if err := fx.f.RecordRobots(b.Batch, urlnorm.HostSURT("a.example"), pr); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	fx.db.Close()
	fy := newFixture(t, dir, Config{Scope: ScopeAll, RobotsTTL: time.Hour})
	fy.now = fx.now.Add(time.Minute)
	if got := fy.step(); !slices.Equal(got, []string{"http://a.example/1"}) {
		t.Fatalf("after restart: %q, want the allowed page and no robots.txt fetch", got)
	}
}

func TestBackoffAndGivingUp(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, RetryBackoff: time.Second, MaxBackoff: time.Minute, MaxHostFailures: 3})
	var urls []string
	for i := range 6 {
		urls = append(urls, "http://a.example/"+string(rune('a'+i)))
	}
	fx.offer(0, true, urls...)
	for i := range 3 {
		got := fx.step()
		if len(got) != 1 {
			t.Fatalf("failure %d: released %q, want one URL", i, got)
		}
		fx.f.Done(Outcome{URL: got[0], Status: 503})
		h := fx.f.hosts[urlnorm.HostSURT("a.example")]
		// 1s, 2s, 4s, each with ±25% jitter.
		wait, base := h.nextAt.Sub(fx.now), time.Second<<i
		if wait < base*3/4 || wait > base*5/4 {
			t.Fatalf("failure %d: backoff %v, want %v ±25%%", i+1, wait, base)
		}
		fx.now = h.nextAt
	}
	got := fx.step() // the host is given up: the rest is dropped, not released
	if len(got) != 0 {
		t.Fatalf("released %q from a given-up host", got)
	}
	if n := fx.counter(CounterSkipped(SkipHostGivenUp)); n != 3 {
		t.Fatalf("host_given_up skips = %d, want the 3 URLs left", n)
	}
	if s := fx.f.Stats(); s.Queued != 0 {
		t.Fatalf("queued %d after giving up", s.Queued)
	}
}

func TestTrapsAndHostBudget(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, MaxPagesPerHost: 2, MaxURLLength: 80, MaxRepeatedSegments: 2, MaxQueryParams: 3})
	fx.offer(1, false,
		"http://a.example/1", "http://a.example/2", "http://a.example/3", // the third is over budget
		"http://b.example/cal/2024/01/01/cal/2024/01/cal/x", // "cal" three times
		"http://b.example/s?a=1&b=2&c=3&d=4",                // four parameters
		"http://b.example/"+strings.Repeat("x", 80),         // too long
		"http://b.example/fine/path?a=1&b=2")
	if s := fx.f.Stats(); s.Queued != 3 {
		t.Fatalf("queued %d, want 3 (a/1, a/2, b/fine)", s.Queued)
	}
	for reason, want := range map[string]int64{SkipHostBudget: 1, SkipRepeatedSegments: 1, SkipQueryParams: 1, SkipURLLength: 1} {
		if n := fx.counter(CounterSkipped(reason)); n != want {
			t.Errorf("%s = %d, want %d", reason, n, want)
		}
	}
}
