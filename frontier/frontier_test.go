package frontier

import (
	"context"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu    sync.Mutex
	tasks []*lgv1.FetchTask
	ids   []string
	// stored holds the ids JetStream would have in its duplicate window:
	// publishing one again reports bus.ErrDuplicate, as JetStream does.
	stored map[string]bool
	// results are what was published on pages subjects.
	results []*lgv1.PageResult
}

func (r *recorder) PublishTask(_ context.Context, subject, msgID string, data []byte) (func() error, error) {
	if strings.HasPrefix(subject, "pages.") {
		pr := &lgv1.PageResult{}
		if err := proto.Unmarshal(data, pr); err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.results = append(r.results, pr)
		r.mu.Unlock()
		return func() error { return nil }, nil
	}
	t := &lgv1.FetchTask{}
	if err := proto.Unmarshal(data, t); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	r.ids = append(r.ids, msgID)
	if r.stored[msgID] {
		return func() error { return bus.ErrDuplicate }, nil
	}
	if r.stored == nil {
		r.stored = make(map[string]bool)
	}
	r.stored[msgID] = true
	return func() error { return nil }, nil
}

func (r *recorder) urls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.tasks {
		out = append(out, t.GetUrl())
	}
	return out
}

type fixture struct {
	t   *testing.T
	db  *store.DB
	f   *Frontier
	pub *recorder
	now time.Time
}

func newFixture(t *testing.T, dir string, cfg Config) *fixture {
	t.Helper()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Shards = 4
	if cfg.RobotsTTL == 0 && !cfg.IgnoreRobots {
		cfg.IgnoreRobots = true // tests of robots.txt turn it on with a TTL
	}
	pub := &recorder{}
	f, err := Open(db, cfg, pub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{t: t, db: db, f: f, pub: pub, now: time.Unix(1e9, 0)}
	f.now = func() time.Time { return fx.now }
	return fx
}

// offer queues urls as the links applier does, seeds first.
func (fx *fixture) offer(depth int32, seeds bool, urls ...string) {
	fx.t.Helper()
	b := fx.db.NewWriteBatch()
	defer b.Close()
	p := NewPending()
	for _, u := range urls {
		n, err := urlnorm.Normalize(u)
		if err != nil {
			fx.t.Fatal(err)
		}
		if seeds {
			if err := fx.f.AddScope(b.Batch, n); err != nil {
				fx.t.Fatal(err)
			}
			fx.f.ScopeAdded(n)
		}
		if err := fx.f.Offer(b, p, n, depth, false); err != nil {
			fx.t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		fx.t.Fatal(err)
	}
	fx.f.Committed(p)
}

// step releases what is ready now and returns the URLs released.
func (fx *fixture) step() []string {
	fx.t.Helper()
	before := len(fx.pub.urls())
	for {
		batch, drops, _ := fx.f.take()
		if len(batch)+len(drops) == 0 {
			break
		}
		if err := fx.f.release(context.Background(), batch, drops); err != nil {
			fx.t.Fatal(err)
		}
	}
	return fx.pub.urls()[before:]
}

func TestPolitenessPerHost(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, Delay: 2 * time.Second, PerHostConcurrency: 1})
	fx.offer(0, true, "http://a.example/1", "http://a.example/2", "http://a.example/3", "http://b.example/1")
	// Hosts are released in no particular order.
	if got := slices.Sorted(slices.Values(fx.step())); !slices.Equal(got, []string{"http://a.example/1", "http://b.example/1"}) {
		t.Fatalf("first release = %q, want one URL per host", got)
	}
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q while hosts are busy", got)
	}
	fx.f.Done(Outcome{URL: "http://a.example/1", Status: 200})
	fx.now = fx.now.Add(1999 * time.Millisecond)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q before the delay passed", got)
	}
	fx.now = fx.now.Add(time.Millisecond)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/2"}) {
		t.Fatalf("after the delay: %q, want a.example/2", got)
	}
	// Retry-After holds a host back longer than the delay.
	fx.f.Done(Outcome{URL: "http://a.example/2", Status: 429, RetryAfter: 10 * time.Second})
	fx.now = fx.now.Add(9 * time.Second)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q during Retry-After", got)
	}
	fx.now = fx.now.Add(time.Second)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/3"}) {
		t.Fatalf("after Retry-After: %q", got)
	}
	if s := fx.f.Stats(); s.Queued != 0 || s.InFlight != 2 || s.Released != 4 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, PerHostConcurrency: 3})
	var urls []string
	for i := range 10 {
		urls = append(urls, "http://a.example/"+string(rune('a'+i)))
	}
	fx.offer(0, true, urls...)
	if got := fx.step(); len(got) != 3 {
		t.Fatalf("released %d, want 3 (the concurrency limit)", len(got))
	}
	fx.f.Done(Outcome{URL: urls[0], Status: 200})
	if got := fx.step(); !slices.Equal(got, urls[3:4]) {
		t.Fatalf("after one done: %q, want %q (FIFO)", got, urls[3:4])
	}
}

