package export_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
)

// The consistency tests crawl writerPages pages round-robin while an
// export runs: crawl k fetches page k%writerPages at time writerStart+k
// (ms) with the title "gen <time>", linking to fixed.example/0..4 and to a
// new target new.example/<time>, so each crawl loses the previous new
// target. A snapshot after crawl c shows every page at its last crawl up
// to c: its title and the last_seen of its live links name the same time,
// its lost links are its earlier new targets, and the pages' times are
// the last writerPages crawls, a window of writerPages consecutive ks.
const (
	writerPages = 10
	writerStart = int64(1767225600000) // 2026-01-01
)

func writerPage(i int) string { return fmt.Sprintf("http://w%d.example/", i) }

// webWriter crawls the writer pages and keeps their history.
type webWriter struct {
	ix      *indexer.Index
	mu      sync.Mutex
	hist    map[string][]int64 // page -> crawl times
	commits atomic.Int64
}

func (w *webWriter) crawl(t testing.TB, k int64) {
	t.Helper()
	if err := w.crawlErr(k); err != nil {
		t.Fatal(err)
	}
}

func (w *webWriter) crawlErr(k int64) error {
	page, at := writerPage(int(k%writerPages)), writerStart+k
	a := lgv1.LinkType_LINK_TYPE_A
	links := []*lgv1.OutLink{link(fmt.Sprintf("http://new.example/%d", at), "new", a)}
	for j := range 5 {
		links = append(links, link(fmt.Sprintf("http://fixed.example/%d", j), "fixed", a))
	}
	w.mu.Lock()
	w.hist[page] = append(w.hist[page], at)
	w.mu.Unlock()
	if err := crawlErr(w.ix, &lgv1.PageResult{Url: page, Status: 200, FetchedAt: nsOf(at), Title: fmt.Sprint("gen ", at), Links: links}); err != nil {
		return err
	}
	w.commits.Add(1)
	return nil
}

// start crawls from k on until the returned function is called, which
// waits for the last crawl.
func (w *webWriter) start(t testing.TB, k int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ; k++ {
			select {
			case <-done:
				return
			default:
			}
			if err := w.crawlErr(k); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }); wg.Wait() }
}

