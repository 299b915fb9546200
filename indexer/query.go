package indexer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Paging limits of Backlinks.
const (
	DefaultPageSize = 100
	MaxPageSize     = 10000
)

// ErrInvalidArgument is returned (wrapped, with the reason) by query methods
// for a request that can never succeed: a bad target, scope, page size or
// page token. The gRPC layer maps it to codes.InvalidArgument.
var ErrInvalidArgument = errors.New("indexer: invalid argument")

// Query selects backlinks.
type Query struct {
	// Target is a URL, or for host and domain scope a host name or URL.
	Target string
	// Scope defaults to SCOPE_URL.
	Scope lgv1.Scope
	// PageSize defaults to DefaultPageSize, at most MaxPageSize.
	PageSize int
	// PageToken continues a previous query; empty for the first page.
	PageToken string
	// IncludeLost also returns edges whose source no longer has them.
	IncludeLost bool
}

// Page is one page of query results.
type Page struct {
	Backlinks []*lgv1.Backlink
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// Backlinks returns the links to the query's target in SURT order of (target,
// source). Page tokens are keyset positions, so a token stays valid while the
// index changes: rows added before the position are not returned, rows after
// it are, and no row is returned twice.
func (ix *Index) Backlinks(ctx context.Context, q Query) (*Page, error) {
	ranges, err := targetRanges(q.Target, q.Scope)
	if err != nil {
		return nil, err
	}
	size := q.PageSize
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 0 || size > MaxPageSize:
		return nil, fmt.Errorf("%w: page_size %d out of range 1..%d", ErrInvalidArgument, size, MaxPageSize)
	}
	var after []byte
	if q.PageToken != "" {
		after, err = decodeToken(q.PageToken, q.Scope, ranges)
		if err != nil {
			return nil, err
		}
	}

	it, err := ix.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: ranges[0][0], UpperBound: ranges[len(ranges)-1][1],
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	page := &Page{}
	var last []byte
	for _, r := range ranges {
		start := r[0]
		if after != nil {
			if bytes.Compare(after, r[1]) >= 0 {
				continue
			}
			if bytes.Compare(after, start) >= 0 {
				start = append(slices.Clip(after), 0) // the key's successor
			}
		}
		for valid := it.SeekGE(start); valid && bytes.Compare(it.Key(), r[1]) < 0; valid = it.Next() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if len(page.Backlinks) == size {
				page.NextPageToken = encodeToken(q.Scope, last)
				return page, nil
			}
			bl, live, err := ix.backlink(ix.db, it.Key(), it.Value())
			if err != nil {
				return nil, err
			}
			if live || q.IncludeLost {
				page.Backlinks = append(page.Backlinks, bl)
				last = append(last[:0], it.Key()...)
			}
		}
		if err := it.Error(); err != nil {
			return nil, err
		}
	}
	return page, nil
}

