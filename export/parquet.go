package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

// DefaultRowGroupRows is Options.RowGroupRows when it is zero. A row
// group is buffered in memory until it is written, about 100 bytes a row
// (values, dictionaries, compressed pages), so this bounds the writer near
// 13 MiB over the rest of the export; it is about DuckDB's own row group
// (122,880 rows), which readers parallelise over.
const DefaultRowGroupRows = 128 << 10

// ParquetRow is one row of a Parquet export; its tags are the file's
// schema (see the README):
//
//	source_url       BYTE_ARRAY STRING, required
//	target_url       BYTE_ARRAY STRING, required
//	anchor_text      BYTE_ARRAY STRING, required
//	rel              LIST of required BYTE_ARRAY STRING
//	type             BYTE_ARRAY ENUM ("a", "img", ... as in CSV), required
//	redirect_status  INT32, required
//	nofollow         BOOLEAN, required
//	first_seen       INT64 TIMESTAMP(MILLIS, UTC), required
//	last_seen        INT64 TIMESTAMP(MILLIS, UTC), required
//	source_title     BYTE_ARRAY STRING, required
//	source_status    INT32, required
//	lost_at          INT64 TIMESTAMP(MILLIS, UTC), optional (null while the link is live)
//	lost_reason      BYTE_ARRAY ENUM, required (empty while the link is live)
//	history          LIST of required group (earlier times the link was lost and came back, oldest first):
//	  lost_at        INT64 TIMESTAMP(MILLIS, UTC), required
//	  reason         BYTE_ARRAY ENUM, required
//	  returned_at    INT64 TIMESTAMP(MILLIS, UTC), required
//	source_authority INT32, required (0 when the source's domain is unranked)
//	source_page_authority INT32, required (0 when the page is unranked)
//
// The strings are dictionary-encoded: in a row group a target recurs in
// adjacent rows, and a source page, its title and navigation anchors in
// many rows; the file is a third smaller than with plain strings, at the
// same CPU.
//
// It is exported so that Go programs (and the tests) read the files back
// with parquet.GenericReader[ParquetRow].
type ParquetRow struct {
	SourceURL      string   `parquet:"source_url,dict"`
	TargetURL      string   `parquet:"target_url,dict"`
	AnchorText     string   `parquet:"anchor_text,dict"`
	Rel            []string `parquet:"rel,list" parquet-element:",dict"`
	Type           string   `parquet:"type,enum,dict"`
	RedirectStatus int32    `parquet:"redirect_status"`
	Nofollow       bool     `parquet:"nofollow"`
	FirstSeen      int64    `parquet:"first_seen,timestamp(millisecond)"`
	LastSeen       int64    `parquet:"last_seen,timestamp(millisecond)"`
	SourceTitle    string   `parquet:"source_title,dict"`
	SourceStatus   int32    `parquet:"source_status"`
	LostAt         *int64   `parquet:"lost_at,optional,timestamp(millisecond)"`
	// LostReason is set with LostAt (linkrow.ReasonName), else empty.
	LostReason string `parquet:"lost_reason,enum,dict"`
	// History lists the earlier times the link was lost and came back,
	// oldest first; empty for most links.
	History []ParquetEvent `parquet:"history,list"`
	// SourceAuthority is the score (0-100) of the source's registrable
	// domain from the latest ranking, 0 when unranked.
	SourceAuthority int32 `parquet:"source_authority"`
	// SourcePageAuthority is the page-level score of the source page from
	// the latest ranking with pages, 0 when unranked.
	SourcePageAuthority int32 `parquet:"source_page_authority"`
}

// ParquetEvent is a time a link was lost before it came back, an element
// of ParquetRow.History.
type ParquetEvent struct {
	LostAt int64 `parquet:"lost_at,timestamp(millisecond)"`
	// Reason is linkrow.ReasonName of the reason.
	Reason     string `parquet:"reason,enum,dict"`
	ReturnedAt int64  `parquet:"returned_at,timestamp(millisecond)"`
}

// parquetBatch is how many rows the writer converts before handing them to
// parquet-go at once: its per-call cost is spread over the batch.
const parquetBatch = 1024

// maxParquetEncoders bounds the encoders of a Parquet export, each holding
// a row group's values and dictionaries (tens of MiB at the default size),
// so that its memory does not grow with the machine's cores.
const maxParquetEncoders = 4

