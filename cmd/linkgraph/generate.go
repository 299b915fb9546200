package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
)

type generateCmd struct{}

func (*generateCmd) name() string { return "generate" }
func (*generateCmd) synopsis() string {
	return "build a synthetic index (a power-law web graph) without crawling, for benchmarks"
}

func (c *generateCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("generate", "generate --data DIR [flags]", stderr)
	data := fs.String("data", "", "data directory to create the index in (required; must not hold an index yet)")
	edges := fs.Int64("edges", 10_000_000, "live links in the generated index")
	seed := fs.Uint64("seed", 1, "selects the graph; the same flags always give the same index")
	hub := fs.Int64("hub-backlinks", 1_000_000, "plant one URL with exactly this many backlinks (0: none; unless given, at most a tenth of --edges)")
	dom := fs.Int64("domain-backlinks", 1_000_000, "plant one registrable domain with exactly this many backlinks from other domains (0: none; unless given, at most a tenth of --edges)")
	shards := fs.Int("shards", 1, "shard count recorded in the data directory")
	perTxn := fs.Int("pages-per-txn", graphgen.DefaultPagesPerTxn, "fetch results per index transaction")
	samples := fs.Int("samples", 10000, "sample targets to list in "+graphgen.ManifestFile+" for bench/query")
	compact := fs.Bool("compact", true, "compact the whole index after writing and report its size before and after")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the generation and index writes to this file")
	var zstdLevel int
	registerZstdLevel(fs, &zstdLevel)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected arguments %q", pos)
	case *data == "":
		return usagef("--data is required")
	case *shards < 1:
		return usagef("--shards %d: must be at least 1", *shards)
	case *perTxn < 1:
		return usagef("--pages-per-txn %d: must be at least 1", *perTxn)
	case *samples < 0:
		return usagef("--samples %d: must not be negative", *samples)
	}
	if err := checkZstdLevel(zstdLevel); err != nil {
		return err
	}
	// The planted hubs must fit in the graph: a small --edges scales the
	// defaults down rather than refuse them.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["hub-backlinks"] {
		*hub = min(*hub, *edges/10)
	}
	if !given["domain-backlinks"] {
		*dom = min(*dom, *edges/10)
	}
	// Generating into a crawl's index would mix the two beyond repair.
	if _, err := os.Stat(filepath.Join(*data, "index")); err == nil {
		return usagef("--data %s already holds an index; generate into a new directory", *data)
	}
	if *cpuprofile != "" {
		if err := checkOutsideData("--cpuprofile", *cpuprofile, *data); err != nil {
			return err
		}
	}
	w, err := graphgen.New(graphgen.Config{Seed: *seed, Edges: *edges, HubBacklinks: *hub, DomainBacklinks: *dom})
	if errors.Is(err, graphgen.ErrConfig) {
		return usagef("%w (see --edges, --hub-backlinks and --domain-backlinks)", err)
	}
	if err != nil {
		return err
	}
	hosts, domains := w.Hosts()
	fmt.Fprintf(stdout, "plan: %d edges from %d pages (%d fetched twice) over %d hosts in %d registrable domains\n",
		w.Edges(), w.Pages(), w.Recrawls(), hosts, domains)
	if w.HubURL() != "" {
		fmt.Fprintf(stdout, "hub URL:    %s  (%d backlinks)\n", w.HubURL(), *hub)
	}
	if w.HubDomain() != "" {
		fmt.Fprintf(stdout, "hub domain: %s  (%d backlinks from other domains)\n", w.HubDomain(), *dom)
	}

	_, statErr := os.Stat(*data)
	created := errors.Is(statErr, os.ErrNotExist)
	db, err := store.OpenWith(*data, store.Options{ZstdLevel: zstdLevel})
	if err != nil {
		return err
	}
	defer db.Close()
	defer func() {
		if err == nil {
			return
		}
		// Half an index would be refused by the next generate and misread
		// by queries: take away what this run made.
		db.Close()
		os.RemoveAll(filepath.Join(*data, "index"))
		os.Remove(filepath.Join(*data, graphgen.ManifestFile))
		os.Remove(filepath.Join(*data, "LOCK"))
		if created {
			os.Remove(*data)
		}
		if errors.Is(err, context.Canceled) {
			err = fmt.Errorf("interrupted; the partial index in %s is removed", *data)
		}
	}()
	n, err := db.Shards(*shards, *shards)
	if err != nil {
		return err
	}
	ix := indexer.New(db, n)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("cannot create --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cannot start the CPU profile: %w", err)
		}
	}
	next := 0.1
	st, err := graphgen.Write(ctx, ix, w, graphgen.WriteOptions{
		PagesPerTxn: *perTxn,
		Progress: func(st graphgen.WriteStats) {
			if done := float64(st.Fetches) / float64(w.Fetches()); done >= next {
				fmt.Fprintf(stderr, "  %3.0f%%  %d fetches  %s\n", 100*done, st.Fetches, st.Elapsed.Round(time.Second))
				next += 0.1
			}
		},
	})
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d edges (%d lost by recrawls, also kept) from %d fetches of %d pages in %s: %.0f edges/s\n",
		w.Edges(), st.Lost, st.Fetches, w.Pages(), st.Elapsed.Round(time.Millisecond), float64(w.Edges())/st.Elapsed.Seconds())
	counters, err := ix.Counters()
	if err != nil {
		return err
	}
	if got := counters[indexer.CounterEdges]; got != w.Edges() {
		fmt.Fprintf(stdout, "WARNING: the index counts %d live edges, generated %d\n", got, w.Edges())
	}

	m, err := graphgen.NewManifest(w, *samples)
	if err != nil {
		return err
	}
	if err := m.WriteFile(*data); err != nil {
		return err
	}

	t0 := time.Now()
	if err := db.Flush(); err != nil {
		return fmt.Errorf("cannot flush the index: %w", err)
	}
	dir := filepath.Join(*data, "index")
	before, err := diskUsage(db, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "after flush (%s):\n  %s\n", time.Since(t0).Round(time.Millisecond), before.describe(w.Edges()))
	if *compact {
		t0 = time.Now()
		// Every key sorts below 0xff: prefixes are ASCII letters.
		if err := db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
			return fmt.Errorf("cannot compact the index: %w", err)
		}
		after, err := diskUsage(db, dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "after compaction (%s, zstd level %d in the bottom level):\n  %s\n", time.Since(t0).Round(time.Millisecond), zstdLevel, after.describe(w.Edges()))
	}
	if err := printPrefixUsage(ctx, stdout, db, w.Edges()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (hub URL, hub domain and %d sample targets for bench/query)\n",
		filepath.Join(*data, graphgen.ManifestFile), len(m.SampleTargets))
	return nil
}

