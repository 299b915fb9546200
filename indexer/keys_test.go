package indexer

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

func forwardEdges() []*lgv1.Edge {
	return []*lgv1.Edge{
		{TargetUrl: "https://www.example.com/b", AnchorText: "B", Type: lgv1.LinkType_LINK_TYPE_A, Rel: []string{"nofollow", "ugc"}},
		{TargetUrl: "https://www.example.com/a", AnchorText: "", Type: lgv1.LinkType_LINK_TYPE_IMG},
		{TargetUrl: "https://www.example.com/a", AnchorText: "A", Type: lgv1.LinkType_LINK_TYPE_A},
		{TargetUrl: "http://other.example/", AnchorText: "Über", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301},
		{TargetUrl: "https://www.example.com/abc?x=1", AnchorText: "x", Type: lgv1.LinkType_LINK_TYPE_CANONICAL},
	}
}

func TestForwardListRoundTrip(t *testing.T) {
	in := newForwardList(forwardEdges())
	want := []string{"http://other.example/", "https://www.example.com/a", "https://www.example.com/abc?x=1", "https://www.example.com/b"}
	if !slices.Equal(in.targets, want) || !slices.Equal(in.links, []int{1, 2, 1, 1}) {
		t.Fatalf("targets %q with %v links, want %q with [1 2 1 1] (sorted, distinct)", in.targets, in.links, want)
	}
	out, err := decodeForward(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.targets, want) || !slices.Equal(out.links, in.links) || out.digest != in.digest || out.digest == 0 {
		t.Errorf("decoded %q %v digest %x, want %q %v digest %x", out.targets, out.links, out.digest, want, in.links, in.digest)
	}
	if n := out.linksTo("https://www.example.com/a"); n != 2 {
		t.Errorf("linksTo(/a) = %d, want 2", n)
	}
	if n := out.linksTo("https://www.example.com/"); n != 0 {
		t.Errorf("linksTo(/) = %d, want 0", n)
	}
	if out, err := decodeForward(newForwardList(nil).encode()); err != nil || len(out.targets) != 0 || out.digest != 0 {
		t.Errorf("empty list: %v, %v", out, err)
	}
}

// Lists written in version 2 (lengths and links inline) still read, and
// URLs that share more than 255 bytes round-trip.
func TestForwardListVersions(t *testing.T) {
	v2 := []byte{2, 0, 0, 0, 0, 0, 0, 0, 7, 2}
	v2 = append(v2, 0, 19)
	v2 = append(v2, "https://a.example/x"...)
	v2 = append(v2, 3, 18, 1, 'y', 1)
	got, err := decodeForward(v2)
	want := []string{"https://a.example/x", "https://a.example/y"}
	if err != nil || !slices.Equal(got.targets, want) || !slices.Equal(got.links, []int{3, 1}) || got.digest != 7 {
		t.Errorf("version 2 list: %q %v digest %d, %v; want %q [3 1] digest 7", got.targets, got.links, got.digest, err, want)
	}
	if _, err := decodeForward(append(v2[:len(v2)-2:len(v2)-2], 0, 1)); err == nil {
		t.Error("a version 2 list with a 0 in a URL decodes")
	}

	long := "https://a.example/" + strings.Repeat("p", 300)
	in := forwardList{digest: 9, targets: []string{long + "/1", long + "/2", long + "/2/3"}, links: []int{1, 200, 1}}
	out, err := decodeForward(in.encode())
	if err != nil || !slices.Equal(out.targets, in.targets) || !slices.Equal(out.links, in.links) {
		t.Errorf("long URLs: %v, %v", out, err)
	}
}

