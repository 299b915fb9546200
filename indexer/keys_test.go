package indexer

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
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
	in := forwardEdges()
	out, err := decodeForward(encodeForward(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d links back, want %d", len(out), len(in))
	}
	for _, e := range in {
		if !slices.ContainsFunc(out, func(o *lgv1.Edge) bool { return proto.Equal(o, e) }) {
			t.Errorf("lost %v", e)
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i-1].TargetUrl > out[i].TargetUrl {
			t.Errorf("not sorted by target: %v before %v", out[i-1], out[i])
		}
	}
	if out, err := decodeForward(encodeForward(nil)); err != nil || len(out) != 0 {
		t.Errorf("empty list: %v, %v", out, err)
	}
}

func FuzzDecodeForward(f *testing.F) {
	f.Add(encodeForward(forwardEdges()))
	f.Add([]byte{forwardVersion, 1, 0, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		edges, err := decodeForward(b) // must not panic
		if err != nil {
			return
		}
		// What decodes re-encodes to a list that decodes the same.
		again, err := decodeForward(encodeForward(edges))
		if err != nil || len(again) != len(edges) {
			t.Fatalf("re-encoding %d links gave %d, %v", len(edges), len(again), err)
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

func TestIDsSortAsNumbers(t *testing.T) {
	ids := []uint64{1, 2, 255, 256, 65535, 65536, 1<<24 - 1, 1 << 24, 1<<32 + 7, 1<<56 - 1, 1 << 56, 1<<64 - 1}
	var prev []byte
	for _, id := range ids {
		b := appendID(nil, id)
		got, n := readID(append(slices.Clone(b), 0xAA))
		if got != id || n != len(b) {
			t.Errorf("id %d: encoded %x, read back %d in %d bytes", id, b, got, n)
		}
		if prev != nil && string(prev) >= string(b) {
			t.Errorf("id %d encodes to %x, not after the one before, %x", id, b, prev)
		}
		prev = b
	}
	for _, bad := range [][]byte{nil, {0}, {9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 1, 2}} {
		if _, n := readID(bad); n != 0 {
			t.Errorf("readID(%x) read %d bytes, want none", bad, n)
		}
	}
}

func TestEdgeKeyRoundTrip(t *testing.T) {
	for _, c := range []edgeKeyParts{
		{targetSURT: "com,example)/a", domain: 1, source: 1, typ: lgv1.LinkType_LINK_TYPE_A, anchor: "home"},
		{targetSURT: "com,example)/", domain: 300, source: 1 << 40, typ: lgv1.LinkType_LINK_TYPE_IMG, anchor: ""},
		{targetSURT: "de,xn--mnchen-3ya)/ü", domain: 255, source: 256, typ: lgv1.LinkType_LINK_TYPE_REDIRECT, anchor: "Über\x00uns"},
	} {
		k := edgeKey(nil, c.targetSURT, c.domain, c.source, c.typ, c.anchor)
		got, err := parseEdgeKey(k, "")
		if err != nil || got != c {
			t.Errorf("%+v: parsed %+v, %v", c, got, err)
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
