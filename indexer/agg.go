package indexer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Aggregates answer Summary, ReferringDomains and Anchors of a target host
// or registrable domain without scanning its backlinks. They count live
// external links only (source and target on different registrable
// domains), which is what those views show by default; queries that ask
// for internal links or other filters scan the edges instead.
//
// They change only when an edge's contribution changes (it becomes live or
// lost, or its follow flags change), which ApplyLinks detects from the edge's
// stored state, so a redelivered batch never counts twice. Keys, under
// store.PrefixAggregate:
//
//	a kind scope 0 's'                  -> SumSpan [summary fields, first, last]  (sum* below)
//	a kind scope 0 'l' suffix           -> Sum [links]            links by public suffix of the source
//	a kind scope 0 'a' anchor           -> Sum [links]            an anchor text
//	a kind scope 0 'A' anchor 0 id(domain) -> Sum [links]         an anchor's links from one domain (see ids.go)
//	a kind scope 0 'd' domain           -> SumSpan [links, follow, first, last]  a referring domain
//	a kind scope 0 'h' host             -> Sum [links]            a referring host
//
// kind is 'h' (scope is HostSURT of the host, port included) or 'd' (scope
// is HostSURT of the registrable domain). The first four are written with
// blind merge operands; an anchor's referring domains are counted when it
// is queried, from its 'A' records (anchors come from the HTML tokenizer,
// which turns NUL into U+FFFD, so "anchor 0" is an exact prefix). The last
// two are read to see a count go from 0 to 1 or back (which moves the
// summary's referring domains and hosts), so they are read, changed and
// written whole: merge operands would pile up in the memtable for every
// read to walk. A link batch (one source page) reads one 'd' and one 'h'
// record per scope, whatever its number of links. Referring pages are
// counted from the per-source record (sourceValue.scopes), which ApplyLinks
// reads anyway.
//
// Only the links applier of a node writes aggregates, one Txn at a time;
// two Txns applying links concurrently would race on the read records.
const (
	aggKindHost   = 'h'
	aggKindDomain = 'd'

	recSummary      = 's'
	recTLD          = 'l'
	recAnchor       = 'a'
	recDomain       = 'd'
	recHost         = 'h'
	recAnchorDomain = 'A'
)

// Fields of the summary record.
const (
	sumBacklinks = iota
	sumFollow
	sumNofollow
	sumUGC
	sumSponsored
	sumPages
	sumHosts
	sumDomains
	sumTypes // + LinkType - 1, for each link type
	sumFirst = sumTypes + maxLinkType
	sumLast  = sumFirst + 1
	sumLen   = sumLast + 1
)

// Fields of a referring domain record.
const (
	domLinks = iota
	domFollow
	domFirst
	domLast
	domLen
)

// maxLinkType is the highest link type the summary record counts.
const maxLinkType = int(lgv1.LinkType_LINK_TYPE_SITEMAP)

// aggScope is the key prefix of a scope's aggregates: a kind scope 0.
func aggScope(kind byte, scopeSURT string) string {
	return string([]byte{store.PrefixAggregate, kind}) + scopeSURT + "\x00"
}

// typeName is the short name of a link type ("a", "img", "meta_refresh").
func typeName(t lgv1.LinkType) string {
	n, ok := lgv1.LinkType_name[int32(t)]
	if !ok || t == lgv1.LinkType_LINK_TYPE_UNSPECIFIED {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(n, "LINK_TYPE_"))
}

// publicSuffix returns the public suffix of a registrable domain
// ("example.co.uk" -> "co.uk"); IPs and single labels have none.
func publicSuffix(domain string) string {
	if i := strings.IndexByte(domain, '.'); i >= 0 && !strings.HasPrefix(domain, "[") && !isIPv4(domain) {
		return domain[i+1:]
	}
	return "(none)"
}