func TestLinksDigest(t *testing.T) {
	base := linksDigest(forwardEdges())
	reversed := forwardEdges()
	slices.Reverse(reversed)
	if linksDigest(reversed) != base {
		t.Error("the digest depends on the links' order")
	}
	for name, change := range map[string]func(e *lgv1.Edge){
		"anchor":          func(e *lgv1.Edge) { e.AnchorText += "!" },
		"type":            func(e *lgv1.Edge) { e.Type = lgv1.LinkType_LINK_TYPE_AREA },
		"rel":             func(e *lgv1.Edge) { e.Rel = append(e.Rel, "sponsored") },
		"redirect status": func(e *lgv1.Edge) { e.RedirectStatus = 308 },
		"target":          func(e *lgv1.Edge) { e.TargetUrl += "x" },
	} {
		edges := forwardEdges()
		change(edges[0])
		if linksDigest(edges) == base {
			t.Errorf("a changed %s leaves the digest as it was", name)
		}
	}
	if linksDigest(nil) != 0 || base == 0 {
		t.Error("the digest is 0 for no links only")
	}
}

func FuzzDecodeForward(f *testing.F) {
	f.Add(newForwardList(forwardEdges()).encode())
	f.Add([]byte{forwardVersion, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 'a', 'b', 'c', 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 3, 'a', 'b', 'c', 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := decodeForward(b) // must not panic
		if err != nil {
			return
		}
		// What decodes re-encodes to a list that decodes the same.
		again, err := decodeForward(fl.encode())
		if err != nil || !slices.Equal(again.targets, fl.targets) || !slices.Equal(again.links, fl.links) || again.digest != fl.digest {
			t.Fatalf("re-encoding %q gave %q, %v", fl.targets, again.targets, err)
		}
	})
}

func TestRowCacheTimestamp(t *testing.T) {
	c := newRowCache(2)
	for _, ms := range []int64{0, 1, 999, 1000, 1_700_000_000_123, -1, -1001} {
		got, want := c.timestamp(ms), timestamppb.New(time.UnixMilli(ms))
		if !proto.Equal(got, want) {
			t.Errorf("timestamp(%d) = %v, want %v", ms, got, want)
		}
	}
}

func TestEdgeKeyRoundTrip(t *testing.T) {
	const base = 1_780_000_000_000
	// The value's first byte is 0 here (first_seen is the base): it must
	// not be taken for more anchor.
	v := edgeValue{firstSeen: base, lastSeen: base + 1, redirectStatus: 301}
	for _, c := range []edgeKeyParts{
		{targetSURT: "com,example)/a", domain: 1, source: 1, typ: lgv1.LinkType_LINK_TYPE_A, anchor: "home"},
		{targetSURT: "com,example)/", domain: 300, source: 1 << 40, typ: lgv1.LinkType_LINK_TYPE_IMG, anchor: ""},
		{targetSURT: "de,xn--mnchen-3ya)/ü", domain: 255, source: 256, typ: lgv1.LinkType_LINK_TYPE_REDIRECT, anchor: "Über\x01uns"},
	} {
		k := edgeKey(nil, c.targetSURT, c.domain, c.source, c.typ, c.anchor)
		stored := storedEdge(nil, k, &v, base)
		// The previous row's target, the same or one that this target
		// extends or cuts short, must not change the parse.
		for _, prev := range []string{"", c.targetSURT, c.targetSURT + "x", c.targetSURT[:len(c.targetSURT)-1]} {
			for _, b := range [][]byte{k, stored} {
				want := c
				want.keyLen = len(k)
				got, err := parseEdgeKey(b, prev)
				if err != nil || got != want {
					t.Errorf("%+v after target %q: parsed %q as %+v, %v", c, prev, b, got, err)
				}
			}
		}
		p, _ := parseEdgeKey(stored, "")
		val, err := p.value(stored)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeEdgeValue(val, base); err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("%+v: value of stored edge %q decoded as %+v, %v", c, stored, got, err)
		}
		kp, _ := parseEdgeKey(k, "")
		if val, err := kp.value(k); err == nil {
			t.Errorf("%+v: a key alone has value %q", c, val)
		}
		if p := edgePrefix(nil, c.targetSURT, c.domain); !bytes.HasPrefix(k, p) {
			t.Errorf("%+v: prefix %q does not start key %q", c, p, k)
		}
	}
	for _, bad := range []string{"", "x", "ecom)/", "ecom)/\x00", "ecom)/\x00\x01\x05", "ecom)/\x00\x01\x05\x01\x07"} {
		if _, err := parseEdgeKey([]byte(bad), ""); err == nil {
			t.Errorf("parseEdgeKey(%q) took a malformed key", bad)
		}
	}
}

