package frontier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Revisits. Every fetched page (and sitemap) gets a next visit: the
// interval starts at Config.Revisit and adapts to how often the page's
// links change, halving when they did and growing by half when they did
// not, within [MinRevisit, MaxRevisit]. A due revisit enters the page's
// host queue like a new URL, so it gets the same politeness and takes its
// turn with the URLs queued before it, and it carries the validators of
// the last fetch for a conditional request.
//
// Keys:
//
//	v due(8 bytes, big-endian Unix ms) SURT(url) -> FetchTask (revisit, validators)
//	u SURT(url) -> interval ms, due ms[, queued ms] (uvarints; empty for a URL never fetched)
//
// The u record is the URL-seen record, which the revisit state extends.
// While a revisit waits in its host queue (moved there when due, or by
// RevisitNow) the record says since when, so that RevisitNow does not
// queue the page twice; recording the fetch, or keeping the revisit of a
// page that was not fetched, rewrites the record without it.

// Defaults of the revisit settings of Config.
const (
	DefaultRevisit    = 7 * 24 * time.Hour
	DefaultMinRevisit = 24 * time.Hour
	DefaultMaxRevisit = 30 * 24 * time.Hour
)

// promoteBatch bounds the revisits moved to the host queues in one batch.
const promoteBatch = 4096

// queuedFor bounds how long a queued mark keeps RevisitNow from queueing a
// page again: a mark that outlives its task (a path that dropped the task
// without a word) costs at most a day of recrawls that do nothing.
const queuedFor = 24 * time.Hour

// seenState is the revisit state of a u record.
type seenState struct {
	interval, due, queued uint64 // ms; queued 0 when not in a host queue
	fetched               bool   // the record has an interval
}

func decodeSeen(raw []byte) seenState {
	iv, n := binary.Uvarint(raw)
	if n <= 0 {
		return seenState{}
	}
	st := seenState{interval: iv, fetched: true}
	raw = raw[n:]
	if st.due, n = binary.Uvarint(raw); n > 0 {
		st.queued, _ = binary.Uvarint(raw[n:])
	}
	return st
}

func (st seenState) encode() []byte {
	b := binary.AppendUvarint(nil, st.interval)
	b = binary.AppendUvarint(b, st.due)
	if st.queued != 0 {
		b = binary.AppendUvarint(b, st.queued)
	}
	return b
}

func revisitKey(due int64, surt string) []byte {
	k := make([]byte, 0, 9+len(surt))
	k = append(k, store.PrefixRevisit)
	k = binary.BigEndian.AppendUint64(k, uint64(due))
	return append(k, surt...)
}

func seenKey(url string) []byte {
	return append([]byte{store.PrefixSeen}, urlnorm.SURT(url)...)
}

