package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"
)

// Rewrite writes the index of a data directory anew, every table at the
// zstd level of the options given and in blocks of their block size (see
// copyIndex), and puts the copy in place of the index. Compactions while a
// node runs use Open's settings, chosen so that they keep up with a crawl;
// Rewrite is for an index at rest, where a higher zstd level on larger
// blocks takes far less disk (see RewriteZstdLevel). Tables that later
// compactions write again get Open's settings back.
//
// It copies the index key by key into tables that go straight into the
// bottom level of a new index, checks the copy against the index, and
// swaps the directories. It holds the data directory's lock throughout; an
// index cut short at any point (a kill, a full disk) is left whole, the
// old one or the new one, and the next Open finishes or undoes the swap.
func Rewrite(ctx context.Context, dir string, o Options, progress func(done, total int64)) (RewriteStats, error) {
	var st RewriteStats
	dstOpts, err := o.pebbleOptions()
	if err != nil {
		return st, err
	}
	defer dstOpts.Cache.Unref()
	srcOpts, err := Options{CacheSize: o.CacheSize}.pebbleOptions()
	if err != nil {
		return st, err
	}
	defer srcOpts.Cache.Unref()
	if !hasIndex(dir) {
		return st, fmt.Errorf("%w: %s (give the --data directory a crawl or generate wrote)", ErrNoIndex, dir)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return st, err
	}
	defer lock.Close()
	if err := finishRewrite(dir); err != nil {
		return st, err
	}
	src, err := open(dir, srcOpts)
	if err != nil {
		return st, err
	}
	st.Before = src.Metrics().Total().TablesSize
	newDir := filepath.Join(dir, rewriteDir)
	err = copyIndex(ctx, src.DB, newDir, dstOpts, &st, progress)
	if cerr := src.DB.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(newDir)
		os.RemoveAll(newDir + ".sst")
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (the copy takes up to the index's %d MiB beside it; the index is unchanged)", err, st.Before>>20)
		}
		return st, fmt.Errorf("store: rewriting the index in %s: %w", dir, err)
	}
	return st, swapRewrite(dir)
}

// RewriteZstdLevel and RewriteBlockSize are linkgraph compact's defaults.
// On the 10M-edge generated index (layout 9) they took the tables from
// 26.4 to 22.2 bytes an edge, in 61 s on 2 cores. Copied with every table
// in 256 KiB blocks, zstd 7, 12, 13, 14, 15 and 19 took 26.1, 25.5, 24.6,
// 22.4, 22.2 and 21.9 bytes an edge, 19 twice as slowly as 15; zstd 15 on
// 64 KiB blocks took 25.3.
const (
	RewriteZstdLevel = 15
	RewriteBlockSize = 256 << 10
)

// RewriteStats is what Rewrite did.
type RewriteStats struct {
	Keys          int64 // keys copied
	Tables        int   // tables of the new index
	Before, After int64 // bytes of the index's tables before and after
}

// The new index is built in rewriteDir beside index, its tables first in
// rewriteDir+".sst". rewriteDone marks a copy that is whole and checked:
// from its creation to its removal, the swap is to be finished, not undone.
const (
	rewriteDir  = "index.rewrite"
	rewriteDone = "index.rewrite.done"
	oldDir      = "index.old"
)

// rewriteStep is called after each step of the swap, for tests: an error
// stops the swap there, as a kill would.
var rewriteStep = func(string) error { return nil }

