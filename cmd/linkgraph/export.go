package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
)

type exportCmd struct{}

func (*exportCmd) name() string { return "export" }
func (*exportCmd) synopsis() string {
	return "write the index, or the links to a target, as NDJSON, CSV, Parquet or a host graph"
}

func (c *exportCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "export [--data DIR | --server ADDR] --format ndjson|csv|parquet|hostgraph|ranks [--level host|domain] [--out PATH|-] [flags] [TARGET]", stderr)
	var f queryFlags
	f.registerSelection(fs, true)
	// An export keeps internal links by default, unlike the views: it is
	// the index's contents, not a backlink profile.
	fs.Lookup("internal").Usage = "links from the target's own registrable domain: include (the default) or exclude (needs a TARGET)"
	format := fs.String("format", "", "ndjson (one object per line, proto field names), csv (header row, the columns of backlinks --format csv), parquet (typed columns, zstd), hostgraph (Common Crawl's host-graph layout, a directory) or ranks (Common Crawl's ranks layout; see rank)")
	level := fs.String("level", "", "with --format hostgraph: host (a vertex per host name, the default) or domain (per registrable domain); with --format ranks also page")
	compress := fs.String("compress", "", "with --format ndjson, csv or ranks: none, gzip or zstd (default: from --out's extension, .gz or .zst, else none)")
	rowGroup := fs.Int("row-group-rows", export.DefaultRowGroupRows, "with --format parquet: rows per row group (memory grows with it)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the export to this file")
	out := fs.String("out", export.Stdout, "file to write (a directory for hostgraph), replaced atomically when complete (a device, FIFO or symbolic link is written in place); - writes to stdout (ndjson, csv and ranks only)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *format == formatRanks {
		return exportRanksCmd(ctx, fs, &f, pos, *level, *out, *compress, stdout, stderr)
	}
	var errs []error
	var target string
	switch len(pos) {
	case 0:
	case 1:
		target = pos[0]
	default:
		errs = append(errs, fmt.Errorf("give at most one TARGET, not %d", len(pos)))
	}
	// The export package knows no ranks format: its own message would
	// not offer it.
	known := slices.Contains(export.Formats, *format)
	switch {
	case *format == "":
		errs = append(errs, errors.New("--format is required: "+formatNames()))
	case !known:
		errs = append(errs, fmt.Errorf("unknown format %q: use %s", *format, formatNames()))
	}
	scope, filter := f.selection(&errs)
	if target == "" && f.scope != "url" {
		errs = append(errs, errors.New("--scope needs a TARGET"))
	}
	if target == "" && f.internal == "exclude" {
		errs = append(errs, errors.New("--internal exclude needs a TARGET: internal to which domain?"))
	}
	rowGroupGiven := false
	fs.Visit(func(fl *flag.Flag) { rowGroupGiven = rowGroupGiven || fl.Name == "row-group-rows" })
	switch {
	case rowGroupGiven && known && *format != export.Parquet:
		errs = append(errs, fmt.Errorf("--row-group-rows applies to --format parquet, not %s", *format))
	case *rowGroup < 1:
		errs = append(errs, fmt.Errorf("--row-group-rows %d: must be positive", *rowGroup))
	}
	// A bad count is told above; the export's own check would tell it again.
	opts := export.Options{Format: *format, Level: *level, Out: *out, Stdout: stdout, Compress: *compress, RowGroupRows: max(*rowGroup, 0)}
	if known {
		if err := opts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if f.server == "" {
		if *cpuprofile != "" {
			errs = append(errs, checkOutsideData("--cpuprofile", *cpuprofile, cmp.Or(f.data, DefaultDataDir)))
		}
		if *out != export.Stdout {
			errs = append(errs, checkOutsideData("--out", *out, cmp.Or(f.data, DefaultDataDir)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}

	// An export allocates a few short-lived objects per row (most in the
	// index's reads) against a small live heap, so the collector at its
	// default pace costs a quarter of the CPU. At half the pace it costs
	// a fifth less CPU for some 60 MiB more at 10M rows (four times less
	// pace: 27% less CPU, 200 MiB more). Not for Parquet, whose live
	// heap is the row group being buffered. GOGC, if set, still decides.
	if *format != export.Parquet {
		paceCollector(200)
	}
	// A text file is written past the page cache, and the thread writing
	// it spends much of the export blocked in write(2), holding its P
	// until the scheduler notices: one P more keeps every core encoding.
	// On the benchmark's 2 cores, 10M rows took 11.2-14.8 s against
	// 13.4-17.1 s as NDJSON, 10.7-12.4 s against 11.8-15.2 s as CSV, each
	// run faster than the one beside it (four pairs). Not for Parquet:
	// one more P is one more encoder's row group in memory, for no
	// gain. GOMAXPROCS, if set, still decides.
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && *out != "-" && (*format == export.NDJSON || *format == export.CSV) {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	bar := newProgress(stderr)
	opts.Progress = bar.update
	// The output is prepared before the index is opened, so that an
	// unwritable path fails before any work.
	job, err := export.Create(opts)
	if err != nil {
		return usageError{err}
	}
	api, closeAPI, err := f.open()
	if err != nil {
		job.Abort()
		return err
	}
	defer closeAPI()
	var src export.Source
	switch a := api.(type) {
	case *indexer.GRPCServer:
		src = export.IndexSource{Index: a.Index, Query: indexer.ExportQuery{Target: target, Scope: scope, Filter: filter}}
	case remoteAPI:
		src = &export.RemoteSource{Client: a.c, Request: &lgv1.ExportRequest{Target: target, Scope: scope, Filter: filter},
			Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	default:
		job.Abort()
		return fmt.Errorf("export: no export from %T", api)
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			job.Abort()
			return fmt.Errorf("cannot create --cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			job.Abort()
			return fmt.Errorf("cannot start the CPU profile: %w", err)
		}
	}
	if st, err := os.Stat(*out); err == nil && export.IsFIFO(st) {
		fmt.Fprintf(stderr, "waiting for a reader of the FIFO %s\n", *out)
	}
	st, err := job.Run(ctx, src)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	bar.finish()
	switch {
	case errors.Is(err, indexer.ErrInvalidArgument):
		return usageError{err}
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted after %d rows: the export is incomplete (a file at --out is left as it was)", st.Rows)
	case err != nil:
		return callError(err)
	}
	printExported(stderr, st.Rows, st.Bytes, *out, st.Elapsed)
	if *format == export.HostGraph {
		fmt.Fprintf(stderr, "; %d vertices, %d edges", st.Vertices, st.Edges)
	}
	fmt.Fprintln(stderr)
	return nil
}

// formatRanks is export's format beside export.Formats: the ranks stored
// by the latest rank, in Common Crawl's layout.
const formatRanks = "ranks"

// formatNames lists the values of export --format for messages.
func formatNames() string {
	return strings.Join(export.Formats, ", ") + " or " + formatRanks
}

// ranksFlags are the flags of export --format ranks. The others select or
// encode backlinks, and the stored ranks are written as they are.
var ranksFlags = map[string]bool{
	"data": true, "server": true, "token-file": true, "tls": true, "tls-ca": true, "insecure": true,
	"format": true, "level": true, "out": true, "compress": true,
}

// exportRanksCmd is export --format ranks: the stored ranks of every
// host, domain or page.
func exportRanksCmd(ctx context.Context, fs *flag.FlagSet, f *queryFlags, pos []string, level, out, compress string, stdout, stderr io.Writer) error {
	var errs []error
	if len(pos) > 0 {
		errs = append(errs, errors.New("--format ranks exports the ranks of every host, domain or page: give no TARGET"))
	}
	var ignored []string
	fs.Visit(func(fl *flag.Flag) {
		if !ranksFlags[fl.Name] {
			ignored = append(ignored, "--"+fl.Name)
		}
	})
	if len(ignored) > 0 {
		verb := "do"
		if len(ignored) == 1 {
			verb = "does"
		}
		errs = append(errs, fmt.Errorf("--format ranks writes the stored ranks as they are: %s %s not apply to it", strings.Join(ignored, ", "), verb))
	}
	if level != "" && level != export.LevelHost && level != export.LevelDomain && level != levelPage {
		errs = append(errs, fmt.Errorf("--level %q: use host, domain or page", level))
	}
	compress, err := checkCompression(out, compress)
	errs = append(errs, err)
	f.selection(&errs)
	if out != export.Stdout {
		// Not even checkOutFile's probe goes into the data directory.
		var err error
		if f.server == "" {
			err = checkOutsideData("--out", out, cmp.Or(f.data, DefaultDataDir))
		}
		if err == nil {
			err = checkOutFile("--out", out)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	api, closeAPI, err := f.open()
	if err != nil {
		return err
	}
	defer closeAPI()
	start := time.Now()
	rows, bytes, err := exportRanks(ctx, api, cmp.Or(level, export.LevelHost), out, compress, stdout)
	if err != nil {
		return err
	}
	printExported(stderr, int64(rows), bytes, out, time.Since(start))
	fmt.Fprintln(stderr)
	return nil
}

// printExported prints the summary of an export, without its line end.
func printExported(w io.Writer, rows, bytes int64, out string, elapsed time.Duration) {
	if out == export.Stdout {
		out = "stdout"
	}
	rate := float64(rows) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "exported %d rows, %d bytes to %s in %v (%.0f rows/s)", rows, bytes, out, elapsed.Round(time.Millisecond), rate)
}

// progress draws rows, rows/s and the elapsed time on stderr while an
// export runs, when stderr is a terminal; otherwise it does nothing, so
// that logs and pipes get no control characters.
type progress struct {
	bar  *progressbar.ProgressBar
	last int64
}

func newProgress(stderr io.Writer) *progress {
	if !isTerminal(stderr) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("exporting"),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *progress) update(rows int64) {
	if p.bar == nil {
		return
	}
	// The count goes in the description: the library's own count of an
	// open-ended bar reads "n/-".
	p.bar.Describe(fmt.Sprintf("exporting %d rows", rows))
	p.bar.Add64(rows - p.last)
	p.last = rows
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