// usage is the on-disk size of the index.
type usage struct {
	tables int64 // live sstables, as Pebble counts them
	dir    int64 // everything in the directory: WAL, manifests, tables not yet deleted
	wal    int64
}

func diskUsage(db *store.DB, dir string) (usage, error) {
	u := usage{tables: db.Metrics().Total().TablesSize}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			var info fs.FileInfo
			if info, err = d.Info(); err == nil {
				u.dir += info.Size()
				if strings.HasSuffix(path, ".log") {
					u.wal += info.Size()
				}
			}
		}
		// Pebble's background compactions delete tables while we walk.
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return u, fmt.Errorf("cannot measure %s: %w", dir, err)
	}
	return u, nil
}

func (u usage) describe(edges int64) string {
	return fmt.Sprintf("tables %s = %.1f bytes/edge; directory %s (WAL %s) = %.1f bytes/edge",
		mib(u.tables), float64(u.tables)/float64(edges), mib(u.dir), mib(u.wal), float64(u.dir)/float64(edges))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// prefixNames label the key prefixes documented in internal/store.
var prefixNames = map[byte]string{
	'e': "edges (reverse map)", 's': "source ids", 'i': "sources", 'o': "domain ids", 'g': "domains by id", 'f': "forward lists", 'p': "pages",
	'n': "counters", 'a': "aggregates", 'm': "metadata",
	'u': "URL-seen", 'q': "queues", 'c': "scope", 'r': "robots", 'h': "host budgets",
}

// printPrefixUsage prints, per one-byte key prefix (every store key starts
// with one), the keys and their logical bytes from a full scan, and
// Pebble's estimate of the compressed bytes the tables spend on them.
func printPrefixUsage(ctx context.Context, w io.Writer, db *store.DB, edges int64) error {
	type sizes struct{ keys, keyBytes, valBytes int64 }
	var per [256]sizes
	it, err := db.NewIterWithContext(ctx, nil)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		s := &per[k[0]]
		s.keys++
		s.keyBytes += int64(len(k))
		s.valBytes += int64(len(it.Value()))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("cannot scan the index: %w", err)
	}
	fmt.Fprintln(w, "by key prefix (keys and raw bytes from a scan; on disk: Pebble's estimate for the compressed tables):")
	fmt.Fprintf(w, "  %-6s %-20s %12s %10s %10s %10s %11s %9s\n", "prefix", "", "keys", "key MiB", "value MiB", "disk MiB", "disk B/edge", "share")
	var est [256]uint64
	var total uint64
	for b := range 255 {
		if per[b].keys == 0 {
			continue
		}
		n, err := db.EstimateDiskUsage([]byte{byte(b)}, []byte{byte(b + 1)})
		if err != nil {
			return fmt.Errorf("cannot estimate the size of prefix %q: %w", byte(b), err)
		}
		est[b] = n
		total += n
	}
	for b := range 255 {
		s := per[b]
		if s.keys == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-6q %-20s %12d %10.1f %10.1f %10.1f %11.2f %8.1f%%\n", byte(b), prefixNames[byte(b)], s.keys,
			float64(s.keyBytes)/(1<<20), float64(s.valBytes)/(1<<20), float64(est[b])/(1<<20),
			float64(est[b])/float64(edges), 100*float64(est[b])/float64(max(total, 1)))
	}
	fmt.Fprintf(w, "  %-6s %-20s %12s %10s %10s %10.1f %11.2f\n", "all", "", "", "", "", float64(total)/(1<<20), float64(total)/float64(edges))
	return nil
}
