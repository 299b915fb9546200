// Package indexer keeps the reverse link map ("who links to X") of a shard
// in Pebble and answers queries from it.
//
// The write side has two steps, one per stream (see internal/bus):
// RecordPage runs on the shard that owns a fetched page: it stores the fetch
// result and the page's forward link list, diffs it against the previous
// crawl and returns the edge updates grouped by the shard of their target.
// ApplyLinks runs on the shard that owns the targets and updates the reverse
// map. Both are idempotent: applying the same message twice leaves the same
// state and the same counters, so at-least-once delivery is safe.
package indexer

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Counter names kept under the n prefix. They change only on state
// transitions, so redelivered messages never count twice.
const (
	CounterPages        = "pages"           // distinct pages with a recorded fetch
	CounterSitemaps     = "sitemaps"        // distinct sitemaps with a recorded fetch
	CounterEdges        = "edges"           // live edges in the reverse map
	CounterTargets      = "targets"         // distinct targets ever linked to
	CounterSkippedLinks = "links/skipped"   // hrefs that did not parse or were not http(s)
	CounterTruncated    = "pages/truncated" // bodies cut at the size limit
	counterStatusPrefix = "pages/status/"   // + "2xx", "3xx", ...
	counterErrorPrefix  = "pages/error/"    // + error reason

	// Every recorded fetch, first fetches and revisits alike (a
	// redelivered result is the same fetch and does not count again), for
	// what one run did; the counters above count distinct pages.
	CounterFetches          = "fetches"           // page fetches
	CounterSitemapFetches   = "fetches/sitemaps"  // sitemap fetches
	CounterFetchesTruncated = "fetches/truncated" // page fetches whose body was cut
	counterFetchStatus      = "fetches/status/"   // + "2xx", "304", "3xx" (304 not included), ...
	counterFetchError       = "fetches/error/"    // + error reason
	// Edge state changes: a live edge added (new, or seen again after it
	// was lost) and a live edge lost. Their difference is the change of
	// CounterEdges.
	CounterEdgesAdded = "edges/added"
	CounterEdgesLost  = "edges/lost"
)

// StatusCounter and ErrorCounter name the per-class and per-reason counters.
func StatusCounter(class string) string { return counterStatusPrefix + class }
func ErrorCounter(reason string) string { return counterErrorPrefix + reason }
func statusClass(status int32) string   { return fmt.Sprintf("%dxx", status/100) }

// FetchStatusCounter and FetchErrorCounter name the per-fetch counters by
// status class and error reason. A 304 Not Modified counts under the class
// "304", not "3xx".
func FetchStatusCounter(class string) string { return counterFetchStatus + class }
func FetchErrorCounter(reason string) string { return counterFetchError + reason }

// Index is the reverse link map of one shard node. It is safe for concurrent
// use; writes go through caller-owned batches, which must be indexed batches
// (pebble.DB.NewIndexedBatch) so that a batch sees its own writes.
type Index struct {
	db     *store.DB
	shards int

	// known caches target SURTs with committed edges, so the popular
	// targets of a crawl are not looked up for every batch. Transactions
	// resolve and commit new targets under knownMu, which keeps the cache
	// a subset of what is on disk.
	knownMu sync.Mutex
	known   map[string]struct{}

	// scanOnly makes the views ignore the aggregates, for tests that check
	// the aggregates against a scan.
	scanOnly bool

	// aggs caches committed aggregate records that links appliers read
	// (see aggregator.read), so the records of busy targets are not
	// looked up in Pebble for every batch. Only committed values enter it.
	aggsMu sync.Mutex
	aggs   map[string][]int64

	// idMu guards the id counters (loaded on first use) and the caches of
	// domain ids and names; see ids.go.
	idMu                   sync.Mutex
	idsLoaded              bool
	lastSource, lastDomain uint64
	domainIDs              map[string]uint64
	domainNames            map[uint64]string

	// bases caches the bases of sources' edge times for queries (see
	// names.base), and queryDomainIDs the ids of their targets' domains.
	bases          *baseCache
	queryDomainIDs *domainIDCache

	// remote, set by ServeQueries on a node of a cluster, reads the edges
	// of the shards other nodes own.
	remote *remoteEdges

	// rankMu is held by the ranking running, if any.
	rankMu sync.Mutex
	// sources caches, across queries, the entries of the source pages
	// their rows show (see sharedSources).
	sources *sharedSources
	// scores holds the current ranking's domain scores, loaded on first
	// use and again whenever a ranking is committed here (see rankScores).
	scores   atomic.Pointer[rank.Scores]
	scoresMu sync.Mutex
}

