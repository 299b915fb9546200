package indexer

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// ExportQuery selects the edges of a bulk export.
type ExportQuery struct {
	// Target and Scope select like a Backlinks query; an empty Target
	// selects the whole index.
	Target string
	Scope  lgv1.Scope
	// Filter narrows the edges. Unlike the views, an export keeps internal
	// links unless the filter says INTERNAL_LINKS_EXCLUDE.
	Filter *lgv1.Filter
	// ResumeToken continues an export after the row it was made for (see
	// Index.ResumeToken); empty starts from the beginning.
	ResumeToken string
}

// exportSources bounds the source records an export keeps: the edges of
// one source page are spread over the index (it is sorted by target), so
// without a cache every row would read its source again.
const exportSources = 1 << 18

// Export calls fn for every edge the query selects, live and (with
// Filter.IncludeLost) lost, in key order (target, then source, in SURT
// order), all read from one snapshot of the index, so a crawl writing at
// the same time does not tear the export. pos is the row's position, valid
// only during the call, for ResumeToken. Export stops at the first error
// fn returns and returns it.
func (ix *Index) Export(ctx context.Context, q ExportQuery, fn func(bl *lgv1.Backlink, pos []byte) error) error {
	sel, err := exportSelection(q)
	if err != nil {
		return err
	}
	sel.scores = ix.rankScores()
	sel.lazySource = true
	var after []byte
	if q.ResumeToken != "" {
		if after, err = decodeToken(q.ResumeToken, queryID(sel, "export")); err != nil {
			return err
		}
	}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	cache := newRowCache(exportSources)
	defer cache.close()
	return sel.scanAfter(ctx, snap, after, func(row edgeRow) error {
		bl, err := ix.backlink(snap, &row, cache)
		if err != nil {
			return err
		}
		return fn(bl, row.key)
	})
}

// ResumeToken returns the token that continues the export q after the row
// at pos.
func (ix *Index) ResumeToken(q ExportQuery, pos []byte) (string, error) {
	sel, err := exportSelection(q)
	if err != nil {
		return "", err
	}
	return encodeToken(queryID(sel, "export"), pos), nil
}

func exportSelection(q ExportQuery) (*selection, error) {
	f := q.Filter
	if f == nil {
		f = &lgv1.Filter{}
	}
	if q.Target != "" {
		if f.GetInternal() == lgv1.InternalLinks_INTERNAL_LINKS_UNSPECIFIED {
			f = proto.Clone(f).(*lgv1.Filter)
			f.Internal = lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE
		}
		return newSelection(q.Target, q.Scope, f)
	}
	if f.GetInternal() == lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE {
		return nil, fmt.Errorf("%w: excluding internal links needs a target", ErrInvalidArgument)
	}
	sel := &selection{filter: f, domains: make(map[string]string),
		ranges: [][2][]byte{{[]byte{store.PrefixEdge}, []byte{store.PrefixEdge + 1}}}}
	if err := sel.compileFilter(); err != nil {
		return nil, err
	}
	return sel, nil
}
