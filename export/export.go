// Package export writes bulk exports of the backlink index in the formats
// analysts load straight into their tools: NDJSON (pipelines), CSV
// (spreadsheets), Parquet (DuckDB, Spark, pandas) and Common Crawl's
// host-graph layout (graph research).
//
// An export reads its rows from a Source, in the index's key order: in
// process from one snapshot of the index (IndexSource), so a crawl writing
// at the same time does not tear it. Its output appears atomically: the
// files are written aside, synced and given their name only when
// complete; on any error, a cancelled context included, nothing is left
// behind (see Create).
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
)

// Formats of an export.
const (
	NDJSON    = "ndjson"
	CSV       = "csv"
	Parquet   = "parquet"
	HostGraph = "hostgraph"
)

// Formats lists the formats in the order usage texts name them.
var Formats = []string{NDJSON, CSV, Parquet, HostGraph}

// Stdout is the Out that streams the export to Options.Stdout.
const Stdout = "-"

// Compressions of an NDJSON or CSV export (Parquet compresses its pages
// with zstd and hostgraph its files with gzip on their own).
const (
	None = "none"
	Gzip = "gzip"
	Zstd = "zstd"
)

// CompressionOf is the compression an output path's extension asks for:
// Gzip for .gz, Zstd for .zst, else None.
func CompressionOf(out string) string {
	switch {
	case strings.HasSuffix(out, ".gz"):
		return Gzip
	case strings.HasSuffix(out, ".zst"):
		return Zstd
	}
	return None
}

var (
	// ErrOptions is wrapped by the errors of Options.Validate and Create
	// for options that cannot work (unknown format, stdout for a binary
	// format, ...).
	ErrOptions = errors.New("export: invalid options")
	// ErrOutput is wrapped by the errors of Create when the output path
	// cannot be written.
	ErrOutput = errors.New("export: cannot write the output")
)

// Options describe an export. The zero value is not valid: Format and Out
// are required.
type Options struct {
	// Format is one of Formats.
	Format string
	// Level is LevelHost (the default) or LevelDomain; only for HostGraph.
	Level string
	// Out is the file to write (a directory for HostGraph), replaced if it
	// exists, or Stdout (NDJSON and CSV only). An Out that is a device, a
	// pipe or a symbolic link (/dev/null, a FIFO a loader reads) is
	// written in place, as a shell's > would, rather than replaced.
	Out string
	// Stdout receives the rows when Out is Stdout.
	Stdout io.Writer
	// Compress is None, Gzip or Zstd, for NDJSON and CSV. Default: from
	// Out's extension, .gz for Gzip and .zst for Zstd, else None. An
	// export of 10M rows takes 5.2 GB as NDJSON and 2.4 GB as CSV; zstd
	// makes them a fourteenth and an eighth, for more CPU than the plain
	// files' writing costs (bench/export).
	Compress string
	// Progress, if set, is called with the rows written so far every
	// ProgressEvery rows and once at the end, on the goroutine that
	// writes; the export waits while it runs.
	Progress func(rows int64)
	// ProgressEvery is the rows between calls of Progress (default
	// DefaultProgressEvery).
	ProgressEvery int
	// RowGroupRows is the rows of a Parquet row group (default
	// DefaultRowGroupRows).
	RowGroupRows int
	// SortPairs bounds the edges a hostgraph export buffers in memory
	// before it spills a sorted run to disk (default DefaultSortPairs).
	SortPairs int
}

// DefaultProgressEvery is Options.ProgressEvery when it is zero: often
// enough for a progress bar at a million rows a second, rarely enough to
// cost nothing.
const DefaultProgressEvery = 16384

