package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// The views of how a target's backlinks change over time: the links new
// or lost in a window, and the daily counts of both (link velocity).

// changesQuery is the Backlinks query of NewLinks (lost false) or LostLinks.
func changesQuery(req *lgv1.LinkChangesRequest, lost bool) Query {
	f := proto.CloneOf(req.GetFilter())
	if f == nil {
		f = &lgv1.Filter{}
	}
	f.IncludeLost = false
	q := Query{Target: req.GetTarget(), Scope: req.GetScope(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(), Filter: f, Descending: true}
	if lost {
		f.State, f.LostFrom, f.LostTo = lgv1.LinkState_LINK_STATE_LOST, req.GetFrom(), req.GetTo()
		q.Order = lgv1.BacklinkOrder_BACKLINK_ORDER_LOST_AT
	} else {
		f.State, f.FirstSeenFrom, f.FirstSeenTo = lgv1.LinkState_LINK_STATE_ALL, req.GetFrom(), req.GetTo()
		q.Order = lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN
	}
	return q
}

// NewLinks lists the backlinks first seen in the request's window, newest
// first, live or lost since.
func (ix *Index) NewLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*Page, error) {
	return ix.Backlinks(ctx, changesQuery(req, false))
}

// LostLinks lists the backlinks lost in the request's window, latest first.
func (ix *Index) LostLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*Page, error) {
	return ix.Backlinks(ctx, changesQuery(req, true))
}

// maxVelocityDays bounds a Velocity request (about ten years).
const maxVelocityDays = 3660

// Velocity counts, per UTC day of the request's window, the target's new
// and lost backlinks and referring domains. It reads every matching link,
// live and lost, once.
func (ix *Index) Velocity(ctx context.Context, req *lgv1.VelocityRequest) (*lgv1.VelocityResponse, error) {
	if req.GetFrom() == nil || req.GetTo() == nil || !req.GetFrom().IsValid() || !req.GetTo().IsValid() {
		return nil, fmt.Errorf("%w: velocity needs valid from and to times", ErrInvalidArgument)
	}
	day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	first, end := day(req.GetFrom().AsTime()), day(req.GetTo().AsTime())
	n := int(end.Sub(first) / (24 * time.Hour))
	if n <= 0 || n > maxVelocityDays {
		return nil, fmt.Errorf("%w: velocity window of %d days; want 1 to %d", ErrInvalidArgument, n, maxVelocityDays)
	}
	f := proto.CloneOf(req.GetFilter())
	if f == nil {
		f = &lgv1.Filter{}
	}
	f.IncludeLost, f.State = false, lgv1.LinkState_LINK_STATE_ALL
	f.FirstSeenFrom, f.FirstSeenTo, f.LastSeenFrom, f.LastSeenTo, f.LostFrom, f.LostTo = nil, nil, nil, nil, nil, nil
	sel, err := ix.selection(req.GetTarget(), req.GetScope(), f)
	if err != nil {
		return nil, err
	}
	days := make([]*lgv1.VelocityDay, n)
	for i := range days {
		days[i] = &lgv1.VelocityDay{Date: first.Add(time.Duration(i) * 24 * time.Hour).Format(time.DateOnly)}
	}
	// bucket returns the day of a Unix ms time, or nil outside the window.
	bucket := func(ms int64) *lgv1.VelocityDay {
		i := int(day(time.UnixMilli(ms)).Sub(first) / (24 * time.Hour))
		if ms == 0 || i < 0 || i >= n {
			return nil
		}
		return days[i]
	}
	// A referring domain is new on the day of its first link, and lost on
	// the day its last live link went.
	type span struct {
		first, lost int64
		live        bool
	}
	domains := make(map[uint64]*span) // by domain id
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	err = sel.scan(ctx, snap, func(row *edgeRow) error {
		if d := bucket(row.v.firstSeen); d != nil {
			d.NewBacklinks++
		}
		if d := bucket(row.v.lostAt); d != nil {
			d.LostBacklinks++
		}
		s := domains[row.k.domain]
		if s == nil {
			s = &span{first: row.v.firstSeen}
			domains[row.k.domain] = s
		}
		s.first = min(s.first, row.v.firstSeen)
		s.live = s.live || row.v.lostAt == 0
		s.lost = max(s.lost, row.v.lostAt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range domains {
		if d := bucket(s.first); d != nil {
			d.NewReferringDomains++
		}
		if d := bucket(s.lost); d != nil && !s.live {
			d.LostReferringDomains++
		}
	}
	return &lgv1.VelocityResponse{Days: days}, nil
}

// Recrawl sizes of a target's source pages.
const (
	DefaultRecrawlSources = 10000
	MaxRecrawlSources     = 1000000
)

// Sources returns the distinct source pages of a target's known backlinks,
// live and lost, internal ones included, at most max of them (0:
// DefaultRecrawlSources); truncated says whether there were more.
func (ix *Index) Sources(ctx context.Context, target string, scope lgv1.Scope, max int) (sources []string, truncated bool, err error) {
	switch {
	case max == 0:
		max = DefaultRecrawlSources
	case max < 0 || max > MaxRecrawlSources:
		return nil, false, fmt.Errorf("%w: max_sources %d out of range 1..%d", ErrInvalidArgument, max, MaxRecrawlSources)
	}
	sel, err := ix.selection(target, scope, &lgv1.Filter{State: lgv1.LinkState_LINK_STATE_ALL, Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE})
	if err != nil {
		return nil, false, err
	}
	seen := make(map[uint64]struct{}) // source ids
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	err = sel.scan(ctx, snap, func(row *edgeRow) error {
		if _, ok := seen[row.k.source]; ok {
			return nil
		}
		if len(seen) == max {
			truncated = true
			return errStopScan
		}
		seen[row.k.source] = struct{}{}
		surt, err := sel.names.source(row.k.source)
		if err != nil {
			return err
		}
		u, err := urlnorm.UnSURT(surt)
		if err != nil {
			return fmt.Errorf("indexer: corrupt source %q: %w", surt, err)
		}
		sources = append(sources, u)
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, false, err
	}
	return sources, truncated, nil
}

var errStopScan = errors.New("stop scan")
