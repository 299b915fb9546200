package indexer

import (
	"bytes"
	"cmp"
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
	var rows []domainRow
	var scope string
	if sel.aggregated() && !ix.scanOnly {
		if scope, err = sel.aggScopeIn(snap); err != nil {
			return nil, err
		}
	}
	if scope != "" && !byAuthority {
		// Read the page off the domains' rank keys.
		var page []*lgv1.ReferringDomain
		next, err := rankedPage(ctx, snap, scope, recDomainsByLinks, recDomain, after, size, domLen, urlnorm.HostOfSURT, func(links int64, name string, f []int64) {
			page = append(page, &lgv1.ReferringDomain{Domain: name, Backlinks: links, FollowBacklinks: f[domFollow], FirstSeen: ts(f[domFirst]), LastSeen: ts(f[domLast]),
				Authority: sel.scores.Domain(urlnorm.ReversedHost(name))})
		})
		if err != nil {
			return nil, err
		}
		resp := &lgv1.ReferringDomainsResponse{Domains: page}
		if next != nil {
			resp.NextPageToken = encodeToken(qid, next)
		}
		return resp, nil
	}
	if scope != "" {
		prefix := []byte(scope + string(recDomain))
		err = scanRecords(ctx, snap, prefix, func(suffix string, r store.Record) {
			if f := r.Fields; len(f) >= domLen && f[domLinks] > 0 {
				rows = append(rows, domainRow{host: urlnorm.HostOfSURT(suffix), links: f[domLinks], follow: f[domFollow], first: f[domFirst], last: f[domLast]})
			}
		})
	} else {
		byDomain := make(map[string]int) // index in rows
		err = sel.scan(ctx, snap, func(row *edgeRow) error {
			d, err := sel.domainOf(row)
			if err != nil {
				return err
			}
			i, ok := byDomain[d]
			if !ok {
				i = len(rows)
				byDomain[d] = i
				rows = append(rows, domainRow{host: urlnorm.HostOfSURT(d), first: row.v.firstSeen, last: row.v.lastSeen})
			}
			r := &rows[i]
			r.links++
			if row.v.flags.follow() {
				r.follow++
			}
			r.first, r.last = min(r.first, row.v.firstSeen), max(r.last, row.v.lastSeen)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	authority := func(r *domainRow) { r.authority = sel.scores.Domain(urlnorm.ReversedHost(r.host)) }
	if byAuthority {
		// Every row's authority is needed to sort; otherwise only the page's.
		for i := range rows {
			authority(&rows[i])
		}
	}
	first, next := firstPage(rows,
		func(dst []byte, r *domainRow) []byte { return r.appendPos(dst, byAuthority) },
		func(a, b *domainRow) int { return compareDomainRows(a, b, byAuthority) },
		after, size)
	page := make([]*lgv1.ReferringDomain, len(first))
	for i := range first {
		r := &first[i]
		if !byAuthority {
			authority(r)
		}
		page[i] = &lgv1.ReferringDomain{Domain: r.host, Backlinks: r.links, FollowBacklinks: r.follow, FirstSeen: ts(r.first), LastSeen: ts(r.last), Authority: r.authority}
	}
	resp := &lgv1.ReferringDomainsResponse{Domains: page}
	if next != nil {
		resp.NextPageToken = encodeToken(qid, next)
	}
	return resp, nil
}

// firstPage returns the first size rows after the position after, in the
// order of cmp, and the position to continue from (nil on the last page).
// appendPos appends a row's position (as page tokens hold it), which cmp
// must order alike; it is made only to compare with after and for the
// next page, not for every comparison.
func firstPage[T any](rows []T, appendPos func(dst []byte, r *T) []byte, cmp func(a, b *T) int, after []byte, size int) ([]T, []byte) {
	if after != nil {
		var pos []byte
		rows = slices.DeleteFunc(rows, func(r T) bool {
			pos = appendPos(pos[:0], &r)
			return bytes.Compare(pos, after) <= 0
		})
	}
	first := firstRows(rows, size, cmp)
	if len(rows) <= size {
		return first, nil
	}
	return first, appendPos(nil, &first[size-1])
}

// firstRows returns the first n rows in the order of cmp, sorted. A page
// of a long list costs a pass over the list, keeping the best n so far in
// a heap, and a sort of the page, rather than a sort of the list.
func firstRows[T any](rows []T, n int, cmp func(a, b *T) int) []T {
	if len(rows) <= n {
		out := slices.Clone(rows)
		slices.SortFunc(out, func(a, b T) int { return cmp(&a, &b) })
		return out
	}
	// heap holds the indexes of the best rows so far, the worst of them
	// at the root.
	heap := make([]int, 0, n)
	worse := func(i, j int) bool { return cmp(&rows[heap[i]], &rows[heap[j]]) > 0 }
	down := func(i int) {
		for {
			w := i
			if l := 2*i + 1; l < len(heap) && worse(l, w) {
				w = l
			}
			if r := 2*i + 2; r < len(heap) && worse(r, w) {
				w = r
			}
			if w == i {
				return
			}
			heap[i], heap[w] = heap[w], heap[i]
			i = w
		}
	}
	for i := range rows {
		switch {
		case len(heap) < n:
			heap = append(heap, i)
			for j := len(heap) - 1; j > 0 && worse(j, (j-1)/2); j = (j - 1) / 2 {
				heap[j], heap[(j-1)/2] = heap[(j-1)/2], heap[j]
			}
		case n > 0 && cmp(&rows[i], &rows[heap[0]]) < 0:
			heap[0] = i
			down(0)
		}
	}
	out := make([]T, len(heap))
	for j, i := range heap {
		out[j] = rows[i]
	}
	slices.SortFunc(out, func(a, b T) int { return cmp(&a, &b) })
	return out
}

// domainRow is a referring domain before it is on a page: a target's
// referring domains are all read and ordered, and only a page of them
// becomes messages.
type domainRow struct {
	host                       string
	links, follow, first, last int64 // first and last in Unix ms
	authority                  int32
}

// appendPos appends the row's position in its order, as page tokens hold
// it: most backlinks first, then by name (countPos), after the highest
// authority first when byAuthority.
func (r *domainRow) appendPos(dst []byte, byAuthority bool) []byte {
	if byAuthority {
		dst = append(dst, byte(100-r.authority))
	}
	return appendCountPos(dst, r.links, r.host)
}

// compareDomainRows orders rows as their positions (appendPos) do.
func compareDomainRows(a, b *domainRow, byAuthority bool) int {
	if byAuthority {
		if c := cmp.Compare(byte(100-a.authority), byte(100-b.authority)); c != 0 {
			return c
		}
	}
	return compareCounts(a.links, a.host, b.links, b.host)
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
		scope, err := sel.aggScopeIn(snap)
		if err != nil {
			return nil, err
		}
		var page []*lgv1.Anchor
		next, err := rankedPage(ctx, snap, scope, recAnchorsByLinks, recAnchor, after, size, anchorLen, func(s string) string { return s }, func(links int64, text string, f []int64) {
			page = append(page, &lgv1.Anchor{AnchorText: text, Backlinks: links, ReferringDomains: f[anchorDomains]})
		})
		if err != nil {
			return nil, err
		}
		return anchorsPage(qid, page, next), nil
	} else {
		byAnchor := make(map[string]*lgv1.Anchor)
		type anchorDomain struct {
			anchor string
			domain uint64 // id
		}
		domains := make(map[anchorDomain]struct{})
		err = sel.scan(ctx, snap, func(row *edgeRow) error {
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
		scope, err := sel.aggScopeIn(snap)
		if err != nil {
			return nil, err
		}
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
			if f := r.Fields; len(f) >= domLen && f[domLinks] > 0 {
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
	err := sel.scan(ctx, snap, func(row *edgeRow) error {
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
		d, err := sel.domainOf(row)
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
	if _, err := getPage(snap, surt, &pr); err != nil {
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
		fwd.targets = nil
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
	keys := make([][]byte, len(fwd.targets))
	surts := make([]string, len(fwd.targets))
	for i, u := range fwd.targets {
		surts[i] = urlnorm.SURT(u)
		keys[i] = linkPrefix(nil, surts[i], surt)
	}
	edges, err := ix.outlinkEdges(ctx, snap, fwd.targets, keys)
	if err != nil {
		return nil, err
	}
	for i, u := range fwd.targets {
		// Internal here means a target on the page's own domain.
		if sel.excludeInternal && urlnorm.HostSURT(urlnorm.RegistrableDomain(urlnorm.Host(u))) == sel.domainSURT {
			continue
		}
		for _, e := range edges[i] { // none when not applied yet on the target's shard
			row := edgeRow{
				key: append(slices.Clip(keys[i]), e.suffix...),
				k:   edgeKeyParts{targetSURT: surts[i], typ: lgv1.LinkType(e.suffix[0]), anchor: string(e.suffix[1:])},
			}
			ok, err := sel.matchLink(&row.k, e.value, e.base, &row.v)
			if err != nil {
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

// outlinkEdges returns the edges from a page to each of its targets,
// named by link prefixes: from snap, or in a cluster from the nodes owning
// the targets, asked once per shard.
func (ix *Index) outlinkEdges(ctx context.Context, snap pebble.Reader, targets []string, keys [][]byte) ([][]linkEdge, error) {
	edges := make([][]linkEdge, len(keys))
	remote := make(map[int][]int) // shard -> indexes into keys
	le := ix.linkEdges(snap)
	defer le.close()
	for i, k := range keys {
		if ix.remote != nil {
			if sh := ix.shardOf(targets[i]); !ix.remote.owns(sh) {
				remote[sh] = append(remote[sh], i)
				continue
			}
		}
		var err error
		if edges[i], err = le.get(k); err != nil {
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
		for j, of := range kv.GetOf() {
			i := idx[of]
			edges[i] = append(edges[i], linkEdge{suffix: kv.GetSuffixes()[j], value: kv.GetValues()[j]}) // lookup rebases to 0
		}
	}
	return edges, nil
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

// pageOf returns the first size rows by their position after the
// position after, and the position to continue from (nil on the last
// page).
func pageOf[T any](rows []T, pos func(T) []byte, after []byte, size int) ([]T, []byte) {
	type posRow struct {
		pos []byte
		row T
	}
	withPos := make([]posRow, len(rows))
	for i, r := range rows {
		withPos[i] = posRow{pos(r), r}
	}
	first, next := firstPage(withPos,
		func(dst []byte, r *posRow) []byte { return append(dst, r.pos...) },
		func(a, b *posRow) int { return bytes.Compare(a.pos, b.pos) },
		after, size)
	page := make([]T, len(first))
	for i, pr := range first {
		page[i] = pr.row
	}
	return page, next
}

// countPos orders rows by count, highest first, then by name.
func countPos(n int64, name string) []byte { return appendCountPos(nil, n, name) }

func appendCountPos(dst []byte, n int64, name string) []byte {
	return append(binary.BigEndian.AppendUint64(dst, ^uint64(n)), name...)
}

// compareCounts orders (count, name) pairs as their countPos do.
func compareCounts(n1 int64, name1 string, n2 int64, name2 string) int {
	if c := cmp.Compare(^uint64(n1), ^uint64(n2)); c != 0 {
		return c
	}
	return strings.Compare(name1, name2)
}

// rankedPage reads the page of size rows after the position after (nil:
// from the start) of a scope's 'd' or 'a' records (rec), most links first
// and then by name (countPos). Records with minRankedLinks or more are
// found through their rank keys (ranked; see linkRank): it reads the ranks
// from the one that holds after down to the one that fills the page, and
// the records they name. Records with fewer links come last, and are found
// by reading the scope's records, only for a page that reaches them. name
// gives a row's name from its key suffix; records have n fields or more.
// fn is called with the page's rows in order. It returns the position to
// continue from, nil on the last page.
func rankedPage(ctx context.Context, r pebble.Reader, scope string, ranked, rec byte, after []byte, size, n int, name func(suffix string) string, fn func(links int64, name string, fields []int64)) ([]byte, error) {
	if after != nil && len(after) < 8 {
		return nil, fmt.Errorf("%w: page_token holds no position of this view; start again without it", ErrInvalidArgument)
	}
	rankPrefix := []byte(scope + string(ranked))
	ranks, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: rankPrefix, UpperBound: store.PrefixEnd(rankPrefix)})
	if err != nil {
		return nil, err
	}
	defer ranks.Close()
	recPrefix := []byte(scope + string(rec))
	recs, err := r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: recPrefix, UpperBound: store.PrefixEnd(recPrefix)})
	if err != nil {
		return nil, err
	}
	defer recs.Close()

	type row struct {
		pos    []byte
		name   string
		fields []int64
	}
	var rows []row
	// record decodes the record at recs.
	record := func() ([]int64, error) {
		v, err := store.DecodeRecord(recs.Value())
		if err != nil || len(v.Fields) < n {
			return nil, fmt.Errorf("indexer: malformed aggregate %q: %v", recs.Key(), err)
		}
		return v.Fields, nil
	}
	// add adds a record to rows if it comes after after.
	add := func(suffix string, fields []int64) {
		nm := name(suffix)
		pos := countPos(fields[0], nm)
		if after == nil || bytes.Compare(pos, after) > 0 {
			rows = append(rows, row{pos, nm, fields})
		}
	}

	valid := ranks.First()
	if after != nil {
		valid = ranks.SeekGE(append(slices.Clip(rankPrefix), linkRank(int64(^binary.BigEndian.Uint64(after)))))
	}
	rank, read := -1, 0
	var recKey []byte
	for ; valid; valid = ranks.Next() {
		k := ranks.Key()[len(rankPrefix):]
		if len(k) == 0 {
			return nil, fmt.Errorf("indexer: malformed rank key %q", ranks.Key())
		}
		if int(k[0]) != rank {
			// Every row of a later rank comes after every row read so far.
			if len(rows) >= size {
				break
			}
			rank = int(k[0])
		}
		if err := ctxEvery(ctx, &read); err != nil {
			return nil, err
		}
		suffix := k[1:]
		recKey = append(append(recKey[:0], recPrefix...), suffix...)
		if !recs.SeekGE(recKey) || !bytes.Equal(recs.Key(), recKey) {
			if err := recs.Error(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("indexer: rank key %q names no record", ranks.Key())
		}
		f, err := record()
		if err != nil {
			return nil, err
		}
		if linkRank(f[0]) != k[0] {
			return nil, fmt.Errorf("indexer: record %q with %d links is under rank %d", recKey, f[0], k[0])
		}
		add(string(suffix), f)
	}
	if err := ranks.Error(); err != nil {
		return nil, err
	}
	more := valid
	if !valid && len(rows) <= size {
		// The page reaches the records with no rank key (or, full, asks
		// whether there are any).
		ranked := len(rows)
		for ok := recs.First(); ok; ok = recs.Next() {
			if err := ctxEvery(ctx, &read); err != nil {
				return nil, err
			}
			f, err := record()
			if err != nil {
				return nil, err
			}
			if f[0] < 1 || linkRank(f[0]) != noRank {
				continue
			}
			add(string(recs.Key()[len(recPrefix):]), f)
			if ranked == size && len(rows) > size {
				break // a full page only needed to know there is more
			}
		}
		if err := recs.Error(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return bytes.Compare(a.pos, b.pos) })
	var next []byte
	if len(rows) > size || (len(rows) == size && more) {
		rows, next = rows[:size], rows[size-1].pos
	}
	for _, rw := range rows {
		fn(rw.fields[0], rw.name, rw.fields)
	}
	return next, nil
}

// ctxEvery counts a row read in *n and, every 1024 rows, returns ctx's
// error if it is done: a long read stops at the call's deadline.
func ctxEvery(ctx context.Context, n *int) error {
	if *n++; *n%1024 == 0 {
		return ctx.Err()
	}
	return nil
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
		if err := ctxEvery(ctx, &n); err != nil {
			return err
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
