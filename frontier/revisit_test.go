package frontier

import (
	"encoding/binary"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
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

// revisitNow queues url for a fetch now, as a recrawl does.
func (fx *fixture) revisitNow(url string) {
	fx.t.Helper()
	b := fx.db.NewWriteBatch()
	defer b.Close()
	p := NewPending()
	if err := fx.f.RevisitNow(b, p, url); err != nil {
		fx.t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		fx.t.Fatal(err)
	}
	fx.f.Committed(p)
}

// restart replaces the fixture's frontier with a new one on the same
// store, as a restarted process opens it.
func (fx *fixture) restart() {
	fx.t.Helper()
	f, err := Open(fx.db, fx.f.cfg, fx.pub, fx.f.log)
	if err != nil {
		fx.t.Fatal(err)
	}
	f.now = func() time.Time { return fx.now }
	fx.f = f
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

// scheduled lists the revisit schedule on disk: URL -> due time.
func (fx *fixture) scheduled() map[string]time.Time {
	fx.t.Helper()
	it, err := fx.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixRevisit}, UpperBound: []byte{store.PrefixRevisit + 1}})
	if err != nil {
		fx.t.Fatal(err)
	}
	defer it.Close()
	out := make(map[string]time.Time)
	for it.First(); it.Valid(); it.Next() {
		task := &lgv1.FetchTask{}
		if err := proto.Unmarshal(it.Value(), task); err != nil {
			fx.t.Fatal(err)
		}
		out[task.GetUrl()] = time.UnixMilli(int64(binary.BigEndian.Uint64(it.Key()[1:9])))
	}
	if err := it.Error(); err != nil {
		fx.t.Fatal(err)
	}
	return out
}

// A due revisit that ends without a fetch keeps its page scheduled: dropped
// because its host was given up after failures or refused as a private
// address, or refused by the worker itself, it comes back after its
// interval grown by half; taken early by RevisitNow (recrawl) and dropped,
// it keeps its old due time. A host given up for failures is tried again
// when they come back; a private one stays refused.
func TestRevisitKeptWhenNotFetched(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 40 * time.Hour,
		RetryBackoff: time.Second, MaxBackoff: time.Second, MaxHostFailures: 1})
	fx.offer(0, true, "http://a.example/p", "http://a.example/q", "http://b.example/r", "http://b.example/s")
	for range 2 {
		for _, u := range fx.step() {
			fx.fetched(u, false, `"`+u[len(u)-1:]+`"`)
		}
	}
	fx.now = fx.now.Add(10 * time.Hour)
	if n := fx.promote(); n != 4 {
		t.Fatalf("%d revisits promoted, want 4", n)
	}
	if got := slices.Sorted(slices.Values(fx.step())); !slices.Equal(got, []string{"http://a.example/p", "http://b.example/r"}) {
		t.Fatalf("released %q, want one page per host", got)
	}
	// a.example fails and is given up (the shard records p's failure, which
	// schedules it); the worker refuses b.example/r as a private address.
	fx.f.Done(Outcome{URL: "http://a.example/p", ErrorReason: "refused"})
	refused := &lgv1.PageResult{Url: "http://b.example/r", ErrorReason: lgv1.ErrorReasonPrivateAddress}
	b := fx.db.NewWriteBatch()
	if err := fx.f.KeepRevisit(b, refused); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	fx.f.Done(Outcome{URL: refused.GetUrl(), ErrorReason: refused.GetErrorReason()})
	// Past a.example's backoff, jitter included (up to 1.25 MaxBackoff).
	fx.now = fx.now.Add(2 * time.Second)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q from given-up hosts", got)
	}
	dropped := fx.now
	later := dropped.Add(15 * time.Hour).Truncate(time.Millisecond) // 10h grown by half
	want := map[string]time.Time{
		"http://a.example/q": later,
		"http://b.example/r": dropped.Add(-2 * time.Second).Add(15 * time.Hour),
		"http://b.example/s": later,
	}
	if got := fx.scheduled(); !maps.Equal(got, want) {
		t.Fatalf("schedule after the drops %v, want %v", got, want)
	}

	// A recrawl takes s early; refused again, s keeps its due time.
	fx.now = fx.now.Add(time.Hour)
	fx.revisitNow("http://b.example/s")
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q from a host refused as private", got)
	}
	if got := fx.scheduled(); !maps.Equal(got, want) {
		t.Fatalf("schedule after a refused recrawl %v, want %v", got, want)
	}

	// The schedule is on disk: a restarted frontier finds it.
	f2, err := Open(fx.db, fx.f.cfg, fx.pub, fx.f.log)
	if err != nil {
		t.Fatal(err)
	}
	if f2.nextDue != want["http://b.example/r"].UnixMilli() {
		t.Fatalf("restarted frontier's next revisit at %v, want %v", time.UnixMilli(f2.nextDue), want["http://b.example/r"])
	}

	fx.now = later
	if n := fx.promote(); n != 3 {
		t.Fatalf("%d kept revisits promoted when due, want 3", n)
	}
	before := len(fx.pub.tasks)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/q"}) {
		t.Fatalf("released %q, want a.example/q (its host tried again, b.example still refused)", got)
	}
	if task := fx.pub.tasks[before]; !task.GetRevisit() || task.GetEtag() != `"q"` {
		t.Fatalf("kept revisit released as %v, want a revisit with its etag", task)
	}
	// Still unreachable, b.example's pages move on by half again: 22.5h.
	if got := fx.scheduled()["http://b.example/s"]; !got.Equal(later.Add(22*time.Hour + 30*time.Minute)) {
		t.Fatalf("b.example/s scheduled at %v after a second drop, want %v", got, later.Add(22*time.Hour+30*time.Minute))
	}
}

