package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/node"
)

type rankCmd struct{}

func (*rankCmd) name() string { return "rank" }
func (*rankCmd) synopsis() string {
	return "rank hosts and domains (harmonic centrality, PageRank) and store the ranks with the index"
}

func (c *rankCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rank", "rank [--data DIR | --server ADDR | --nats URLS | --graph DIR] [--level host|domain] [--out FILE]", stderr)
	var f queryFlags
	f.registerConn(fs)
	var cf clusterFlags
	cf.register(fs)
	fs.Lookup("nats").Usage = "rank a cluster in this process: gather the host links from the shard nodes over these NATS servers, rank them here and store the ranks on every node (what the Helm chart's CronJob runs)"
	connectTimeout := fs.Duration("connect-timeout", 30*time.Second, "with --nats: give up if the NATS servers and the shard nodes do not answer within this time")
	graph := fs.String("graph", "", "rank this host graph directory (from export --format hostgraph) instead of an index; needs --out")
	level := fs.String("level", export.LevelHost, "with --out: write the ranks of hosts, of registrable domains or of pages (page needs --pages)")
	pages := fs.Bool("pages", false, "also rank every page over the links between pages (one machine only: memory grows with the page graph)")
	out := fs.String("out", "", "also write the ranks in Common Crawl's layout to this file (- for stdout), gzip- or zstd-compressed if it ends in .gz or .zst")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	cluster := false
	for name := range set {
		cluster = cluster || strings.HasPrefix(name, "nats")
	}
	sources := 0
	for _, given := range []bool{f.data != "", f.server != "", cluster, *graph != ""} {
		if given {
			sources++
		}
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case sources > 1:
		return usagef("give one of --data, --server, --nats and --graph")
	case *graph != "" && *out == "":
		return usagef("--graph needs --out: ranks of a graph file are not stored")
	case *level != export.LevelHost && *level != export.LevelDomain && *level != levelPage:
		return usagef("--level %q: use host, domain or page", *level)
	case *level == levelPage && *out != "" && !*pages:
		return usagef("--level page --out needs --pages")
	case *graph != "" && *pages:
		return usagef("--graph holds a host graph: --pages needs --data, --server or --nats")
	case set["connect-timeout"] && !cluster:
		return usagef("--connect-timeout is for --nats: the other sources connect at once or not at all")
	case *connectTimeout <= 0:
		return usagef("--connect-timeout %v: must be positive", *connectTimeout)
	}
	var errs []error
	f.selection(&errs)
	errs = append(errs, cf.check())
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	compress := export.CompressionOf(*out)
	if *out != "" && *out != "-" {
		// Before the ranking, which may take minutes, not after it.
		if !cluster && *graph == "" && f.server == "" {
			if err := checkOutsideData("--out", *out, cmp.Or(f.data, DefaultDataDir)); err != nil {
				return err
			}
		}
		if *graph != "" {
			// The ranks would replace the graph's own files, or make the
			// directory one export --format hostgraph refuses to replace.
			if err := checkOutside("--out", *out, "--graph", "the graph directory", *graph); err != nil {
				return err
			}
		}
		if err := checkOutFile("--out", *out); err != nil {
			return err
		}
	}
	start := time.Now()
	if *graph != "" {
		g, names, err := rank.ReadHostGraph(*graph)
		if err != nil {
			return err
		}
		pr := g.PageRank(rank.DefaultDamping, 1e-9, 200)
		hc := g.HarmonicCentrality(runtime.GOMAXPROCS(0))
		if _, err := writeRanks(ctx, *out, stdout, compress, names, hc, pr); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "ranked %d nodes over %d links in %s\n", g.Nodes(), g.Edges(), time.Since(start).Round(time.Millisecond))
		return nil
	}
	var api indexer.Ranker
	if cluster {
		cl, err := connectCluster(ctx, &cf, "rank", *connectTimeout, log)
		if err != nil {
			return err
		}
		defer cl.Close()
		api = indexer.NewGateway(cl.NC, cl.Shards)
	} else {
		q, closeAPI, err := f.open()
		if err != nil {
			return err
		}
		defer closeAPI()
		api = q
	}
	res, err := api.ComputeRanks(ctx, &lgv1.ComputeRanksRequest{Pages: *pages})
	if err != nil {
		return callError(err)
	}
	fmt.Fprintf(stderr, "ranked %d hosts (%d links between them) and %d domains (%d links)", res.Hosts, res.HostLinks, res.Domains, res.DomainLinks)
	if *pages {
		fmt.Fprintf(stderr, " and %d pages (%d links)", res.Pages, res.PageLinks)
	}
	fmt.Fprintf(stderr, " from %d follow links in %.1fs\n", res.LinksRead, res.Seconds)
	if *out == "" {
		return nil
	}
	_, _, err = exportRanks(ctx, api, *level, *out, compress, stdout)
	return err
}

// connectCluster connects to the cluster's NATS servers and waits for its
// shard nodes, for at most timeout, as seed does: a one-shot command must
// fail, and the CronJob's run be retried, rather than wait silently until
// it is stopped for a cluster that is not there, as the long-running
// roles may.
func connectCluster(ctx context.Context, cf *clusterFlags, name string, timeout time.Duration, log *slog.Logger) (*node.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cf.nats.Name = name
	cl, err := node.Connect(cctx, cf.nats, log)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		return nil, fmt.Errorf("no linkgraph cluster answered at --nats %s within %v (check the URL and that NATS and the shard nodes run; --connect-timeout waits longer): %w", cf.nats.URLs, timeout, err)
	}
	return cl, err
}

// levelPage is --level page of rank and export --format ranks.
const levelPage = "page"

