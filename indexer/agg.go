package indexer

import (
	"encoding/binary"
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
//	a kind scope 0 's'         -> SumSpan [summary fields, first, last]  (sum* below)
//	a kind scope 0 'l' suffix  -> Sum [links]            links by public suffix of the source
//	a kind scope 0 'a' anchor  -> Sum [links, domains]   an anchor text
//	a kind scope 0 'd' domain  -> domainRecord           a referring domain, with its hosts and anchors
//
// kind is 'h' (scope is HostSURT of the host, port included) or 'd' (scope
// is HostSURT of the registrable domain). The first three are written with
// blind merge operands. A domain record is read, changed and written whole:
// it holds the per-host and per-anchor counts whose transitions (0 <-> 1)
// move the referring hosts and the anchors' referring domains, and a link
// batch (one source page) touches one domain record per scope. Referring
// pages are counted from the per-source record (sourceValue.scopes), which
// ApplyLinks reads anyway.
//
// Only the links applier of a node writes aggregates, one Txn at a time;
// two Txns applying links concurrently would race on the domain records.
const (
	aggKindHost   = 'h'
	aggKindDomain = 'd'

	recSummary = 's'
	recTLD     = 'l'
	recAnchor  = 'a'
	recDomain  = 'd'
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

// maxLinkType is the highest link type the summary record counts.
const maxLinkType = int(lgv1.LinkType_LINK_TYPE_SITEMAP)

// aggScope is the key prefix of a scope's aggregates: a kind scope 0.
func aggScope(kind byte, scopeSURT string) string {
	return string([]byte{store.PrefixAggregate, kind}) + scopeSURT + "\x00"
}

// domainRecord is a referring domain of a scope: its live external links
// into the scope, how many are follow, when they were first and last seen,
// and its links by source host and by anchor text.
type domainRecord struct {
	links, follow, first, last int64
	hosts, anchors             map[string]int64
}

func (d *domainRecord) encode(dst []byte) []byte {
	for _, v := range []int64{d.links, d.follow, d.first, d.last} {
		dst = binary.AppendVarint(dst, v)
	}
	for _, m := range []map[string]int64{d.hosts, d.anchors} {
		dst = binary.AppendUvarint(dst, uint64(len(m)))
		for k, v := range m {
			dst = binary.AppendUvarint(dst, uint64(len(k)))
			dst = append(dst, k...)
			dst = binary.AppendVarint(dst, v)
		}
	}
	return dst
}

var errBadDomainRecord = errors.New("indexer: malformed referring domain record")

// decodeDomainRecord parses a record; with headOnly it skips the maps.
func decodeDomainRecord(b []byte, headOnly bool) (*domainRecord, error) {
	d := &domainRecord{}
	for _, p := range []*int64{&d.links, &d.follow, &d.first, &d.last} {
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, errBadDomainRecord
		}
		*p, b = v, b[n:]
	}
	if headOnly {
		return d, nil
	}
	for _, m := range []*map[string]int64{&d.hosts, &d.anchors} {
		c, n := binary.Uvarint(b)
		if n <= 0 || c > uint64(len(b)) {
			return nil, errBadDomainRecord
		}
		b = b[n:]
		*m = make(map[string]int64, c)
		for range c {
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errBadDomainRecord
			}
			k := string(b[n : n+int(l)])
			b = b[n+int(l):]
			v, n := binary.Varint(b)
			if n <= 0 {
				return nil, errBadDomainRecord
			}
			(*m)[k], b = v, b[n:]
		}
	}
	return d, nil
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
	// pending is the merge operand to write per key.
	pending map[string]*store.Record
	// domains are the domain records read (and changed) by this Txn.
	domains map[string]*domainRecord
}

func newAggregator() *aggregator {
	return &aggregator{pending: make(map[string]*store.Record), domains: make(map[string]*domainRecord)}
}

// add merges fields into key's pending operand.
func (a *aggregator) add(key string, shape store.Shape, fields ...int64) {
	r := a.pending[key]
	if r == nil {
		r = &store.Record{Shape: shape, Fields: make([]int64, len(fields))}
		a.pending[key] = r
	}
	_ = r.Merge(store.Record{Shape: shape, Fields: fields}) // same shape by construction
}

// summary returns the pending summary operand of a scope.
func (a *aggregator) summary(scope string) []int64 {
	key := scope + string(recSummary)
	r := a.pending[key]
	if r == nil {
		r = &store.Record{Shape: store.ShapeSumSpan, Fields: make([]int64, sumLen)}
		a.pending[key] = r
	}
	return r.Fields
}

// domain returns the domain record at key, read on first use.
func (a *aggregator) domain(r pebble.Reader, key string) (*domainRecord, error) {
	if d, ok := a.domains[key]; ok {
		return d, nil
	}
	d := &domainRecord{hosts: map[string]int64{}, anchors: map[string]int64{}}
	raw, closer, err := r.Get([]byte(key))
	switch {
	case err == nil:
		d, err = decodeDomainRecord(raw, false)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("%w (key %q)", err, key)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, err
	}
	a.domains[key] = d
	return d, nil
}

// flush writes the pending operands and the domain records into b and
// resets the aggregator.
func (a *aggregator) flush(b *store.Batch) error {
	var buf []byte
	for k, r := range a.pending {
		buf = r.Append(buf[:0])
		if err := b.Merge([]byte(k), buf, nil); err != nil {
			return err
		}
	}
	for k, d := range a.domains {
		if err := b.Set([]byte(k), d.encode(nil), nil); err != nil {
			return err
		}
	}
	clear(a.pending)
	clear(a.domains)
	return nil
}

// sourceInfo is what the aggregates need of a link batch's source.
type sourceInfo struct {
	host, hostSURT     string
	domain, domainSURT string
	tld                string
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
		a.add(scope+string(recTLD)+src.tld, store.ShapeSum, sign)

		d, err := a.domain(t.b, scope+string(recDomain)+src.domainSURT)
		if err != nil {
			return err
		}
		s[sumDomains] += transition(d.links, d.links+sign)
		d.links += sign
		if flags.follow() {
			d.follow += sign
		}
		s[sumHosts] += bump(d.hosts, src.hostSURT, sign)
		a.add(scope+string(recAnchor)+anchor, store.ShapeSum, sign, bump(d.anchors, anchor, sign))
	}
	return nil
}

// bump adds delta to m[k], dropping zero counts, and returns the count's
// transition.
func bump(m map[string]int64, k string, delta int64) int64 {
	before := m[k]
	if after := before + delta; after != 0 {
		m[k] = after
	} else {
		delete(m, k)
	}
	return transition(before, before+delta)
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
	d, err := t.agg.domain(t.b, scope+string(recDomain)+src.domainSURT)
	if err != nil {
		return err
	}
	if d.first == 0 || first < d.first {
		d.first = first
	}
	d.last = max(d.last, last)
	return nil
}