func TestScopeDepthAndSeen(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeHost, MaxDepth: 2})
	fx.offer(0, true, "http://www.example.com/")
	fx.offer(1, false,
		"http://www.example.com/a",  // in scope
		"http://www.example.com/a",  // seen
		"http://other.example.com/", // other host
		"http://elsewhere.org/")     // other domain
	fx.offer(3, false, "http://www.example.com/too-deep")
	fx.offer(2, false, "http://www.example.com/deep-enough")
	if s := fx.f.Stats(); s.Queued != 3 {
		t.Fatalf("queued %d, want 3", s.Queued)
	}

	fd := newFixture(t, t.TempDir(), Config{Scope: ScopeDomain})
	fd.offer(0, true, "http://www.example.co.uk/")
	fd.offer(1, false, "http://shop.example.co.uk/", "http://example.co.uk/x", "http://example.com/")
	if s := fd.f.Stats(); s.Queued != 3 {
		t.Fatalf("domain scope queued %d, want 3", s.Queued)
	}
}

func TestMaxPagesAndRestart(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture(t, dir, Config{Scope: ScopeAll, MaxPages: 2, PerHostConcurrency: 10})
	fx.offer(0, true, "http://a.example/1", "http://a.example/2", "http://a.example/3", "http://b.example/1")
	first := fx.step()
	if len(first) != 2 || !fx.f.budgetSpentLocked() {
		t.Fatalf("released %q, want exactly 2", first)
	}
	fx.f.Done(Outcome{URL: first[0], Status: 200})
	fx.f.Done(Outcome{URL: first[1], Status: 200})
	if !fx.f.Exhausted() {
		t.Fatal("not exhausted with the page budget spent and nothing in flight")
	}
	ids := slices.Clone(fx.pub.ids)
	fx.db.Close()

	// A new process sees the two URLs left, and the seen set.
	fy := newFixture(t, dir, Config{Scope: ScopeAll, PerHostConcurrency: 10})
	if s := fy.f.Stats(); s.Queued != 2 {
		t.Fatalf("after restart queued %d, want 2", s.Queued)
	}
	fy.offer(1, false, first...)
	rest := fy.step()
	all := append(first, rest...)
	slices.Sort(all)
	want := []string{"http://a.example/1", "http://a.example/2", "http://a.example/3", "http://b.example/1"}
	if !slices.Equal(all, want) {
		t.Fatalf("released over both runs %q, want each once: %q", all, want)
	}
	for _, id := range fy.pub.ids {
		if slices.Contains(ids, id) {
			t.Fatalf("message id %s reused for a different task", id)
		}
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	err := Config{Scope: "x", MaxDepth: -1, Delay: -1, PerHostConcurrency: 0, MaxPages: -1, Shards: 0}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"scope", "max depth", "delay", "concurrency", "max pages", "shards"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestConfigValidateRevisitBounds: a min revisit over the max is named as
// such, not as the default revisit falling outside them.
func TestConfigValidateRevisitBounds(t *testing.T) {
	base := Config{Scope: ScopeAll, PerHostConcurrency: 1, Shards: 1}
	c := base
	c.Revisit, c.MinRevisit, c.MaxRevisit = 168*time.Hour, 2*time.Hour, time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "min revisit 2h0m0s is longer than max revisit 1h0m0s") || strings.Contains(err.Error(), "168h") {
		t.Errorf("min over max: %v", err)
	}
	c = base
	c.Revisit, c.MinRevisit, c.MaxRevisit = 10*time.Hour, time.Hour, 5*time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "revisit 10h0m0s must be between") {
		t.Errorf("revisit over max: %v", err)
	}
}

