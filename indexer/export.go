package indexer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/sync/errgroup"
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
// Filter.IncludeLost) lost, in key order (target in SURT order, then its
// sources by domain, see edgeKey), all read from one snapshot of the index, so a crawl writing at
// the same time does not tear the export. pos is the row's position, valid
// only during the call, for ResumeToken. Export stops at the first error
// fn returns and returns it.
//
// fn is called on the caller's goroutine, one row at a time; the rows are
// built on up to GOMAXPROCS others (see exportRows).
func (ix *Index) Export(ctx context.Context, q ExportQuery, fn func(bl *lgv1.Backlink, pos []byte) error) error {
	return ix.export(ctx, q, runtime.GOMAXPROCS(0), exportChunkRows, fn)
}

// An Encoder appends the encoding of a row to dst (a line of NDJSON or
// CSV). It is called on one goroutine only and must not keep bl, which
// is reused for the next row. plain says which of the row's source texts
// are PlainText, worked out once per source page rather than per row.
type Encoder func(dst []byte, bl *lgv1.Backlink, plain PlainFields) ([]byte, error)

// PlainFields is a set of a row's text fields that are PlainText.
type PlainFields uint8

const (
	PlainSourceURL PlainFields = 1 << iota
	PlainSourceTitle
)

// PlainText reports whether JSON and CSV (as encoding/csv writes it) both
// carry s as it is: valid UTF-8 without a control character below 0x20, a
// quote, a backslash or a comma, not starting with a space. Encoders skip
// their byte-by-byte checks of such a text.
func PlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == '"' || c == '\\' || c == ',' {
			return false
		}
	}
	if !utf8.ValidString(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	return !unicode.IsSpace(r)
}

// plainFields is PlainFields of a source's URL and title.
func plainFields(url, title string) PlainFields {
	var p PlainFields
	if PlainText(url) {
		p |= PlainSourceURL
	}
	if PlainText(title) {
		p |= PlainSourceTitle
	}
	return p
}

// ExportEncoded is Export for a file of encoded rows: the rows are built
// and encoded on up to GOMAXPROCS goroutines, each with an Encoder of its
// own from newEncoder, and fn receives the encoded rows, a run of
// consecutive rows at a time, in order (rows of them in b, valid only
// during the call). Encoding costs as much as building a row: this way
// it does not wait for one goroutine, and a row needs no allocation.
func (ix *Index) ExportEncoded(ctx context.Context, q ExportQuery, newEncoder func() Encoder, fn func(b []byte, rows int) error) error {
	sel, snap, after, err := ix.startExport(q)
	if err != nil {
		return err
	}
	defer snap.Close()
	return ix.exportRows(ctx, snap, sel, after, max(runtime.GOMAXPROCS(0), 1), exportChunkRows, newEncoder, func(c *exportChunk) error {
		if c.encoded == 0 {
			return nil
		}
		return fn(c.enc, c.encoded)
	})
}

// exportChunkRows is how many edges an export reads before it hands them
// to a builder: enough to spread the handing over, few enough that the
// chunks in flight (exportWindow per builder) take a few MiB.
const exportChunkRows = 1024

// sourcesAhead is how many rows' sources a builder finds before it builds
// the rows (see sourcesOf): enough for many cache misses in flight, few
// enough that their entries and text are still in the core's cache when
// the rows are built and encoded.
const sourcesAhead = 128

// exportWindow bounds the chunks read ahead of the one fn is given, per
// builder.
const exportWindow = 4

// startExport compiles q and takes the snapshot the export reads; the
// caller closes it.
func (ix *Index) startExport(q ExportQuery) (sel *selection, snap *pebble.Snapshot, after []byte, err error) {
	if sel, err = exportSelection(q); err != nil {
		return nil, nil, nil, err
	}
	sel.scores, sel.bases = ix.rankScores(), ix.bases
	if q.ResumeToken != "" {
		if after, err = decodeTokenNamed(q.ResumeToken, queryID(sel, "export"), "resume_token"); err != nil {
			return nil, nil, nil, err
		}
	}
	return sel, ix.db.NewSnapshot(), after, nil
}