// copyIndex copies every key of src into a new index in newDir, one range
// of keys per core at a time, and checks the copy.
func copyIndex(ctx context.Context, src *pebble.DB, newDir string, opts *pebble.Options, st *RewriteStats, progress func(done, total int64)) error {
	if err := os.RemoveAll(newDir); err != nil {
		return err
	}
	sstDir := newDir + ".sst"
	if err := os.RemoveAll(sstDir); err != nil {
		return err
	}
	if err := os.MkdirAll(sstDir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(sstDir)
	dst, err := pebble.Open(newDir, opts)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			dst.Close()
		}
	}()
	opts = opts.Clone()
	opts.EnsureDefaults()
	// Aggregates and forward lists take the block size of the options: an
	// answer reads a record or a run of them. Edges, which Outlinks reads
	// a key per row of its answer, take half of it, and the rest (source
	// records, pages, ids, read a key per row) DefaultBlockSize. Each read
	// that misses the block cache decompresses a whole block: on the
	// 10M-edge generated index with 16 MiB of cache, 256 KiB blocks for
	// every prefix took the first pages of 100 backlinks of random targets
	// from 7,605 to 862 QPS, and these sizes to 3.5k-3.8k.
	large := opts.MakeWriterOptions(len(opts.Levels)-1, dst.TableFormat())
	edges, small := large, large
	small.BlockSize = min(DefaultBlockSize, large.BlockSize)
	edges.BlockSize = max(small.BlockSize, large.BlockSize/2)
	wopts := func(key []byte) *sstable.WriterOptions {
		switch {
		case len(key) == 0:
			return &small
		case key[0] == PrefixEdge:
			return &edges
		case key[0] == PrefixAggregate || key[0] == PrefixForward:
			return &large
		}
		return &small
	}

	ranges, err := splitRanges(src)
	if err != nil {
		return err
	}
	total, err := src.EstimateDiskUsage(ranges[0][0], ranges[len(ranges)-1][1])
	if err != nil {
		return err
	}
	var progressMu sync.Mutex // progress is called by one range at a time
	var done uint64
	paths := make([][]string, len(ranges))
	keys := make([]int64, len(ranges))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, r := range ranges {
		g.Go(func() error {
			var err error
			paths[i], keys[i], err = writeRange(gctx, src, r, sstDir, i, wopts)
			if err != nil {
				return err
			}
			n, err := src.EstimateDiskUsage(r[0], r[1])
			if err == nil && progress != nil {
				progressMu.Lock()
				done += n
				progress(int64(done), int64(total))
				progressMu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	all := slices.Concat(paths...)
	if err := dst.Ingest(ctx, all); err != nil {
		return err
	}
	for _, n := range keys {
		st.Keys += n
	}
	st.Tables = len(all)
	if err := sameKeys(ctx, src, dst); err != nil {
		return err
	}
	st.After = dst.Metrics().Total().TablesSize
	closed = true
	return dst.Close()
}

// splitRanges cuts the key space at the first keys of the bottom level's
// tables, which hold nearly all of an index, into ranges that writeRange
// copies in parallel. Every key sorts between 0 and 0xff: prefixes are
// ASCII letters.
func splitRanges(db *pebble.DB) ([][2][]byte, error) {
	levels, err := db.SSTables()
	if err != nil {
		return nil, err
	}
	var cuts [][]byte
	if len(levels) > 0 {
		for _, t := range levels[len(levels)-1] {
			cuts = append(cuts, slices.Clone(t.Smallest.UserKey))
		}
	}
	slices.SortFunc(cuts, bytes.Compare)
	cuts = slices.CompactFunc(cuts, bytes.Equal)
	ranges := make([][2][]byte, 0, len(cuts)+1)
	lo := []byte{0}
	for _, c := range cuts {
		ranges = append(ranges, [2][]byte{lo, c})
		lo = c
	}
	return append(ranges, [2][]byte{lo, {0xff}}), nil
}

// rewriteTableSize is where writeRange starts a new table.
const rewriteTableSize = 64 << 20

// writeRange writes the keys of src in r into tables in dir, each with the
// options wopts gives its keys, and returns their paths and how many keys
// it wrote.
func writeRange(ctx context.Context, src *pebble.DB, r [2][]byte, dir string, n int, wopts func(key []byte) *sstable.WriterOptions) (paths []string, keys int64, err error) {
	it, err := src.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: r[0], UpperBound: r[1]})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var w *sstable.Writer
	var wo *sstable.WriterOptions
	finish := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	defer finish()
	for ok := it.First(); ok; ok = it.Next() {
		// A table takes the keys of one block size, and up to about
		// rewriteTableSize bytes.
		o := wopts(it.Key())
		if o != wo || keys%4096 == 0 && w != nil && w.Raw().EstimatedSize() >= rewriteTableSize {
			if err := finish(); err != nil {
				return nil, 0, err
			}
		}
		if w == nil {
			wo = o
			path := filepath.Join(dir, fmt.Sprintf("%06d-%03d.sst", n, len(paths)))
			f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
			if err != nil {
				return nil, 0, err
			}
			paths = append(paths, path)
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), *wo)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, err
		}
		if err := w.Set(it.Key(), v); err != nil {
			return nil, 0, err
		}
		if keys++; keys%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	if err := finish(); err != nil {
		return nil, 0, err
	}
	return paths, keys, nil
}

