package frontier

import (
	"slices"
	"testing"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// fetched records a fetch of url at the fixture's time and schedules its
// revisit, as the shard role does after recording a page.
func (fx *fixture) fetched(url string, changed bool, etag string) {
	fx.t.Helper()
	fx.f.Done(Outcome{URL: url, Status: 200})
	b := fx.db.NewWriteBatch()
	defer b.Close()
	pr := &lgv1.PageResult{Url: url, Status: 200, FetchedAt: fx.now.UnixNano(), Etag: etag}
	if err := fx.f.ScheduleRevisit(b, pr, changed); err != nil {
		fx.t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		fx.t.Fatal(err)
	}
}

// promote queues the revisits due now.
func (fx *fixture) promote() int {
	fx.t.Helper()
	n, err := fx.f.promoteDue()
	if err != nil {
		fx.t.Fatal(err)
	}
	return n
}

// Pages come back when due, with their validators, through the host queue
// (so politeness applies); the interval halves when the links changed and
// grows by half when they did not, within the bounds; the schedule
// survives a restart.
func TestRevisitSchedule(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Scope: ScopeAll, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 12 * time.Hour}
	fx := newFixture(t, dir, cfg)
	fx.offer(0, true, "http://a.example/p", "http://b.example/q")
	if got := fx.step(); len(got) != 2 {
		t.Fatalf("released %q", got)
	}
	fx.fetched("http://a.example/p", false, `"v1"`)
	fx.fetched("http://b.example/q", false, "")
	if fx.f.Exhausted() != true || fx.f.RevisitsDue() {
		t.Fatal("revisits 10h away keep the frontier busy")
	}
	fx.now = fx.now.Add(10*time.Hour - time.Second)
	if n := fx.promote(); n != 0 {
		t.Fatalf("%d revisits promoted a second early", n)
	}
	fx.now = fx.now.Add(time.Second)
	if !fx.f.RevisitsDue() || fx.f.Exhausted() {
		t.Fatal("due revisits do not keep the frontier busy")
	}
	if n := fx.promote(); n != 2 {
		t.Fatalf("%d revisits promoted when due, want 2", n)
	}
	before := len(fx.pub.tasks)
	if got := slices.Sorted(slices.Values(fx.step())); !slices.Equal(got, []string{"http://a.example/p", "http://b.example/q"}) {
		t.Fatalf("after promotion released %q", got)
	}
	for _, task := range fx.pub.tasks[before:] {
		if !task.GetRevisit() {
			t.Errorf("%s: not marked as a revisit", task.GetUrl())
		}
		if want := map[string]string{"http://a.example/p": `"v1"`}[task.GetUrl()]; task.GetEtag() != want {
			t.Errorf("%s: etag %q, want %q", task.GetUrl(), task.GetEtag(), want)
		}
	}
	// a changed: 10h/2 = 5h. b unchanged: 15h, capped at 12h.
	fx.fetched("http://a.example/p", true, `"v2"`)
	fx.fetched("http://b.example/q", false, "")
	// Restarted, the frontier finds its schedule again.
	f2, err := Open(fx.db, fx.f.cfg, fx.pub, fx.f.log)
	if err != nil {
		t.Fatal(err)
	}
	f2.now = fx.f.now
	fx.f = f2
	fx.now = fx.now.Add(5 * time.Hour)
	if n := fx.promote(); n != 1 {
		t.Fatalf("%d promoted after 5h, want 1 (a, whose links changed)", n)
	}
	fx.now = fx.now.Add(7 * time.Hour)
	if n := fx.promote(); n != 1 {
		t.Fatalf("%d promoted after 12h, want 1 (b, at the maximum)", n)
	}
	// a changed again: 5h/2 = 2.5h, raised to the 4h minimum.
	fx.step()
	fx.fetched("http://a.example/p", true, "")
	fx.now = fx.now.Add(4*time.Hour - time.Second)
	if n := fx.promote(); n != 0 {
		t.Fatalf("promoted before the 4h minimum")
	}
	fx.now = fx.now.Add(time.Second)
	if n := fx.promote(); n != 1 {
		t.Fatalf("%d promoted at the 4h minimum, want 1", n)
	}
}

// A page due for a revisit that robots.txt now disallows is not fetched;
// instead the frontier publishes a result for it, so that its links are
// lost for that reason.
func TestRevisitDisallowedByRobots(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, RobotsTTL: time.Hour, Revisit: 2 * time.Hour, MinRevisit: time.Hour, MaxRevisit: 3 * time.Hour})
	robots := func(body string) {
		fx.f.Done(Outcome{URL: "http://a.example/robots.txt", Kind: lgv1.FetchKind_FETCH_KIND_ROBOTS, Status: 200, RobotsTxt: []byte(body)})
	}
	fx.offer(0, true, "http://a.example/p")
	fx.step()
	robots("User-agent: *\nAllow: /\n")
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/p"}) {
		t.Fatalf("released %q", got)
	}
	fx.fetched("http://a.example/p", false, "")
	fx.now = fx.now.Add(2 * time.Hour)
	fx.promote()
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/robots.txt"}) {
		t.Fatalf("released %q, want robots.txt first (its TTL ran out)", got)
	}
	robots("User-agent: *\nDisallow: /p\n")
	before := len(fx.pub.results)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q, a page robots.txt disallows", got)
	}
	res := fx.pub.results[before:]
	if len(res) != 1 || res[0].GetUrl() != "http://a.example/p" || res[0].GetErrorReason() != lgv1.ErrorReasonRobotsDisallowed {
		t.Fatalf("published results %v, want one robots_disallowed result for the page", res)
	}
}