// aggCacheSize bounds Index.aggs.
const aggCacheSize = 1 << 18

// knownCacheSize bounds the known-target cache (about 100 bytes an entry).
const knownCacheSize = 1 << 18

// New returns an Index over db for a cluster of shards shards. It does no I/O.
func New(db *store.DB, shards int) *Index {
	return &Index{db: db, shards: shards, known: make(map[string]struct{}), aggs: make(map[string][]int64), domainIDs: make(map[string]uint64), domainNames: make(map[uint64]string), bases: newBaseCache(baseCacheBits), queryDomainIDs: &domainIDCache{}, sources: newSharedSources(sharedSourceSlots)}
}

// Txn is one write transaction on the index: the shard role applies a batch
// of stream messages in one Txn and acks them once Commit returns. Not safe
// for concurrent use; Close it when done.
type Txn struct {
	ix *Index
	b  *store.Batch
	// targets holds the target SURTs that gained an edge, resolved once
	// per target at Commit: the same popular targets recur across a batch.
	targets map[string]struct{}
	agg     *aggregator
	// hostScopes caches the aggregate scopes of target hosts.
	hostScopes map[string]*targetScopes
	// retitled are the sources whose title or status the Txn changed,
	// whose cached entries go at Commit.
	retitled []uint64
}

// Begin starts a transaction.
func (ix *Index) Begin() *Txn {
	return &Txn{ix: ix, b: ix.db.NewWriteBatch(), targets: make(map[string]struct{}), agg: newAggregator(ix), hostScopes: make(map[string]*targetScopes)}
}

// Batch is the transaction's Pebble batch, for other components' writes
// that must commit together with the index's (the frontier's).
func (t *Txn) Batch() *store.Batch { return t.b }

// Close releases the transaction; after Commit it is a no-op.
func (t *Txn) Close() { t.b.Close() }

// Commit marks the targets seen for the first time, updates the counters
// and commits.
func (t *Txn) Commit() error {
	if err := t.commit(); err != nil {
		return err
	}
	t.agg.committed(t.ix)
	t.ix.sources.invalidate(t.retitled)
	return nil
}

func (t *Txn) commit() error {
	if err := t.agg.flush(t.b); err != nil {
		return err
	}
	if len(t.targets) == 0 {
		return t.b.Commit()
	}
	ix := t.ix
	ix.knownMu.Lock()
	defer ix.knownMu.Unlock()
	// A target is new when the index held no edge to it before this Txn
	// (edges are never deleted). Looking among the edges costs a seek per
	// new target; a marker key per target took 1.8 bytes an edge.
	var it *pebble.Iterator
	defer func() {
		if it != nil {
			it.Close()
		}
	}()
	var added []string
	for tgt := range t.targets {
		if _, ok := ix.known[tgt]; ok {
			continue
		}
		lo := append(prefixed(store.PrefixEdge, tgt), 0)
		hi := store.PrefixEnd(slices.Clone(lo))
		if it == nil {
			var err error
			if it, err = ix.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
				return err
			}
		} else {
			it.SetBounds(lo, hi)
		}
		if !it.First() {
			if err := it.Error(); err != nil {
				return err
			}
			t.b.Count(CounterTargets, 1)
		}
		added = append(added, tgt)
	}
	if err := t.b.Commit(); err != nil {
		return err
	}
	for _, tgt := range added {
		putBounded(ix.known, tgt, struct{}{}, knownCacheSize)
	}
	clear(t.targets)
	return nil
}

// RecordPage records a fetch result of a page owned by this shard and returns
// the edge updates for the page's links, one LinkBatch per target shard.
// Every current link is sent as EDGE_OP_SEEN (so a redelivered result
// re-sends the same idempotent updates), every target of the previous crawl
// the page no longer links to as EDGE_OP_UNLINKED, and on a recrawl the
// batches sweep (the targets' shards find the links that changed). The
// caller publishes the batches before committing b, so a crash in between
// re-sends rather than loses them.
func (t *Txn) RecordPage(pr *lgv1.PageResult) (map[int]*lgv1.LinkBatch, error) {
	rec, err := t.RecordFetch(pr)
	return rec.Batches, err
}

