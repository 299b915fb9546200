package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/store"
)

type rankCmd struct{}

func (*rankCmd) name() string { return "rank" }
func (*rankCmd) synopsis() string {
	return "compute host or domain ranks (harmonic centrality, PageRank) in Common Crawl's ranks layout"
}

func (c *rankCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rank", "rank [--data DIR | --graph DIR] [--level host|domain] --out FILE", stderr)
	data := fs.String("data", "", "rank the index in this data directory (default "+DefaultDataDir+" unless --graph is given)")
	graph := fs.String("graph", "", "rank this host graph directory (from export --format hostgraph) instead of an index")
	level := fs.String("level", export.LevelHost, "with --data: rank hosts or registrable domains")
	out := fs.String("out", "", "write the ranks here (- for stdout)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case *out == "":
		return usagef("--out is required (a file, or - for stdout)")
	case *data != "" && *graph != "":
		return usagef("give --data or --graph, not both")
	case *level != export.LevelHost && *level != export.LevelDomain:
		return usagef("--level %q: use host or domain", *level)
	}
	start := time.Now()
	dir := *graph
	// With --data the index stays open from the host graph export to the
	// saving of the ranks, so no crawl changes it in between.
	var ix *indexer.Index
	var db *store.DB
	if dir == "" {
		if db, ix, err = openIndex(cmp.Or(*data, DefaultDataDir)); err != nil {
			return err
		}
		defer db.Close()
		tmp, err := os.MkdirTemp("", "linkgraph-rank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "graph")
		if err := hostGraph(ctx, ix, *level, dir); err != nil {
			return err
		}
	}
	g, names, err := rank.ReadHostGraph(dir)
	if err != nil {
		return err
	}
	pr := g.PageRank(rank.DefaultDamping, 1e-9, 200)
	hc := g.HarmonicCentrality(runtime.GOMAXPROCS(0))
	if *out == "-" {
		err = rank.WriteRanks(stdout, names, hc, pr)
	} else {
		err = writeFileAtomically(*out, func(w io.Writer) error { return rank.WriteRanks(w, names, hc, pr) })
	}
	if err != nil {
		return err
	}
	if db != nil {
		// Kept with the index, for the views (stats shows a target's rank).
		lv := byte(rank.LevelHost)
		if *level == export.LevelDomain {
			lv = rank.LevelDomain
		}
		if err := rank.Save(db, lv, names, hc, pr); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "ranked %d %ss over %d links in %s\n", g.Nodes(), *level, g.Edges(), time.Since(start).Round(time.Millisecond))
	return nil
}

// writeFileAtomically writes path through write: to a file beside it,
// synced, then renamed over it, so a failure leaves no partial file.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".linkgraph-rank-*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// hostGraph exports the follow links of ix as a host or domain graph into
// dir: links within a host (or domain) are self-loops and dropped, so only
// links between them count.
func hostGraph(ctx context.Context, ix *indexer.Index, level, dir string) error {
	job, err := export.Create(export.Options{Format: export.HostGraph, Level: level, Out: dir})
	if err != nil {
		return err
	}
	_, err = job.Run(ctx, export.IndexSource{Index: ix, Query: indexer.ExportQuery{Filter: &lgv1.Filter{FollowOnly: true}}})
	return err
}
