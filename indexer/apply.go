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
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Counter names kept under the n prefix. They change only on state
// transitions, so redelivered messages never count twice.
const (
	CounterPages        = "pages"           // distinct pages with a recorded fetch
	CounterEdges        = "edges"           // live edges in the reverse map
	CounterTargets      = "targets"         // targets with at least one live edge
	CounterSkippedLinks = "links/skipped"   // hrefs that did not parse or were not http(s)
	CounterTruncated    = "pages/truncated" // bodies cut at the size limit
	counterStatusPrefix = "pages/status/"   // + "2xx", "3xx", ...
	counterErrorPrefix  = "pages/error/"    // + error reason
)

// StatusCounter and ErrorCounter name the per-class and per-reason counters.
func StatusCounter(class string) string { return counterStatusPrefix + class }
func ErrorCounter(reason string) string { return counterErrorPrefix + reason }
func isStatusCounter(name string) bool  { return strings.HasPrefix(name, counterStatusPrefix) }
func isErrorCounter(name string) bool   { return strings.HasPrefix(name, counterErrorPrefix) }
func statusClass(status int32) string   { return fmt.Sprintf("%dxx", status/100) }

// Index is the reverse link map of one shard node. It is safe for concurrent
// use; writes go through caller-owned batches, which must be indexed batches
// (pebble.DB.NewIndexedBatch) so that a batch sees its own writes.
type Index struct {
	db     *store.DB
	shards int
}

// New returns an Index over db for a cluster of shards shards. It does no I/O.
func New(db *store.DB, shards int) *Index {
	return &Index{db: db, shards: shards}
}

// RecordPage records a fetch result of a page owned by this shard and returns
// the edge updates for the page's links, one LinkBatch per target shard.
// Every current link is sent as EDGE_OP_SEEN (so a redelivered result
// re-sends the same idempotent updates) and every link of the previous crawl
// that is gone as EDGE_OP_REMOVED. The caller publishes the batches before
// committing b, so a crash in between re-sends rather than loses them.
func (ix *Index) RecordPage(b *pebble.Batch, pr *lgv1.PageResult) (map[int]*lgv1.LinkBatch, error) {
	if _, err := urlnorm.Normalize(pr.GetUrl()); err != nil {
		return nil, fmt.Errorf("indexer: page result for bad URL %q: %w", pr.GetUrl(), err)
	}
	surt := urlnorm.SURT(pr.GetUrl())
	pageKey := prefixed(store.PrefixPage, surt)
	var prev lgv1.PageResult
	havePrev, err := getProto(b, pageKey, &prev)
	if err != nil {
		return nil, err
	}
	if havePrev && prev.GetFetchedAt() > pr.GetFetchedAt() {
		// An older result delivered late: the newer one already won.
		return nil, nil
	}
	if !havePrev {
		if err := ix.countPage(b, pr); err != nil {
			return nil, err
		}
	}
	stored := proto.Clone(pr).(*lgv1.PageResult)
	stored.Links = nil
	if err := setProto(b, pageKey, stored); err != nil {
		return nil, err
	}

	fwdKey := prefixed(store.PrefixForward, surt)
	var old lgv1.LinkBatch
	if _, err := getProto(b, fwdKey, &old); err != nil {
		return nil, err
	}
	cur := make([]*lgv1.Edge, 0, len(pr.GetLinks()))
	seen := make(map[string]struct{}, len(pr.GetLinks()))
	for _, l := range pr.GetLinks() {
		e := &lgv1.Edge{
			TargetUrl:      l.GetUrl(),
			AnchorText:     truncateUTF8(l.GetAnchorText(), MaxAnchorBytes),
			Rel:            l.GetRel(),
			Type:           l.GetType(),
			RedirectStatus: l.GetRedirectStatus(),
			Op:             lgv1.EdgeOp_EDGE_OP_SEEN,
			Crawl:          true,
		}
		id := edgeID(e)
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		cur = append(cur, e)
	}
	var removed []*lgv1.Edge
	for _, e := range old.GetEdges() {
		if _, still := seen[edgeID(e)]; !still {
			removed = append(removed, &lgv1.Edge{
				TargetUrl: e.GetTargetUrl(), AnchorText: e.GetAnchorText(), Type: e.GetType(),
				Op: lgv1.EdgeOp_EDGE_OP_REMOVED,
			})
		}
	}
	if len(cur) == 0 {
		if err := b.Delete(fwdKey, nil); err != nil {
			return nil, err
		}
	} else {
		fwd := &lgv1.LinkBatch{Edges: make([]*lgv1.Edge, len(cur))}
		for i, e := range cur {
			fwd.Edges[i] = &lgv1.Edge{TargetUrl: e.TargetUrl, AnchorText: e.AnchorText, Rel: e.Rel, Type: e.Type, RedirectStatus: e.RedirectStatus}
		}
		if err := setProto(b, fwdKey, fwd); err != nil {
			return nil, err
		}
	}

	out := make(map[int]*lgv1.LinkBatch)
	for _, e := range append(cur, removed...) {
		s := urlnorm.Shard(urlnorm.Host(e.GetTargetUrl()), ix.shards)
		lb := out[s]
		if lb == nil {
			lb = &lgv1.LinkBatch{
				SourceUrl:      pr.GetUrl(),
				SourceDepth:    pr.GetDepth(),
				SourceStatus:   pr.GetStatus(),
				SourceTitle:    pr.GetTitle(),
				SourceNofollow: pr.GetMetaNofollow(),
				FetchedAt:      pr.GetFetchedAt(),
			}
			out[s] = lb
		}
		lb.Edges = append(lb.Edges, e)
	}
	return out, nil
}

