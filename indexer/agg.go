package indexer

import (
	"errors"
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
//	a kind scope 0 's' name              -> Sum [n]                 summary counter (names below)
//	a kind scope 0 't'                   -> Span [first, last]      first and last seen of any link
//	a kind scope 0 'd' domain            -> SumSpan [links, follow, first, last]  a referring domain
//	a kind scope 0 'h' host              -> Sum [links]             a referring host
//	a kind scope 0 'a' anchor            -> Sum [links, domains]    an anchor text
//	a kind scope 0 'A' domain 0 anchor   -> Sum [links]             an anchor's links from one domain
//
// kind is 'h' (scope is HostSURT of the host, port included) or 'd' (scope
// is HostSURT of the registrable domain). Referring pages are counted from
// the per-source record (sourceValue.scopes), which ApplyLinks reads anyway.
//
// Aggregates are read-modify-write only through transition counts kept in
// the Txn, and only the links applier of a node writes them; two Txns
// applying links concurrently would race on them.
const (
	aggKindHost   = 'h'
	aggKindDomain = 'd'

	recSummary      = 's'
	recSpan         = 't'
	recDomain       = 'd'
	recHost         = 'h'
	recAnchor       = 'a'
	recAnchorDomain = 'A'
)

// Summary counter names.
const (
	sumBacklinks = "backlinks"
	sumFollow    = "follow"
	sumNofollow  = "nofollow"
	sumUGC       = "ugc"
	sumSponsored = "sponsored"
	sumPages     = "pages"
	sumHosts     = "hosts"
	sumDomains   = "domains"
	sumTypeP     = "type/" // + link type name
	sumTLDP      = "tld/"  // + public suffix of the source
)

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
	// pending is the merge operand to write per key.
	pending map[string]*store.Record
	// counts is the current first field of transition-counted keys: the
	// committed value plus pending, loaded on first use.
	counts map[string]int64
}

func newAggregator() *aggregator {
	return &aggregator{pending: make(map[string]*store.Record), counts: make(map[string]int64)}
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

// count adds delta to the first field of key (plus the other fields, merged
// blindly) and reports the field's value before and after.
func (a *aggregator) count(r pebble.Reader, key string, shape store.Shape, delta int64, more ...int64) (before, after int64, err error) {
	before, ok := a.counts[key]
	if !ok {
		raw, closer, err := r.Get([]byte(key))
		switch {
		case err == nil:
			rec, derr := store.DecodeRecord(raw)
			closer.Close()
			if derr != nil {
				return 0, 0, derr
			}
			if len(rec.Fields) > 0 {
				before = rec.Fields[0]
			}
		case !errors.Is(err, pebble.ErrNotFound):
			return 0, 0, err
		}
	}
	after = before + delta
	a.counts[key] = after
	a.add(key, shape, append([]int64{delta}, more...)...)
	return before, after, nil
}

// flush writes the pending operands into b and resets the aggregator.
func (a *aggregator) flush(b *store.Batch) error {
	var buf []byte
	for k, r := range a.pending {
		buf = r.Append(buf[:0])
		if err := b.Merge([]byte(k), buf, nil); err != nil {
			return err
		}
	}
	clear(a.pending)
	clear(a.counts)
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
	a, b := t.agg, t.b
	follow := int64(0)
	if flags.follow() {
		follow = sign
	}
	for _, scope := range ts.scopes {
		pages[scope] += sign
		sum := func(name string) { a.add(scope+string(recSummary)+name, store.ShapeSum, sign) }
		sum(sumBacklinks)
		if flags.follow() {
			sum(sumFollow)
		}
		if flags&(flagNofollow|flagPageNofollow) != 0 {
			sum(sumNofollow)
		}
		if flags&flagUGC != 0 {
			sum(sumUGC)
		}
		if flags&flagSponsored != 0 {
			sum(sumSponsored)
		}
		sum(sumTypeP + typeName(typ))
		sum(sumTLDP + src.tld)

		before, after, err := a.count(b, scope+string(recDomain)+src.domainSURT, store.ShapeSumSpan, sign, follow, 0, 0)
		if err != nil {
			return err
		}
		if d := transition(before, after); d != 0 {
			sum(sumDomains) // sign == d here
		}
		before, after, err = a.count(b, scope+string(recHost)+src.hostSURT, store.ShapeSum, sign)
		if err != nil {
			return err
		}
		if transition(before, after) != 0 {
			sum(sumHosts)
		}
		before, after, err = a.count(b, scope+string(recAnchorDomain)+src.domainSURT+"\x00"+anchor, store.ShapeSum, sign)
		if err != nil {
			return err
		}
		a.add(scope+string(recAnchor)+anchor, store.ShapeSum, sign, transition(before, after))
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
func (t *Txn) seenSpan(src *sourceInfo, scope string, first, last int64) {
	t.agg.add(scope+string(recSpan), store.ShapeSpan, first, last)
	t.agg.add(scope+string(recDomain)+src.domainSURT, store.ShapeSumSpan, 0, 0, first, last)
}
