package indexer

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// MaxAnchorBytes caps the anchor text stored in an edge key.
const MaxAnchorBytes = 256

// edgeKey is e SURT(target) 0 id(domain) id(source) type anchor: a
// target's edges grouped by the registrable domain of their source (so that
// one link per domain skips the rest of a domain with a seek), domains and
// sources in the order this node first saw them. It names an edge; the
// index stores the edge as its key, a 0 and its value (see storedEdge), so
// the anchor has no NUL (see edgeAnchor).
func edgeKey(dst []byte, targetSURT string, domain, source uint64, typ lgv1.LinkType, anchor string) []byte {
	dst = store.AppendID(edgePrefix(dst, targetSURT, domain), source)
	dst = append(dst, byte(typ))
	return append(dst, anchor...)
}

// storedEdge appends the key under which the index keeps the edge named
// key (see edgeKey) with value v: key, 0, then v encoded with base.
// Values live in keys because Pebble's columnar blocks store a length for
// every value: edges with empty values took 12.7 bytes an edge on disk
// rather than 14.4 on the 2M-edge generated index. An edge whose value
// changes is deleted and written again under its new key. The 0 sorts
// the stored edge right after its key and before any longer anchor, so
// scans see edges in key order; the successor of an edge's stored keys
// is its key and a 1 (see edgeSuccessor).
func storedEdge(dst, key []byte, v *edgeValue, base int64) []byte {
	return v.encode(append(append(dst, key...), 0), base)
}

// edgeSuccessor appends the smallest key after every stored key of the
// edge named key.
func edgeSuccessor(dst, key []byte) []byte {
	return append(append(dst, key...), 1)
}

// edgeAnchor is an anchor as edge keys hold it: at most MaxAnchorBytes,
// on a rune boundary, with NUL (which ends the anchor in a stored edge;
// the HTML tokenizer never yields one) as U+FFFD.
func edgeAnchor(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return truncateUTF8(s, MaxAnchorBytes)
}

// sourceEdgesPrefix is the part of the edge keys of a source's links to a
// target that they share: up to and including the source's id. What
// follows it is the link's type and anchor.
func sourceEdgesPrefix(targetSURT string, ids sourceIDs) []byte {
	return store.AppendID(edgePrefix(nil, targetSURT, ids.domain), ids.source)
}

// edgePrefix is the part of an edge key up to and including the source's
// domain id.
func edgePrefix(dst []byte, targetSURT string, domain uint64) []byte {
	dst = append(dst, store.PrefixEdge)
	dst = append(dst, targetSURT...)
	dst = append(dst, 0)
	return store.AppendID(dst, domain)
}

type edgeKeyParts struct {
	targetSURT     string
	domain, source uint64 // ids, see ids.go
	typ            lgv1.LinkType
	anchor         string
	// keyLen is the length of the edge's key; in a stored edge, its
	// value starts after the 0 there.
	keyLen int
}

// value is the encoded value of the stored edge k, whose parts p are. It
// fails for a key alone, whose empty value would read as a plain link.
func (p *edgeKeyParts) value(k []byte) ([]byte, error) {
	if p.keyLen >= len(k) {
		return nil, fmt.Errorf("%w: %q has no value", errBadKey, k)
	}
	return k[p.keyLen+1:], nil
}

var errBadKey = errors.New("indexer: malformed edge key")

// parseEdgeKey splits an edge key, or a stored edge (see storedEdge).
// When its target is prevTarget, the parts share that string rather than
// allocate another.
func parseEdgeKey(k []byte, prevTarget string) (edgeKeyParts, error) {
	var p edgeKeyParts
	err := p.split(k, prevTarget, false)
	return p, err
}