// exportRanks writes the stored ranks of a level in Common Crawl's layout
// and returns the ranks and bytes written.
func exportRanks(ctx context.Context, api indexer.Ranker, level, out, compress string, stdout io.Writer) (rows int, bytes int64, err error) {
	req := &lgv1.RanksRequest{Level: lgv1.RankLevel_RANK_LEVEL_HOST, PageSize: 10000}
	switch level {
	case export.LevelDomain:
		req.Level = lgv1.RankLevel_RANK_LEVEL_DOMAIN
	case levelPage:
		req.Level = lgv1.RankLevel_RANK_LEVEL_PAGE
	}
	var names []string
	var hc, pr []float64
	for {
		res, err := api.Ranks(ctx, req)
		if err != nil {
			return 0, 0, callError(err)
		}
		if res.ComputedAt == nil {
			return 0, 0, errors.New("the index has no ranks yet: run linkgraph rank first")
		}
		for _, r := range res.Ranks {
			names = append(names, r.Name)
			hc, pr = append(hc, r.Rank.GetHarmonic()), append(pr, r.Rank.GetPagerank())
		}
		if req.PageToken = res.NextPageToken; req.PageToken == "" {
			break
		}
	}
	if level == levelPage {
		if len(names) == 0 {
			return 0, 0, errors.New("the index has no page ranks: run linkgraph rank --pages")
		}
		bytes, err = writeFile(ctx, out, stdout, compress, func(w io.Writer) error { return rank.WritePageRanks(w, names, hc, pr) })
		return len(names), bytes, err
	}
	bytes, err = writeRanks(ctx, out, stdout, compress, names, hc, pr)
	return len(names), bytes, err
}

// writeRanks writes ranks in Common Crawl's layout to path (- for stdout).
func writeRanks(ctx context.Context, path string, stdout io.Writer, compress string, names []string, hc, pr []float64) (int64, error) {
	return writeFile(ctx, path, stdout, compress, func(w io.Writer) error { return rank.WriteRanks(w, names, hc, pr) })
}

// checkCompression checks --compress against --out as export does for
// NDJSON and CSV, and returns the compression to write.
func checkCompression(out, compress string) (string, error) {
	switch compress {
	case "":
		if out == "-" {
			return export.None, nil
		}
		return export.CompressionOf(out), nil
	case export.None, export.Gzip, export.Zstd:
	default:
		return "", usagef("--compress %q: use none, gzip or zstd", compress)
	}
	if ext := export.CompressionOf(out); out != "-" && ext != export.None && ext != compress {
		return "", usagef("--out %s names %s compression by its extension but --compress is %s: make them agree", out, ext, compress)
	}
	return compress, nil
}

// writeFile writes path (- for stdout) through write, compressed, and
// returns the bytes written: atomically, unless path is written in place
// (see export.OpenInPlace).
func writeFile(ctx context.Context, path string, stdout io.Writer, compress string, write func(io.Writer) error) (int64, error) {
	encode := func(w io.Writer) (int64, error) {
		cw := &export.CountingWriter{W: w}
		zw, err := export.NewCompressor(cw, compress)
		if err != nil {
			return 0, err
		}
		if err := write(zw); err != nil {
			zw.Close()
			return cw.N, err
		}
		err = zw.Close()
		return cw.N, err
	}
	if path == "-" {
		return encode(stdout)
	}
	f, err := export.OpenInPlace(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("--out: %w", err)
	}
	if f == nil {
		return writeFileAtomically(path, encode)
	}
	defer f.Close()
	n, err := encode(f)
	if err != nil {
		return n, err
	}
	return n, f.Close()
}

// checkOutFile checks that a ranks file can be written at out (the value
// of flag), so that a bad path fails at once rather than after the
// ranking, naming the path given rather than a temporary file's: out is
// written in place (a device, a pipe or a symbolic link, see
// export.OpenInPlace), or its directory exists and takes new files.
func checkOutFile(flag, out string) error {
	if out == "-" {
		return nil
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return usagef("%s %s is a directory; give a file path", flag, out)
	}
	if lst, err := os.Lstat(out); err == nil && !lst.Mode().IsRegular() {
		return nil
	}
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return usagef("%s %s: directory %s does not exist; create it or write elsewhere", flag, out, dir)
	case err != nil:
		return usagef("%s %s: %w", flag, out, err)
	case !st.IsDir():
		return usagef("%s %s: %s is not a directory", flag, out, dir)
	}
	f, err := createHidden(dir)
	if err != nil {
		var pe *iofs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // its path is the probe's, not the user's
		}
		return usagef("%s %s: cannot create files in %s: %w", flag, out, dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// createHidden creates a hidden file in dir to write aside, with the mode
// os.Create gives (0666 less the umask, as the other exports' files get)
// rather than os.CreateTemp's 0600: a ranks file is for other users and
// tools too.
func createHidden(dir string) (*os.File, error) {
	for {
		name := filepath.Join(dir, ".linkgraph-rank-"+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, iofs.ErrExist) {
			return f, err
		}
	}
}

// writeFileAtomically writes path through write: to a file beside it,
// synced, then renamed over it, so a failure leaves no partial file.
func writeFileAtomically(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := createHidden(filepath.Dir(path))
	if err != nil {
		return 0, fmt.Errorf("--out %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := write(f)
	if err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	return n, os.Rename(f.Name(), path)
}

func (r remoteAPI) ComputeRanks(ctx context.Context, req *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error) {
	return r.c.ComputeRanks(ctx, req)
}

func (r remoteAPI) Ranks(ctx context.Context, req *lgv1.RanksRequest) (*lgv1.RanksResponse, error) {
	return r.c.Ranks(ctx, req)
}