// Stored edges sort as their keys do, whatever their values, and an edge's
// successor comes after all of its stored keys and before the next edge's.
func TestStoredEdgeOrder(t *testing.T) {
	const base = 1_780_000_000_000
	values := []edgeValue{
		{firstSeen: base, lastSeen: base},
		{firstSeen: base + 1<<40, lastSeen: base + 1<<41, lostAt: base + 1<<42, rel: []string{"nofollow"}},
	}
	var keys [][]byte
	for _, anchor := range []string{"", "\x01", "\x01\x01", "a", "a\x01", "a\x02", "ab", "\uFFFD"} {
		keys = append(keys, edgeKey(nil, "com,example)/", 1, 2, lgv1.LinkType_LINK_TYPE_A, anchor))
	}
	for i, k := range keys {
		for _, v := range values {
			stored := storedEdge(nil, k, &v, base)
			if bytes.Compare(stored, k) <= 0 || bytes.Compare(stored, edgeSuccessor(nil, k)) >= 0 {
				t.Errorf("stored edge %q is not between its key %q and the key's successor", stored, k)
			}
			if i+1 < len(keys) && bytes.Compare(stored, keys[i+1]) >= 0 {
				t.Errorf("stored edge %q sorts after the next edge's key %q", stored, keys[i+1])
			}
			if i+1 < len(keys) && bytes.Compare(edgeSuccessor(nil, k), keys[i+1]) > 0 {
				t.Errorf("successor of %q sorts after the next edge's key %q", k, keys[i+1])
			}
		}
	}
}

func TestEdgeAnchor(t *testing.T) {
	long := strings.Repeat("é", MaxAnchorBytes) // 2 bytes a rune
	for in, want := range map[string]string{
		"Home":              "Home",
		"a\x00b":            "a\uFFFDb",
		"\x00":              "\uFFFD",
		long:                long[:MaxAnchorBytes],
		long[:254] + "\x00": long[:254],
	} {
		if got := edgeAnchor(in); got != want {
			t.Errorf("edgeAnchor(%q) = %q, want %q", in, got, want)
		}
	}
}

// Any anchor and value round-trip through a stored edge, and no bytes
// make the parse panic.
func FuzzStoredEdge(f *testing.F) {
	f.Add("com,example)/", uint64(1), uint64(2), byte(1), "Home", int64(0), int64(5), []byte("e\x00"))
	f.Add("de,xn--mnchen-3ya)/ü", uint64(300), uint64(1<<40), byte(6), "a\x00b", int64(-7), int64(1<<40), []byte{})
	f.Fuzz(func(t *testing.T, target string, domain, source uint64, typ byte, anchor string, first, seen int64, junk []byte) {
		parseEdgeKey(junk, "") // must not panic
		if strings.IndexByte(target, 0) >= 0 || seen < 0 {
			return // no normalized URL has a NUL; last seen is not before first
		}
		const base = 1_780_000_000_000
		v := edgeValue{firstSeen: base + first%(1<<40), rel: []string{"nofollow"}}
		v.lastSeen = v.firstSeen + seen%(1<<40)
		k := edgeKey(nil, target, domain, source, lgv1.LinkType(typ), edgeAnchor(anchor))
		stored := storedEdge(nil, k, &v, base)
		p, err := parseEdgeKey(stored, "")
		if err != nil || p.targetSURT != target || p.domain != domain || p.source != source || byte(p.typ) != typ || p.anchor != edgeAnchor(anchor) || p.keyLen != len(k) {
			t.Fatalf("stored edge %q parsed as %+v, %v", stored, p, err)
		}
		val, err := p.value(stored)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEdgeValue(val, base)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("value of %q decoded as %+v, %v; want %+v", stored, got, err, v)
		}
	})
}