// parquetWriter writes rows as Parquet with zstd. Encoding a row group
// (dictionaries, pages, compression) is most of an export's work, so
// GOMAXPROCS encoders (at most maxParquetEncoders) take the row groups in
// turn, each writing its row
// group as a one-row-group file in memory; the file's writer then copies
// their compressed column chunks in, in order, without decoding them
// (parquet-go's verbatim copy). The file is the same as one writer would
// make. Not safe for concurrent use.
type parquetWriter struct {
	// w writes the file: the row groups copied in, then the footer.
	w       *parquet.GenericWriter[ParquetRow]
	opts    []parquet.WriterOption
	groupAt int // rows a row group holds
	// cur is the row group being filled, holding curRows rows, and batch
	// its rows not yet handed to its goroutine.
	cur     *rowGroupJob
	curRows int
	batch   *parquetRows
	// pending are the row groups handed off and not yet copied into the
	// file, oldest first; at most one per encoder.
	pending []*rowGroupJob
	// encoders take row groups in turn; next is the one for the next.
	encoders []chan *rowGroupJob
	next     int
	free     chan *parquetRows
	buffers  chan *bytes.Buffer // for the encoded row groups, once copied
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// parquetRows is a batch of rows; lost holds the lost_at values the rows
// point to, so that they need no allocation each.
type parquetRows struct {
	rows []ParquetRow
	lost []int64
}

// rowGroupJob is one row group for an encoder: it takes batches from rows
// until rows is closed, then sends the encoded row group, or the error, on
// done.
type rowGroupJob struct {
	rows chan *parquetRows
	done chan rowGroupResult
}

type rowGroupResult struct {
	rg  parquet.RowGroup
	buf *bytes.Buffer // holding rg's file
	err error
}

func newParquetWriter(w io.Writer, rowGroupRows int) *parquetWriter {
	opts := []parquet.WriterOption{
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.CreatedBy("linkgraph", "export", ""),
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &parquetWriter{
		w: parquet.NewGenericWriter[ParquetRow](w, append(opts,
			parquet.MaxRowsPerRowGroup(int64(rowGroupRows)),
			parquet.WriteBufferSize(1<<20))...),
		opts:    opts,
		groupAt: rowGroupRows,
		ctx:     ctx,
		stop:    stop,
	}
	n := min(runtime.GOMAXPROCS(0), maxParquetEncoders)
	p.free = make(chan *parquetRows, 4*(n+1))
	p.buffers = make(chan *bytes.Buffer, n)
	for range n {
		jobs := make(chan *rowGroupJob, 1)
		p.encoders = append(p.encoders, jobs)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.encode(jobs)
		}()
	}
	return p
}

func (p *parquetWriter) Write(bl *lgv1.Backlink) error {
	if p.batch == nil {
		select {
		case p.batch = <-p.free:
		default:
			p.batch = &parquetRows{rows: make([]ParquetRow, 0, parquetBatch), lost: make([]int64, 0, parquetBatch)}
		}
	}
	b := p.batch
	r := ParquetRow{
		SourceURL:           bl.SourceUrl,
		TargetURL:           bl.TargetUrl,
		AnchorText:          bl.AnchorText,
		Rel:                 bl.Rel,
		Type:                typeName(bl.Type),
		RedirectStatus:      bl.RedirectStatus,
		Nofollow:            bl.Nofollow,
		FirstSeen:           millis(bl.FirstSeen.GetSeconds(), bl.FirstSeen.GetNanos()),
		LastSeen:            millis(bl.LastSeen.GetSeconds(), bl.LastSeen.GetNanos()),
		SourceTitle:         bl.SourceTitle,
		SourceStatus:        bl.SourceStatus,
		SourceAuthority:     bl.SourceAuthority,
		SourcePageAuthority: bl.SourcePageAuthority,
	}
	if bl.LostAt != nil {
		b.lost = append(b.lost, millis(bl.LostAt.GetSeconds(), bl.LostAt.GetNanos()))
		r.LostAt = &b.lost[len(b.lost)-1]
		r.LostReason = linkrow.ReasonName(bl.GetLostReason())
	}
	if len(bl.History) > 0 {
		r.History = make([]ParquetEvent, len(bl.History))
		for i, h := range bl.History {
			r.History[i] = ParquetEvent{
				LostAt:     millis(h.GetLostAt().GetSeconds(), h.GetLostAt().GetNanos()),
				Reason:     linkrow.ReasonName(h.GetReason()),
				ReturnedAt: millis(h.GetReturnedAt().GetSeconds(), h.GetReturnedAt().GetNanos()),
			}
		}
	}
	b.rows = append(b.rows, r)
	p.curRows++
	if len(b.rows) == cap(b.rows) || p.curRows == p.groupAt {
		return p.handOff()
	}
	return nil
}

// handOff gives the batch to the current row group's goroutine, starting
// one if needed, and closes the row group when it is full.
func (p *parquetWriter) handOff() error {
	if p.batch == nil || len(p.batch.rows) == 0 {
		return nil
	}
	if p.cur == nil {
		if err := p.start(); err != nil {
			return err
		}
	}
	select {
	case p.cur.rows <- p.batch:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	p.batch = nil
	if p.curRows >= p.groupAt {
		close(p.cur.rows)
		p.pending = append(p.pending, p.cur)
		p.cur, p.curRows = nil, 0
	}
	return nil
}

// start hands a new row group to the next encoder, first copying the
// oldest pending one into the file if every encoder has one.
func (p *parquetWriter) start() error {
	for len(p.pending) >= len(p.encoders) {
		if err := p.copyOldest(); err != nil {
			return err
		}
	}
	job := &rowGroupJob{rows: make(chan *parquetRows, 4), done: make(chan rowGroupResult, 1)}
	select {
	case p.encoders[p.next] <- job:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	p.next = (p.next + 1) % len(p.encoders)
	p.cur = job
	return nil
}

// encode is an encoder: it writes the row groups of jobs one after the
// other, each as a Parquet file in memory, with one parquet-go writer
// reset for each, so that its buffers and dictionaries keep their size.
func (p *parquetWriter) encode(jobs <-chan *rowGroupJob) {
	w := parquet.NewGenericWriter[ParquetRow](io.Discard, p.opts...)
	for {
		select {
		case job := <-jobs:
			var buf *bytes.Buffer
			select {
			case buf = <-p.buffers:
				buf.Reset()
			default:
				buf = new(bytes.Buffer)
			}
			w.Reset(buf)
			rg, err := p.encodeRowGroup(w, buf, job.rows)
			job.done <- rowGroupResult{rg, buf, err}
		case <-p.ctx.Done():
			return
		}
	}
}

// encodeRowGroup writes the batches of one row group with w into buf and
// returns the row group. After an error it drains rows, so that the sender
// never blocks.
func (p *parquetWriter) encodeRowGroup(w *parquet.GenericWriter[ParquetRow], buf *bytes.Buffer, rows <-chan *parquetRows) (parquet.RowGroup, error) {
	var err error
	for {
		var b *parquetRows
		var ok bool
		select {
		case b, ok = <-rows:
		case <-p.ctx.Done():
			return nil, p.ctx.Err()
		}
		if !ok {
			break
		}
		if err == nil {
			if _, werr := w.Write(b.rows); werr != nil {
				err = fmt.Errorf("cannot write Parquet rows: %w", werr)
			}
		}
		// parquet-go has copied the values into its column buffers.
		clear(b.rows)
		b.rows, b.lost = b.rows[:0], b.lost[:0]
		select {
		case p.free <- b:
		default:
		}
	}
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cannot finish a Parquet row group: %w", err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, fmt.Errorf("cannot read back a Parquet row group: %w", err)
	}
	if n := len(f.RowGroups()); n != 1 {
		return nil, fmt.Errorf("a Parquet row group was written as %d", n)
	}
	return f.RowGroups()[0], nil
}

// copyOldest waits for the oldest pending row group and copies it into
// the file.
func (p *parquetWriter) copyOldest() error {
	job := p.pending[0]
	p.pending = p.pending[1:]
	var res rowGroupResult
	select {
	case res = <-job.done:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if res.err != nil {
		return res.err
	}
	if _, err := p.w.WriteRowGroup(res.rg); err != nil {
		return fmt.Errorf("cannot write a Parquet row group: %w", err)
	}
	select {
	case p.buffers <- res.buf:
	default:
	}
	return nil
}

// Close writes the last rows, row groups and the footer.
func (p *parquetWriter) Close() error {
	defer p.abort()
	if err := p.handOff(); err != nil {
		return err
	}
	if p.cur != nil {
		close(p.cur.rows)
		p.pending = append(p.pending, p.cur)
		p.cur = nil
	}
	for len(p.pending) > 0 {
		if err := p.copyOldest(); err != nil {
			return err
		}
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("cannot finish the Parquet file: %w", err)
	}
	return nil
}

// abort stops the encoders and waits for them; an export
// that fails calls it instead of Close. Calls after the first do nothing.
func (p *parquetWriter) abort() {
	p.stop()
	p.wg.Wait()
}

// millis is a timestamp in milliseconds since the epoch; the index keeps
// no finer times.
func millis(secs int64, nanos int32) int64 { return secs*1000 + int64(nanos)/1e6 }