// PageRecord says what RecordFetch did with a fetch result.
type PageRecord struct {
	// Batches are the edge updates for the page's links, one per target
	// shard (see RecordPage).
	Batches map[int]*lgv1.LinkBatch
	// Changed is set when the page's links differ from its previous crawl,
	// or it had none.
	Changed bool
	// Stale is set when a newer fetch of the page was recorded before:
	// nothing was done.
	Stale bool
}

// RecordFetch is RecordPage, saying also whether the page's links changed,
// for the revisit schedule. A 304 Not Modified answer confirms the
// previous crawl: the page keeps its record and links, and every link gets
// the new last_seen.
func (t *Txn) RecordFetch(pr *lgv1.PageResult) (PageRecord, error) {
	b, ix := t.b, t.ix
	if _, err := urlnorm.Normalize(pr.GetUrl()); err != nil {
		return PageRecord{}, fmt.Errorf("indexer: page result for bad URL %q: %w", pr.GetUrl(), err)
	}
	surt := urlnorm.SURT(pr.GetUrl())
	var prev lgv1.PageResult
	havePrev, err := getPage(b, surt, &prev)
	if err != nil {
		return PageRecord{}, err
	}
	if havePrev && prev.GetFetchedAt() > pr.GetFetchedAt() {
		// An older result delivered late: the newer one already won.
		return PageRecord{Stale: true}, nil
	}
	if !havePrev {
		ix.countPage(b, pr)
	}
	if !havePrev || prev.GetFetchedAt() < pr.GetFetchedAt() {
		countFetch(b, pr) // not a redelivery of the recorded fetch
	}
	fwdKey := prefixed(store.PrefixForward, surt)
	var old forwardList
	if havePrev { // a forward list is written with the page's record
		if old, err = getForward(b, fwdKey); err != nil {
			return PageRecord{}, err
		}
	}
	notModified := pr.GetStatus() == http.StatusNotModified && havePrev
	if notModified {
		// The stored record describes the content; the fetch adds its
		// time and, if the server sent them, new validators.
		fetchedAt, duration, etag, lastModified := pr.GetFetchedAt(), pr.GetDurationNs(), pr.GetEtag(), pr.GetLastModified()
		proto.Reset(pr)
		proto.Merge(pr, &prev)
		pr.FetchedAt, pr.DurationNs = fetchedAt, duration
		pr.Etag, pr.LastModified = cmp.Or(etag, prev.GetEtag()), cmp.Or(lastModified, prev.GetLastModified())
	}
	if err := putPage(b, surt, pr); err != nil {
		return PageRecord{}, err
	}
	if notModified {
		confirmed := make([]*lgv1.Edge, len(old.targets))
		for i, u := range old.targets {
			confirmed[i] = &lgv1.Edge{TargetUrl: u, Op: lgv1.EdgeOp_EDGE_OP_CONFIRMED}
		}
		return PageRecord{Batches: t.linkBatches(pr, confirmed, false)}, nil
	}
	links := pr.GetLinks()
	if pr.GetMetaNoindex() {
		// A page that asks not to be indexed gives no backlinks: its links
		// are not recorded, and those of its earlier crawls are lost.
		links = nil
	}
	cur := make([]*lgv1.Edge, 0, len(links))
	seen := make(map[string]struct{}, len(links))
	for _, l := range links {
		if strings.IndexByte(l.GetUrl(), 0) >= 0 {
			// Workers send normalized URLs, which hold no 0; a forward
			// list could not name this one (see forwardVersion), nor an
			// edge key its target.
			continue
		}
		e := &lgv1.Edge{
			TargetUrl:      l.GetUrl(),
			AnchorText:     edgeAnchor(l.GetAnchorText()),
			Rel:            l.GetRel(),
			Type:           l.GetType(),
			RedirectStatus: l.GetRedirectStatus(),
			Op:             lgv1.EdgeOp_EDGE_OP_SEEN,
			Crawl:          true,
			Sitemap:        l.GetSitemap(),
		}
		id := edgeID(e)
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		cur = append(cur, e)
	}
	fwd := newForwardList(cur)
	// A target the page no longer links to is named with its reason. The
	// links to one it still links to say how many the previous crawl had,
	// so that its shard reads the page's other edges to it only when some
	// are gone (sweep).
	var unlinked []*lgv1.Edge
	reason := lostReason(pr)
	for _, u := range old.targets {
		if _, still := slices.BinarySearch(fwd.targets, u); !still {
			unlinked = append(unlinked, &lgv1.Edge{TargetUrl: u, Op: lgv1.EdgeOp_EDGE_OP_UNLINKED, LostReason: reason})
		}
	}
	sweep := len(old.targets) > 0
	if sweep {
		for _, e := range cur {
			e.PreviousLinks = int32(old.linksTo(e.GetTargetUrl()))
		}
	}
	if len(cur) == 0 {
		if err := b.Delete(fwdKey, nil); err != nil {
			return PageRecord{}, err
		}
	} else {
		if err := b.Set(fwdKey, fwd.encode(), nil); err != nil {
			return PageRecord{}, err
		}
	}
	return PageRecord{
		Batches: t.linkBatches(pr, append(cur, unlinked...), sweep),
		Changed: fwd.digest != old.digest,
	}, nil
}