func TestEdgeValueRoundTrip(t *testing.T) {
	const base = 1_780_000_000_000
	for _, v := range []edgeValue{
		{firstSeen: base, lastSeen: base},                           // seen on the source's first crawl
		{firstSeen: base + 86_400_000, lastSeen: base + 90_000_000}, // added by a later crawl
		{firstSeen: base - 5, lastSeen: base + 5, lostAt: base + 9, lostReason: lgv1.LostReason_LOST_REASON_PAGE_GONE, flags: flagUGC, rel: []string{"ugc", "me"}},
		{firstSeen: base, lastSeen: base + 7, redirectStatus: 301, history: []linkEvent{{lostAt: base + 1, returnedAt: base + 3, reason: lgv1.LostReason_LOST_REASON_REMOVED}}},
		{firstSeen: base, lastSeen: base, rel: []string{"noopener", "noreferrer"}}, // a common rel, decoded into a shared slice
	} {
		b := v.encode(nil, base)
		got, err := decodeEdgeValue(b, base)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("%+v: decoded %+v, %v", v, got, err)
		}
		// Into a value that held another link, decode leaves nothing of it.
		again := edgeValue{lostAt: 1, rel: []string{"x"}, history: []linkEvent{{}}}
		if err := again.decode(b, base); err != nil || !reflect.DeepEqual(again, v) {
			t.Errorf("%+v: decoded in place %+v, %v", v, again, err)
		}
		// Appends to two decodes of a rel must not share an array.
		next, _ := decodeEdgeValue(b, base)
		a, c := append(got.rel, "a"), append(next.rel, "c")
		if a[len(a)-1] != "a" || c[len(c)-1] != "c" {
			t.Errorf("%+v: appends to decoded rels share an array: %q, %q", v, a, c)
		}
		if v.firstSeen == base && v.history == nil && v.rel == nil && len(b) > 6 {
			t.Errorf("%+v takes %d bytes; a link of the first crawl should take its times in 3", v, len(b))
		}
		if plain := v.firstSeen == base && v.lastSeen == base && v.rel == nil && v.redirectStatus == 0; plain != (len(b) == 0) {
			t.Errorf("%+v takes %d bytes; a plain link should take none, and only a plain one", v, len(b))
		}
	}
}

// memRegistry is a hostRegistry in memory.
type memRegistry struct {
	ids   map[string]uint64
	names []string // by id - 1
}

func (r *memRegistry) domainID(h string) (uint64, error) {
	if id, ok := r.ids[h]; ok {
		return id, nil
	}
	if r.ids == nil {
		r.ids = make(map[string]uint64)
	}
	r.names = append(r.names, h)
	r.ids[h] = uint64(len(r.names))
	return uint64(len(r.names)), nil
}

func (r *memRegistry) domainName(id uint64) (string, error) {
	if id == 0 || id > uint64(len(r.names)) {
		return "", fmt.Errorf("no id %d", id)
	}
	return r.names[id-1], nil
}

