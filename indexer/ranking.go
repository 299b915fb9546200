package indexer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Ranking: the host graph of the index's live follow links is built from
// one snapshot (on a cluster's gateway: from every node, page by page),
// ranked in memory by package rank, and stored as a new generation of
// ranks with the index (on a cluster: with every node's), where the views
// read a source's authority.

// ErrRankingRunning is returned by ComputeRanks while another ranking of
// the same index or cluster runs.
var ErrRankingRunning = errors.New("indexer: a ranking is already running; wait for it")

// Page sizes of Ranks.
const (
	DefaultRanksPage = 1000
	MaxRanksPage     = 10000
)

// hostLinksPageBytes bounds a HostLinksPage on NATS (max_payload is 1 MiB
// by default); hostLinksPageLinks bounds the edges one page reads, so a
// page answers well within a query's timeout.
const (
	hostLinksPageBytes = 512 << 10
	hostLinksPageLinks = 1 << 20
)

// rankNames bounds the source names a host-graph scan keeps (about 100
// bytes each).
const rankNames = 1 << 20

// scanHostLinks calls fn with the hosts (as urlnorm.ReversedHost) of every
// live follow edge after the key after, in key order, the edge and its
// source's SURT.
func (ix *Index) scanHostLinks(ctx context.Context, r pebble.Reader, after []byte, fn func(src, dst string, row *edgeRow, srcSURT string) error) error {
	sel, err := exportSelection(ExportQuery{Filter: &lgv1.Filter{FollowOnly: true}})
	if err != nil {
		return err
	}
	// Every row resolves its source, from all over the index.
	sel.namesMax, sel.bases = rankNames, ix.bases
	var lastTgt, dst string // rows come sorted by target
	return sel.scanAfter(ctx, r, after, func(row *edgeRow) error {
		tgt, _, _ := strings.Cut(row.k.targetSURT, ")")
		if tgt != lastTgt || dst == "" {
			lastTgt, dst = tgt, urlnorm.ReversedHostOfSURT(tgt)
		}
		surt, err := sel.names.source(row.k.source)
		if err != nil {
			return err
		}
		src, _, _ := strings.Cut(surt, ")")
		return fn(urlnorm.ReversedHostOfSURT(src), dst, row, surt)
	})
}