// linkBatches groups a page's edge updates by the shard of their targets.
// With sweep (the page was crawled before), each batch lists all the
// page's current links to the targets it names.
func (t *Txn) linkBatches(pr *lgv1.PageResult, edges []*lgv1.Edge, sweep bool) map[int]*lgv1.LinkBatch {
	out := make(map[int]*lgv1.LinkBatch)
	for _, e := range edges {
		s := t.ix.shardOf(e.GetTargetUrl())
		lb := out[s]
		if lb == nil {
			lb = &lgv1.LinkBatch{
				SourceUrl:      pr.GetUrl(),
				SourceDepth:    pr.GetDepth(),
				SourceStatus:   pr.GetStatus(),
				SourceTitle:    pr.GetTitle(),
				SourceNofollow: pr.GetMetaNofollow(),
				FetchedAt:      pr.GetFetchedAt(),
				Sweep:          sweep,
			}
			out[s] = lb
		}
		lb.Edges = append(lb.Edges, e)
	}
	return out
}

// lostReason says why the links of a page's previous crawl that its
// latest fetch, pr, no longer has are lost.
func lostReason(pr *lgv1.PageResult) lgv1.LostReason {
	switch s := pr.GetStatus(); {
	case pr.GetErrorReason() == lgv1.ErrorReasonRobotsDisallowed:
		return lgv1.LostReason_LOST_REASON_ROBOTS_DISALLOWED
	case pr.GetErrorReason() != "", s >= 500:
		// Only after the last attempt: transient failures are retried first.
		return lgv1.LostReason_LOST_REASON_HOST_UNREACHABLE
	case s == 404, s == 410:
		return lgv1.LostReason_LOST_REASON_PAGE_GONE
	case s >= 300 && s < 400:
		return lgv1.LostReason_LOST_REASON_REDIRECTED
	case pr.GetMetaNoindex():
		return lgv1.LostReason_LOST_REASON_NOINDEX
	}
	return lgv1.LostReason_LOST_REASON_REMOVED
}

func (ix *Index) countPage(b *store.Batch, pr *lgv1.PageResult) {
	if pr.GetKind() == lgv1.FetchKind_FETCH_KIND_SITEMAP {
		b.Count(CounterSitemaps, 1)
		b.Count(CounterSkippedLinks, int64(pr.GetSkippedLinks()))
		return
	}
	names := []string{CounterPages}
	if pr.GetStatus() > 0 {
		names = append(names, StatusCounter(statusClass(pr.GetStatus())))
	}
	if r := pr.GetErrorReason(); r != "" {
		names = append(names, ErrorCounter(r))
	}
	if pr.GetTruncated() {
		names = append(names, CounterTruncated)
	}
	for _, n := range names {
		b.Count(n, 1)
	}
	b.Count(CounterSkippedLinks, int64(pr.GetSkippedLinks()))
}