func (ix *Index) backlink(r pebble.Reader, key, val []byte) (*lgv1.Backlink, bool, error) {
	k, err := parseEdgeKey(key)
	if err != nil {
		return nil, false, err
	}
	v, err := decodeEdgeValue(val)
	if err != nil {
		return nil, false, err
	}
	src, err := urlnorm.FromSURT(k.sourceSURT)
	if err != nil {
		return nil, false, fmt.Errorf("indexer: corrupt source in key %q: %w", key, err)
	}
	tgt, err := urlnorm.FromSURT(k.targetSURT)
	if err != nil {
		return nil, false, fmt.Errorf("indexer: corrupt target in key %q: %w", key, err)
	}
	bl := &lgv1.Backlink{
		SourceUrl:      src,
		TargetUrl:      tgt,
		AnchorText:     k.anchor,
		Rel:            v.rel,
		Type:           k.typ,
		RedirectStatus: v.redirectStatus,
		FirstSeen:      timestamppb.New(time.UnixMilli(v.firstSeen)),
		LastSeen:       timestamppb.New(time.UnixMilli(v.lastSeen)),
	}
	for _, r := range v.rel {
		if r == "nofollow" || r == "ugc" || r == "sponsored" {
			bl.Nofollow = true
		}
	}
	raw, closer, err := r.Get(sourceKey(ix.shardOf(tgt), k.sourceSURT))
	if err == nil {
		s, derr := decodeSourceValue(raw)
		closer.Close()
		if derr == nil {
			bl.SourceTitle, bl.SourceStatus = s.title, s.status
			bl.Nofollow = bl.Nofollow || s.nofollow
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, false, err
	}
	return bl, v.lostAt == 0, nil
}

// targetRanges returns the key ranges [lo, hi) of the edges a target selects,
// in key order.
func targetRanges(target string, scope lgv1.Scope) ([][2][]byte, error) {
	if strings.TrimSpace(target) == "" {
		return nil, fmt.Errorf("%w: target is empty; give a URL, host or domain", ErrInvalidArgument)
	}
	prefix := func(s string) [2][]byte {
		lo := prefixed(store.PrefixEdge, s)
		return [2][]byte{lo, store.PrefixEnd(lo)}
	}
	switch scope {
	case lgv1.Scope_SCOPE_UNSPECIFIED, lgv1.Scope_SCOPE_URL:
		n, err := urlnorm.Normalize(target)
		if err != nil {
			return nil, fmt.Errorf("%w: target %q is not an absolute http(s) URL: %v", ErrInvalidArgument, target, err)
		}
		return [][2][]byte{prefix(urlnorm.SURT(n) + "\x00")}, nil
	case lgv1.Scope_SCOPE_HOST, lgv1.Scope_SCOPE_DOMAIN:
		u := target
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		n, err := urlnorm.Normalize(u)
		if err != nil {
			return nil, fmt.Errorf("%w: target %q is not a host name or URL: %v", ErrInvalidArgument, target, err)
		}
		host := urlnorm.Host(n)
		if scope == lgv1.Scope_SCOPE_HOST {
			return [][2][]byte{prefix(urlnorm.HostSURT(host) + ")")}, nil
		}
		d := urlnorm.HostSURT(urlnorm.RegistrableDomain(host))
		// ')' < ',' < ':' so these ranges are in key order: the domain
		// itself, its subdomains, then the domain on other ports.
		return [][2][]byte{prefix(d + ")"), prefix(d + ","), prefix(d + ":")}, nil
	default:
		return nil, fmt.Errorf("%w: unknown scope %v; use url, host or domain", ErrInvalidArgument, scope)
	}
}

// A page token is base64url(crc32 | scope | last key). The checksum catches
// corrupted or hand-edited tokens; the range check makes a token from one
// query useless for another.
func encodeToken(scope lgv1.Scope, last []byte) string {
	payload := append([]byte{byte(scope)}, last...)
	buf := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload))
	return base64.RawURLEncoding.EncodeToString(append(buf, payload...))
}

func decodeToken(tok string, scope lgv1.Scope, ranges [][2][]byte) ([]byte, error) {
	bad := fmt.Errorf("%w: page_token is not valid for this query; start again without it", ErrInvalidArgument)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 6 {
		return nil, bad
	}
	payload := raw[4:]
	if crc32.ChecksumIEEE(payload) != binary.BigEndian.Uint32(raw) || lgv1.Scope(payload[0]) != scope {
		return nil, bad
	}
	key := payload[1:]
	for _, r := range ranges {
		if bytes.Compare(key, r[0]) >= 0 && bytes.Compare(key, r[1]) < 0 {
			return key, nil
		}
	}
	return nil, bad
}

// ScanEdges calls fn for every edge in the index, live and lost, in key
// order, from one consistent snapshot. It stops at the first error fn
// returns and returns it.
func (ix *Index) ScanEdges(ctx context.Context, fn func(bl *lgv1.Backlink, live bool) error) error {
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{store.PrefixEdge}, UpperBound: []byte{store.PrefixEdge + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		bl, live, err := ix.backlink(snap, it.Key(), it.Value())
		if err != nil {
			return err
		}
		if err := fn(bl, live); err != nil {
			return err
		}
	}
	return it.Error()
}
