//go:build unix

// Command export measures `linkgraph export` on an index written by
// `linkgraph generate`. For each format it runs the real linkgraph binary
// as a child process, exporting the whole index (live links), and prints
// rows, wall time, rows/s, output bytes, bytes a row, CPU time (user +
// system) and peak memory (the child's rusage maxrss). The "scan" case
// reads the same rows from the index in a child process of its own and
// encodes nothing: the ceiling of every format. The "disk" case writes as
// many zero bytes as the case before it wrote, the way the text exports
// write (O_DIRECT, then fsync), with that case's row count: the rows/s the
// disk alone allows at that row size.
//
// Exports open the index read-write, as every linkgraph command does
// (Pebble may write a new manifest and WAL), so point -data at a copy of
// an index that another process must find unchanged.
//
//	go run ./cmd/linkgraph generate --data /tmp/gen10m --edges 10000000
//	go run ./bench/export -data /tmp/gen10m -formats scan,ndjson,csv,parquet,hostgraph
//	go run ./bench/export -data /tmp/gen10m -formats ndjson.zst,csv.zst,ndjson.gz,csv.gz
//	go run ./bench/export -data /tmp/gen10m -formats ndjson,disk,csv,disk
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

// scanEnv makes the process the "scan" child: it reads every row of the
// index in the directory the variable names and prints the count.
const scanEnv = "BENCH_EXPORT_SCAN"

// diskEnv makes the process the "disk" child: it writes the bytes the
// variable gives ("PATH ROWS BYTES") to PATH.
const diskEnv = "BENCH_EXPORT_DISK"

// profileEnv, when set, names the file the scan child writes a CPU
// profile to.
const profileEnv = "BENCH_EXPORT_CPUPROFILE"