// TestTwoWritersCommitOutOfOrder: the link applier and the page applier
// both queue URLs and commit in their own order. A batch that took its
// sequence numbers first but commits last must not be skipped by a host's
// read cursor.
func TestTwoWritersCommitOutOfOrder(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, PerHostConcurrency: 100})
	offer := func(p *Pending, b *store.Batch, urls ...string) {
		for _, u := range urls {
			if err := fx.f.Offer(b, p, u, 0, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	early, late := NewPending(), NewPending()
	be, bl := fx.db.NewWriteBatch(), fx.db.NewWriteBatch()
	defer be.Close()
	defer bl.Close()
	offer(early, be, "http://a.example/1", "http://a.example/2")
	offer(late, bl, "http://a.example/3", "http://a.example/4")
	if err := bl.Commit(); err != nil {
		t.Fatal(err)
	}
	fx.f.Committed(late)
	if got := fx.step(); len(got) != 0 {
		t.Fatalf("released %q past an uncommitted batch with earlier sequence numbers", got)
	}
	if err := be.Commit(); err != nil {
		t.Fatal(err)
	}
	fx.f.Committed(early)
	got := fx.step()
	slices.Sort(got)
	if want := []string{"http://a.example/1", "http://a.example/2", "http://a.example/3", "http://a.example/4"}; !slices.Equal(got, want) {
		t.Fatalf("released %q, want %q", got, want)
	}
	// An abandoned batch does not block the others forever.
	gone, more := NewPending(), NewPending()
	bg, bm := fx.db.NewWriteBatch(), fx.db.NewWriteBatch()
	defer bg.Close()
	defer bm.Close()
	offer(gone, bg, "http://a.example/lost")
	offer(more, bm, "http://a.example/5")
	if err := bm.Commit(); err != nil {
		t.Fatal(err)
	}
	fx.f.Committed(more)
	fx.f.Abandon(gone)
	if got := fx.step(); !slices.Equal(got, []string{"http://a.example/5"}) {
		t.Fatalf("after an abandoned batch: %q", got)
	}
}

// A frontier that restarts after publishing tasks but before deleting them
// from its queues publishes them again; JetStream drops them as duplicates,
// and the frontier must not wait for results of releases that did not
// happen: the hosts are free and nothing stays in flight.
func TestRepublishedTasksAreNotInFlight(t *testing.T) {
	fx := newFixture(t, t.TempDir(), Config{Scope: ScopeAll, PerHostConcurrency: 1})
	fx.offer(0, true, "http://a.example/1", "http://a.example/2", "http://b.example/1")
	batch, _, _ := fx.f.take()
	if len(batch) != 2 {
		t.Fatalf("took %d tasks, want one per host", len(batch))
	}
	// The crash: the tasks are published, but the queue entries stay.
	for _, qt := range batch {
		data, _ := proto.Marshal(qt.task)
		if _, err := fx.pub.PublishTask(context.Background(), "", hex.EncodeToString(qt.key), data); err != nil {
			t.Fatal(err)
		}
	}
	f2, err := Open(fx.db, fx.f.cfg, fx.pub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f2.now = fx.f.now
	fx.f = f2
	got := fx.step()
	// The duplicates are dropped; the next URL of a.example follows at once.
	if want := []string{"http://a.example/1", "http://a.example/2", "http://b.example/1"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("after the restart released %q, want %q", got, want)
	}
	if s := fx.f.Stats(); s.Queued != 0 || s.InFlight != 1 {
		t.Fatalf("stats = %+v, want nothing queued and only a.example/2 in flight", s)
	}
}

// TestRestartWithEmptyQueueKeepsIDsUnique restarts a frontier whose queue
// is empty (everything released): its next task must not reuse a message
// id of the first run, which JetStream's duplicate window, outliving the
// process, would drop as a duplicate (the URL was then never fetched).
func TestRestartWithEmptyQueueKeepsIDsUnique(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture(t, dir, Config{Scope: ScopeAll, PerHostConcurrency: 10})
	fx.offer(0, true, "http://a.example/1", "http://b.example/1")
	for _, u := range fx.step() {
		fx.f.Done(Outcome{URL: u, Status: 200})
	}
	if s := fx.f.Stats(); s.Queued != 0 {
		t.Fatalf("queued %d after the first run, want 0", s.Queued)
	}
	before := slices.Clone(fx.pub.ids)
	stored := fx.pub.stored
	fx.db.Close()

	fy := newFixture(t, dir, Config{Scope: ScopeAll, PerHostConcurrency: 10})
	fy.pub.stored = stored // the duplicate window is JetStream's, not the process's
	fy.offer(0, true, "http://a.example/2", "http://b.example/2")
	if got := fy.step(); len(got) != 2 {
		t.Fatalf("released %q after the restart, want both new URLs", got)
	}
	for _, id := range fy.pub.ids {
		if slices.Contains(before, id) {
			t.Fatalf("message id %s of the first run reused: JetStream would drop the task", id)
		}
	}
}