// A run with a narrower scope on the same data does not revisit the pages
// a wider one found, and does not drop their revisits either: they move on
// as if not fetched, and a run with the wider scope again revisits them.
func TestRevisitOutOfScopeKept(t *testing.T) {
	cfg := Config{Scope: ScopeDomain, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 40 * time.Hour}
	fx := newFixture(t, t.TempDir(), cfg)
	fx.offer(0, true, "http://www.example.com/")
	fx.offer(1, false, "http://shop.example.com/p")
	for range 2 {
		for _, u := range fx.step() {
			fx.fetched(u, false, "")
		}
	}
	if got := fx.scheduled(); len(got) != 2 {
		t.Fatalf("scheduled %v, want both pages", got)
	}
	restart := func(scope ScopeMode) {
		t.Helper()
		c := fx.f.cfg
		c.Scope = scope
		f, err := Open(fx.db, c, fx.pub, fx.f.log)
		if err != nil {
			t.Fatal(err)
		}
		f.now = fx.f.now
		fx.f = f
	}
	restart(ScopeHost)
	fx.offer(0, true, "http://www.example.com/") // the run's seed, already fetched
	fx.now = fx.now.Add(10 * time.Hour)
	if n := fx.promote(); n != 1 {
		t.Fatalf("host scope promoted %d revisits, want 1 (www.example.com's page)", n)
	}
	moved := fx.now.Add(15 * time.Hour).Truncate(time.Millisecond) // 10h grown by half
	if got := fx.scheduled()["http://shop.example.com/p"]; !got.Equal(moved) {
		t.Fatalf("out-of-scope revisit scheduled at %v, want moved on to %v", got, moved)
	}
	if fx.f.nextDue != moved.UnixMilli() {
		t.Errorf("next revisit at %v, want %v", time.UnixMilli(fx.f.nextDue), moved)
	}
	restart(ScopeDomain)
	fx.offer(0, true, "http://www.example.com/")
	fx.now = moved
	fx.step()
	if n := fx.promote(); n != 1 {
		t.Fatalf("domain scope again promoted %d revisits, want 1 (shop.example.com's page)", n)
	}
	if got := fx.step(); !slices.Equal(got, []string{"http://shop.example.com/p"}) {
		t.Fatalf("released %q, want the kept revisit", got)
	}
}

// RevisitNow does not queue a page that already waits in its host queue
// for a revisit (a recrawl run again after an interruption, or a due
// revisit already moved there), until its fetch is recorded or the mark
// is a day old.
func TestRevisitNowQueuesOnce(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 40 * time.Hour})
	const page = "http://a.example/p"
	fx.offer(0, true, page)
	if got := fx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("released %q", got)
	}
	fx.fetched(page, false, "")
	revisitNow := func() { fx.revisitNow(page) }
	queued := func() int64 { return fx.f.Stats().Queued }

	revisitNow()
	revisitNow() // the recrawl again, before the fetch
	if got := queued(); got != 1 {
		t.Fatalf("%d tasks queued after two recrawls, want 1", got)
	}
	if got := fx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("released %q, want the page once", got)
	}
	revisitNow() // released, its result not yet recorded
	if got := queued(); got != 0 {
		t.Fatalf("%d tasks queued for a page in flight, want 0", got)
	}

	fx.fetched(page, false, "")
	revisitNow() // recorded: a recrawl fetches it again
	if got := queued(); got != 1 {
		t.Fatalf("%d tasks queued after a recrawl of a fetched page, want 1", got)
	}
	fx.step()
	fx.fetched(page, false, "")

	fx.now = fx.now.Add(23 * time.Hour) // due: 10h grown by half twice
	if n := fx.promote(); n != 1 {
		t.Fatalf("%d revisits promoted, want 1", n)
	}
	revisitNow()
	if got := queued(); got != 1 {
		t.Fatalf("%d tasks queued for a due revisit and a recrawl, want 1", got)
	}

	fx.now = fx.now.Add(queuedFor)
	revisitNow() // the mark has lapsed
	if got := queued(); got != 2 {
		t.Fatalf("%d tasks queued after the mark lapsed, want 2", got)
	}
}

