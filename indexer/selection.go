package indexer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// selection is a validated target scope plus filter: the edge key ranges
// to read and the test each edge must pass.
type selection struct {
	scope lgv1.Scope
	// target is the normalized target URL, or the host or domain name.
	target string
	// ranges are the edge key ranges [lo, hi) in key order.
	ranges [][2][]byte
	// domainSURT is the HostSURT of the target's registrable domain; a
	// source on it is internal.
	domainSURT      string
	excludeInternal bool

	filter *lgv1.Filter
	types  map[lgv1.LinkType]bool
	anchor string // lowercased anchor_contains
	// Time bounds in Unix ms; 0 is open.
	firstFrom, firstTo, lastFrom, lastTo, lostFrom, lostTo int64
	// state is LIVE, LOST or ALL, never UNSPECIFIED.
	state lgv1.LinkState

	// minAuthority is filter.min_authority; scores holds the authorities
	// (set by Index.selection; nil scores every domain 0).
	minAuthority int32
	scores       *rank.Scores

	// names resolves the ids in the keys of the reader being read, and
	// targetDomain is the id of the target's domain there (0: none, so no
	// source is internal); see use.
	names        *names
	targetDomain uint64
	// namesMax bounds names; 0 is namesCacheSize.
	namesMax int
	// bases is the index's cache of source bases for names (nil: names
	// keeps its own), and domainIDs its cache of domain ids (nil: none),
	// at generation domainGen, read before any reader the selection uses
	// was taken.
	bases     *baseCache
	domainIDs *domainIDCache
	domainGen uint64
	// lastTarget is the target of the edge matched last: the edges of a
	// target are adjacent, so the next one shares its string.
	lastTarget string
	// borrow has match's rows point into the key for their anchor (see
	// edgeKeyParts.split), for rows used at once.
	borrow bool
}

// use makes the selection read the ids of edges from r; match needs it
// first.
func (sel *selection) use(r pebble.Reader) error {
	if sel.names != nil && sel.names.r == r {
		return nil
	}
	sel.names = newNames(r, cmp.Or(sel.namesMax, namesCacheSize), sel.bases)
	var err error
	sel.targetDomain, err = sel.domainIDs.lookup(r, sel.domainSURT, sel.domainGen)
	return err
}

// selection is newSelection with the index's current authorities and
// caches. The caller takes its snapshot after (see domainIDCache).
func (ix *Index) selection(target string, scope lgv1.Scope, f *lgv1.Filter) (*selection, error) {
	sel, err := newSelection(target, scope, f)
	if err != nil {
		return nil, err
	}
	sel.scores, sel.bases, sel.domainIDs, sel.domainGen = ix.rankScores(), ix.bases, ix.queryDomainIDs, ix.queryDomainIDs.generation()
	return sel, nil
}