// sameKeys reads both indexes through and fails at the first key or value
// that differs.
func sameKeys(ctx context.Context, a, b *pebble.DB) error {
	ia, err := a.NewIterWithContext(ctx, nil)
	if err != nil {
		return err
	}
	defer ia.Close()
	ib, err := b.NewIterWithContext(ctx, nil)
	if err != nil {
		return err
	}
	defer ib.Close()
	oka, okb := ia.First(), ib.First()
	for ; oka && okb; oka, okb = ia.Next(), ib.Next() {
		if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
			return fmt.Errorf("the copy differs from the index at key %q", ia.Key())
		}
	}
	if err := cmp.Or(ia.Error(), ib.Error()); err != nil {
		return err
	}
	if oka != okb {
		return errors.New("the copy and the index hold different numbers of keys")
	}
	return nil
}

// swapRewrite puts a checked copy in place of the index: mark it done,
// move the index aside, move the copy in, unmark it, delete the old index.
// finishRewrite completes the same steps after a kill.
func swapRewrite(dir string) error {
	steps := []struct {
		name string
		do   func() error
	}{
		{"mark", func() error { return createSynced(filepath.Join(dir, rewriteDone)) }},
		{"aside", func() error { return os.Rename(filepath.Join(dir, "index"), filepath.Join(dir, oldDir)) }},
		{"in", func() error { return os.Rename(filepath.Join(dir, rewriteDir), filepath.Join(dir, "index")) }},
		{"unmark", func() error { return os.Remove(filepath.Join(dir, rewriteDone)) }},
		{"delete", func() error { return os.RemoveAll(filepath.Join(dir, oldDir)) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("store: swapping in the rewritten index in %s: %w", dir, err)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		if err := rewriteStep(s.name); err != nil {
			return err
		}
	}
	return nil
}

// finishRewrite brings a data directory whose Rewrite was cut short to a
// whole index: a marked copy is swapped in; anything else Rewrite left is
// deleted, since the index it was copied from is still in place.
func finishRewrite(dir string) error {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	var err error
	if exists(rewriteDone) {
		if exists(rewriteDir) {
			if exists("index") {
				err = os.Rename(filepath.Join(dir, "index"), filepath.Join(dir, oldDir))
			}
			if err == nil {
				err = os.Rename(filepath.Join(dir, rewriteDir), filepath.Join(dir, "index"))
			}
		}
		if err == nil {
			err = syncDir(dir)
		}
		if err == nil {
			err = os.Remove(filepath.Join(dir, rewriteDone))
		}
	} else if !exists("index") && exists(oldDir) {
		// Not a state swapRewrite leaves, but the old index is whole.
		err = os.Rename(filepath.Join(dir, oldDir), filepath.Join(dir, "index"))
	}
	for _, name := range []string{oldDir, rewriteDir, rewriteDir + ".sst"} {
		if err == nil {
			err = os.RemoveAll(filepath.Join(dir, name))
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("store: finishing an interrupted rewrite of the index in %s: %w", dir, err)
	}
	return nil
}

// hasIndex reports whether dir holds an index, or one that a Rewrite cut
// short left aside, which Open puts back.
func hasIndex(dir string) bool {
	for _, name := range []string{"index", rewriteDone, oldDir} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && (st.IsDir() || name == rewriteDone) {
			return true
		}
	}
	return false
}

func createSynced(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("store: cannot sync %s: %w", dir, err)
	}
	return nil
}
