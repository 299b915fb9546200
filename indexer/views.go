package indexer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// The views below answer from the maintained aggregates when the selection
// allows (see selection.aggregated) and otherwise by scanning the
// selection's edges once per call.

// ReferringDomains lists the registrable domains linking to a target, most
// backlinks (or highest authority) first, then by domain.
func (ix *Index) ReferringDomains(ctx context.Context, req *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error) {
	sel, err := ix.selection(req.GetTarget(), req.GetScope(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	byAuthority := false
	switch req.GetOrderBy() {
	case lgv1.ReferringDomainOrder_REFERRING_DOMAIN_ORDER_UNSPECIFIED:
	case lgv1.ReferringDomainOrder_REFERRING_DOMAIN_ORDER_AUTHORITY:
		byAuthority = true
	default:
		return nil, fmt.Errorf("%w: unknown order_by %v; use backlinks or authority", ErrInvalidArgument, req.GetOrderBy())
	}
	view := "domains"
	if byAuthority {
		view = "domains by authority"
	}
	size, after, qid, err := paging(sel, int(req.GetPageSize()), req.GetPageToken(), view)
	if err != nil {
		return nil, err
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	withAuthority := func(rows []*lgv1.ReferringDomain) {
		for _, r := range rows {
			r.Authority = sel.scores.Domain(urlnorm.ReversedHost(r.Domain))
		}
	}
	var rows []*lgv1.ReferringDomain
	if sel.aggregated() && !ix.scanOnly {
		prefix := []byte(sel.aggScope() + string(recDomain))
		err = scanRecords(ctx, snap, prefix, func(suffix string, r store.Record) {
			if f := r.Fields; len(f) == domLen && f[domLinks] > 0 {
				rows = append(rows, &lgv1.ReferringDomain{Domain: urlnorm.HostOfSURT(suffix), Backlinks: f[domLinks], FollowBacklinks: f[domFollow], FirstSeen: ts(f[domFirst]), LastSeen: ts(f[domLast])})
			}
		})
	} else {
		byDomain := make(map[string]*lgv1.ReferringDomain)
		spans := make(map[string][2]int64)
		err = sel.scan(ctx, snap, func(row edgeRow) error {
			d, err := sel.domainOf(&row)
			if err != nil {
				return err
			}
			rd := byDomain[d]
			if rd == nil {
				rd = &lgv1.ReferringDomain{Domain: urlnorm.HostOfSURT(d)}
				byDomain[d] = rd
				spans[d] = [2]int64{row.v.firstSeen, row.v.lastSeen}
			}
			rd.Backlinks++
			if row.v.flags.follow() {
				rd.FollowBacklinks++
			}
			sp := spans[d]
			spans[d] = [2]int64{min(sp[0], row.v.firstSeen), max(sp[1], row.v.lastSeen)}
			return nil
		})
		for d, rd := range byDomain {
			rd.FirstSeen, rd.LastSeen = ts(spans[d][0]), ts(spans[d][1])
			rows = append(rows, rd)
		}
	}
	if err != nil {
		return nil, err
	}
	pos := func(r *lgv1.ReferringDomain) []byte { return countPos(r.Backlinks, r.Domain) }
	if byAuthority {
		// Every row's authority is needed to sort; otherwise only the page's.
		withAuthority(rows)
		pos = func(r *lgv1.ReferringDomain) []byte {
			return append([]byte{byte(100 - r.Authority)}, countPos(r.Backlinks, r.Domain)...)
		}
	}
	page, next := pageOf(rows, pos, after, size)
	if !byAuthority {
		withAuthority(page)
	}
	resp := &lgv1.ReferringDomainsResponse{Domains: page}
	if next != nil {
		resp.NextPageToken = encodeToken(qid, next)
	}
	return resp, nil
}

// Anchors lists the anchor texts of the links to a target, most backlinks
// first, then by text.
func (ix *Index) Anchors(ctx context.Context, req *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error) {
	sel, err := ix.selection(req.GetTarget(), req.GetScope(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	size, after, qid, err := paging(sel, int(req.GetPageSize()), req.GetPageToken(), "anchors")
	if err != nil {
		return nil, err
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	var rows []*lgv1.Anchor
	if sel.aggregated() && !ix.scanOnly {
		scope := sel.aggScope()
		err = scanRecords(ctx, snap, []byte(scope+string(recAnchor)), func(suffix string, r store.Record) {
			if f := r.Fields; len(f) == 1 && f[0] > 0 {
				rows = append(rows, &lgv1.Anchor{AnchorText: suffix, Backlinks: f[0]})
			}
		})
		if err != nil {
			return nil, err
		}
		page, next := pageOf(rows, anchorPos, after, size)
		for _, a := range page {
			// Referring domains are counted for the rows returned only.
			err := scanRecords(ctx, snap, []byte(scope+string(recAnchorDomain)+a.AnchorText+"\x00"), func(_ string, r store.Record) {
				if len(r.Fields) == 1 && r.Fields[0] > 0 {
					a.ReferringDomains++
				}
			})
			if err != nil {
				return nil, err
			}
		}
		return anchorsPage(qid, page, next), nil
	} else {
		byAnchor := make(map[string]*lgv1.Anchor)
		type anchorDomain struct {
			anchor string
			domain uint64 // id
		}
		domains := make(map[anchorDomain]struct{})
		err = sel.scan(ctx, snap, func(row edgeRow) error {
			a := byAnchor[row.k.anchor]
			if a == nil {
				a = &lgv1.Anchor{AnchorText: row.k.anchor}
				byAnchor[row.k.anchor] = a
			}
			a.Backlinks++
			d := anchorDomain{row.k.anchor, row.k.domain}
			if _, ok := domains[d]; !ok {
				domains[d] = struct{}{}
				a.ReferringDomains++
			}
			return nil
		})
		for _, a := range byAnchor {
			rows = append(rows, a)
		}
	}
	if err != nil {
		return nil, err
	}
	page, next := pageOf(rows, anchorPos, after, size)
	return anchorsPage(qid, page, next), nil
}

func anchorPos(a *lgv1.Anchor) []byte { return countPos(a.Backlinks, a.AnchorText) }

func anchorsPage(qid uint32, page []*lgv1.Anchor, next []byte) *lgv1.AnchorsResponse {
	resp := &lgv1.AnchorsResponse{Anchors: page}
	if next != nil {
		resp.NextPageToken = encodeToken(qid, next)
	}
	return resp
}

// Summary returns the backlink profile of a target.
func (ix *Index) Summary(ctx context.Context, req *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error) {
	sel, err := ix.selection(req.GetTarget(), req.GetScope(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	resp, err := ix.summary(ctx, snap, sel)
	if err != nil {
		return nil, err
	}
	// The target's own rank, if ranked.
	switch sel.scope {
	case lgv1.Scope_SCOPE_HOST:
		resp.Summary.Rank, err = rank.Get(snap, rank.LevelHost, urlnorm.ReversedHost(sel.target))
	case lgv1.Scope_SCOPE_DOMAIN:
		resp.Summary.Rank, err = rank.Get(snap, rank.LevelDomain, urlnorm.ReversedHost(sel.target))
	case lgv1.Scope_SCOPE_URL:
		resp.Summary.Rank, err = rank.Get(snap, rank.LevelPage, urlnorm.SURT(sel.target))
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// authorityBuckets is the length of Summary.referring_domains_by_authority.
const authorityBuckets = 10

// countAuthority adds a referring domain (as its HostSURT) to the
// authority distribution of s.
func (sel *selection) countAuthority(s *lgv1.Summary, domainSURT string) {
	s.ReferringDomainsByAuthority[min(int(sel.authority(domainSURT))/10, authorityBuckets-1)]++
}

// summary computes a Summary from the aggregates, or by a scan when they
// do not hold what sel asks.
func (ix *Index) summary(ctx context.Context, snap *pebble.Snapshot, sel *selection) (*lgv1.SummaryResponse, error) {
	s := &lgv1.Summary{ByType: map[string]int64{}, ByTld: map[string]int64{}, ReferringDomainsByAuthority: make([]int64, authorityBuckets)}
	if sel.aggregated() && !ix.scanOnly {
		scope := sel.aggScope()
		raw, closer, err := snap.Get([]byte(scope + string(recSummary)))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			return &lgv1.SummaryResponse{Summary: s}, nil
		case err != nil:
			return nil, err
		}
		r, err := store.DecodeRecord(raw)
		closer.Close()
		if err != nil || len(r.Fields) != sumLen {
			return nil, fmt.Errorf("indexer: malformed summary of %s: %v", sel.target, err)
		}
		f := r.Fields
		s.Backlinks, s.Follow, s.Nofollow, s.Ugc, s.Sponsored = f[sumBacklinks], f[sumFollow], f[sumNofollow], f[sumUGC], f[sumSponsored]
		s.ReferringPages, s.ReferringHosts, s.ReferringDomains = f[sumPages], f[sumHosts], f[sumDomains]
		for t := 1; t <= maxLinkType; t++ {
			if n := f[sumTypes+t-1]; n != 0 {
				s.ByType[typeName(lgv1.LinkType(t))] = n
			}
		}
		if s.Backlinks > 0 {
			s.FirstSeen, s.LastSeen = ts(f[sumFirst]), ts(f[sumLast])
		}
		err = scanRecords(ctx, snap, []byte(scope+string(recTLD)), func(tld string, r store.Record) {
			if len(r.Fields) == 1 && r.Fields[0] != 0 {
				s.ByTld[tld] = r.Fields[0]
			}
		})
		if err != nil {
			return nil, err
		}
		if !sel.scores.Any() {
			s.ReferringDomainsByAuthority[0] = s.ReferringDomains
			return &lgv1.SummaryResponse{Summary: s}, nil
		}
		err = scanRecords(ctx, snap, []byte(scope+string(recDomain)), func(d string, r store.Record) {
			if f := r.Fields; len(f) == domLen && f[domLinks] > 0 {
				sel.countAuthority(s, d)
			}
		})
		if err != nil {
			return nil, err
		}
		return &lgv1.SummaryResponse{Summary: s}, nil
	}
	pages := make(map[uint64]struct{}) // source ids
	hosts := make(map[string]struct{})
	domains := make(map[string]struct{})
	var first, last int64
	err := sel.scan(ctx, snap, func(row edgeRow) error {
		v := &row.v
		s.Backlinks++
		if v.flags.follow() {
			s.Follow++
		}
		if v.flags&(flagNofollow|flagPageNofollow) != 0 {
			s.Nofollow++
		}
		if v.flags&flagUGC != 0 {
			s.Ugc++
		}
		if v.flags&flagSponsored != 0 {
			s.Sponsored++
		}
		s.ByType[typeName(row.k.typ)]++
		d, err := sel.domainOf(&row)
		if err != nil {
			return err
		}
		s.ByTld[publicSuffix(urlnorm.HostOfSURT(d))]++
		if _, ok := pages[row.k.source]; !ok {
			surt, err := sel.names.source(row.k.source)
			if err != nil {
				return err
			}
			host, _, _ := strings.Cut(surt, ")")
			hosts[host] = struct{}{}
			pages[row.k.source] = struct{}{}
		}
		domains[d] = struct{}{}
		if first == 0 || v.firstSeen < first {
			first = v.firstSeen
		}
		last = max(last, v.lastSeen)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.ReferringPages, s.ReferringHosts, s.ReferringDomains = int64(len(pages)), int64(len(hosts)), int64(len(domains))
	for d := range domains {
		sel.countAuthority(s, d)
	}
	if s.Backlinks > 0 {
		s.FirstSeen, s.LastSeen = ts(first), ts(last)
	}
	return &lgv1.SummaryResponse{Summary: s}, nil
}

// Outlinks lists the links of a source page from its latest crawl, in SURT
// order of target (then type and anchor).
func (ix *Index) Outlinks(ctx context.Context, req *lgv1.OutlinksRequest) (*lgv1.OutlinksResponse, error) {
	// Checked here, since the selection below would call it the target.
	src := req.GetSource()
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%w: source is empty; give the absolute http(s) URL of a page", ErrInvalidArgument)
	}
	if _, err := urlnorm.Normalize(src); err != nil {
		return nil, fmt.Errorf("%w: source %s is not an absolute http(s) URL: %v", ErrInvalidArgument, quoteShort(src), err)
	}
	// The source page plays the target's part in the selection: its
	// domain decides which links are internal.
	sel, err := ix.selection(src, lgv1.Scope_SCOPE_URL, req.GetFilter())
	if err != nil {
		return nil, err
	}
	if !sel.live() {
		return nil, fmt.Errorf("%w: outlinks are the links of the latest crawl; include_lost, state and lost_from/lost_to do not apply", ErrInvalidArgument)
	}
	size, after, qid, err := paging(sel, int(req.GetPageSize()), req.GetPageToken(), "outlinks")
	if err != nil {
		return nil, err
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	surt := urlnorm.SURT(sel.target)
	var pr lgv1.PageResult
	if _, err := getProto(snap, prefixed(store.PrefixPage, surt), &pr); err != nil {
		return nil, err
	}
	fwd, err := getForward(snap, prefixed(store.PrefixForward, surt))
	if err != nil {
		return nil, err
	}
	type out struct {
		pos []byte
		bl  *lgv1.Backlink
	}
	var rows []out
	// The page is every row's source; its authority decides min_authority
	// for all of them.
	if sel.minAuthority > 0 && sel.authority(sel.domainSURT) < sel.minAuthority {
		fwd = nil
	}
	cache := newRowCache(1)
	defer cache.close()
	self := sourceEntry{url: sel.target, title: pr.GetTitle(), status: pr.GetStatus()}
	if scores := ix.rankScores(); scores.Any() {
		self.authority = scores.Domain(urlnorm.ReversedHost(urlnorm.RegistrableDomain(urlnorm.Host(sel.target))))
		if self.pageAuthority, err = scores.Page(snap, surt); err != nil {
			return nil, err
		}
	}
	cache.page = &self
	keys := make([][]byte, len(fwd))
	for i, e := range fwd {
		keys[i] = linkKey(nil, urlnorm.SURT(e.GetTargetUrl()), surt, e.GetType(), truncateUTF8(e.GetAnchorText(), MaxAnchorBytes))
	}
	vals, err := ix.edgeValues(ctx, snap, fwd, keys)
	if err != nil {
		return nil, err
	}
	for i, e := range fwd {
		if vals[i] == nil {
			continue // not applied yet on the target's shard
		}
		// Internal here means a target on the page's own domain.
		if sel.excludeInternal && urlnorm.HostSURT(urlnorm.RegistrableDomain(urlnorm.Host(e.GetTargetUrl()))) == sel.domainSURT {
			continue
		}
		row := edgeRow{key: keys[i], k: edgeKeyParts{targetSURT: urlnorm.SURT(e.GetTargetUrl()), typ: e.GetType(), anchor: truncateUTF8(e.GetAnchorText(), MaxAnchorBytes)}}
		var ok bool
		if row.v, ok, err = sel.matchLink(&row.k, vals[i]); err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		bl, err := ix.backlink(snap, &row, cache)
		if err != nil {
			return nil, err
		}
		pos := append([]byte(row.k.targetSURT), 0, byte(row.k.typ))
		rows = append(rows, out{pos: append(pos, row.k.anchor...), bl: bl})
	}
	page, next := pageOf(rows, func(o out) []byte { return o.pos }, after, size)
	resp := &lgv1.OutlinksResponse{}
	for _, o := range page {
		resp.Links = append(resp.Links, o.bl)
	}
	if next != nil {
		resp.NextPageToken = encodeToken(qid, next)
	}
	return resp, nil
}

// edgeValues returns the values of the edges of a page's forward list fwd,
// named by link keys, nil where there is none: from snap, or in a cluster
// from the nodes owning the targets, asked once per shard.
func (ix *Index) edgeValues(ctx context.Context, snap pebble.Reader, fwd []*lgv1.Edge, keys [][]byte) ([][]byte, error) {
	vals := make([][]byte, len(keys))
	remote := make(map[int][]int) // shard -> indexes into keys
	lv := ix.linkValues(snap)
	for i, k := range keys {
		if ix.remote != nil {
			if sh := ix.shardOf(fwd[i].GetTargetUrl()); !ix.remote.owns(sh) {
				remote[sh] = append(remote[sh], i)
				continue
			}
		}
		var err error
		if vals[i], err = lv.get(k); err != nil {
			return nil, err
		}
	}
	for sh, idx := range remote {
		ks := make([][]byte, len(idx))
		for j, i := range idx {
			ks[j] = keys[i]
		}
		kv, err := ix.remote.get(ctx, sh, ks)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			if kv.GetFound()[j] {
				vals[i] = kv.GetValues()[j]
			}
		}
	}
	return vals, nil
}

// paging validates a view's page size and token.
func paging(sel *selection, n int, token, view string) (size int, after []byte, qid uint32, err error) {
	if size, err = pageSize(n); err != nil {
		return 0, nil, 0, err
	}
	qid = queryID(sel, view)
	if token != "" {
		after, err = decodeToken(token, qid)
	}
	return size, after, qid, err
}

// pageOf sorts rows by their position and returns the first size rows
// after the position after, and the position to continue from (nil on the
// last page).
func pageOf[T any](rows []T, pos func(T) []byte, after []byte, size int) ([]T, []byte) {
	type posRow struct {
		pos []byte
		row T
	}
	sorted := make([]posRow, 0, len(rows))
	for _, r := range rows {
		if p := pos(r); after == nil || bytes.Compare(p, after) > 0 {
			sorted = append(sorted, posRow{p, r})
		}
	}
	slices.SortFunc(sorted, func(a, b posRow) int { return bytes.Compare(a.pos, b.pos) })
	page := make([]T, 0, min(size, len(sorted)))
	for _, pr := range sorted[:min(size, len(sorted))] {
		page = append(page, pr.row)
	}
	if len(sorted) <= size {
		return page, nil
	}
	return page, sorted[size-1].pos
}

// countPos orders rows by count, highest first, then by name.
func countPos(n int64, name string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, ^uint64(n)), name...)
}

// scanRecords calls fn with the key suffix and record of every aggregate
// record under prefix.
func scanRecords(ctx context.Context, r pebble.Reader, prefix []byte, fn func(suffix string, rec store.Record)) error {
	return scanPrefix(ctx, r, prefix, func(suffix string, val []byte) error {
		rec, err := store.DecodeRecord(val)
		if err != nil {
			return fmt.Errorf("%w (key suffix %q)", err, suffix)
		}
		fn(suffix, rec)
		return nil
	})
}

// scanPrefix calls fn with the key suffix and value of every key under
// prefix; val is valid only during the call.
func scanPrefix(ctx context.Context, r pebble.Reader, prefix []byte, fn func(suffix string, val []byte) error) error {
	it, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(string(it.Key()[len(prefix):]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func ts(ms int64) *timestamppb.Timestamp {
	if ms == 0 {
		return nil
	}
	return timestamppb.New(time.UnixMilli(ms))
}