// split is parseEdgeKey into p, which it overwrites (scans split millions
// of keys into one row: returning the parts cost a tenth of a scan); with
// borrow, the anchor points into k rather than a copy, for a row used and
// dropped before k's buffer is reused.
func (p *edgeKeyParts) split(k []byte, prevTarget string, borrow bool) error {
	if len(k) == 0 || k[0] != store.PrefixEdge {
		return errBadKey
	}
	whole := len(k)
	k = k[1:]
	t := prevTarget
	if len(k) > len(t) && k[len(t)] == 0 && string(k[:len(t)]) == t {
		// The edges of a target are adjacent: most keys a scan reads
		// continue the previous one's target, and finding its end
		// byte by byte took a tenth of a scan.
		k = k[len(t)+1:]
	} else {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return errBadKey
		}
		t = string(k[:i])
		k = k[i+1:]
	}
	domain, n := store.ReadID(k)
	if n == 0 {
		return errBadKey
	}
	k = k[n:]
	source, n := store.ReadID(k)
	if n == 0 || n >= len(k) {
		return errBadKey
	}
	anchor := k[n+1:]
	keyLen := whole
	if i := bytes.IndexByte(anchor, 0); i >= 0 {
		keyLen -= len(anchor) - i
		anchor = anchor[:i]
	}
	p.targetSURT, p.domain, p.source, p.typ, p.keyLen = t, domain, source, lgv1.LinkType(k[n]), keyLen
	switch {
	case len(anchor) == 0:
		p.anchor = ""
	case borrow:
		p.anchor = unsafe.String(&anchor[0], len(anchor))
	default:
		p.anchor = string(anchor)
	}
	return nil
}

// edgeValue is what an edge key maps to. Times are Unix milliseconds.
type edgeValue struct {
	firstSeen, lastSeen, lostAt int64
	redirectStatus              int32
	// flags are the link's authority flags as of lastSeen; they decide
	// what the link contributes to its target's aggregates.
	flags linkFlags
	rel   []string
	// lostReason says why the link was lost; set with lostAt.
	lostReason lgv1.LostReason
	// history lists the earlier times the link was lost and came back,
	// oldest first, at most maxHistory of them.
	history []linkEvent
}

// linkEvent is one period in which a link was lost before it came back.
type linkEvent struct {
	lostAt, returnedAt int64
	reason             lgv1.LostReason
}

// maxHistory bounds an edge's history: a link that flaps on every crawl
// keeps its latest periods only.
const maxHistory = 16

// comeBack records that a lost link is on its page again at ms.
func (v *edgeValue) comeBack(at int64) {
	if v.lostAt == 0 {
		return
	}
	v.history = append(v.history, linkEvent{lostAt: v.lostAt, returnedAt: at, reason: v.lostReason})
	if len(v.history) > maxHistory {
		v.history = v.history[len(v.history)-maxHistory:]
	}
	v.lostAt, v.lostReason = 0, lgv1.LostReason_LOST_REASON_UNSPECIFIED
}

// linkFlags say why a link passes no authority; zero is a follow link.
type linkFlags byte

const (
	flagNofollow     linkFlags = 1 << iota // rel=nofollow
	flagUGC                                // rel=ugc
	flagSponsored                          // rel=sponsored
	flagPageNofollow                       // <meta name=robots content=nofollow> or X-Robots-Tag on the source
)

func flagsOf(rel []string, pageNofollow bool) linkFlags {
	var f linkFlags
	for _, r := range rel {
		switch r {
		case "nofollow":
			f |= flagNofollow
		case "ugc":
			f |= flagUGC
		case "sponsored":
			f |= flagSponsored
		}
	}
	if pageNofollow {
		f |= flagPageNofollow
	}
	return f
}

func (f linkFlags) follow() bool { return f == 0 }