// waitCommits waits until the writer has committed n more crawls. It may
// run on any goroutine.
func (w *webWriter) waitCommits(t testing.TB, n int64) {
	target := w.commits.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for w.commits.Load() < target {
		if time.Now().After(deadline) {
			t.Errorf("the writer made %d commits in 30s, want %d", w.commits.Load(), target)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func isWriterRow(bl *lgv1.Backlink) bool {
	return strings.HasPrefix(bl.SourceUrl, "http://w") && strings.HasSuffix(strings.SplitN(bl.SourceUrl, "/", 4)[2], ".example")
}

// checkSnapshot reports how rows (an export with lost links) differ from
// one snapshot of the index: the rows not from writer pages must be base,
// and the writer pages must show one moment of the crawl (see above). It
// returns the crawl number of that moment.
func checkSnapshot(rows, base []*lgv1.Backlink, hist map[string][]int64) (int64, error) {
	var others []*lgv1.Backlink
	byPage := map[string][]*lgv1.Backlink{}
	for _, bl := range rows {
		if isWriterRow(bl) {
			byPage[bl.SourceUrl] = append(byPage[bl.SourceUrl], bl)
		} else {
			others = append(others, bl)
		}
	}
	if len(others) != len(base) {
		return 0, fmt.Errorf("%d rows not from writer pages, want %d", len(others), len(base))
	}
	for i := range others {
		if !proto.Equal(others[i], base[i]) {
			return 0, fmt.Errorf("row %v, want %v", others[i], base[i])
		}
	}
	var ks []int64
	for i := range writerPages {
		page := writerPage(i)
		prows := byPage[page]
		if len(prows) == 0 {
			return 0, fmt.Errorf("no rows from %s", page)
		}
		at, err := strconv.ParseInt(strings.TrimPrefix(prows[0].SourceTitle, "gen "), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: title %q", page, prows[0].SourceTitle)
		}
		ks = append(ks, at-writerStart)
		wantLive := []string{fmt.Sprintf("http://new.example/%d", at)}
		for j := range 5 {
			wantLive = append(wantLive, fmt.Sprintf("http://fixed.example/%d", j))
		}
		var wantLost []string
		for _, t := range hist[page] {
			if t < at {
				wantLost = append(wantLost, fmt.Sprintf("http://new.example/%d", t))
			}
		}
		var live, lost []string
		for _, bl := range prows {
			if bl.SourceTitle != prows[0].SourceTitle {
				return 0, fmt.Errorf("%s: titles %q and %q in one export", page, prows[0].SourceTitle, bl.SourceTitle)
			}
			if bl.LostAt != nil {
				lost = append(lost, bl.TargetUrl)
				continue
			}
			live = append(live, bl.TargetUrl)
			if got := bl.LastSeen.AsTime().UnixMilli(); got != at {
				return 0, fmt.Errorf("%s -> %s: last seen %d, but the title says the last crawl was at %d", page, bl.TargetUrl, got, at)
			}
		}
		slices.Sort(live)
		slices.Sort(wantLive)
		slices.Sort(lost)
		slices.Sort(wantLost)
		if !slices.Equal(live, wantLive) {
			return 0, fmt.Errorf("%s at %d: live links %q, want %q", page, at, live, wantLive)
		}
		if !slices.Equal(lost, wantLost) {
			return 0, fmt.Errorf("%s at %d: lost links %q, want %q", page, at, lost, wantLost)
		}
	}
	if lo, hi := slices.Min(ks), slices.Max(ks); hi-lo >= writerPages {
		return 0, fmt.Errorf("the pages show crawls %d to %d: not one moment", lo, hi)
	}
	return slices.Max(ks), nil
}

// setUpWriter returns an index with the writer pages crawled once each and
// the rows of the rest of the index.
func setUpWriter(t *testing.T) (*webWriter, []*lgv1.Backlink) {
	ix := testIndex(t, 3000)
	w := &webWriter{ix: ix, hist: map[string][]int64{}}
	for k := range int64(writerPages) {
		w.crawl(t, k)
	}
	var base []*lgv1.Backlink
	for _, bl := range scan(t, ix, false) {
		if !isWriterRow(bl) {
			base = append(base, bl)
		}
	}
	return w, base
}

// TestExportWhileWriting exports the whole index (NDJSON, lost links
// included) while another goroutine keeps crawling, and holds the writer
// back in the middle of the export until it has committed 30 more crawls:
// the export must still be exactly one snapshot, the one of its start.
func TestExportWhileWriting(t *testing.T) {
	w, base := setUpWriter(t)
	stop := w.start(t, writerPages)
	defer stop()
	var before int64 = -1
	out := filepath.Join(t.TempDir(), "out.ndjson")
	job, err := export.Create(export.Options{Format: export.NDJSON, Out: out, ProgressEvery: 200, Progress: func(rows int64) {
		if before < 0 {
			before = w.commits.Load()
			w.waitCommits(t, 30)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Run(context.Background(), all(w.ix)); err != nil {
		t.Fatal(err)
	}
	stop()
	if before < 0 {
		t.Fatal("no progress call midway: the index is too small")
	}
	k, err := checkSnapshot(readNDJSON(t, out), base, w.hist)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot is from before the crawls made during the export (and
	// the writer crawled k = 0.. in order, so commits count crawls).
	t.Logf("the export shows crawl %d; %d crawls when it was midway, %d at its end", k, before, w.commits.Load())
	if k >= before {
		t.Errorf("the export shows crawl %d, made after it reached its middle (%d crawls then)", k, before)
	}
}

// TestCheckSnapshotCatchesTornExports makes sure the check above can fail:
// an export read in two parts from two snapshots, the second after more
// crawls (as a resume does), is caught.
func TestCheckSnapshotCatchesTornExports(t *testing.T) {
	w, base := setUpWriter(t)
	q := indexer.ExportQuery{Filter: &lgv1.Filter{IncludeLost: true}}
	var rows []*lgv1.Backlink
	var last []byte
	errPause := errors.New("pause")
	// Part one stops before the first link to new.example, after those
	// to fixed.example (SURT order: example,fixed before example,new).
	err := w.ix.Export(context.Background(), q, func(bl *lgv1.Backlink, pos []byte) error {
		if strings.HasPrefix(bl.TargetUrl, "http://new.example/") {
			return errPause
		}
		rows, last = append(rows, bl), append(last[:0], pos...)
		return nil
	})
	if !errors.Is(err, errPause) {
		t.Fatal(err)
	}
	if _, err := checkSnapshot(append(slices.Clone(rows), rowsAfter(t, w.ix, q, last)...), base, w.hist); err != nil {
		t.Fatalf("two parts with no crawl in between: %v", err)
	}
	for k := int64(writerPages); k < 3*writerPages; k++ {
		w.crawl(t, k)
	}
	if _, err := checkSnapshot(append(rows, rowsAfter(t, w.ix, q, last)...), base, w.hist); err == nil {
		t.Fatal("an export torn by 20 crawls passed the check")
	} else {
		t.Logf("caught: %v", err)
	}
}

// rowsAfter exports q after the position last.
func rowsAfter(t *testing.T, ix *indexer.Index, q indexer.ExportQuery, last []byte) []*lgv1.Backlink {
	t.Helper()
	tok, err := ix.ResumeToken(q, last)
	if err != nil {
		t.Fatal(err)
	}
	q.ResumeToken = tok
	var rows []*lgv1.Backlink
	if err := ix.Export(context.Background(), q, func(bl *lgv1.Backlink, _ []byte) error {
		rows = append(rows, bl)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}