func main() {
	if dir := os.Getenv(scanEnv); dir != "" {
		// The collector's pace of the text exports (see cmd/linkgraph).
		if _, set := os.LookupEnv("GOGC"); !set {
			debug.SetGCPercent(200)
		}
		if path := os.Getenv(profileEnv); path != "" {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "scan:", err)
				os.Exit(1)
			}
		}
		n, err := scan(dir)
		pprof.StopCPUProfile()
		if err != nil {
			fmt.Fprintln(os.Stderr, "scan:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "exported %d rows, 0 bytes\n", n)
		return
	}
	if spec := os.Getenv(diskEnv); spec != "" {
		var path string
		var rows, n int64
		if _, err := fmt.Sscanf(spec, "%s %d %d", &path, &rows, &n); err != nil {
			fmt.Fprintln(os.Stderr, "disk:", err)
			os.Exit(2)
		}
		if err := writeZeros(path, n); err != nil {
			fmt.Fprintln(os.Stderr, "disk:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "exported %d rows, %d bytes\n", rows, n)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

// scan reads every live row of the index in dir, as `linkgraph export`
// does, without encoding them.
func scan(dir string) (int64, error) {
	db, err := store.OpenWith(dir, store.Options{CacheSize: store.MinDefaultCacheSize}) // as linkgraph export
	if err != nil {
		return 0, err
	}
	defer db.Close()
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		return 0, err
	}
	var n int64
	err = indexer.New(db, shards).Export(context.Background(), indexer.ExportQuery{}, func(*lgv1.Backlink, []byte) error {
		n++
		return nil
	})
	return n, err
}

// result is one measured run.
type result struct {
	format      string
	rows, bytes int64
	wall, cpu   time.Duration
	maxRSS      int64 // bytes
}

var summary = regexp.MustCompile(`exported (\d+) rows, (\d+) bytes`)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of a generated index (required)")
	formats := fs.String("formats", "scan,ndjson,csv,parquet,hostgraph", "comma-separated cases: scan (read the rows, encode nothing), ndjson, csv, parquet, hostgraph, ndjson or csv compressed as ndjson.zst, csv.gz, ..., and disk (write as many bytes as the case before, with nothing to encode)")
	bin := fs.String("bin", "", "the linkgraph binary (default: go build ./cmd/linkgraph into a temporary directory)")
	outDir := fs.String("out", "", "directory for the exports (default: a temporary directory, removed at the end)")
	devNull := fs.Bool("devnull", false, "write ndjson and csv to /dev/null through --out - instead of a file, leaving out the disk")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *data == "" || fs.NArg() > 0 {
		return usageError{errors.New("give -data DIR and no arguments")}
	}
	if _, err := os.Stat(filepath.Join(*data, "index")); err != nil {
		return usageError{fmt.Errorf("-data %s holds no index: %w", *data, err)}
	}
	tmp, err := os.MkdirTemp("", "bench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *bin == "" {
		*bin = filepath.Join(tmp, "linkgraph")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/linkgraph/linkgraph/cmd/linkgraph")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("cannot build linkgraph: %w", err)
		}
	}
	if *outDir == "" {
		*outDir = tmp
	} else if err := os.MkdirAll(*outDir, 0o777); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []result
	for _, format := range strings.Split(*formats, ",") {
		var cmd *exec.Cmd
		out := filepath.Join(*outDir, "export."+format)
		// ndjson.zst, csv.gz and so on: compressed as the extension says.
		base, ext, _ := strings.Cut(format, ".")
		switch {
		case format == "scan":
			cmd = exec.CommandContext(ctx, self)
			cmd.Env = append(os.Environ(), scanEnv+"="+*data)
		case format == "disk":
			if len(results) == 0 || results[len(results)-1].bytes == 0 {
				return usageError{errors.New("-formats: disk needs a case before it that wrote a file")}
			}
			prev := results[len(results)-1]
			cmd = exec.CommandContext(ctx, self)
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", diskEnv, out, prev.rows, prev.bytes))
		case (base == "ndjson" || base == "csv") && (ext == "" || ext == "gz" || ext == "zst"),
			(base == "parquet" || base == "hostgraph") && ext == "":
			target := out
			if *devNull && ext == "" && (format == "ndjson" || format == "csv") {
				target = "-"
			}
			os.RemoveAll(out)
			cmd = exec.CommandContext(ctx, *bin, "export", "--data", *data, "--format", base, "--out", target)
		default:
			return usageError{fmt.Errorf("-formats: unknown case %q", format)}
		}
		r, err := measure(cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		r.format = format
		if format != "scan" && format != "disk" && (!*devNull || ext != "" || format == "parquet" || format == "hostgraph") {
			r.bytes = size(out)
			if *outDir == tmp {
				os.RemoveAll(out) // keep the disk for the next case
			}
		}
		if format == "disk" {
			os.Remove(out)
		}
		fmt.Fprintf(stderr, "%s: %d rows in %v\n", format, r.rows, r.wall.Round(time.Millisecond))
		results = append(results, r)
	}
	print(stdout, results)
	return nil
}

// measure runs cmd to its end and reads its rows from its summary line
// and its CPU time and peak memory from its rusage.
func measure(cmd *exec.Cmd) (result, error) {
	var errb strings.Builder
	cmd.Stderr = &errb
	if cmd.Stdout == nil {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return result{}, err
		}
		defer devnull.Close()
		cmd.Stdout = devnull
	}
	start := time.Now()
	err := cmd.Run()
	r := result{wall: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%w: %s", err, errb.String())
	}
	m := summary.FindStringSubmatch(errb.String())
	if m == nil {
		return r, fmt.Errorf("no summary line in %q", errb.String())
	}
	r.rows, _ = strconv.ParseInt(m[1], 10, 64)
	r.bytes, _ = strconv.ParseInt(m[2], 10, 64)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}

// size is the size of a file, or of the files in a directory.
func size(path string) int64 {
	var n int64
	filepath.Walk(path, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func print(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "format\trows\tseconds\trows/s\tbytes\tbytes/row\tcpu s\tpeak RSS MiB\t")
	for _, r := range results {
		perRow := 0.0
		if r.rows > 0 {
			perRow = float64(r.bytes) / float64(r.rows)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%d\t%.1f\t%.2f\t%.0f\t\n", r.format, r.rows, r.wall.Seconds(),
			float64(r.rows)/r.wall.Seconds(), r.bytes, perRow, r.cpu.Seconds(), float64(r.maxRSS)/(1<<20))
	}
	tw.Flush()
}
