package indexer

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"slices"
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
//	a kind scope 0 'd' domain           -> SumSpan [links, follow, first, last, spilled, (id(host), links)...]  a referring domain
//	a kind scope 0 'h' host             -> Sum [links]            a referring host, once its domain's record spilled
//	a kind scope 0 'a' anchor           -> Sum [links, domains, spilled, (id(domain), links)...]  an anchor text
//	a kind scope 0 'A' anchor 0 id(domain) -> Sum [links]         an anchor's links from one domain, once spilled (see ids.go)
//	a kind scope 0 'D' rank(links) domain -> {}                 a referring domain by its links
//	a kind scope 0 'N' rank(links) anchor -> {}                 an anchor text by its links
//	a 'd' scope 0 'H'                   -> Sum [id(host) or -1]   the domain's only linked host, or -1 for several
//
// kind is 'h' (scope is HostSURT of the host, port included) or 'd' (scope
// is HostSURT of the registrable domain). The first two are written with
// blind merge operands. The others are read to see a count go from 0 to 1
// or back (which moves the summary's referring domains and hosts, and an
// anchor's referring domains), so they are read, changed and written whole:
// merge operands would pile up in the memtable for every read to walk.
// ('A' keys hold the anchor up to a NUL: anchors come from the HTML
// tokenizer, which turns NUL into U+FFFD.) Referring pages are counted from
// the per-source record (sourceValue.scopes), which ApplyLinks reads anyway.
//
// A referring domain's links by host (to count the scope's referring
// hosts) are kept in its 'd' record the same way, while it has at most
// maxInlineHosts hosts linking in (most have one), and in 'h' records past
// that: a record per referring host cost 1.7 bytes an edge. Host ids come
// from the registry of domain ids (ids.go), which holds any HostSURT. A 'd'
// record is never merged, so the pairs after its span are safe from
// Record.Merge, which takes the last two fields for the span.
//
// An anchor's links by referring domain (to count its referring domains)
// are kept in its 'a' record while it has at most maxInlineDomains of them:
// most anchors are used by one or two domains, and their links then cost
// no more lookups than the 'a' record's. Past that the record spills them
// into 'A' records, and keeps spilled set until it has no links again.
//
// 'D' and 'N' file a scope's referring domains and anchors with at least
// minRankedLinks links by their links in coarse ranks, most links first
// (see linkRank), so that a page of either view reads the ranks that hold
// that page's rows rather than every domain or anchor of the scope. A key
// moves only when its record's count crosses into another rank, a few
// dozen times in the life of a busy anchor rather than once per link:
// moving it on every count would write and compact two keys per change.
//
// A domain's links are often all into one of its hosts. While they are,
// the host's records would repeat the domain's, so only the domain's are
// kept: its 'H' record names that host, and queries of the host read the
// domain's records (see selection.aggScopeIn). When another host of the
// domain gets a link, the first host's records are copied from the
// domain's and 'H' becomes -1: from then on each host has records of its
// own. (On the generated index, half the host records were of domains with
// one linked host.)
//
// A node applies links in one Txn at a time (node.Shard's applyMu, taken
// by its links applier and by its page applier for the edge batches of its
// own shards); two Txns applying links concurrently would race on the read
// records.
const (
	aggKindHost   = 'h'
	aggKindDomain = 'd'

	recSummary      = 's'
	recTLD          = 'l'
	recAnchor       = 'a'
	recDomain       = 'd'
	recHost         = 'h'
	recAnchorDomain = 'A'
	// Rank keys, see above.
	recDomainsByLinks = 'D'
	recAnchorsByLinks = 'N'
	// The domain's linked hosts, see above.
	recHosts = 'H'
)

// severalHosts is the 'H' record of a domain whose hosts have records of
// their own.
const severalHosts = -1

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
	domSpilled // 1 once the (host id, links) pairs are in 'h' records
	domLen
)

// maxInlineHosts bounds the referring hosts a domain record holds.
const maxInlineHosts = 4

// Fields of an anchor record: then, unless spilled, (domain id, links)
// pairs of its referring domains.
const (
	anchorLinks = iota
	anchorDomains
	anchorSpilled // 1 once the pairs are in 'A' records
	anchorLen
)

// maxInlineDomains bounds the referring domains an anchor record holds.
// On the 2M-edge generated index of 64 shards, 16 rather than 4 took the
// aggregates from 11.4 to 10.7 bytes an edge, and 64 rather than 16 from
// 7.30 to 7.02 (32: 7.15). A record is rewritten once per transaction
// that changes it, and BenchmarkApply's external links (30 a page, 500
// anchors) went no slower with 64.
const maxInlineDomains = 64

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
	current map[string]*heldRecord
	// kb holds the key being looked up: a key becomes a string only when
	// it enters a map, and most recur within a batch.
	kb []byte
}