// Validate reports every problem of o at once; each wraps ErrOptions.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrOptions}, args...)...))
	}
	if !slices.Contains(Formats, o.Format) {
		bad("unknown format %q: use ndjson, csv, parquet or hostgraph", o.Format)
	}
	switch {
	case o.Level == "", o.Level == LevelHost, o.Level == LevelDomain:
	default:
		bad("unknown level %q: use host or domain", o.Level)
	}
	if o.Level != "" && o.Format != HostGraph {
		bad("a level is only for the hostgraph format")
	}
	switch {
	case o.Out == "":
		bad("no output: give a path, or - for stdout")
	case o.Out == Stdout && (o.Format == Parquet || o.Format == HostGraph):
		bad("%s cannot go to stdout: Parquet needs to seek back for its footer and hostgraph is a directory; give a path", o.Format)
	case o.Out == Stdout && o.Stdout == nil:
		bad("no writer for stdout")
	}
	switch c := o.Compress; {
	case c == "", c == None:
	case c != Gzip && c != Zstd:
		bad("unknown compression %q: use none, gzip or zstd", c)
	case o.Format == Parquet || o.Format == HostGraph:
		bad("%s compresses on its own: compression is for ndjson and csv", o.Format)
	}
	if o.Compress != "" && o.Out != Stdout && o.Format != HostGraph && o.Format != Parquet {
		if ext := CompressionOf(o.Out); ext != None && ext != o.Compress {
			bad("output %s names %s compression by its extension but the compression is %s: make them agree", o.Out, ext, o.Compress)
		}
	}
	if o.RowGroupRows < 0 {
		bad("row group rows %d: must not be negative", o.RowGroupRows)
	}
	if o.SortPairs < 0 {
		bad("sort pairs %d: must not be negative", o.SortPairs)
	}
	if o.ProgressEvery < 0 {
		bad("progress every %d rows: must not be negative", o.ProgressEvery)
	}
	return errors.Join(errs...)
}

// Source yields the rows of an export.
type Source interface {
	// Rows calls fn for every row in order and stops at the first error
	// fn returns, returning it. fn may keep the rows.
	Rows(ctx context.Context, fn func(*lgv1.Backlink) error) error
}

// IndexSource exports from an index in process: every row of Query, read
// from one snapshot.
type IndexSource struct {
	Index *indexer.Index
	Query indexer.ExportQuery
}

var _ Source = IndexSource{}

// Rows implements Source.
func (s IndexSource) Rows(ctx context.Context, fn func(*lgv1.Backlink) error) error {
	return s.Index.Export(ctx, s.Query, func(bl *lgv1.Backlink, _ []byte) error { return fn(bl) })
}

func (s IndexSource) encodedRows(ctx context.Context, newEncoder func() indexer.Encoder, fn func(b []byte, rows int) error) error {
	return s.Index.ExportEncoded(ctx, s.Query, newEncoder, fn)
}

// An encodingSource encodes its rows itself, on goroutines of its own,
// with encoders from newEncoder, and hands them to fn in order, a run of
// rows at a time. The NDJSON and CSV exports of an index take this way
// (see indexer.Index.ExportEncoded).
type encodingSource interface {
	encodedRows(ctx context.Context, newEncoder func() indexer.Encoder, fn func(b []byte, rows int) error) error
}

// Stats describe a finished export.
type Stats struct {
	// Rows are the backlinks exported.
	Rows int64
	// Bytes is the size of the output (of both files for HostGraph).
	Bytes int64
	// Vertices and Edges are the hostgraph's.
	Vertices, Edges int64
	Elapsed         time.Duration
}

// rowWriter encodes rows in one format. Close finishes the output; it is
// complete once Close returns nil.
type rowWriter interface {
	Write(bl *lgv1.Backlink) error
	Close() error
}

// Job is an export whose output is ready to be written: Create checks the
// options and the path, Run writes. Not safe for concurrent use; call Run
// or Abort exactly once.
type Job struct {
	opts    Options
	file    *asideFile            // NDJSON, CSV and Parquet to a path
	files   map[string]*asideFile // HostGraph
	inPlace *os.File              // Out when it is written in place (see OpenInPlace)
	fifo    bool                  // Out is a named pipe, opened in place by Run
	done    bool
}