// encode writes firstSeen as its offset from base, the first crawl of the
// source this node applied (sourceValue.base), then lastSeen and lostAt as
// deltas (lostAt+1, 0 when live). Most links are on their page from its
// first crawl on, so the offset is 0 and the link's times take 3 bytes
// rather than 8: absolute, firstSeen alone took 3.4 bytes an edge on disk.
// A plain link (seen on that crawl only, live, followed, with no rel and
// no redirect status: most of them) is written as nothing at all.
func (v *edgeValue) encode(dst []byte, base int64) []byte {
	if v.plain(base) {
		return dst
	}
	dst = binary.AppendVarint(dst, v.firstSeen-base)
	dst = binary.AppendUvarint(dst, uint64(v.lastSeen-v.firstSeen))
	lost := uint64(0)
	if v.lostAt != 0 {
		lost = uint64(v.lostAt-v.lastSeen) + 1
	}
	dst = binary.AppendUvarint(dst, lost)
	dst = binary.AppendUvarint(dst, uint64(v.redirectStatus))
	// One byte: the flags in bits 0-3, the lost reason in bits 4-6, and
	// bit 7 when a history follows (rare: most links are never lost and
	// found again, and pay nothing for it).
	fb := byte(v.flags) | byte(v.lostReason&7)<<4
	if len(v.history) > 0 {
		fb |= historyBit
	}
	dst = append(dst, fb)
	if len(v.history) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(v.history)))
		for _, h := range v.history {
			dst = binary.AppendUvarint(dst, uint64(h.lostAt))
			dst = binary.AppendUvarint(dst, uint64(h.returnedAt-h.lostAt))
			dst = append(dst, byte(h.reason))
		}
	}
	return append(dst, strings.Join(v.rel, " ")...)
}

const historyBit = 1 << 7

var errBadEdgeValue = errors.New("indexer: malformed edge value")

// decodeEdgeValue parses an edge value encoded with base.
func decodeEdgeValue(b []byte, base int64) (edgeValue, error) {
	var v edgeValue
	err := v.decode(b, base)
	return v, err
}

// plain reports whether v encodes as nothing with base (see encode).
func (v *edgeValue) plain(base int64) bool {
	return v.firstSeen == base && v.lastSeen == base && v.lostAt == 0 && v.redirectStatus == 0 &&
		v.flags == 0 && v.lostReason == 0 && len(v.history) == 0 && len(v.rel) == 0
}

// decode is decodeEdgeValue into v, which it overwrites: scans decode
// millions of values into one row.
func (v *edgeValue) decode(b []byte, base int64) error {
	*v = edgeValue{}
	if len(b) == 0 {
		v.firstSeen, v.lastSeen = base, base
		return nil
	}
	bad := errBadEdgeValue
	first, n := binary.Varint(b)
	if n <= 0 {
		return bad
	}
	b = b[n:]
	var fields [3]uint64 // lastSeen delta, lostAt delta+1, redirect status
	for i := range fields {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return bad
		}
		fields[i] = x
		b = b[n:]
	}
	v.firstSeen = base + first
	v.lastSeen = v.firstSeen + int64(fields[0])
	if fields[1] != 0 {
		v.lostAt = v.lastSeen + int64(fields[1]) - 1
	}
	v.redirectStatus = int32(fields[2])
	if len(b) == 0 {
		return bad
	}
	fb := b[0]
	b = b[1:]
	v.flags, v.lostReason = linkFlags(fb&0x0f), lgv1.LostReason(fb>>4&7)
	if v.lostAt != 0 && v.lostReason == lgv1.LostReason_LOST_REASON_UNSPECIFIED {
		v.lostReason = lgv1.LostReason_LOST_REASON_REMOVED // written before reasons were
	}
	if fb&historyBit != 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxHistory {
			return bad
		}
		b = b[k:]
		v.history = make([]linkEvent, n)
		for i := range v.history {
			lost, k1 := binary.Uvarint(b)
			if k1 <= 0 {
				return bad
			}
			gap, k2 := binary.Uvarint(b[k1:])
			if k2 <= 0 || len(b) < k1+k2+1 {
				return bad
			}
			v.history[i] = linkEvent{lostAt: int64(lost), returnedAt: int64(lost + gap), reason: lgv1.LostReason(b[k1+k2])}
			b = b[k1+k2+1:]
		}
	}
	if len(b) > 0 {
		if rel, ok := commonRels[string(b)]; ok {
			v.rel = rel
		} else {
			v.rel = strings.Split(string(b), " ")
		}
	}
	return nil
}