// heldRecord is a record a Txn read and changes.
type heldRecord struct {
	store.Record
	// before are the fields as read: a record not changed is not
	// written, and one whose count changed may move its rank key
	// (recDomainsByLinks, recAnchorsByLinks).
	before []int64
}

func newAggregator(ix *Index) *aggregator {
	return &aggregator{ix: ix, pending: make(map[string]*store.Record), current: make(map[string]*heldRecord)}
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
	rec, err := a.hold(r, key, shape, n, false)
	if err != nil {
		return nil, err
	}
	return rec.Fields, nil
}

// hold is read, returning the held record, whose fields the caller may
// replace. With absent, the caller knows the index holds no record at
// key, which is then not looked up. An anchor record has n fields or more.
func (a *aggregator) hold(r pebble.Reader, key []byte, shape store.Shape, n int, absent bool) (*heldRecord, error) {
	if rec, ok := a.current[string(key)]; ok {
		return rec, nil
	}
	rec := &heldRecord{Record: store.Record{Shape: shape, Fields: make([]int64, n)}}
	fits := func(m int) bool { return m == n || (m > n && hasPairs(key)) }
	var cached []int64
	if !absent {
		a.ix.aggsMu.Lock()
		cached = a.ix.aggs[string(key)]
		a.ix.aggsMu.Unlock()
	}
	switch {
	case absent:
	case cached != nil && fits(len(cached)):
		rec.Fields = slices.Clone(cached)
	default:
		raw, closer, err := r.Get(key)
		switch {
		case err == nil:
			old, derr := store.DecodeRecord(raw)
			closer.Close()
			if derr != nil {
				return nil, fmt.Errorf("%w (key %q)", derr, key)
			}
			if !fits(len(old.Fields)) || old.Shape != shape {
				return nil, fmt.Errorf("indexer: aggregate %q has shape %d with %d fields, want %d with %d", key, old.Shape, len(old.Fields), shape, n)
			}
			rec.Fields = old.Fields
		case !errors.Is(err, pebble.ErrNotFound):
			return nil, err
		}
	}
	rec.before = slices.Clone(rec.Fields)
	a.current[string(key)] = rec
	return rec, nil
}

// count adds delta to the count at key and returns its transition; absent
// is as for hold.
func (a *aggregator) count(r pebble.Reader, key []byte, delta int64, absent bool) (int64, error) {
	rec, err := a.hold(r, key, store.ShapeSum, 1, absent)
	if err != nil {
		return 0, err
	}
	f := rec.Fields
	before := f[0]
	f[0] += delta
	return transition(before, f[0]), nil
}

// flush writes the pending operands and the changed records into b, and
// moves the rank keys of those whose counts changed. A read count back at
// zero is deleted.
func (a *aggregator) flush(b *store.Batch) error {
	var buf []byte
	for k, r := range a.pending {
		buf = r.Append(buf[:0])
		if err := b.Merge([]byte(k), buf, nil); err != nil {
			return err
		}
	}
	for k, r := range a.current {
		if slices.Equal(r.Fields, r.before) {
			continue
		}
		var err error
		if r.Shape == store.ShapeSum && !slices.ContainsFunc(r.Fields, func(f int64) bool { return f != 0 }) {
			err = b.Delete([]byte(k), nil)
		} else {
			buf = r.Append(buf[:0])
			err = b.Set([]byte(k), buf, nil)
		}
		if err != nil {
			return err
		}
		if err := a.moveRank(b, k, r); err != nil {
			return err
		}
	}
	clear(a.pending)
	return nil
}

// moveRank keeps the rank key of a changed 'd' or 'a' record, if k is
// one, in step with its count.
func (a *aggregator) moveRank(b *store.Batch, k string, r *heldRecord) error {
	scope, rest, ok := splitAggKey(k)
	if !ok {
		return nil
	}
	var ranked byte
	switch rest[0] {
	case recDomain:
		ranked = recDomainsByLinks
	case recAnchor:
		ranked = recAnchorsByLinks
	default:
		return nil
	}
	// Field 0 is the links of both records.
	before, after := linkRank(r.before[0]), linkRank(r.Fields[0])
	if before == after {
		return nil
	}
	key := func(rank byte) []byte {
		return append(append([]byte(scope), ranked, rank), rest[1:]...)
	}
	if before != noRank {
		if err := b.Delete(key(before), nil); err != nil {
			return err
		}
	}
	if after == noRank {
		return nil
	}
	return b.Set(key(after), nil, nil)
}

