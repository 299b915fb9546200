package indexer

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// Limits of Intersect.
const (
	MaxIntersectTargets = 10
	// MaxIntersectDomains bounds the distinct referring domains one
	// Intersect holds at once (the exclude target's and the candidates'):
	// every call reads all referring domains of every target, and a few
	// targets with millions each would otherwise take the server's memory.
	// A candidate takes some 200 bytes with 10 targets, so the bound is
	// about 200 MB. Past it the call fails with InvalidArgument asking for
	// a narrower filter; ResourceExhausted would map to HTTP 429, inviting
	// retries of an answer that waiting does not change.
	MaxIntersectDomains = 1_000_000
)

// referringDomainsFunc is a ReferringDomains view: an Index's, or the
// gateway's that asks the node owning each target.
type referringDomainsFunc func(context.Context, *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error)

// Intersect implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Intersect(ctx context.Context, req *lgv1.IntersectRequest) (*lgv1.IntersectResponse, error) {
	resp, err := intersect(ctx, s.Index.ReferringDomains, req, MaxIntersectDomains)
	return resp, toStatus(err)
}

// Intersect implements lgv1.LinkGraphServiceServer. Nodes are asked for the
// referring domains of one target each, not for Intersect: the targets may
// be on different nodes.
func (g *Gateway) Intersect(ctx context.Context, req *lgv1.IntersectRequest) (*lgv1.IntersectResponse, error) {
	resp, err := intersect(ctx, g.ReferringDomains, req, MaxIntersectDomains)
	return resp, toStatus(err)
}

// intersectRow is one domain linking to some of the targets while the
// answer is built: its backlinks to each target are
// intersector.backlinks[idx*n : idx*n+n].
type intersectRow struct {
	domain    string
	authority int32
	linked    int32
	total     int64
	idx       int
}

// intersectKey is a row's position in the answer's order, as a page token
// keeps it.
type intersectKey struct {
	linked    int32
	authority int32
	total     int64
	domain    string
}

func (r *intersectRow) key() intersectKey {
	return intersectKey{r.linked, r.authority, r.total, r.domain}
}

// cmpIntersect orders the answer: most targets linked first, then highest
// authority, then most backlinks in all, then by domain.
func cmpIntersect(a, b intersectKey) int {
	return cmp.Or(
		cmp.Compare(b.linked, a.linked),
		cmp.Compare(b.authority, a.authority),
		cmp.Compare(b.total, a.total),
		strings.Compare(a.domain, b.domain),
	)
}

// The counts are stored complemented so that a token's bytes read like
// the order (this layout is only ever decoded by decodeIntersectPos).
func encodeIntersectPos(k intersectKey) []byte {
	pos := binary.BigEndian.AppendUint32(nil, ^uint32(k.linked))
	pos = binary.BigEndian.AppendUint32(pos, ^uint32(k.authority))
	pos = binary.BigEndian.AppendUint64(pos, ^uint64(k.total))
	return append(pos, k.domain...)
}

func decodeIntersectPos(pos []byte) (intersectKey, error) {
	if len(pos) < 16 {
		return intersectKey{}, fmt.Errorf("%w: page_token is not valid for this query; start again without it", ErrInvalidArgument)
	}
	return intersectKey{
		linked:    int32(^binary.BigEndian.Uint32(pos)),
		authority: int32(^binary.BigEndian.Uint32(pos[4:])),
		total:     int64(^binary.BigEndian.Uint64(pos[8:])),
		domain:    string(pos[16:]),
	}, nil
}