// A RecrawlOnly run releases only what RevisitNow queues: the crawl's own
// queue waits for the next crawl, found links and due revisits are not
// queued, and the recrawled page keeps its scheduled revisit.
func TestRecrawlOnly(t *testing.T) {
	cfg := Config{Scope: ScopeAll, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 40 * time.Hour}
	fx := newFixture(t, t.TempDir(), cfg)
	const page, left, found = "http://a.example/p", "http://a.example/q", "http://a.example/r"
	fx.offer(0, true, page)
	if got := fx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("released %q", got)
	}
	fx.fetched(page, false, "")
	fx.offer(1, false, left) // left queued by the crawl
	due := fx.scheduled()[page]

	rc := fx.f.cfg
	rc.RecrawlOnly = true
	rfx := &fixture{t: t, db: fx.db, pub: &recorder{}, now: fx.now.Add(11 * time.Hour)} // the revisit is due
	var err error
	if rfx.f, err = Open(fx.db, rc, rfx.pub, fx.f.log); err != nil {
		t.Fatal(err)
	}
	rfx.f.now = func() time.Time { return rfx.now }
	rfx.offer(1, false, found)
	if s := rfx.f.Stats(); s.Queued != 0 || !rfx.f.Exhausted() {
		t.Fatalf("a recrawl run with a due revisit, a link found and a crawl's page queued: %+v, exhausted %v; want nothing to do", s, rfx.f.Exhausted())
	}
	rfx.revisitNow(page)
	if got := rfx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("the recrawl run released %q, want only %s", got, page)
	}
	if got := fx.scheduled()[page]; !got.Equal(due) {
		t.Errorf("the recrawled page's revisit is at %v, want it kept at %v until the fetch is recorded", got, due)
	}

	fx.restart()
	if got := fx.step(); !slices.Equal(got, []string{left}) {
		t.Errorf("the next crawl released %q, want %s, which the first crawl left queued", got, left)
	}
}

// A page RevisitNow queues goes before the URLs its host already has
// queued, read ahead or not, in this run and after a restart, and so does
// another attempt at it.
func TestRecrawlGoesFirst(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Scope: ScopeAll, Revisit: 10 * time.Hour, MinRevisit: 4 * time.Hour, MaxRevisit: 40 * time.Hour}
	fx := newFixture(t, dir, cfg)
	const page = "http://a.example/p"
	fx.offer(0, true, page)
	fx.step()
	fx.fetched(page, false, "")
	fx.offer(1, false, "http://a.example/1", "http://a.example/2", "http://a.example/3")
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/1"}) {
		t.Fatalf("released %q, want the first queued (one request at a time)", got)
	}
	// The host's queue is read ahead now; the recrawl still goes first.
	fx.revisitNow(page)
	fx.f.Done(Outcome{URL: "http://a.example/1", Status: 200})
	released := len(fx.pub.tasks)
	if got := fx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("after a recrawl: released %q, want %s first", got, page)
	}
	if task := fx.pub.tasks[released]; !task.GetRecrawl() || !task.GetRevisit() {
		t.Errorf("released %v, want a revisit flagged as a recrawl", task)
	}
	// Another attempt after a transient failure waits in the recrawl queue
	// too, across a restart.
	fx.f.Done(Outcome{URL: page, Status: 503})
	b := fx.db.NewWriteBatch()
	p := NewPending()
	if err := fx.f.Requeue(b, p, &lgv1.FetchTask{Url: page, Attempt: 1, Revisit: true, Recrawl: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	fx.f.Committed(p)
	fx.restart()
	if got := fx.step(); !slices.Equal(got, []string{page}) {
		t.Fatalf("after a restart: released %q, want the retry of %s first", got, page)
	}
	fx.f.Done(Outcome{URL: page, Status: 200})
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/2"}) {
		t.Fatalf("then released %q, want the crawl's queue in its order", got)
	}
}