// ComputeRanks ranks the hosts and registrable domains of the index (and
// with req.pages its pages) from one snapshot and stores the ranks as the
// current ones.
func (ix *Index) ComputeRanks(ctx context.Context, req *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error) {
	if !ix.rankMu.TryLock() {
		return nil, ErrRankingRunning
	}
	defer ix.rankMu.Unlock()
	start := time.Now()
	b := rank.NewBuilder(req.GetPages())
	snap := ix.db.NewSnapshot()
	err := ix.scanHostLinks(ctx, snap, nil, func(src, dst string, row *edgeRow, srcSURT string) error {
		if req.GetPages() {
			if err := b.AddPage(srcSURT, row.k.targetSURT); err != nil {
				return err
			}
		}
		return b.Add(src, dst)
	})
	snap.Close()
	if err != nil {
		return nil, err
	}
	res, err := b.Rank(ctx, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	meta := rankMeta(res, start)
	if err := rank.Save(ix.db, uint64(start.UnixNano()), res, meta); err != nil {
		return nil, err
	}
	ix.reloadScores()
	return meta, nil
}

// rankMeta describes a finished ranking that started at start.
func rankMeta(res *rank.Result, start time.Time) *lgv1.ComputeRanksResponse {
	m := &lgv1.ComputeRanksResponse{
		Hosts: int64(len(res.Hosts.Names)), HostLinks: int64(res.Hosts.Links),
		Domains: int64(len(res.Domains.Names)), DomainLinks: int64(res.Domains.Links),
		LinksRead: res.Links, ComputedAt: timestamppb.New(start), Seconds: time.Since(start).Seconds(),
	}
	if res.Pages != nil {
		m.Pages, m.PageLinks = int64(len(res.Pages.Names)), int64(res.Pages.Links)
	}
	return m
}

// hostLinksPage returns the distinct host pairs of the live follow edges
// after the key after, up to a page's bounds, for a gateway's ranking.
func (ix *Index) hostLinksPage(ctx context.Context, after []byte) (*lgv1.HostLinksPage, error) {
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	page := &lgv1.HostLinksPage{}
	ids := make(map[string]uint32)
	pairs := make(map[[2]uint32]struct{})
	size := 0 // encoded, about
	id := func(name string) uint32 {
		i, ok := ids[name]
		if !ok {
			i = uint32(len(page.Hosts))
			ids[name] = i
			page.Hosts = append(page.Hosts, name)
			size += len(name) + 3
		}
		return i
	}
	errFull := errors.New("page full")
	err := ix.scanHostLinks(ctx, snap, after, func(src, dst string, row *edgeRow, _ string) error {
		page.Links++
		// A link within a host is sent too: it makes the host a node.
		p := [2]uint32{id(src), id(dst)}
		if _, ok := pairs[p]; !ok {
			pairs[p] = struct{}{}
			page.From, page.To = append(page.From, p[0]), append(page.To, p[1])
			size += 10
		}
		if page.Links < hostLinksPageLinks && size < hostLinksPageBytes {
			return nil
		}
		page.Next = append([]byte(nil), row.key...)
		return errFull
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, err
	}
	return page, nil
}

// Ranks lists the stored ranks of a level, in order of name.
func (ix *Index) Ranks(ctx context.Context, req *lgv1.RanksRequest) (*lgv1.RanksResponse, error) {
	level, err := rankLevel(req.GetLevel())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = DefaultRanksPage
	case size < 0 || size > MaxRanksPage:
		return nil, fmt.Errorf("%w: page_size %d out of range 1..%d", ErrInvalidArgument, size, MaxRanksPage)
	}
	qid := crc32.ChecksumIEEE([]byte{'r', level})
	var after []byte
	if req.GetPageToken() != "" {
		if after, err = decodeToken(req.GetPageToken(), qid); err != nil {
			return nil, err
		}
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	rr, err := rank.NewReader(snap)
	if err != nil {
		return nil, err
	}
	resp := &lgv1.RanksResponse{ComputedAt: rr.Meta().GetComputedAt()}
	var last string // the stored name of the last rank listed
	err = rr.Each(ctx, level, string(after), func(name string, r *lgv1.Rank) bool {
		if len(resp.Ranks) == size {
			resp.NextPageToken = encodeToken(qid, []byte(last))
			return false
		}
		last = name
		if level == rank.LevelPage {
			if u, err := urlnorm.UnSURT(name); err == nil {
				name = u
			}
		}
		resp.Ranks = append(resp.Ranks, &lgv1.RankedName{Name: name, Rank: r})
		return true
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func rankLevel(l lgv1.RankLevel) (byte, error) {
	switch l {
	case lgv1.RankLevel_RANK_LEVEL_HOST:
		return rank.LevelHost, nil
	case lgv1.RankLevel_RANK_LEVEL_DOMAIN:
		return rank.LevelDomain, nil
	case lgv1.RankLevel_RANK_LEVEL_PAGE:
		return rank.LevelPage, nil
	}
	return 0, fmt.Errorf("%w: level %v: use host, domain or page", ErrInvalidArgument, l)
}

// putRanks stores a RankBatch a gateway sent: its ranks as part of their
// generation, and with commit, the generation as the current one.
func (ix *Index) putRanks(b *lgv1.RankBatch) error {
	w := rank.NewWriter(ix.db, b.GetGeneration())
	level, err := rankLevel(b.GetLevel())
	if len(b.GetRanks()) > 0 && err != nil {
		return err
	}
	for _, r := range b.GetRanks() {
		if err := w.Put(level, r.GetName(), r.GetRank()); err != nil {
			return err
		}
	}
	if b.GetCommit() != nil {
		if err := w.Commit(b.GetCommit()); err != nil {
			return err
		}
		ix.reloadScores()
		return nil
	}
	return w.Flush()
}

// ComputeRanks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) ComputeRanks(ctx context.Context, req *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error) {
	resp, err := s.Index.ComputeRanks(ctx, req)
	return resp, toStatus(err)
}

// Ranks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Ranks(ctx context.Context, req *lgv1.RanksRequest) (*lgv1.RanksResponse, error) {
	resp, err := s.Index.Ranks(ctx, req)
	return resp, toStatus(err)
}

// rankBatchBytes bounds a RankBatch on NATS; a rank is about 60 bytes.
const rankBatchRanks = 8192

// ComputeRanks implements lgv1.LinkGraphServiceServer: the gateway gathers
// the host links of every node, page by page (each page from its node's
// snapshot at the time), ranks them in its own memory, and stores the
// ranks on every node, committing them once all nodes hold them.
func (g *Gateway) ComputeRanks(ctx context.Context, req *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error) {
	if req.GetPages() {
		return nil, status.Error(codes.Unimplemented, "a cluster ranks hosts and domains only: ranking pages needs the whole page graph on one machine (see docs/operations.md)")
	}
	if !g.rankMu.TryLock() {
		return nil, toStatus(ErrRankingRunning)
	}
	defer g.rankMu.Unlock()
	start := time.Now()
	nodes, err := g.nodes(ctx, 0)
	if err != nil {
		return nil, err
	}
	b := rank.NewBuilder(false)
	for _, first := range nodes {
		var after []byte
		for {
			var page lgv1.HostLinksPage
			if err := request(ctx, g.nc, first, methodHostLinks, &lgv1.HostLinksRequest{After: after}, &page); err != nil {
				return nil, err
			}
			srcs, dsts := make([]string, len(page.GetFrom())), make([]string, len(page.GetFrom()))
			for i := range srcs {
				f, t := page.GetFrom()[i], page.GetTo()[i]
				if int(f) >= len(page.GetHosts()) || int(t) >= len(page.GetHosts()) || len(page.GetTo()) != len(srcs) {
					return nil, status.Errorf(codes.Internal, "shard %d sent a malformed host links page", first)
				}
				srcs[i], dsts[i] = page.GetHosts()[f], page.GetHosts()[t]
			}
			if err := b.AddPairs(page.GetLinks(), srcs, dsts); err != nil {
				return nil, toStatus(err)
			}
			if after = page.GetNext(); len(after) == 0 {
				break
			}
		}
	}
	res, err := b.Rank(ctx, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, toStatus(err)
	}
	meta := rankMeta(res, start)
	gen := uint64(start.UnixNano())
	for _, lv := range res.Levels() {
		level := lgv1.RankLevel_RANK_LEVEL_HOST
		if lv.Level == rank.LevelDomain {
			level = lgv1.RankLevel_RANK_LEVEL_DOMAIN
		}
		ranks := lv.Ranks()
		for i := 0; i < len(ranks); i += rankBatchRanks {
			batch := &lgv1.RankBatch{Generation: gen, Level: level, Ranks: ranks[i:min(i+rankBatchRanks, len(ranks))]}
			for _, first := range nodes {
				if err := request(ctx, g.nc, first, methodPutRanks, batch, &lgv1.RankBatch{}); err != nil {
					return nil, err
				}
			}
		}
	}
	meta.Seconds = time.Since(start).Seconds()
	for _, first := range nodes {
		if err := request(ctx, g.nc, first, methodPutRanks, &lgv1.RankBatch{Generation: gen, Commit: meta}, &lgv1.RankBatch{}); err != nil {
			return nil, err
		}
	}
	return meta, nil
}

// Ranks implements lgv1.LinkGraphServiceServer: every node holds all the
// ranks, so the first answers.
func (g *Gateway) Ranks(ctx context.Context, req *lgv1.RanksRequest) (*lgv1.RanksResponse, error) {
	resp := &lgv1.RanksResponse{}
	if err := request(ctx, g.nc, 0, "Ranks", req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Ranker computes and lists ranks: a GRPCServer (serve) or a Gateway.
type Ranker interface {
	ComputeRanks(context.Context, *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error)
	Ranks(context.Context, *lgv1.RanksRequest) (*lgv1.RanksResponse, error)
}

// firstRanking is how long after start RankEvery first ranks an index that
// has no ranks yet (a fresh crawl has little to rank before that).
const firstRanking = 10 * time.Minute

// RankEvery ranks with r whenever the stored ranks are older than every
// (the first time, if there are none, after firstRanking or every,
// whichever is sooner), until ctx is done. A failed ranking is logged and
// tried again an interval later.
func RankEvery(ctx context.Context, r Ranker, every time.Duration, req *lgv1.ComputeRanksRequest, log *slog.Logger) error {
	next := time.Now().Add(min(every, firstRanking))
	if resp, err := r.Ranks(ctx, &lgv1.RanksRequest{Level: lgv1.RankLevel_RANK_LEVEL_HOST, PageSize: 1}); err != nil {
		log.Warn("cannot read the stored ranks; ranking on schedule", "err", err)
	} else if at := resp.GetComputedAt(); at != nil {
		next = at.AsTime().Add(every)
	}
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		meta, err := r.ComputeRanks(ctx, req)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("ranking failed; trying again at the next interval", "err", err)
		default:
			log.Info("ranked hosts and domains", "hosts", meta.Hosts, "host_links", meta.HostLinks,
				"domains", meta.Domains, "domain_links", meta.DomainLinks, "pages", meta.Pages, "page_links", meta.PageLinks,
				"links_read", meta.LinksRead, "seconds", meta.Seconds)
		}
		t.Reset(every)
	}
}

// rankScores returns the domain scores of the current ranking, loading
// them on first use. A failure to load is logged and leaves every score 0
// until the next ranking.
func (ix *Index) rankScores() *rank.Scores {
	if s := ix.scores.Load(); s != nil {
		return s
	}
	ix.scoresMu.Lock()
	defer ix.scoresMu.Unlock()
	if s := ix.scores.Load(); s != nil {
		return s // loaded while this waited
	}
	ix.loadScores()
	return ix.scores.Load()
}

// reloadScores loads the domain scores of the current ranking, after a
// ranking was committed here.
func (ix *Index) reloadScores() {
	ix.scoresMu.Lock()
	defer ix.scoresMu.Unlock()
	ix.loadScores()
}

func (ix *Index) loadScores() {
	s, err := rank.LoadScores(context.Background(), ix.db)
	if err != nil {
		slog.Error("cannot load the domain scores; authority reads 0 until the next ranking", "err", err)
		s = &rank.Scores{}
	}
	ix.scores.Store(s)
}