// quoteShort quotes s for an error message, cut after about 100 bytes: a
// message that echoes a 5 KB URL hides what it says.
func quoteShort(s string) string {
	const keep = 100
	if len(s) <= keep+20 {
		return strconv.Quote(s)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// newSelection validates a query's target, scope and filter.
func newSelection(target string, scope lgv1.Scope, f *lgv1.Filter) (*selection, error) {
	if f == nil {
		f = &lgv1.Filter{}
	}
	sel := &selection{scope: scope, filter: f}
	if strings.TrimSpace(target) == "" {
		return nil, fmt.Errorf("%w: target is empty; give a URL, host or domain", ErrInvalidArgument)
	}
	prefix := func(s string) [2][]byte {
		lo := prefixed(store.PrefixEdge, s)
		return [2][]byte{lo, store.PrefixEnd(lo)}
	}
	var host string
	switch scope {
	case lgv1.Scope_SCOPE_UNSPECIFIED, lgv1.Scope_SCOPE_URL, lgv1.Scope_SCOPE_PREFIX:
		n, err := urlnorm.Normalize(target)
		if err != nil {
			return nil, fmt.Errorf("%w: target %s is not an absolute http(s) URL: %v", ErrInvalidArgument, quoteShort(target), err)
		}
		sel.target, host = n, urlnorm.Host(n)
		if scope == lgv1.Scope_SCOPE_PREFIX {
			sel.ranges = [][2][]byte{prefix(urlnorm.SURT(n))}
		} else {
			sel.scope = lgv1.Scope_SCOPE_URL
			sel.ranges = [][2][]byte{prefix(urlnorm.SURT(n) + "\x00")}
		}
	case lgv1.Scope_SCOPE_HOST, lgv1.Scope_SCOPE_DOMAIN:
		u := target
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		n, err := urlnorm.Normalize(u)
		if err != nil {
			return nil, fmt.Errorf("%w: target %s is not a host name or URL: %v", ErrInvalidArgument, quoteShort(target), err)
		}
		host = urlnorm.Host(n)
		if scope == lgv1.Scope_SCOPE_HOST {
			sel.target = host
			sel.ranges = [][2][]byte{prefix(urlnorm.HostSURT(host) + ")")}
		} else {
			if urlnorm.IsPublicSuffix(host) {
				// Its range would hold every domain under it, which no
				// aggregate of a domain counts: backlinks and stats would
				// disagree.
				return nil, fmt.Errorf("%w: target %q is a public suffix (like com, co.uk or github.io), not a registrable domain; give a domain such as example.com, or use the host scope", ErrInvalidArgument, target)
			}
			sel.target = urlnorm.RegistrableDomain(host)
			d := urlnorm.HostSURT(sel.target)
			// ')' < ',' < ':' so these ranges are in key order: the domain
			// itself, its subdomains, then the domain on other ports.
			sel.ranges = [][2][]byte{prefix(d + ")"), prefix(d + ","), prefix(d + ":")}
		}
	default:
		return nil, fmt.Errorf("%w: unknown scope %v; use url, prefix, host or domain", ErrInvalidArgument, scope)
	}
	sel.domainSURT = urlnorm.HostSURT(urlnorm.RegistrableDomain(host))
	switch f.GetInternal() {
	case lgv1.InternalLinks_INTERNAL_LINKS_UNSPECIFIED:
		sel.excludeInternal = sel.scope == lgv1.Scope_SCOPE_HOST || sel.scope == lgv1.Scope_SCOPE_DOMAIN
	case lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE:
		sel.excludeInternal = true
	case lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE:
	default:
		return nil, fmt.Errorf("%w: unknown internal links setting %v; use include or exclude", ErrInvalidArgument, f.GetInternal())
	}
	if err := sel.compileFilter(); err != nil {
		return nil, err
	}
	return sel, nil
}

func (sel *selection) compileFilter() error {
	f := sel.filter
	for _, t := range f.GetTypes() {
		if _, ok := lgv1.LinkType_name[int32(t)]; !ok || t == lgv1.LinkType_LINK_TYPE_UNSPECIFIED {
			return fmt.Errorf("%w: unknown link type %v", ErrInvalidArgument, t)
		}
		if sel.types == nil {
			sel.types = make(map[lgv1.LinkType]bool)
		}
		sel.types[t] = true
	}
	sel.anchor = strings.ToLower(f.GetAnchorContains())
	if sel.minAuthority = f.GetMinAuthority(); sel.minAuthority < 0 || sel.minAuthority > 100 {
		return fmt.Errorf("%w: min_authority %d out of range 0..100", ErrInvalidArgument, sel.minAuthority)
	}
	ms := func(name string, ts interface {
		IsValid() bool
		AsTime() time.Time
	}, present bool) (int64, error) {
		if !present {
			return 0, nil
		}
		if !ts.IsValid() {
			return 0, fmt.Errorf("%w: filter.%s is not a valid timestamp", ErrInvalidArgument, name)
		}
		return ts.AsTime().UnixMilli(), nil
	}
	var err error
	if sel.firstFrom, err = ms("first_seen_from", f.GetFirstSeenFrom(), f.FirstSeenFrom != nil); err != nil {
		return err
	}
	if sel.firstTo, err = ms("first_seen_to", f.GetFirstSeenTo(), f.FirstSeenTo != nil); err != nil {
		return err
	}
	if sel.lastFrom, err = ms("last_seen_from", f.GetLastSeenFrom(), f.LastSeenFrom != nil); err != nil {
		return err
	}
	if sel.lastTo, err = ms("last_seen_to", f.GetLastSeenTo(), f.LastSeenTo != nil); err != nil {
		return err
	}
	if sel.lostFrom, err = ms("lost_from", f.GetLostFrom(), f.LostFrom != nil); err != nil {
		return err
	}
	if sel.lostTo, err = ms("lost_to", f.GetLostTo(), f.LostTo != nil); err != nil {
		return err
	}
	switch sel.state = f.GetState(); sel.state {
	case lgv1.LinkState_LINK_STATE_UNSPECIFIED:
		sel.state = lgv1.LinkState_LINK_STATE_LIVE
		if f.GetIncludeLost() {
			sel.state = lgv1.LinkState_LINK_STATE_ALL
		}
	case lgv1.LinkState_LINK_STATE_LIVE, lgv1.LinkState_LINK_STATE_LOST, lgv1.LinkState_LINK_STATE_ALL:
		if f.GetIncludeLost() && sel.state != lgv1.LinkState_LINK_STATE_ALL {
			return fmt.Errorf("%w: include_lost contradicts state %v", ErrInvalidArgument, sel.state)
		}
	default:
		return fmt.Errorf("%w: unknown link state %v; use live, lost or all", ErrInvalidArgument, sel.state)
	}
	if (sel.lostFrom != 0 || sel.lostTo != 0) && sel.state == lgv1.LinkState_LINK_STATE_LIVE {
		if f.GetState() == lgv1.LinkState_LINK_STATE_LIVE {
			return fmt.Errorf("%w: lost_from/lost_to select lost links; state live has none", ErrInvalidArgument)
		}
		sel.state = lgv1.LinkState_LINK_STATE_LOST
	}
	return nil
}

// live reports whether the selection keeps live links only, as the
// aggregates count them.
func (sel *selection) live() bool { return sel.state == lgv1.LinkState_LINK_STATE_LIVE }

// aggregated reports whether the maintained aggregates answer views of
// this selection: a host or domain whose filter asks for nothing the
// aggregates do not keep (they hold live external links only).
func (sel *selection) aggregated() bool {
	f := sel.filter
	return (sel.scope == lgv1.Scope_SCOPE_HOST || sel.scope == lgv1.Scope_SCOPE_DOMAIN) &&
		sel.excludeInternal && sel.live() && !f.GetFollowOnly() && len(sel.types) == 0 &&
		sel.anchor == "" && sel.minAuthority == 0 && f.FirstSeenFrom == nil && f.FirstSeenTo == nil && f.LastSeenFrom == nil && f.LastSeenTo == nil
}

// aggScopeIn is the aggregate key prefix of an aggregated selection in r:
// a host's own, or its domain's while it is the domain's only linked host
// (see ownRecords).
func (sel *selection) aggScopeIn(r pebble.Reader) (string, error) {
	if sel.scope != lgv1.Scope_SCOPE_HOST {
		return aggScope(aggKindDomain, urlnorm.HostSURT(sel.target)), nil
	}
	host := urlnorm.HostSURT(sel.target)
	domain := aggScope(aggKindDomain, urlnorm.HostSURT(urlnorm.RegistrableDomain(sel.target)))
	raw, closer, err := r.Get([]byte(domain + string(recHosts)))
	if errors.Is(err, pebble.ErrNotFound) {
		return aggScope(aggKindHost, host), nil
	}
	if err != nil {
		return "", err
	}
	rec, err := store.DecodeRecord(raw)
	closer.Close()
	if err == nil && len(rec.Fields) != 1 {
		err = fmt.Errorf("%d fields, want 1", len(rec.Fields))
	}
	if err != nil {
		return "", fmt.Errorf("indexer: linked hosts record of %q: %w", domain, err)
	}
	if rec.Fields[0] != severalHosts {
		id, err := lookupDomainID(r, host)
		if err != nil {
			return "", err
		}
		if id != 0 && int64(id) == rec.Fields[0] {
			return domain, nil
		}
	}
	return aggScope(aggKindHost, host), nil
}

// match decodes a stored edge of the reader given to use into row and
// tests it against the filter. Rows are filled in place: a scan reads
// millions, and copying each one from call to call took a fifth of a
// sorted scan. The row's key points into stored.
func (sel *selection) match(stored []byte, row *edgeRow) (bool, error) {
	*row = edgeRow{}
	var err error
	if err = row.k.split(stored, sel.lastTarget, sel.borrow); err != nil {
		return false, err
	}
	k := &row.k
	row.key = stored[:k.keyLen]
	val, err := k.value(stored)
	if err != nil {
		return false, err
	}
	sel.lastTarget = k.targetSURT
	base, err := sel.names.base(k.source)
	if err != nil {
		return false, err
	}
	if ok, err := sel.matchLink(k, val, base, &row.v); err != nil || !ok {
		return false, err
	}
	if sel.excludeInternal && k.domain == sel.targetDomain {
		return false, nil
	}
	if sel.minAuthority > 0 {
		d, err := sel.names.domain(k.domain)
		if err != nil {
			return false, err
		}
		if sel.authority(d) < sel.minAuthority {
			return false, nil
		}
	}
	return true, nil
}

// matchLink decodes an edge's value, encoded with base, into v and tests
// the link against the filter, all but its source.
func (sel *selection) matchLink(k *edgeKeyParts, val []byte, base int64, v *edgeValue) (bool, error) {
	if sel.types != nil && !sel.types[k.typ] {
		return false, nil
	}
	if sel.anchor != "" && !strings.Contains(strings.ToLower(k.anchor), sel.anchor) {
		return false, nil
	}
	if err := v.decode(val, base); err != nil {
		return false, err
	}
	switch {
	case v.lostAt != 0 && sel.state == lgv1.LinkState_LINK_STATE_LIVE,
		v.lostAt == 0 && sel.state == lgv1.LinkState_LINK_STATE_LOST,
		sel.lostFrom != 0 && v.lostAt < sel.lostFrom,
		sel.lostTo != 0 && v.lostAt >= sel.lostTo,
		sel.filter.GetFollowOnly() && !v.flags.follow(),
		sel.firstFrom != 0 && v.firstSeen < sel.firstFrom,
		sel.firstTo != 0 && v.firstSeen >= sel.firstTo,
		sel.lastFrom != 0 && v.lastSeen < sel.lastFrom,
		sel.lastTo != 0 && v.lastSeen >= sel.lastTo:
		return false, nil
	}
	return true, nil
}

// domainOf returns the HostSURT of the registrable domain of a row's
// source.
func (sel *selection) domainOf(row *edgeRow) (string, error) {
	return sel.names.domain(row.k.domain)
}

// authority returns the score of a registrable domain given as its
// HostSURT, 0 if unranked.
func (sel *selection) authority(domainSURT string) int32 {
	return sel.scores.Domain(urlnorm.ReversedHostOfSURT(domainSURT))
}

// scan calls fn for every matching edge in key order; the row and its key
// are valid only during the call.
func (sel *selection) scan(ctx context.Context, r pebble.Reader, fn func(*edgeRow) error) error {
	return sel.scanAfter(ctx, r, nil, fn)
}

// scanAfter is scan from the first key after the position after (nil: from
// the start).
func (sel *selection) scanAfter(ctx context.Context, r pebble.Reader, after []byte, fn func(*edgeRow) error) error {
	var row edgeRow
	return sel.iterate(ctx, r, after, func(stored []byte) error {
		ok, err := sel.match(stored, &row)
		if err != nil || !ok {
			return err
		}
		return fn(&row)
	})
}

// iterate calls fn for every stored edge in the selection's ranges after
// the edge named after (nil: from the start), matched or not; stored is
// valid only during the call.
func (sel *selection) iterate(ctx context.Context, r pebble.Reader, after []byte, fn func(stored []byte) error) error {
	if err := sel.use(r); err != nil {
		return err
	}
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: sel.ranges[0][0], UpperBound: sel.ranges[len(sel.ranges)-1][1]})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for _, rg := range sel.ranges {
		start := rg[0]
		if after != nil {
			if bytes.Compare(after, rg[1]) >= 0 {
				continue
			}
			if bytes.Compare(after, start) >= 0 {
				start = edgeSuccessor(nil, after)
			}
		}
		for valid := it.SeekGE(start); valid && bytes.Compare(it.Key(), rg[1]) < 0; valid = it.Next() {
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := fn(it.Key()); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}

// clone returns a copy of the selection for another goroutine: the
// caches match fills are its own. Call use first: the copy reads the
// same reader.
func (sel *selection) clone() *selection {
	c := *sel
	if sel.names != nil {
		c.names = newNames(sel.names.r, sel.names.max, sel.names.bases)
	}
	c.lastTarget = ""
	return &c
}

// queryID fingerprints everything about a query but its page size and
// token, so that a token is refused by any other query.
func queryID(sel *selection, extra ...any) uint32 {
	f, _ := proto.MarshalOptions{Deterministic: true}.Marshal(sel.filter)
	return crc32.ChecksumIEEE(fmt.Appendf(nil, "%d\x00%s\x00%x\x00%v", sel.scope, sel.target, f, extra))
}

// A page token is base64url(crc32 | query id | position). The checksum
// catches corrupted or hand-edited tokens; the query id makes a token from
// one query useless for another.
func encodeToken(qid uint32, pos []byte) string {
	payload := binary.BigEndian.AppendUint32(nil, qid)
	payload = append(payload, pos...)
	buf := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload))
	return base64.RawURLEncoding.EncodeToString(append(buf, payload...))
}

func decodeToken(tok string, qid uint32) ([]byte, error) {
	return decodeTokenNamed(tok, qid, "page_token")
}

// decodeTokenNamed is decodeToken for a token the request calls name.
func decodeTokenNamed(tok string, qid uint32, name string) ([]byte, error) {
	bad := fmt.Errorf("%w: %s is not valid for this query; start again without it", ErrInvalidArgument, name)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 9 {
		return nil, bad
	}
	payload := raw[4:]
	if crc32.ChecksumIEEE(payload) != binary.BigEndian.Uint32(raw) || binary.BigEndian.Uint32(payload) != qid {
		return nil, bad
	}
	return payload[4:], nil
}