// ScheduleRevisit plans the next visit of a page fetched at fetchedAt,
// within b: changed says whether its links differ from the previous
// crawl. pr supplies the URL, depth, kind and validators. Robots.txt
// fetches are not scheduled here (they have their own TTL).
func (f *Frontier) ScheduleRevisit(b *store.Batch, pr *lgv1.PageResult, changed bool) error {
	if f.cfg.Revisit < 0 || pr.GetKind() == lgv1.FetchKind_FETCH_KIND_ROBOTS {
		return nil
	}
	sk := seenKey(pr.GetUrl())
	interval, oldDue := f.cfg.Revisit, int64(0)
	raw, closer, err := b.Get(sk)
	switch {
	case err == nil:
		if st := decodeSeen(raw); st.fetched {
			oldDue = int64(st.due)
			interval = time.Duration(st.interval) * time.Millisecond
			if changed {
				interval /= 2
			} else {
				interval += interval / 2
			}
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	interval = min(max(interval, f.cfg.MinRevisit), f.cfg.MaxRevisit)
	due := time.Unix(0, pr.GetFetchedAt()).Add(interval).UnixMilli()
	surt := urlnorm.SURT(pr.GetUrl())
	if oldDue != 0 && oldDue != due {
		if err := b.Delete(revisitKey(oldDue, surt), nil); err != nil {
			return err
		}
	}
	task, err := proto.Marshal(&lgv1.FetchTask{
		Url: pr.GetUrl(), Depth: pr.GetDepth(), Kind: pr.GetKind(), Revisit: true,
		Etag: pr.GetEtag(), LastModified: pr.GetLastModified(),
	})
	if err != nil {
		return err
	}
	if err := b.Set(revisitKey(due, surt), task, nil); err != nil {
		return err
	}
	if err := b.Set(sk, seenState{interval: uint64(interval.Milliseconds()), due: uint64(due)}.encode(), nil); err != nil {
		return err
	}
	f.noteDue(due)
	return nil
}

// KeepRevisit keeps, within b, the revisit schedule of a page whose fetch
// was refused before it reached the server (pr's error reason is
// private_address), as the frontier does for the revisits it drops itself:
// the page was not fetched, so it must come back later rather than never.
func (f *Frontier) KeepRevisit(b *store.Batch, pr *lgv1.PageResult) error {
	due, err := f.keepRevisit(b, &lgv1.FetchTask{Url: pr.GetUrl(), Depth: pr.GetDepth(), Kind: pr.GetKind(),
		Etag: pr.GetRequestEtag(), LastModified: pr.GetRequestLastModified()})
	if err != nil {
		return err
	}
	f.noteDue(due)
	return nil
}

// keepRevisit schedules again, within b, the revisit of a page that left
// its host queue without a fetch or a recorded result (its host given up or
// refused as a private address) and returns the new due time (Unix ms), or
// 0 if it needs none. promoteDue deleted the schedule entry when it queued
// the page, so without this the page would never be visited again. A page
// never fetched has no interval and gets nothing (no fetch, no revisit). A
// schedule taken early (RevisitNow) is restored as it was; a due one moves
// on as if the page had not changed, by its interval grown by half within
// the bounds: a host that stays unreachable is tried less and less often,
// but never given up for good.
func (f *Frontier) keepRevisit(b *store.Batch, task *lgv1.FetchTask) (int64, error) {
	if f.cfg.Revisit < 0 || task.GetKind() == lgv1.FetchKind_FETCH_KIND_ROBOTS {
		return 0, nil
	}
	sk := seenKey(task.GetUrl())
	raw, closer, err := b.Get(sk)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("frontier: cannot read the revisit state of %s: %w", task.GetUrl(), err)
	}
	st := decodeSeen(raw)
	iv, oldDue := st.interval, st.due
	closer.Close()
	if iv == 0 {
		return 0, nil
	}
	surt := urlnorm.SURT(task.GetUrl())
	if oldDue != 0 {
		if _, closer, err := b.Get(revisitKey(int64(oldDue), surt)); err == nil {
			closer.Close()
			return 0, nil // scheduled again meanwhile (fetched, or kept already)
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return 0, fmt.Errorf("frontier: cannot read the revisit of %s: %w", task.GetUrl(), err)
		}
	}
	interval := time.Duration(iv) * time.Millisecond
	due := int64(oldDue)
	if now := f.now(); due <= now.UnixMilli() {
		interval = min(max(interval+interval/2, f.cfg.MinRevisit), f.cfg.MaxRevisit)
		due = now.Add(interval).UnixMilli()
	}
	data, err := proto.Marshal(&lgv1.FetchTask{
		Url: task.GetUrl(), Depth: task.GetDepth(), Kind: task.GetKind(), Revisit: true,
		Etag: task.GetEtag(), LastModified: task.GetLastModified(),
	})
	if err != nil {
		return 0, err
	}
	if err := b.Set(revisitKey(due, surt), data, nil); err != nil {
		return 0, err
	}
	if err := b.Set(sk, seenState{interval: uint64(interval.Milliseconds()), due: uint64(due)}.encode(), nil); err != nil {
		return 0, err
	}
	return due, nil
}

// noteDue makes a revisit scheduled at due (Unix ms; 0: none) known to
// Run's timer.
func (f *Frontier) noteDue(due int64) {
	if due == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nextDue == 0 || due < f.nextDue {
		f.nextDue = due
	}
	if f.promoting && due < f.promotingMin {
		f.promotingMin = due
	}
}

// promoteDue moves the revisits due by now into their host queues and
// returns how many it moved. It keeps nextDue, the earliest revisit not yet
// due, for Run's timer.
func (f *Frontier) promoteDue() (int, error) {
	if f.cfg.RecrawlOnly {
		return 0, nil
	}
	now := f.now().UnixMilli()
	f.mu.Lock()
	next := f.nextDue
	if next == 0 || next > now {
		f.mu.Unlock()
		return 0, nil
	}
	// Revisits scheduled while the scan runs are not in it (their batches
	// may not be committed yet); promotingMin remembers the earliest.
	f.promoting, f.promotingMin = true, math.MaxInt64
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.promoting = false
		f.mu.Unlock()
	}()
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixRevisit}, UpperBound: []byte{store.PrefixRevisit + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := f.db.NewWriteBatch()
	defer b.Close()
	p := NewPending()
	moved := 0
	next = 0
	var kept int64 // the earliest due of the revisits moved on below
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		due := int64(binary.BigEndian.Uint64(k[1:9]))
		if due > now || moved == promoteBatch {
			next = due
			break
		}
		if err := b.Delete(k, nil); err != nil {
			f.Abandon(p)
			return 0, err
		}
		task := &lgv1.FetchTask{}
		if err := proto.Unmarshal(it.Value(), task); err != nil {
			f.log.Error("dropping malformed revisit", "key", k, "err", err)
			continue
		}
		if !f.InScope(task.GetUrl()) {
			// Out of this run's scope (a narrower --scope on the same
			// data): moved on as if not fetched, not dropped, so that a
			// run with the scope that found the page still revisits it.
			due, err := f.keepRevisit(b, task)
			if err != nil {
				f.Abandon(p)
				return 0, err
			}
			if due != 0 && (kept == 0 || due < kept) {
				kept = due
			}
			continue
		}
		if err := f.enqueue(b.Batch, p, urlnorm.HostSURT(urlnorm.Host(task.GetUrl())), task); err != nil {
			f.Abandon(p)
			return 0, err
		}
		if err := markQueued(b.Batch, seenKey(task.GetUrl()), now); err != nil {
			f.Abandon(p)
			return 0, err
		}
		moved++
	}
	if err := it.Error(); err != nil {
		f.Abandon(p)
		return 0, err
	}
	if err := b.Commit(); err != nil {
		f.Abandon(p)
		return 0, fmt.Errorf("frontier: cannot queue due revisits: %w", err)
	}
	f.mu.Lock()
	if f.promotingMin != math.MaxInt64 && (next == 0 || f.promotingMin < next) {
		next = f.promotingMin
	}
	if kept != 0 && (next == 0 || kept < next) {
		next = kept
	}
	f.nextDue = next
	f.mu.Unlock()
	f.Committed(p)
	return moved, nil
}