// commonRels are rel values most links that have one share, decoded
// without allocating. Their slices are shared: capped, so that an append
// copies, and never written to.
var commonRels = func() map[string][]string {
	m := make(map[string][]string)
	for _, r := range []string{"nofollow", "noopener", "noreferrer", "noopener noreferrer", "nofollow noopener", "nofollow noopener noreferrer", "ugc", "nofollow ugc", "sponsored", "nofollow sponsored", "external", "nofollow external"} {
		parts := strings.Split(r, " ")
		m[r] = parts[:len(parts):len(parts)]
	}
	return m
}()

// sourceValue is the i record: what the index knows of a linking page.
type sourceValue struct {
	// base is the fetch time (Unix ms) of the first crawl of the page
	// this node applied: its edges here store first_seen as an offset
	// from it (see edgeValue.encode). It never changes: an older crawl
	// arriving later is dropped.
	base      int64
	surt      string
	fetchedAt int64
	status    int32
	nofollow  bool
	// scopes counts the page's live external links into each target
	// aggregate scope (aggregate scope key -> links), so that the page
	// counts once among the scope's referring pages.
	scopes map[string]int64
	title  string
}

var errBadSource = errors.New("indexer: malformed source value")

// hostRegistry names hosts by ids, those of the registry of domain ids
// (ids.go), which holds any HostSURT. *Index is one.
type hostRegistry interface {
	// domainID returns the id of a HostSURT, assigning one if it has none.
	domainID(hostSURT string) (uint64, error)
	// domainName returns the HostSURT of an id.
	domainName(id uint64) (string, error)
}

// encode writes base, the SURT (length first), fetchedAt, status, the
// nofollow flag, the title (length first) and then the scope counts, so
// that queries can read a source's base, URL and title without decoding
// its scopes.
//
// Only the host scopes are written, by their ids in reg in order, each as
// its difference from the previous one, with its count: a domain scope's
// count is the sum of its hosts' (contribute counts a link in both), which
// decoding restores. Both kinds written whole took 0.8 bytes an edge more,
// and hosts written by name (front-coded) 0.6 more than by id.
func (v *sourceValue) encode(reg hostRegistry) ([]byte, error) {
	dst := binary.AppendUvarint(nil, uint64(v.base))
	dst = binary.AppendUvarint(dst, uint64(len(v.surt)))
	dst = append(dst, v.surt...)
	dst = binary.AppendUvarint(dst, uint64(v.fetchedAt))
	dst = binary.AppendUvarint(dst, uint64(v.status))
	flag := byte(0)
	if v.nofollow {
		flag = 1
	}
	dst = append(dst, flag)
	dst = binary.AppendUvarint(dst, uint64(len(v.title)))
	dst = append(dst, v.title...)
	type hostCount struct{ id, links uint64 }
	hosts := make([]hostCount, 0, len(v.scopes)/2)
	for k, c := range v.scopes {
		if c > 0 && k[1] == aggKindHost {
			id, err := reg.domainID(k[2 : len(k)-1])
			if err != nil {
				return nil, err
			}
			hosts = append(hosts, hostCount{id, uint64(c)})
		}
	}
	slices.SortFunc(hosts, func(a, b hostCount) int { return cmp.Compare(a.id, b.id) })
	dst = binary.AppendUvarint(dst, uint64(len(hosts)))
	prev := uint64(0)
	for _, h := range hosts {
		dst = binary.AppendUvarint(dst, h.id-prev)
		dst = binary.AppendUvarint(dst, h.links)
		prev = h.id
	}
	return dst, nil
}

// decodeSourceValue parses a source record; with headOnly it leaves out
// the scope counts, and reg may be nil.
func decodeSourceValue(b []byte, headOnly bool, reg hostRegistry) (sourceValue, error) {
	var v sourceValue
	d := decoder{b: b}
	v.base = int64(d.uvarint())
	v.surt = d.bytes()
	f, st, flag := d.uvarint(), d.uvarint(), d.byte()
	v.fetchedAt, v.status, v.nofollow = int64(f), int32(st), flag == 1
	v.title = d.bytes()
	if headOnly || d.bad {
		return v, d.err(errBadSource)
	}
	c := d.count()
	if c > 0 {
		v.scopes = make(map[string]int64, 2*c)
	}
	id := uint64(0)
	for range c {
		delta, n := d.uvarint(), int64(d.uvarint())
		if d.bad || delta == 0 || id+delta < id {
			return v, errBadSource // ids ascend
		}
		id += delta
		h, err := reg.domainName(id)
		if err != nil {
			return v, fmt.Errorf("indexer: host %d of source record %s: %w", id, v.surt, err)
		}
		v.scopes[aggScope(aggKindHost, h)] = n
		domain := urlnorm.HostSURT(urlnorm.RegistrableDomain(urlnorm.HostOfSURT(h)))
		v.scopes[aggScope(aggKindDomain, domain)] += n
	}
	return v, d.err(errBadSource)
}