func encodeSource(t testing.TB, v *sourceValue, reg hostRegistry) []byte {
	t.Helper()
	b, err := v.encode(reg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A source record keeps the page's links into each target host and
// domain; it writes the hosts only, by id, and derives the domains' counts.
func TestSourceValueRoundTrip(t *testing.T) {
	txn := &Txn{hostScopes: make(map[string]*targetScopes)}
	v := sourceValue{base: 1000, surt: "com,example)/p", fetchedAt: 2000e6, status: 200, nofollow: true, title: "T", scopes: map[string]int64{}}
	for url, links := range map[string]int64{
		"http://www.example.co.uk/a":  2,
		"http://example.co.uk/":       1,
		"http://shop.example.co.uk/x": 3,
		"http://example.co.uk:8080/":  1,
		"http://other.org/":           4,
		"http://192.0.2.7/":           1,
		"http://[2001:db8::1]:81/":    1,
		"http://localhost/":           1,
	} {
		for _, scope := range txn.scopesOf(url).scopes {
			v.scopes[scope] += links
		}
	}
	v.scopes[aggScope(aggKindHost, "org,gone")] = 0 // a host the page no longer links to
	reg := &memRegistry{}
	reg.domainID("com,unrelated") // ids need not start at 1 or be dense
	raw := encodeSource(t, &v, reg)
	got, err := decodeSourceValue(raw, false, reg)
	if err != nil {
		t.Fatal(err)
	}
	delete(v.scopes, aggScope(aggKindHost, "org,gone"))
	if !reflect.DeepEqual(got, v) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, v)
	}
	if head, err := decodeSourceValue(raw, true, nil); err != nil || head.surt != v.surt || head.title != v.title || head.scopes != nil {
		t.Errorf("head only: %+v, %v", head, err)
	}
	if base, err := sourceBase(raw); err != nil || base != v.base {
		t.Errorf("sourceBase = %d, %v; want %d", base, err, v.base)
	}
	if _, err := decodeSourceValue(raw, false, &memRegistry{}); err == nil {
		t.Error("a record naming hosts the registry does not hold decoded")
	}
}

func FuzzDecodeSourceValue(f *testing.F) {
	txn := &Txn{hostScopes: make(map[string]*targetScopes)}
	v := sourceValue{base: 5, surt: "org,a)/", title: "A", scopes: map[string]int64{}}
	for _, u := range []string{"http://a.org/", "http://b.a.org/", "http://c.net:81/"} {
		for _, scope := range txn.scopesOf(u).scopes {
			v.scopes[scope]++
		}
	}
	reg := &memRegistry{}
	for i := range 200 { // hosts for fuzzed ids to name
		reg.domainID(fmt.Sprintf("org,host%d", i))
	}
	f.Add(encodeSource(f, &v, reg))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSourceValue(b, false, reg)
		if err != nil {
			return
		}
		raw := encodeSource(t, &got, reg)
		again, err := decodeSourceValue(raw, false, reg)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", got, err)
		}
		if b2 := encodeSource(t, &again, reg); !bytes.Equal(b2, raw) {
			t.Fatalf("%+v encodes as %x, decoded and encoded again as %x", got, raw, b2)
		}
	})
}

// A page record leaves out the page's URL when its key gives it back, and
// getPage puts it in again; a URL the key would not give back is kept.
func TestPageRecordURL(t *testing.T) {
	ix := newTestIndex(t, 4)
	for _, c := range []struct {
		url    string
		stored bool // whether the record holds the URL
	}{
		{"http://p.example/a?b=1", false},
		{"HTTP://P.example/b", true}, // not normalized: its SURT gives back another string
	} {
		txn := ix.Begin()
		if _, err := txn.RecordPage(&lgv1.PageResult{Url: c.url, Status: 200, FetchedAt: 1e12, Title: "T"}); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		txn.Close()
		surt := urlnorm.SURT(c.url)
		var raw lgv1.PageResult
		if ok, err := getProto(ix.db, prefixed(store.PrefixPage, surt), &raw); !ok || err != nil {
			t.Fatalf("%s: no page record (%v)", c.url, err)
		}
		if got := raw.Url != ""; got != c.stored {
			t.Errorf("%s: record holds URL %q, want it held: %v", c.url, raw.Url, c.stored)
		}
		var pr lgv1.PageResult
		if ok, err := getPage(ix.db, surt, &pr); !ok || err != nil || pr.Url != c.url || pr.Title != "T" {
			t.Errorf("%s: getPage read %q, title %q, %v, %v", c.url, pr.Url, pr.Title, ok, err)
		}
	}
}