// countFetch counts one fetch, before a 304 is merged with the previous
// record.
func countFetch(b *store.Batch, pr *lgv1.PageResult) {
	if pr.GetKind() == lgv1.FetchKind_FETCH_KIND_SITEMAP {
		b.Count(CounterSitemapFetches, 1)
		return
	}
	b.Count(CounterFetches, 1)
	switch s := pr.GetStatus(); {
	case s == http.StatusNotModified:
		b.Count(FetchStatusCounter("304"), 1)
	case s > 0:
		b.Count(FetchStatusCounter(statusClass(s)), 1)
	}
	if r := pr.GetErrorReason(); r != "" {
		b.Count(FetchErrorCounter(r), 1)
	}
	if pr.GetTruncated() {
		b.Count(CounterFetchesTruncated, 1)
	}
}

func edgeID(e *lgv1.Edge) string {
	return e.GetTargetUrl() + "\x00" + string(rune(e.GetType())) + e.GetAnchorText()
}

func (ix *Index) shardOf(url string) int {
	return urlnorm.Shard(urlnorm.Host(url), ix.shards)
}

// ApplyLinks applies the edge updates of one source page to the reverse map.
// All edges of a batch belong to one shard (RecordPage groups them so).
// A batch with no source URL carries seeds only and changes no edge.
func (t *Txn) ApplyLinks(lb *lgv1.LinkBatch) error {
	b, ix := t.b, t.ix
	if lb.GetSourceUrl() == "" {
		return nil
	}
	if _, err := urlnorm.Normalize(lb.GetSourceUrl()); err != nil {
		return fmt.Errorf("indexer: link batch from bad URL %q: %w", lb.GetSourceUrl(), err)
	}
	srcSURT := urlnorm.SURT(lb.GetSourceUrl())
	at := lb.GetFetchedAt() / 1e6 // ns -> ms
	if len(lb.GetEdges()) == 0 {
		return nil
	}
	shard := ix.shardOf(lb.GetEdges()[0].GetTargetUrl())
	info := newSourceInfo(lb.GetSourceUrl())
	// A source never applied on this shard has no edges here yet, so its
	// edges need no existence check. A redelivered batch finds the shard
	// in the source's record and takes the checked path.
	ids, known, err := getSourceIDs(b, srcSURT)
	if err != nil {
		return err
	}
	fresh := !ids.on(shard)
	var old sourceValue
	if known {
		raw, closer, err := b.Get(sourceIDKey(ids.source))
		if err != nil {
			return fmt.Errorf("indexer: record of source %s (id %d): %w", lb.GetSourceUrl(), ids.source, err)
		}
		old, err = decodeSourceValue(raw, false, ix)
		closer.Close()
		if err != nil {
			return fmt.Errorf("%w (source %s)", err, lb.GetSourceUrl())
		}
		if old.fetchedAt > lb.GetFetchedAt() {
			// A late, older crawl of the source: the newer one already applied.
			return nil
		}
	} else {
		if ids.domain, err = ix.domainID(info.domainSURT); err != nil {
			return err
		}
		if ids.source, err = ix.newSourceID(); err != nil {
			return err
		}
	}
	if fresh {
		ids.add(shard)
		if err := b.Set(sourceKey(srcSURT), ids.encode(), nil); err != nil {
			return err
		}
	}
	info.domainID, info.domainNum = string(store.AppendID(nil, ids.domain)), ids.domain
	base := at
	if known {
		base = old.base
	}
	src := sourceValue{base: base, surt: srcSURT, fetchedAt: lb.GetFetchedAt(), status: lb.GetSourceStatus(), nofollow: lb.GetSourceNofollow(), title: lb.GetSourceTitle(), scopes: old.scopes}
	if src.scopes == nil {
		src.scopes = make(map[string]int64)
	}
	pagesBefore := make(map[string]int64, len(src.scopes))
	for k, c := range src.scopes {
		pagesBefore[k] = c
	}
	a := linkApply{t: t, lb: lb, at: at, info: &info, src: &src}
	defer a.close()
	// Targets whose edges from the source may need reading by prefix (see
	// LinkBatch.sweep): those the batch names with EDGE_OP_UNLINKED or
	// EDGE_OP_CONFIRMED, and on a recrawl those it lists fewer live links
	// to than the previous crawl had.
	var sweeps []*sweepTarget
	var sweepOf map[string]*sweepTarget
	sweep := func(e *lgv1.Edge) *sweepTarget {
		st := sweepOf[e.GetTargetUrl()]
		if st == nil {
			if sweepOf == nil {
				sweepOf = make(map[string]*sweepTarget)
			}
			st = &sweepTarget{url: e.GetTargetUrl(), reason: lgv1.LostReason_LOST_REASON_REMOVED}
			sweepOf[st.url] = st
			sweeps = append(sweeps, st)
		}
		return st
	}
	var key []byte
	for _, e := range lb.GetEdges() {
		switch e.GetOp() {
		case lgv1.EdgeOp_EDGE_OP_UNLINKED:
			st := sweep(e)
			st.reason, st.all = cmp.Or(e.GetLostReason(), lgv1.LostReason_LOST_REASON_REMOVED), true
			continue
		case lgv1.EdgeOp_EDGE_OP_CONFIRMED:
			st := sweep(e)
			st.confirm, st.all = true, true
			continue
		case lgv1.EdgeOp_EDGE_OP_SEEN, lgv1.EdgeOp_EDGE_OP_REMOVED:
		default:
			continue
		}
		tgtSURT := urlnorm.SURT(e.GetTargetUrl())
		anchor := edgeAnchor(e.GetAnchorText())
		key = edgeKey(key[:0], tgtSURT, ids.domain, ids.source, e.GetType(), anchor)
		var v edgeValue
		var stored []byte
		if !fresh {
			if stored, v, err = a.lookup(key); err != nil {
				return err
			}
		}
		exists := stored != nil
		if lb.GetSweep() && e.GetOp() == lgv1.EdgeOp_EDGE_OP_SEEN && e.GetPreviousLinks() > 0 {
			st := sweep(e)
			st.previous = max(st.previous, int(e.GetPreviousLinks()))
			if st.listed == nil {
				st.listed = make(map[string]bool)
			}
			suffix := string(key[len(key)-len(anchor)-1:]) // type, anchor
			if !st.listed[suffix] && exists && v.lostAt == 0 {
				st.kept++
			}
			st.listed[suffix] = true
		}
		if err := a.edge(key, stored, e.GetTargetUrl(), tgtSURT, e.GetType(), anchor, v, e); err != nil {
			return err
		}
	}
	if !fresh { // a fresh source has no edges here to read
		for _, st := range sweeps {
			if st.all || st.kept < st.previous {
				if err := a.sweep(st, ids); err != nil {
					return err
				}
			}
		}
	}
	for ts, sp := range a.spans {
		own, err := t.ownRecords(ts, false)
		if err != nil {
			return err
		}
		for i, scope := range ts.scopes {
			if i == 0 && !own {
				continue // the host's records are its domain's
			}
			if err := t.seenSpan(&info, scope, sp[0], sp[1]); err != nil {
				return err
			}
		}
	}
	// The source is one of a scope's referring pages while it has a live
	// external link into it.
	for scope, c := range src.scopes {
		d := transition(pagesBefore[scope], c)
		if d == 0 {
			continue
		}
		live, err := t.liveScope(scope)
		if err != nil {
			return err
		}
		if live {
			t.agg.summary(scope)[sumPages] += d
		}
	}
	val, err := src.encode(ix)
	if err != nil {
		return err
	}
	if known && (src.title != old.title || src.status != old.status) {
		t.retitled = append(t.retitled, ids.source)
	}
	return b.Set(sourceIDKey(ids.source), val, nil)
}