func isIPv4(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// aggregator holds a Txn's aggregate updates until Commit.
type aggregator struct {
	ix *Index
	// pending is the merge operand to write per key.
	pending map[string]*store.Record
	// current is the whole record of each read key, read on first use.
	current map[string]*store.Record
	// kb holds the key being looked up: a key becomes a string only when
	// it enters a map, and most recur within a batch.
	kb []byte
}

func newAggregator(ix *Index) *aggregator {
	return &aggregator{ix: ix, pending: make(map[string]*store.Record), current: make(map[string]*store.Record)}
}

// key returns the key of the record rec of scope, named by parts, in the
// aggregator's buffer: it is valid until the next call.
func (a *aggregator) key(scope string, rec byte, parts ...string) []byte {
	k := append(append(a.kb[:0], scope...), rec)
	for _, p := range parts {
		k = append(k, p...)
	}
	a.kb = k
	return k
}

// addSum adds delta to the pending count operand at key.
func (a *aggregator) addSum(key []byte, delta int64) {
	r := a.pending[string(key)]
	if r == nil {
		r = &store.Record{Shape: store.ShapeSum, Fields: make([]int64, 1)}
		a.pending[string(key)] = r
	}
	r.Fields[0] += delta
}

// summary returns the pending summary operand of a scope.
func (a *aggregator) summary(scope string) []int64 {
	key := a.key(scope, recSummary)
	r := a.pending[string(key)]
	if r == nil {
		r = &store.Record{Shape: store.ShapeSumSpan, Fields: make([]int64, sumLen)}
		a.pending[string(key)] = r
	}
	return r.Fields
}

// read returns the fields of the whole record at key, read on first use
// (zeros if there is none).
func (a *aggregator) read(r pebble.Reader, key []byte, shape store.Shape, n int) ([]int64, error) {
	if rec, ok := a.current[string(key)]; ok {
		return rec.Fields, nil
	}
	rec := &store.Record{Shape: shape, Fields: make([]int64, n)}
	a.ix.aggsMu.Lock()
	cached, ok := a.ix.aggs[string(key)]
	a.ix.aggsMu.Unlock()
	if ok && len(cached) == n {
		copy(rec.Fields, cached)
		a.current[string(key)] = rec
		return rec.Fields, nil
	}
	raw, closer, err := r.Get(key)
	switch {
	case err == nil:
		old, derr := store.DecodeRecord(raw)
		closer.Close()
		if derr != nil {
			return nil, fmt.Errorf("%w (key %q)", derr, key)
		}
		if len(old.Fields) != n || old.Shape != shape {
			return nil, fmt.Errorf("indexer: aggregate %q has shape %d with %d fields, want %d with %d", key, old.Shape, len(old.Fields), shape, n)
		}
		copy(rec.Fields, old.Fields)
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, err
	}
	a.current[string(key)] = rec
	return rec.Fields, nil
}

// count adds delta to the count at key and returns its transition.
func (a *aggregator) count(r pebble.Reader, key []byte, delta int64) (int64, error) {
	f, err := a.read(r, key, store.ShapeSum, 1)
	if err != nil {
		return 0, err
	}
	before := f[0]
	f[0] += delta
	return transition(before, f[0]), nil
}

// flush writes the pending operands and the read records into b. A read
// count back at zero is deleted.
func (a *aggregator) flush(b *store.Batch) error {
	var buf []byte
	for k, r := range a.pending {
		buf = r.Append(buf[:0])
		if err := b.Merge([]byte(k), buf, nil); err != nil {
			return err
		}
	}
	for k, r := range a.current {
		var err error
		if r.Shape == store.ShapeSum && len(r.Fields) == 1 && r.Fields[0] == 0 {
			err = b.Delete([]byte(k), nil)
		} else {
			buf = r.Append(buf[:0])
			err = b.Set([]byte(k), buf, nil)
		}
		if err != nil {
			return err
		}
	}
	clear(a.pending)
	return nil
}

// committed puts the read records, now committed, in the index's cache and
// resets the aggregator.
func (a *aggregator) committed(ix *Index) {
	ix.aggsMu.Lock()
	defer ix.aggsMu.Unlock()
	if len(ix.aggs)+len(a.current) > aggCacheSize {
		clear(ix.aggs)
	}
	for k, r := range a.current {
		ix.aggs[k] = r.Fields
	}
	clear(a.current)
}

// sourceInfo is what the aggregates need of a link batch's source.
type sourceInfo struct {
	host, hostSURT     string
	domain, domainSURT string
	// domainID is the domain's id (see ids.go) as it appears in keys.
	domainID string
	tld      string
}

func newSourceInfo(url string) sourceInfo {
	h := urlnorm.Host(url)
	d := urlnorm.RegistrableDomain(h)
	return sourceInfo{host: h, hostSURT: urlnorm.HostSURT(h), domain: d, domainSURT: urlnorm.HostSURT(d), tld: publicSuffix(d)}
}

// targetScopes are the aggregate scope prefixes of a target URL.
type targetScopes struct {
	domain string    // registrable domain of the target
	scopes [2]string // aggScope keys of its host and its domain
}

// scopesOf returns the aggregate scopes of a target, cached per host.
func (t *Txn) scopesOf(targetURL string) *targetScopes {
	h := urlnorm.Host(targetURL)
	if s, ok := t.hostScopes[h]; ok {
		return s
	}
	if len(t.hostScopes) >= 4096 {
		clear(t.hostScopes)
	}
	d := urlnorm.RegistrableDomain(h)
	s := &targetScopes{domain: d, scopes: [2]string{aggScope(aggKindHost, urlnorm.HostSURT(h)), aggScope(aggKindDomain, urlnorm.HostSURT(d))}}
	t.hostScopes[h] = s
	return s
}

// contribute adds (sign +1) or removes (sign -1) one live external link's
// contribution to the aggregates of its target's host and domain. pages
// collects the source's per-scope link counts for the referring-pages count.
func (t *Txn) contribute(src *sourceInfo, ts *targetScopes, sign int64, flags linkFlags, typ lgv1.LinkType, anchor string, pages map[string]int64) error {
	a := t.agg
	for _, scope := range ts.scopes {
		pages[scope] += sign
		s := a.summary(scope)
		s[sumBacklinks] += sign
		if flags.follow() {
			s[sumFollow] += sign
		}
		if flags&(flagNofollow|flagPageNofollow) != 0 {
			s[sumNofollow] += sign
		}
		if flags&flagUGC != 0 {
			s[sumUGC] += sign
		}
		if flags&flagSponsored != 0 {
			s[sumSponsored] += sign
		}
		if typ > 0 && int(typ) <= maxLinkType {
			s[sumTypes+int(typ)-1] += sign
		}
		a.addSum(a.key(scope, recTLD, src.tld), sign)

		d, err := a.read(t.b, a.key(scope, recDomain, src.domainSURT), store.ShapeSumSpan, domLen)
		if err != nil {
			return err
		}
		s[sumDomains] += transition(d[domLinks], d[domLinks]+sign)
		d[domLinks] += sign
		if flags.follow() {
			d[domFollow] += sign
		}
		tr, err := a.count(t.b, a.key(scope, recHost, src.hostSURT), sign)
		if err != nil {
			return err
		}
		s[sumHosts] += tr
		a.addSum(a.key(scope, recAnchor, anchor), sign)
		a.addSum(a.key(scope, recAnchorDomain, anchor, "\x00", src.domainID), sign)
	}
	return nil
}

// transition is +1 when a count becomes positive, -1 when it drops to zero.
func transition(before, after int64) int64 {
	switch {
	case before <= 0 && after > 0:
		return 1
	case before > 0 && after <= 0:
		return -1
	}
	return 0
}

// seenSpan extends the first/last seen of a scope the batch's source links
// into and of the source's domain among the scope's referring domains.
func (t *Txn) seenSpan(src *sourceInfo, scope string, first, last int64) error {
	s := t.agg.summary(scope)
	if s[sumFirst] == 0 || first < s[sumFirst] {
		s[sumFirst] = first
	}
	s[sumLast] = max(s[sumLast], last)
	d, err := t.agg.read(t.b, t.agg.key(scope, recDomain, src.domainSURT), store.ShapeSumSpan, domLen)
	if err != nil {
		return err
	}
	if d[domFirst] == 0 || first < d[domFirst] {
		d[domFirst] = first
	}
	d[domLast] = max(d[domLast], last)
	return nil
}