func (ix *Index) countPage(b *pebble.Batch, pr *lgv1.PageResult) error {
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
		if err := store.AddCounter(b, store.CounterKey(n), 1); err != nil {
			return err
		}
	}
	if n := pr.GetSkippedLinks(); n > 0 {
		return store.AddCounter(b, store.CounterKey(CounterSkippedLinks), int64(n))
	}
	return nil
}

func edgeID(e *lgv1.Edge) string {
	return e.GetTargetUrl() + "\x00" + string(rune(e.GetType())) + e.GetAnchorText()
}

// ApplyLinks applies the edge updates of one source page to the reverse map.
// A batch with no source URL carries seeds only and changes no edge.
func (ix *Index) ApplyLinks(b *pebble.Batch, lb *lgv1.LinkBatch) error {
	if lb.GetSourceUrl() == "" {
		return nil
	}
	if _, err := urlnorm.Normalize(lb.GetSourceUrl()); err != nil {
		return fmt.Errorf("indexer: link batch from bad URL %q: %w", lb.GetSourceUrl(), err)
	}
	srcSURT := urlnorm.SURT(lb.GetSourceUrl())
	at := lb.GetFetchedAt() / 1e6 // ns -> ms
	srcKey := prefixed(store.PrefixSource, srcSURT)
	if raw, closer, err := b.Get(srcKey); err == nil {
		old, derr := decodeSourceValue(raw)
		closer.Close()
		if derr == nil && old.fetchedAt > lb.GetFetchedAt() {
			// A late, older crawl of the source: the newer one already applied.
			return nil
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	src := sourceValue{fetchedAt: lb.GetFetchedAt(), status: lb.GetSourceStatus(), nofollow: lb.GetSourceNofollow(), title: lb.GetSourceTitle()}
	if err := b.Set(srcKey, src.encode(), nil); err != nil {
		return err
	}

	var key, val []byte
	for _, e := range lb.GetEdges() {
		tgtSURT := urlnorm.SURT(e.GetTargetUrl())
		key = edgeKey(key[:0], tgtSURT, srcSURT, e.GetType(), truncateUTF8(e.GetAnchorText(), MaxAnchorBytes))
		raw, closer, err := b.Get(key)
		var v edgeValue
		exists := err == nil
		switch {
		case exists:
			v, err = decodeEdgeValue(raw)
			closer.Close()
			if err != nil {
				return err
			}
		case !errors.Is(err, pebble.ErrNotFound):
			return err
		}
		wasLive := exists && v.lostAt == 0
		switch e.GetOp() {
		case lgv1.EdgeOp_EDGE_OP_SEEN:
			if !exists || at < v.firstSeen {
				v.firstSeen = at
			}
			if at >= v.lastSeen {
				v.lastSeen = at
				v.rel = e.GetRel()
				v.redirectStatus = e.GetRedirectStatus()
				v.lostAt = 0
			}
		case lgv1.EdgeOp_EDGE_OP_REMOVED:
			if !exists || at < v.lastSeen {
				continue // never seen, or seen again after this removal
			}
			if v.lostAt == 0 || at < v.lostAt {
				v.lostAt = at
			}
		default:
			continue
		}
		val = v.encode(val[:0])
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		if isLive := v.lostAt == 0; isLive != wasLive {
			delta := int64(1)
			if !isLive {
				delta = -1
			}
			if err := ix.bumpTarget(b, tgtSURT, delta); err != nil {
				return err
			}
		}
	}
	return nil
}

// bumpTarget moves the live in-degree of a target and the edge and target
// totals with it.
func (ix *Index) bumpTarget(b *pebble.Batch, tgtSURT string, delta int64) error {
	tk := prefixed(store.PrefixTarget, tgtSURT)
	before, err := store.Counter(b, tk)
	if err != nil {
		return err
	}
	if err := store.AddCounter(b, tk, delta); err != nil {
		return err
	}
	if err := store.AddCounter(b, store.CounterKey(CounterEdges), delta); err != nil {
		return err
	}
	switch after := before + delta; {
	case before == 0 && after > 0:
		return store.AddCounter(b, store.CounterKey(CounterTargets), 1)
	case before > 0 && after == 0:
		return store.AddCounter(b, store.CounterKey(CounterTargets), -1)
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
		n, err := store.Counter(ix.db, it.Key())
		if err != nil {
			return nil, err
		}
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

func setProto(b *pebble.Batch, key []byte, m proto.Message) error {
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