// linkApply is the state of one ApplyLinks call.
type linkApply struct {
	t    *Txn
	lb   *lgv1.LinkBatch
	at   int64 // the batch's fetch time, Unix ms
	info *sourceInfo
	src  *sourceValue
	// spans collects, per target host, the first and last seen of the
	// live external links, written into its scopes once per batch.
	spans map[*targetScopes][2]int64
	val   []byte
	// it reads stored edges for lookup.
	it *pebble.Iterator
}

// lookup returns the stored edge named key and its value, nil if there is
// none. It reads through the Txn's batch, and so sees its earlier writes.
func (a *linkApply) lookup(key []byte) ([]byte, edgeValue, error) {
	// Fresh bounds every time: the iterator keeps the slices it is given,
	// and compares the next ones with them.
	opts := pebble.IterOptions{LowerBound: append(slices.Clip(key), 0), UpperBound: edgeSuccessor(nil, key)}
	if a.it == nil {
		it, err := a.t.b.NewIter(&opts)
		if err != nil {
			return nil, edgeValue{}, err
		}
		a.it = it
	} else {
		a.it.SetOptions(&opts) // which also brings in the batch's new writes
	}
	if !a.it.First() {
		return nil, edgeValue{}, a.it.Error()
	}
	stored := slices.Clone(a.it.Key())
	v, err := decodeEdgeValue(stored[len(key)+1:], a.src.base)
	if err != nil {
		return nil, edgeValue{}, fmt.Errorf("%w at %q", err, stored)
	}
	return stored, v, nil
}

