package export

import (
	"fmt"
	"io"

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
	// SourceAuthority is the score (0-100) of the source's registrable
	// domain from the latest ranking, 0 when unranked.
	SourceAuthority int32 `parquet:"source_authority"`
	// SourcePageAuthority is the page-level score of the source page from
	// the latest ranking with pages, 0 when unranked.
	SourcePageAuthority int32 `parquet:"source_page_authority"`
}

// parquetBatch is how many rows the writer converts before handing them to
// parquet-go at once: its per-call cost is spread over the batch.
const parquetBatch = 1024

// parquetWriter writes rows as Parquet with zstd. Not safe for concurrent
// use.
type parquetWriter struct {
	w    *parquet.GenericWriter[ParquetRow]
	rows []ParquetRow
	// lost holds the lost_at values the rows of the batch point to, so
	// that they need no allocation each.
	lost []int64
}

func newParquetWriter(w io.Writer, rowGroupRows int) *parquetWriter {
	return &parquetWriter{
		w: parquet.NewGenericWriter[ParquetRow](w,
			parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
			parquet.MaxRowsPerRowGroup(int64(rowGroupRows)),
			parquet.CreatedBy("linkgraph", "export", ""),
			parquet.WriteBufferSize(1<<20),
		),
		rows: make([]ParquetRow, 0, parquetBatch),
		lost: make([]int64, 0, parquetBatch),
	}
}

func (p *parquetWriter) Write(bl *lgv1.Backlink) error {
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
		p.lost = append(p.lost, millis(bl.LostAt.GetSeconds(), bl.LostAt.GetNanos()))
		r.LostAt = &p.lost[len(p.lost)-1]
		r.LostReason = linkrow.ReasonName(bl.GetLostReason())
	}
	p.rows = append(p.rows, r)
	if len(p.rows) == cap(p.rows) {
		return p.flushBatch()
	}
	return nil
}

func (p *parquetWriter) flushBatch() error {
	if len(p.rows) == 0 {
		return nil
	}
	if _, err := p.w.Write(p.rows); err != nil {
		return fmt.Errorf("cannot write Parquet rows: %w", err)
	}
	// parquet-go has copied the values into its column buffers.
	clear(p.rows)
	p.rows, p.lost = p.rows[:0], p.lost[:0]
	return nil
}

// Close writes the last rows, row group and the footer.
func (p *parquetWriter) Close() error {
	if err := p.flushBatch(); err != nil {
		return err
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("cannot finish the Parquet file: %w", err)
	}
	return nil
}

// millis is a timestamp in milliseconds since the epoch; the index keeps
// no finer times.
func millis(secs int64, nanos int32) int64 { return secs*1000 + int64(nanos)/1e6 }