// loadNextDue reads the earliest scheduled revisit.
func (f *Frontier) loadNextDue() error {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixRevisit}, UpperBound: []byte{store.PrefixRevisit + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.First() && len(it.Key()) >= 9 {
		f.nextDue = int64(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	return it.Error()
}

// untilDue is how long until the earliest revisit is due: 0 if one is, -1
// if none is scheduled.
func (f *Frontier) untilDue() time.Duration {
	if f.cfg.RecrawlOnly {
		return -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nextDue == 0 {
		return -1
	}
	return max(time.UnixMilli(f.nextDue).Sub(f.now()), 0)
}

// RevisitNow queues url for a fetch now, within b, as a revisit with the
// validators of its last fetch if it has one: the page's links are checked
// again at once instead of when due: it waits in its host's recrawl queue,
// ahead of the URLs the crawl queued. The page need not be in the crawl's
// scope (the caller asked for it by name); politeness and robots.txt apply
// as to any URL.
func (f *Frontier) RevisitNow(b *store.Batch, p *Pending, url string) error {
	sk := seenKey(url)
	task := &lgv1.FetchTask{Url: url, Kind: lgv1.FetchKind_FETCH_KIND_PAGE, Revisit: true}
	now := f.now().UnixMilli()
	raw, closer, err := b.Get(sk)
	switch {
	case err == nil:
		st := decodeSeen(raw)
		closer.Close()
		if st.queued != 0 && now-int64(st.queued) < queuedFor.Milliseconds() {
			return nil // waiting in its host queue already
		}
		if due := st.due; due != 0 {
			rk := revisitKey(int64(due), urlnorm.SURT(url))
			if raw, closer, err := b.Get(rk); err == nil {
				scheduled := &lgv1.FetchTask{}
				if proto.Unmarshal(raw, scheduled) == nil {
					task = scheduled
				}
				closer.Close()
				// Fetched now, it gets a new due time then. A recrawl
				// run's queue may be given up: the schedule stays until
				// the fetch replaces it.
				if !f.cfg.RecrawlOnly {
					if err := b.Delete(rk, nil); err != nil {
						return err
					}
				}
			} else if !errors.Is(err, pebble.ErrNotFound) {
				return err
			}
		}
		if st.fetched {
			st.queued = uint64(now)
			if err := b.Set(sk, st.encode(), nil); err != nil {
				return err
			}
		}
	case errors.Is(err, pebble.ErrNotFound):
		if err := b.Set(sk, nil, nil); err != nil {
			return err
		}
	default:
		return err
	}
	task.Recrawl = true // ahead of the crawl's queue
	return f.enqueue(b.Batch, p, urlnorm.HostSURT(urlnorm.Host(url)), task)
}

// markQueued notes in the u record at sk, within b, that the page's revisit
// waits in its host queue since now (Unix ms). A page never fetched has no
// revisit state to mark.
func markQueued(b *pebble.Batch, sk []byte, now int64) error {
	raw, closer, err := b.Get(sk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	st := decodeSeen(raw)
	closer.Close()
	if !st.fetched {
		return nil
	}
	st.queued = uint64(now)
	return b.Set(sk, st.encode(), nil)
}