func (ix *Index) export(ctx context.Context, q ExportQuery, builders, chunkRows int, fn func(bl *lgv1.Backlink, pos []byte) error) error {
	sel, snap, after, err := ix.startExport(q)
	if err != nil {
		return err
	}
	defer snap.Close()
	if builders > 1 {
		return ix.exportRows(ctx, snap, sel, after, builders, chunkRows, nil, func(c *exportChunk) error {
			for i, bl := range c.rows {
				if err := fn(bl, c.pos[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	cache := newRowCache(exportSources)
	defer cache.close()
	return sel.scanAfter(ctx, snap, after, func(row *edgeRow) error {
		bl, err := ix.backlink(snap, row, cache)
		if err != nil {
			return err
		}
		return fn(bl, row.key)
	})
}

// exportChunk is a run of consecutive edges, read by the scanner and
// turned into rows by a builder.
type exportChunk struct {
	buf  []byte   // the stored edges, back to back
	offs []uint32 // where each starts in buf
	rows []*lgv1.Backlink
	pos  [][]byte // rows[i]'s key, in buf
	// enc holds the encoded rows, encoded of them, in place of rows and
	// pos when the export encodes (see ExportEncoded).
	enc     []byte
	encoded int
	err     error
	done    chan struct{} // closed when rows (or err) are set
}

// edge returns the i-th stored edge of the chunk.
func (c *exportChunk) edge(i int) []byte {
	end := uint32(len(c.buf))
	if i+1 < len(c.offs) {
		end = c.offs[i+1]
	}
	return c.buf[c.offs[i]:end]
}

// exportRows is Export on builders goroutines. Building a row (decoding
// the edge, finding its source page, filling the message) costs several
// times what reading the edge does, so one scanner copies the edges into
// chunks, the builders turn chunks into rows, and fn takes the chunks in
// the order they were read. The window of chunks in flight bounds the
// memory; the builders share one cache of source pages. With newEncoder,
// each builder encodes its chunks' rows (see ExportEncoded).
func (ix *Index) exportRows(ctx context.Context, snap *pebble.Snapshot, sel *selection, after []byte, builders, chunkRows int, newEncoder func() Encoder, fn func(c *exportChunk) error) error {
	// Before the builders clone it: they match what the scanner reads.
	if err := sel.use(snap); err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	window := exportWindow * builders
	order := make(chan *exportChunk, window) // in read order, to fn
	// One more than order holds: fn may have taken a chunk from order that
	// no builder has yet.
	jobs := make(chan *exportChunk, window+1)
	free := make(chan *exportChunk, window+builders+1)
	g.Go(func() error {
		defer close(jobs)
		defer close(order)
		var c *exportChunk
		send := func() error {
			select {
			case order <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case jobs <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
			c = nil
			return nil
		}
		err := sel.iterate(gctx, snap, after, func(stored []byte) error {
			if c == nil {
				select {
				case c = <-free:
					c.buf, c.offs, c.rows, c.pos, c.enc, c.encoded, c.err = c.buf[:0], c.offs[:0], c.rows[:0], c.pos[:0], c.enc[:0], 0, nil
				default:
					c = &exportChunk{}
				}
				c.done = make(chan struct{})
			}
			c.offs = append(c.offs, uint32(len(c.buf)))
			c.buf = append(c.buf, stored...)
			if len(c.offs) < chunkRows {
				return nil
			}
			return send()
		})
		if err == nil && c != nil {
			err = send()
		}
		return err
	})
	sources := newSourceCache(exportSources)
	loaded := make(chan struct{})
	g.Go(func() error {
		defer close(loaded)
		if sel.target != "" {
			return nil // it may need few of them
		}
		return ix.loadSources(gctx, snap, sources)
	})
	for range builders {
		g.Go(func() error {
			select {
			case <-loaded:
			case <-gctx.Done():
				return nil
			}
			sel := sel.clone()
			cache := &rowCache{sources: sources, max: exportSources}
			defer cache.close()
			var enc Encoder
			if newEncoder != nil {
				// Each row is encoded before the next is built, and the
				// chunk holding its key lives until the encoding is done.
				enc = newEncoder()
				cache.reuse = true
				sel.borrow = true
			}
			// A chunk is built in three passes: match the edges, find
			// their sources (see sourcesOf), build the rows.
			rows := make([]edgeRow, 0, chunkRows)
			srcs := make([]*sourceEntry, chunkRows)
			for c := range jobs {
				c.err = gctx.Err()
				rows = rows[:0]
				for i := 0; c.err == nil && i < len(c.offs); i++ {
					rows = append(rows, edgeRow{})
					ok, err := sel.match(c.edge(i), &rows[len(rows)-1])
					if err != nil || !ok {
						rows = rows[:len(rows)-1]
						c.err = err
					}
				}
				for i := 0; c.err == nil && i < len(rows); i++ {
					if i%sourcesAhead == 0 {
						c.err = ix.sourcesOf(snap, rows[i:min(i+sourcesAhead, len(rows))], srcs[i:], cache)
						if c.err != nil {
							continue
						}
					}
					bl, err := cache.build(&rows[i], srcs[i])
					if err != nil {
						c.err = err
						continue
					}
					if enc != nil {
						c.enc, c.err = enc(c.enc, bl, srcs[i].plain)
						c.encoded++
						continue
					}
					c.rows = append(c.rows, bl)
					c.pos = append(c.pos, rows[i].key)
				}
				clear(rows) // the rows' strings and slices
				err := c.err
				close(c.done) // c is fn's now, and then the scanner's again
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := func() error {
		for c := range order {
			select {
			case <-c.done:
			case <-gctx.Done():
				return nil // the error is the group's
			}
			if c.err != nil {
				return nil
			}
			if err := fn(c); err != nil {
				return err
			}
			clear(c.rows)
			select {
			case free <- c:
			default:
			}
		}
		return nil
	}()
	cancel()
	// The builders drain jobs once the context ends, and the scanner
	// stops at its next edge, so Wait returns.
	if gerr := g.Wait(); err == nil && !errors.Is(gerr, context.Canceled) {
		err = gerr
	}
	if err == nil {
		err = parent.Err()
	}
	return err
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
	sel := &selection{filter: f,
		ranges: [][2][]byte{{[]byte{store.PrefixEdge}, []byte{store.PrefixEdge + 1}}}}
	if err := sel.compileFilter(); err != nil {
		return nil, err
	}
	return sel, nil
}