func (a *linkApply) close() {
	if a.it != nil {
		a.it.Close()
	}
}

// sweepTarget is a target whose edges from the batch's source may be read
// by prefix.
type sweepTarget struct {
	url string
	// all: every live edge of the source to the target not listed is lost
	// for reason, or with confirm seen again.
	all     bool
	reason  lgv1.LostReason
	confirm bool
	// listed holds the links the batch lists to the target (type byte,
	// anchor); kept counts those that were live, previous the links of
	// the previous crawl. Fewer kept than previous means some other live
	// edge is lost.
	listed         map[string]bool
	kept, previous int
}

// sweep reads the source's edges to st's target and loses (or confirms)
// the live ones the batch did not list.
func (a *linkApply) sweep(st *sweepTarget, ids sourceIDs) error {
	tgtSURT := urlnorm.SURT(st.url)
	prefix := sourceEdgesPrefix(tgtSURT, ids)
	it, err := a.t.b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(slices.Clone(prefix))})
	if err != nil {
		return err
	}
	type found struct {
		stored []byte
		k      edgeKeyParts
		v      edgeValue
	}
	var edges []found
	read := func(stored []byte) error {
		k, err := parseEdgeKey(stored, tgtSURT)
		if err != nil {
			return fmt.Errorf("%w: %q", err, stored)
		}
		if st.listed[string(stored[len(prefix):k.keyLen])] {
			return nil // applied with the batch's other links
		}
		val, err := k.value(stored)
		if err != nil {
			return err
		}
		v, err := decodeEdgeValue(val, a.src.base)
		if err != nil {
			return fmt.Errorf("%w at %q", err, stored)
		}
		if v.lostAt == 0 { // a lost edge stays lost, even on a confirmation
			edges = append(edges, found{slices.Clone(stored), k, v})
		}
		return nil
	}
	for it.First(); it.Valid() && err == nil; it.Next() {
		err = read(it.Key())
	}
	if err := errors.Join(err, it.Close()); err != nil {
		return err
	}
	for _, f := range edges {
		op := &lgv1.Edge{Op: lgv1.EdgeOp_EDGE_OP_REMOVED, LostReason: st.reason}
		if st.confirm {
			op = &lgv1.Edge{Op: lgv1.EdgeOp_EDGE_OP_SEEN, Rel: f.v.rel, RedirectStatus: f.v.redirectStatus}
		}
		if err := a.edge(f.stored[:f.k.keyLen], f.stored, st.url, tgtSURT, f.k.typ, f.k.anchor, f.v, op); err != nil {
			return err
		}
	}
	return nil
}