// intersect answers an IntersectRequest from the referring domains of each
// target, read in full through rd (MaxPageSize at a time), holding at most
// maxDomains distinct domains. Like the other views it recomputes the
// whole answer for every page and pages by keyset, so a token stays valid
// while the index changes.
func intersect(ctx context.Context, rd referringDomainsFunc, req *lgv1.IntersectRequest, maxDomains int) (*lgv1.IntersectResponse, error) {
	targets := req.GetTargets()
	n := len(targets)
	if n == 0 || n > MaxIntersectTargets {
		return nil, fmt.Errorf("%w: %d targets; give 1 to %d", ErrInvalidArgument, n, MaxIntersectTargets)
	}
	// Checked here, before any view is asked, so that a bad last target
	// costs no reading and the error names it.
	seen := make(map[string]int, n)
	for i, t := range targets {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%w: targets[%d] is empty; give a URL, host or domain", ErrInvalidArgument, i)
		}
		sel, err := newSelection(t, req.GetScope(), req.GetFilter())
		if err != nil {
			return nil, fmt.Errorf("%w (targets[%d])", err, i)
		}
		// A target given twice (www.example.com and example.com in domain
		// scope) would count each of its linking domains twice.
		if j, ok := seen[sel.target]; ok {
			return nil, fmt.Errorf("%w: targets[%d] %q and targets[%d] %q both select %s in this scope; give each target once", ErrInvalidArgument, j, targets[j], i, t, sel.target)
		}
		seen[sel.target] = i
	}
	if ex := req.GetExcludeTarget(); ex != "" {
		if _, err := newSelection(ex, req.GetScope(), req.GetFilter()); err != nil {
			return nil, fmt.Errorf("%w (exclude_target)", err)
		}
	}
	k := int(req.GetMinTargets())
	switch {
	case k == 0:
		k = 1
	case k < 0 || k > n:
		return nil, fmt.Errorf("%w: min_targets %d out of range 1..%d (the number of targets; 0 for 1)", ErrInvalidArgument, req.GetMinTargets(), n)
	}
	size, err := pageSize(int(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	id := proto.CloneOf(req)
	id.PageSize, id.PageToken = 0, ""
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(id)
	if err != nil {
		return nil, fmt.Errorf("indexer: cannot fingerprint the intersect request: %w", err)
	}
	qid := crc32.ChecksumIEEE(append([]byte("intersect\x00"), raw...))
	var after *intersectKey
	if tok := req.GetPageToken(); tok != "" {
		pos, err := decodeToken(tok, qid)
		if err != nil {
			return nil, err
		}
		a, err := decodeIntersectPos(pos)
		if err != nil {
			return nil, err
		}
		after = &a
	}

	tooMany := func() error {
		return fmt.Errorf("%w: the targets have more than %d referring domains in all, too many to intersect at once; narrow the filter (follow_only, min_authority, first_seen_from, ...) or use fewer targets", ErrInvalidArgument, maxDomains)
	}
	// Domains linking to the excluded target are only remembered as such.
	excluded := make(map[string]struct{})
	if ex := req.GetExcludeTarget(); ex != "" {
		err := eachReferringDomain(ctx, rd, ex, req, func(d *lgv1.ReferringDomain) error {
			if len(excluded) >= maxDomains {
				return tooMany()
			}
			excluded[d.GetDomain()] = struct{}{}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("referring domains of exclude_target %q: %w", ex, err)
		}
	}
	rows := make(map[string]*intersectRow)
	var backlinks []int64 // n per row, at its idx
	for i, t := range targets {
		// A domain first seen at target i can link to at most the n-i
		// targets left: if that is fewer than k it cannot make the
		// answer, and is not kept.
		canReach := n-i >= k
		err := eachReferringDomain(ctx, rd, t, req, func(d *lgv1.ReferringDomain) error {
			name := d.GetDomain()
			if _, ok := excluded[name]; ok || d.GetBacklinks() == 0 {
				return nil
			}
			r := rows[name]
			if r == nil {
				if !canReach {
					return nil
				}
				if len(rows)+len(excluded) >= maxDomains {
					return tooMany()
				}
				r = &intersectRow{domain: name, idx: len(rows)}
				rows[name] = r
				backlinks = append(backlinks, make([]int64, n)...)
			}
			// A domain whose count changes while the pages are read can
			// come twice (its keyset position moved): it is one domain.
			b := &backlinks[r.idx*n+i]
			if *b == 0 {
				r.linked++
			}
			if d.GetBacklinks() > *b {
				r.total += d.GetBacklinks() - *b
				*b = d.GetBacklinks()
			}
			// One domain has one authority; max keeps the answer
			// deterministic should a ranking land between two targets.
			r.authority = max(r.authority, d.GetAuthority())
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("referring domains of targets[%d] %q: %w", i, t, err)
		}
	}
	clear(excluded)

	var keep []*intersectRow
	for _, r := range rows {
		if int(r.linked) >= k && (after == nil || cmpIntersect(r.key(), *after) > 0) {
			keep = append(keep, r)
		}
	}
	slices.SortFunc(keep, func(a, b *intersectRow) int { return cmpIntersect(a.key(), b.key()) })
	resp := &lgv1.IntersectResponse{}
	if len(keep) > size {
		keep = keep[:size]
		resp.NextPageToken = encodeToken(qid, encodeIntersectPos(keep[size-1].key()))
	}
	resp.Domains = make([]*lgv1.IntersectDomain, len(keep))
	for j, r := range keep {
		resp.Domains[j] = &lgv1.IntersectDomain{
			Domain: r.domain, Authority: r.authority, TargetsLinked: r.linked,
			Backlinks: slices.Clone(backlinks[r.idx*n : r.idx*n+n]),
		}
	}
	return resp, nil
}

// eachReferringDomain calls fn with every referring domain of target, in
// the scope and with the filter of req.
func eachReferringDomain(ctx context.Context, rd referringDomainsFunc, target string, req *lgv1.IntersectRequest, fn func(*lgv1.ReferringDomain) error) error {
	q := &lgv1.ReferringDomainsRequest{Target: target, Scope: req.GetScope(), Filter: req.GetFilter(), PageSize: MaxPageSize}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := rd(ctx, q)
		if err != nil {
			return err
		}
		for _, d := range resp.GetDomains() {
			if err := fn(d); err != nil {
				return err
			}
		}
		if q.PageToken = resp.GetNextPageToken(); q.PageToken == "" {
			return nil
		}
	}
}