// sourceBase reads the base of a source record, the first thing in it.
func sourceBase(raw []byte) (int64, error) {
	x, n := binary.Uvarint(raw)
	if n <= 0 {
		return 0, errBadSource
	}
	return int64(x), nil
}

// decoder reads the hand-written record encodings (uvarints, bytes and
// length-prefixed strings). The first malformed read marks it bad; later
// reads return zero values, so a decode checks once, at the end.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes reads a length-prefixed string.
func (d *decoder) bytes() string {
	l := d.uvarint()
	if uint64(len(d.b)) < l {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:l])
	d.b = d.b[l:]
	return s
}

// count reads an element count, refusing one larger than the bytes left
// (every element takes at least one), so that it cannot size a huge
// allocation.
func (d *decoder) count() uint64 {
	c := d.uvarint()
	if c > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return 0
	}
	return c
}

func (d *decoder) err(bad error) error {
	if d.bad {
		return bad
	}
	return nil
}

// sourceKey is s SURT(source): the ids of a linking page, one record per
// node, which lists the target shards the page has links on so that each
// shard's first batch from it is recognisably first. (One record per
// shard, before layout 5, cost a 10M-edge index of 64 shards 5 bytes an
// edge: most pages link into several shards.)
func sourceKey(sourceSURT string) []byte {
	return prefixed(store.PrefixSource, sourceSURT)
}

func prefixed(p byte, s string) []byte {
	k := make([]byte, 0, 1+len(s))
	return append(append(k, p), s...)
}

// A forward list (f record) names the targets of a page's latest crawl,
// sorted, after a digest of the whole link list:
//
//	version(3) digest(8 bytes) count, links per target..., then per target: shared(1 byte) suffix 0
//
// (count and links are uvarints; links is how many links the page has to
// the target). Each URL is front-coded against the one before it, most of
// a page's links sharing their scheme and host and often a path prefix:
// shared is how many bytes of the previous URL it starts with (at most
// 255), and the rest of it ends at a 0 (URLs hold none). Ending the rest
// with a 0 rather than giving its length first lets zstd match the same
// path from page to page, navigation links mostly, whatever precedes it:
// forward lists took 9% less on the 2M-edge generated index than with
// lengths and link counts inline (version 2, which decodeForward still
// reads).
//
// A forward list keeps no anchors, types or rel: the edges on the targets'
// shards have them, and the next crawl's diff is done per target there
// (see LinkBatch.sweep). Keeping them here too stored every anchor twice
// and took 30% of the index's bytes. The digest tells whether the links
// changed, for the revisit schedule. (Version 1 lists, which held every
// link, are only in data directories of layout 4, which Open refuses.)
const forwardVersion = 3

// forwardList is a decoded f record.
type forwardList struct {
	digest  uint64   // linksDigest of the crawl's links; 0 when none
	targets []string // sorted, distinct
	links   []int    // per target, the page's links to it
}

// newForwardList is the forward list of a crawl's links.
func newForwardList(edges []*lgv1.Edge) forwardList {
	f := forwardList{digest: linksDigest(edges)}
	all := make([]string, len(edges))
	for i, e := range edges {
		all[i] = e.GetTargetUrl()
	}
	slices.Sort(all)
	for i, u := range all {
		if i > 0 && u == all[i-1] {
			f.links[len(f.links)-1]++
			continue
		}
		f.targets = append(f.targets, u)
		f.links = append(f.links, 1)
	}
	return f
}