// linkRank is the rank key byte of a record with links links: more links
// sort first, and from 16 links on each power of two splits in four. A
// record with fewer than minRankedLinks has no rank key (noRank): most
// referring domains and anchors of a scope have one link or a few, and the
// views find those among the records themselves, after every ranked row.
func linkRank(links int64) byte {
	if links < minRankedLinks {
		return noRank
	}
	n := bits.Len64(uint64(links)) // 3-63
	if n < 5 {
		return byte(255 - n)
	}
	quarter := int(uint64(links)>>(n-3)) & 3 // the two bits after the leading one
	return byte(255 - (4*n + quarter))
}

// minRankedLinks is the fewest links a record with a rank key has. Rank
// keys for records of 2 or 3 links (layout 8) took 0.25 of the 26.6 bytes
// an edge of the 10M-edge generated index; a page of the views that
// reaches such records reads the scope's records, as it did for those of
// one link.
const minRankedLinks = 4

// rankOf2or3 is the rank key byte of records with 2 or 3 links in layout
// 8, which upgradeLowRanks deletes.
const rankOf2or3 = 253

func init() { store.RegisterUpgrade(8, upgradeLowRanks) }

// upgradeLowRanks turns an index of layout 8 into layout 9: it deletes the
// rank keys of records with 2 or 3 links (see minRankedLinks). Run again
// over its own partial work, it finds fewer to delete.
func upgradeLowRanks(db *pebble.DB) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{store.PrefixAggregate}, UpperBound: []byte{store.PrefixAggregate + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	for it.First(); it.Valid(); it.Next() {
		_, rest, ok := splitAggKey(string(it.Key()))
		if !ok || len(rest) < 2 || rest[0] != recDomainsByLinks && rest[0] != recAnchorsByLinks || rest[1] != rankOf2or3 {
			continue
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return err
		}
		if b.Len() >= 1<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

const noRank = 255

// hasPairs says whether key is that of a record whose fields may go on
// with pairs: an anchor ('a') or referring domain ('d') record.
func hasPairs(key []byte) bool {
	i := bytes.IndexByte(key[min(2, len(key)):], 0) + 3 // the byte after the scope
	return i > 2 && i < len(key) && (key[i] == recAnchor || key[i] == recDomain)
}

// splitAggKey splits an aggregate key into its scope (aggScope) and the
// rest, which starts with the record's kind.
func splitAggKey(k string) (scope, rest string, ok bool) {
	if len(k) < 2 || k[0] != store.PrefixAggregate {
		return "", "", false
	}
	i := strings.IndexByte(k[2:], 0)
	if i < 0 || 2+i+1 >= len(k) {
		return "", "", false
	}
	return k[:2+i+1], k[2+i+1:], true
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
	domainID  string
	domainNum uint64 // the same id
	hostNum   uint64 // the host's id, from the same registry; 0 until looked up (countHost)
	tld       string
}

func newSourceInfo(url string) sourceInfo {
	h := urlnorm.Host(url)
	d := urlnorm.RegistrableDomain(h)
	return sourceInfo{host: h, hostSURT: urlnorm.HostSURT(h), domain: d, domainSURT: urlnorm.HostSURT(d), tld: publicSuffix(d)}
}

// targetScopes are the aggregate scope prefixes of a target URL.
type targetScopes struct {
	domain   string    // registrable domain of the target
	scopes   [2]string // aggScope keys of its host and its domain
	hostSURT string
	hostID   uint64 // 0 until looked up (see ownRecords)
}

// scopesOf returns the aggregate scopes of a target, cached per host.
func (t *Txn) scopesOf(targetURL string) *targetScopes {
	return t.scopesOfHost(urlnorm.Host(targetURL))
}

func (t *Txn) scopesOfHost(h string) *targetScopes {
	if s, ok := t.hostScopes[h]; ok {
		return s
	}
	if len(t.hostScopes) >= 4096 {
		clear(t.hostScopes)
	}
	d := urlnorm.RegistrableDomain(h)
	hs := urlnorm.HostSURT(h)
	s := &targetScopes{domain: d, hostSURT: hs, scopes: [2]string{aggScope(aggKindHost, hs), aggScope(aggKindDomain, urlnorm.HostSURT(d))}}
	t.hostScopes[h] = s
	return s
}

// ownRecords reports whether the links into ts's host are counted in
// records of the host's own, or only in its domain's (see above). With
// link (a link into the host is about to be counted), a domain with no
// linked host yet gets this one, and one whose only host is another has
// that host's records copied from its own first.
func (t *Txn) ownRecords(ts *targetScopes, link bool) (bool, error) {
	a := t.agg
	rec, err := a.hold(t.b, a.key(ts.scopes[1], recHosts), store.ShapeSum, 1, false)
	if err != nil {
		return false, err
	}
	if ts.hostID == 0 {
		if ts.hostID, err = t.ix.domainID(ts.hostSURT); err != nil {
			return false, err
		}
	}
	id := int64(ts.hostID)
	switch st := rec.Fields[0]; {
	case st == severalHosts:
		return true, nil
	case st == id || (st == 0 && !link):
		return false, nil
	case st == 0:
		rec.Fields[0] = id
		return false, nil
	case !link:
		return true, nil
	default:
		if err := t.splitHosts(ts.scopes[1], uint64(st)); err != nil {
			return false, err
		}
		rec.Fields[0] = severalHosts
		return true, nil
	}
}

// liveScope is ownRecords(_, false) of the host of a host scope, and true
// for a domain scope.
func (t *Txn) liveScope(scope string) (bool, error) {
	if scope[1] != aggKindHost {
		return true, nil
	}
	return t.ownRecords(t.scopesOfHost(urlnorm.HostOfSURT(scope[2:len(scope)-1])), false)
}

// splitHosts gives the host with id, so far the only linked host of the
// domain of domainScope, records of its own: copies of the domain's, as
// this Txn has them so far.
func (t *Txn) splitHosts(domainScope string, id uint64) error {
	raw, closer, err := t.b.Get(domainIDKey(id))
	if err != nil {
		return fmt.Errorf("indexer: host id %d of %q: %w", id, domainScope, err)
	}
	hostScope := aggScope(aggKindHost, string(raw))
	closer.Close()
	a := t.agg
	if err := a.flush(t.b); err != nil {
		return err
	}
	for _, r := range a.current { // written: the commit's flush starts from here
		r.before = slices.Clone(r.Fields)
	}
	lo := []byte(domainScope)
	it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: store.PrefixEnd(slices.Clone(lo))})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(lo):]
		if len(rest) > 0 && rest[0] == recHosts {
			continue
		}
		if err := t.b.Set(append([]byte(hostScope), rest...), it.Value(), nil); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// contribute adds (sign +1) or removes (sign -1) one live external link's