// Create validates the options and prepares the output, so that a bad
// format, an unwritable path or a missing directory fail before any row
// is read. The files are created aside at once: unnamed where the system
// allows (a killed process leaves nothing), else hidden temporary files
// beside Out. It returns errors wrapping ErrOptions or ErrOutput.
func Create(opts Options) (*Job, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.RowGroupRows == 0 {
		opts.RowGroupRows = DefaultRowGroupRows
	}
	if opts.SortPairs == 0 {
		opts.SortPairs = DefaultSortPairs
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	if opts.Format == HostGraph && opts.Level == "" {
		opts.Level = LevelHost
	}
	if opts.Compress == "" {
		opts.Compress = None
		if opts.Format == NDJSON || opts.Format == CSV {
			opts.Compress = CompressionOf(opts.Out)
		}
	}
	if opts.Out != Stdout {
		opts.Out = filepath.Clean(opts.Out) // "graph/" names graph, not a file in it
	}
	j := &Job{opts: opts}
	if opts.Out == Stdout {
		return j, nil
	}
	dir := filepath.Dir(opts.Out)
	if opts.Format == HostGraph {
		if err := checkDirOut(opts.Out, []string{VerticesFile, EdgesFile}); err != nil {
			return nil, err
		}
		j.files = make(map[string]*asideFile)
		for _, name := range []string{VerticesFile, EdgesFile} {
			f, err := createAside(dir)
			if err != nil {
				j.Abort()
				return nil, fmt.Errorf("%w: %w", ErrOutput, err)
			}
			j.files[name] = f
		}
		return j, nil
	}
	if st, err := os.Stat(opts.Out); err == nil && IsFIFO(st) {
		// Opened by Run, where waiting for the reader can be cancelled.
		j.fifo = true
		return j, nil
	}
	if f, err := OpenInPlace(context.Background(), opts.Out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	} else if f != nil {
		j.inPlace = f
		return j, nil
	}
	if err := checkFileOut(opts.Out); err != nil {
		return nil, err
	}
	f, err := createAside(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	j.file = f
	return j, nil
}

// Abort removes what Create prepared; Run does it on failure.
func (j *Job) Abort() {
	j.done = true
	if j.file != nil {
		j.file.discard()
	}
	if j.inPlace != nil {
		j.inPlace.Close()
	}
	for _, f := range j.files {
		f.discard()
	}
}

// batchRows is how many rows travel together from the source to the
// writer: the channel's cost is spread over them.
const batchRows = 512

// Run reads every row of src and writes the output. The encoding runs on a
// goroutine of its own, beside the source's (an index builds its rows on
// several more, see indexer.Index.Export). On
// success the output is in place, synced; on any error it is removed and
// Run returns the error.
func (j *Job) Run(ctx context.Context, src Source) (Stats, error) {
	if j.done {
		return Stats{}, errors.New("export: Run after Run or Abort")
	}
	start := time.Now()
	if j.fifo {
		f, err := OpenInPlace(ctx, j.opts.Out)
		if err != nil {
			j.Abort()
			return Stats{}, fmt.Errorf("%w: %w", ErrOutput, err)
		}
		j.inPlace = f
	}
	st, err := j.run(ctx, src)
	if err != nil {
		j.Abort()
		return st, err
	}
	j.done = true
	st.Elapsed = time.Since(start)
	return st, nil
}

func (j *Job) run(ctx context.Context, src Source) (Stats, error) {
	var st Stats
	var w rowWriter
	var counted *CountingWriter
	var compressor io.WriteCloser // between an NDJSON or CSV writer and the output
	switch j.opts.Format {
	case HostGraph:
		w = newHostGraphWriter(filepath.Dir(j.opts.Out), j.opts.Level == LevelDomain, j.opts.SortPairs, j.files)
	default:
		out := j.opts.Stdout
		switch {
		case j.file != nil:
			out = j.file
		case j.inPlace != nil:
			out = j.inPlace
		}
		counted = &CountingWriter{W: out}
		var text io.Writer = counted
		if j.opts.Compress != None {
			zw, err := NewCompressor(counted, j.opts.Compress)
			if err != nil {
				return st, err
			}
			text, compressor = zw, zw
		}
		switch j.opts.Format {
		case NDJSON:
			w = newNDJSONWriter(text)
		case CSV:
			w = newCSVWriter(text)
		case Parquet:
			pw := newParquetWriter(counted, j.opts.RowGroupRows)
			defer pw.abort() // its goroutines, when the export fails before Close
			w = pw
		}
	}
	if compressor != nil {
		// Ends the encoder's goroutines on every path; after the Close
		// below it is a no-op.
		defer compressor.Close()
	}
	if err := j.write(ctx, src, w, &st); err != nil {
		return st, err
	}
	// The source may end without error after the context is cancelled;
	// a cancelled export must not be published as if complete.
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := w.Close(); err != nil {
		return st, err
	}
	if compressor != nil {
		if err := compressor.Close(); err != nil {
			return st, err
		}
	}
	if j.opts.Progress != nil {
		j.opts.Progress(st.Rows)
	}
	if hg, ok := w.(*hostGraphWriter); ok {
		st.Vertices, st.Edges = hg.vertices, hg.edges
	}
	switch {
	case j.file != nil:
		if err := j.file.publish(j.opts.Out); err != nil {
			return st, fmt.Errorf("cannot put the export at %s: %w", j.opts.Out, err)
		}
		j.file.Close()
		st.Bytes = counted.N
	case j.files != nil:
		if err := publishDir(j.opts.Out, j.files); err != nil {
			return st, fmt.Errorf("cannot put the export at %s: %w", j.opts.Out, err)
		}
		for name, f := range j.files {
			if fi, err := os.Stat(filepath.Join(j.opts.Out, name)); err == nil {
				st.Bytes += fi.Size()
			}
			f.Close()
		}
	case j.inPlace != nil:
		if err := j.inPlace.Close(); err != nil {
			return st, fmt.Errorf("cannot finish writing %s: %w", j.opts.Out, err)
		}
		st.Bytes = counted.N
	default:
		st.Bytes = counted.N
	}
	return st, nil
}

// write writes every row of src with w.
func (j *Job) write(ctx context.Context, src Source, w rowWriter, st *Stats) error {
	if es, ok := src.(encodingSource); ok {
		if tw, ok := w.(textRowWriter); ok {
			return j.writeEncoded(ctx, es, tw, st)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	full := make(chan []*lgv1.Backlink, 8)
	free := make(chan []*lgv1.Backlink, 10)
	g.Go(func() error {
		defer close(full)
		batch := make([]*lgv1.Backlink, 0, batchRows)
		send := func() error {
			select {
			case full <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case batch = <-free:
			default:
				batch = make([]*lgv1.Backlink, 0, batchRows)
			}
			return nil
		}
		err := src.Rows(gctx, func(bl *lgv1.Backlink) error {
			batch = append(batch, bl)
			if len(batch) < batchRows {
				return nil
			}
			return send()
		})
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			return send()
		}
		return nil
	})
	g.Go(func() error {
		every := int64(j.opts.ProgressEvery)
		next := every
		for batch := range full {
			for _, bl := range batch {
				if err := w.Write(bl); err != nil {
					return err
				}
			}
			st.Rows += int64(len(batch))
			if j.opts.Progress != nil && st.Rows >= next {
				j.opts.Progress(st.Rows)
				next = st.Rows + every
			}
			clear(batch)
			select {
			case free <- batch[:0]:
			default:
			}
			// The source stops on its own when the context ends, but a
			// writer held up by a slow output should not wait for it.
			if err := gctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// writeEncoded is write for an encodingSource and a text format: the
// source encodes the rows, and w writes the bytes out.
func (j *Job) writeEncoded(ctx context.Context, src encodingSource, w textRowWriter, st *Stats) error {
	every := int64(j.opts.ProgressEvery)
	next := every
	return src.encodedRows(ctx, w.newEncoder, func(b []byte, rows int) error {
		if err := w.writeEncoded(b); err != nil {
			return err
		}
		st.Rows += int64(rows)
		if j.opts.Progress != nil && st.Rows >= next {
			j.opts.Progress(st.Rows)
			next = st.Rows + every
		}
		return nil
	})
}

// CountingWriter counts the bytes written through it to W in N.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}

// NewCompressor wraps w in a writer of compress (Gzip, Zstd or None, which
// passes the bytes through), at the speed the exports use: the fastest
// level, since the disk rarely waits for it. Close it to end the stream.
func NewCompressor(w io.Writer, compress string) (io.WriteCloser, error) {
	switch compress {
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.BestSpeed)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	case None, "":
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %q: use none, gzip or zstd", ErrOptions, compress)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