// linksTo returns how many links the list has to target.
func (f forwardList) linksTo(target string) int {
	if i, ok := slices.BinarySearch(f.targets, target); ok {
		return f.links[i]
	}
	return 0
}

// linksDigest is a hash of a crawl's links, in any order (a sum of the
// links' hashes, which needs no sort): what a changed anchor, type, rel or
// redirect status changes too.
func linksDigest(edges []*lgv1.Edge) uint64 {
	if len(edges) == 0 {
		return 0
	}
	var sum uint64
	var b []byte
	h := fnv.New64a()
	for _, e := range edges {
		b = append(append(b[:0], e.GetTargetUrl()...), 0, byte(e.GetType()))
		b = append(append(b, e.GetAnchorText()...), 0)
		for i, r := range e.GetRel() {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, r...)
		}
		b = binary.AppendUvarint(append(b, 0), uint64(e.GetRedirectStatus()))
		h.Reset()
		h.Write(b)
		sum += h.Sum64()
	}
	return sum | 1 // never 0, which stands for no links
}

func (f forwardList) encode() []byte {
	dst := []byte{forwardVersion}
	dst = binary.BigEndian.AppendUint64(dst, f.digest)
	dst = binary.AppendUvarint(dst, uint64(len(f.targets)))
	for _, n := range f.links {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	prev := ""
	for _, u := range f.targets {
		n := 0
		for n < min(len(u), len(prev), 255) && u[n] == prev[n] {
			n++
		}
		dst = append(append(append(dst, byte(n)), u[n:]...), 0)
		prev = u
	}
	return dst
}

var errBadForward = errors.New("indexer: malformed forward list")

func decodeForward(b []byte) (forwardList, error) {
	if len(b) < 9 || (b[0] != forwardVersion && b[0] != 2) {
		return forwardList{}, errBadForward
	}
	f := forwardList{digest: binary.BigEndian.Uint64(b[1:9])}
	d := decoder{b: b[9:]}
	count := d.count()
	f.targets, f.links = make([]string, 0, count), make([]int, 0, count)
	if b[0] == 2 {
		return f.decodeV2(&d, count)
	}
	for range count {
		n := d.uvarint()
		if n > math.MaxInt32 {
			return forwardList{}, errBadForward
		}
		f.links = append(f.links, int(n))
	}
	prev := ""
	for range count {
		shared := int(d.byte())
		end := bytes.IndexByte(d.b, 0)
		if d.bad || shared > len(prev) || end < 0 {
			return forwardList{}, errBadForward
		}
		u := prev[:shared] + string(d.b[:end])
		d.b = d.b[end+1:]
		f.targets = append(f.targets, u)
		prev = u
	}
	if d.bad {
		return forwardList{}, errBadForward
	}
	return f, nil
}

// decodeV2 reads the targets of a version 2 list, each as the length of
// the prefix it shares with the one before, then the rest of it, length
// first, then its links.
func (f forwardList) decodeV2(d *decoder, count uint64) (forwardList, error) {
	prev := ""
	for range count {
		shared := d.uvarint()
		if shared > uint64(len(prev)) {
			return forwardList{}, errBadForward
		}
		u := prev[:shared] + d.bytes()
		n := d.uvarint()
		// A URL holds no 0, which would end it in a version 3 list.
		if d.bad || n > math.MaxInt32 || strings.IndexByte(u, 0) >= 0 {
			return forwardList{}, errBadForward
		}
		f.targets, f.links = append(f.targets, u), append(f.links, int(n))
		prev = u
	}
	if d.bad {
		return forwardList{}, errBadForward
	}
	return f, nil
}

// getForward reads the forward list at key; a missing one is empty.
func getForward(r pebble.Reader, key []byte) (forwardList, error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return forwardList{}, nil
	}
	if err != nil {
		return forwardList{}, err
	}
	defer closer.Close()
	f, err := decodeForward(raw)
	if err != nil {
		return forwardList{}, fmt.Errorf("%w at %q", err, key)
	}
	return f, nil
}