// contribution to the aggregates of its target's host and domain. pages
// collects the source's per-scope link counts for the referring-pages count.
// With own false, the host's records are its domain's (see ownRecords).
func (t *Txn) contribute(src *sourceInfo, ts *targetScopes, own bool, sign int64, flags linkFlags, typ lgv1.LinkType, anchor string, pages map[string]int64) error {
	a := t.agg
	for i, scope := range ts.scopes {
		pages[scope] += sign
		if i == 0 && !own {
			continue
		}
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

		dom, err := a.hold(t.b, a.key(scope, recDomain, src.domainSURT), store.ShapeSumSpan, domLen, false)
		if err != nil {
			return err
		}
		// A scope's counts by host and by anchor and domain are parts of
		// its domain and anchor counts: where those are zero, so are the
		// parts, which need no lookup. Most links are the first of their
		// anchor or their source's domain into a scope.
		d := dom.Fields
		newDomain := d[domLinks] == 0
		s[sumDomains] += transition(d[domLinks], d[domLinks]+sign)
		d[domLinks] += sign
		if flags.follow() {
			d[domFollow] += sign
		}
		tr, err := a.countHost(t.b, scope, dom, src, sign, newDomain)
		if err != nil {
			return err
		}
		s[sumHosts] += tr
		if err := a.countAnchor(t.b, scope, anchor, src, sign, newDomain); err != nil {
			return err
		}
	}
	return nil
}