// edge applies op to the edge named key, stored under old with value v
// if it exists (old is nil if not), and moves the counters and aggregates
// it changes.
func (a *linkApply) edge(key, old []byte, tgtURL, tgtSURT string, typ lgv1.LinkType, anchor string, v edgeValue, op *lgv1.Edge) error {
	t, b, at := a.t, a.t.b, a.at
	exists := old != nil
	wasLive, oldFlags := exists && v.lostAt == 0, v.flags
	switch op.GetOp() {
	case lgv1.EdgeOp_EDGE_OP_SEEN:
		if !exists || at < v.firstSeen {
			v.firstSeen = at
		}
		if at >= v.lastSeen {
			v.lastSeen = at
			v.rel = op.GetRel()
			v.flags = flagsOf(op.GetRel(), a.lb.GetSourceNofollow())
			v.redirectStatus = op.GetRedirectStatus()
			v.comeBack(at)
		}
	case lgv1.EdgeOp_EDGE_OP_REMOVED:
		if !exists || at < v.lastSeen {
			return nil // never seen, or seen again after this removal
		}
		if v.lostAt == 0 || at < v.lostAt {
			v.lostAt = at
			v.lostReason = cmp.Or(op.GetLostReason(), lgv1.LostReason_LOST_REASON_REMOVED)
		}
	default:
		return nil
	}
	a.val = storedEdge(a.val[:0], key, &v, a.src.base)
	if !bytes.Equal(a.val, old) {
		if old != nil {
			if err := b.Delete(old, nil); err != nil {
				return err
			}
		}
		if err := b.Set(a.val, nil, nil); err != nil {
			return err
		}
	}
	isLive := v.lostAt == 0
	if isLive != wasLive {
		if isLive {
			t.targets[tgtSURT] = struct{}{}
			b.Count(CounterEdges, 1)
			b.Count(CounterEdgesAdded, 1)
		} else {
			b.Count(CounterEdges, -1)
			b.Count(CounterEdgesLost, 1)
		}
	}
	ts := t.scopesOf(tgtURL)
	if ts.domain == a.info.domain {
		return nil // internal links are not aggregated
	}
	if (wasLive || isLive) && (wasLive != isLive || oldFlags != v.flags) {
		own, err := t.ownRecords(ts, true)
		if err != nil {
			return err
		}
		if wasLive {
			if err := t.contribute(a.info, ts, own, -1, oldFlags, typ, anchor, a.src.scopes); err != nil {
				return err
			}
		}
		if isLive {
			if err := t.contribute(a.info, ts, own, +1, v.flags, typ, anchor, a.src.scopes); err != nil {
				return err
			}
		}
	}
	if isLive {
		if a.spans == nil {
			a.spans = make(map[*targetScopes][2]int64)
		}
		sp, ok := a.spans[ts]
		if !ok || v.firstSeen < sp[0] {
			sp[0] = v.firstSeen
		}
		sp[1] = max(sp[1], v.lastSeen)
		a.spans[ts] = sp
	}
	return nil
}

// Counters returns every total counter by name.
func (ix *Index) Counters() (map[string]int64, error) {
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixCounter}, UpperBound: []byte{store.PrefixCounter + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := make(map[string]int64)
	for it.First(); it.Valid(); it.Next() {
		n, _ := binary.Varint(it.Value()) // the iterator yields merged values
		out[string(it.Key()[1:])] = n
	}
	return out, it.Error()
}

func getProto(r pebble.Reader, key []byte, m proto.Message) (bool, error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := proto.Unmarshal(raw, m); err != nil {
		return false, fmt.Errorf("indexer: corrupt record %q: %w", key, err)
	}
	return true, nil
}

// putPage writes the page record of pr, the page with SURT surt: the
// result without its links (they are in the forward list), and without its
// URL when the key gives it back (the URL took a third of the record).
func putPage(b *store.Batch, surt string, pr *lgv1.PageResult) error {
	links, url := pr.Links, pr.Url
	pr.Links = nil
	if back, err := urlnorm.UnSURT(surt); err == nil && back == url {
		pr.Url = ""
	}
	err := setProto(b, prefixed(store.PrefixPage, surt), pr)
	pr.Links, pr.Url = links, url
	return err
}

// getPage reads the page record of the page with SURT surt (see putPage)
// into pr, with its URL, and reports whether there is one.
func getPage(r pebble.Reader, surt string, pr *lgv1.PageResult) (bool, error) {
	ok, err := getProto(r, prefixed(store.PrefixPage, surt), pr)
	if !ok || err != nil || pr.Url != "" {
		return ok, err
	}
	if pr.Url, err = urlnorm.UnSURT(surt); err != nil {
		return false, fmt.Errorf("indexer: page record of %q: %w", surt, err)
	}
	return true, nil
}

func setProto(b *store.Batch, key []byte, m proto.Message) error {
	raw, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return b.Set(key, raw, nil)
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