// countHost adds sign to the links into scope from the source's host, kept
// in dom, the record of the source's domain (whose links sign has already
// moved), and returns the transition of the host's count. newDomain says
// the domain had no links into the scope.
func (a *aggregator) countHost(r pebble.Reader, scope string, dom *heldRecord, src *sourceInfo, sign int64, newDomain bool) (int64, error) {
	f := dom.Fields
	var tr int64
	// The host has no 'h' record when its domain had no links, or when
	// the record spills now (the host was not among the pairs).
	absent := newDomain
	if f[domSpilled] == 0 {
		var full bool
		var err error
		if src.hostNum == 0 {
			if src.hostNum, err = a.ix.domainID(src.hostSURT); err != nil {
				return 0, err
			}
		}
		if f, tr, full, err = countInline(f, domLen, int64(src.hostNum), sign, maxInlineHosts); err != nil {
			return 0, fmt.Errorf("indexer: referring domain %q of %q: host %d: %w", src.domainSURT, scope, src.hostNum, err)
		}
		if full {
			// Spill: the pairs become 'h' records, and this host's below.
			for i := domLen; i < len(f); i += 2 {
				raw, closer, err := r.Get(domainIDKey(uint64(f[i])))
				if err != nil {
					return 0, fmt.Errorf("indexer: host id %d of referring domain %q: %w", f[i], src.domainSURT, err)
				}
				k := a.key(scope, recHost, string(raw))
				closer.Close()
				a.current[string(k)] = &heldRecord{Record: store.Record{Shape: store.ShapeSum, Fields: []int64{f[i+1]}}, before: []int64{0}}
			}
			f = f[:domLen]
			f[domSpilled] = 1
			absent = true
		}
	}
	if f[domSpilled] == 1 {
		var err error
		if tr, err = a.count(r, a.key(scope, recHost, src.hostSURT), sign, absent); err != nil {
			return 0, err
		}
	}
	if f[domLinks] == 0 {
		// No links, so no 'h' records left: start again inline.
		f = f[:domLen]
		f[domSpilled] = 0
	}
	dom.Fields = f
	return tr, nil
}

// countAnchor adds sign to the links of an anchor of a scope from the
// source's domain, and moves the anchor's referring domains when that
// domain's count goes from zero or to zero. newDomain says the domain has
// no links into the scope yet.
func (a *aggregator) countAnchor(r pebble.Reader, scope, anchor string, src *sourceInfo, sign int64, newDomain bool) error {
	rec, err := a.hold(r, a.key(scope, recAnchor, anchor), store.ShapeSum, anchorLen, false)
	if err != nil {
		return err
	}
	f := rec.Fields
	// The domain has no 'A' record of this anchor when either has no
	// links, or when the record spills now (it was not among the pairs).
	absent := newDomain || f[anchorLinks] == 0
	f[anchorLinks] += sign
	if f[anchorSpilled] == 0 {
		var tr int64
		var full bool
		if f, tr, full, err = countInline(f, anchorLen, int64(src.domainNum), sign, maxInlineDomains); err != nil {
			return fmt.Errorf("indexer: anchor %q of %q: domain %d: %w", anchor, scope, src.domainNum, err)
		}
		f[anchorDomains] += tr
		if full {
			// Spill: the pairs become 'A' records, and this domain's below.
			for i := anchorLen; i < len(f); i += 2 {
				k := a.key(scope, recAnchorDomain, anchor, "\x00", string(store.AppendID(nil, uint64(f[i]))))
				a.current[string(k)] = &heldRecord{Record: store.Record{Shape: store.ShapeSum, Fields: []int64{f[i+1]}}, before: []int64{0}}
			}
			f = f[:anchorLen]
			f[anchorSpilled] = 1
			absent = true
		}
	}
	if f[anchorSpilled] == 1 {
		tr, err := a.count(r, a.key(scope, recAnchorDomain, anchor, "\x00", src.domainID), sign, absent)
		if err != nil {
			return err
		}
		f[anchorDomains] += tr
	}
	if f[anchorLinks] == 0 {
		// No links, so no 'A' records left: start again inline.
		f = f[:anchorLen]
		f[anchorDomains], f[anchorSpilled] = 0, 0
	}
	rec.Fields = f
	return nil
}

var errNotInline = errors.New("loses a link it has none from")

// countInline adds sign to the count paired with id among the (id, count)
// pairs after a record's first n fields, and returns the fields and the
// count's transition. full says the id is not among max pairs already:
// nothing is changed, and the caller spills the pairs into records of
// their own.
func countInline(f []int64, n int, id, sign int64, max int) (_ []int64, tr int64, full bool, err error) {
	i := n
	for i < len(f) && f[i] != id {
		i += 2
	}
	switch {
	case i < len(f):
		f[i+1] += sign
		tr = transition(f[i+1]-sign, f[i+1])
		if f[i+1] == 0 {
			f = slices.Delete(f, i, i+2)
		}
		return f, tr, false, nil
	case sign < 0:
		return f, 0, false, errNotInline
	case (len(f)-n)/2 < max:
		return append(f, id, 1), 1, false, nil
	}
	return f, 0, true, nil
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
