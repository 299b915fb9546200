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

// Rewrite writes the index of a data directory anew where it stands, every
// table at the zstd level of the options given and in blocks of their block
// size (see writerOptions). Compactions while a node runs use Open's
// settings, chosen so that they keep up with a crawl; Rewrite is for an
// index at rest, where a higher zstd level on larger blocks takes far less
// disk (see RewriteZstdLevel). Tables that later compactions write again get
// Open's settings back, and the next Rewrite writes only those again.
//
// It cuts the key space at the bottom level's tables and, one range per
// core at a time, writes the range's keys into new tables, checks them
// against the index, and puts them in its place with one IngestAndExcise:
// the old keys of the range go, at every level, and the new tables land in
// the bottom level. A range whose bottom table Rewrite wrote with these
// settings is left as it is while the keys above it in the range take
// under a 32nd of its size. Pebble's manifest swaps each range atomically,
// so an index cut short (a kill, a full disk) is whole, some ranges
// rewritten and the others not, and the disk Rewrite needs beside the
// index is the tables of the ranges being written. It holds the data
// directory's lock throughout.
func Rewrite(ctx context.Context, dir string, o Options, progress func(done, total int64)) (RewriteStats, error) {
	var st RewriteStats
	target, err := o.pebbleOptions()
	if err != nil {
		return st, err
	}
	opts, err := Options{}.pebbleOptions() // Open's settings, as any other open has
	if err != nil {
		return st, err
	}
	// Compactions would write Open's settings into ranges being rewritten.
	opts.DisableAutomaticCompactions = true
	opts.EnsureDefaults() // sameKeys reads tables with them
	if !hasIndex(dir) {
		return st, noIndex(dir)
	}
	db, err := openLocked(dir, opts, o.CacheSize)
	if err != nil {
		return st, err
	}
	defer db.Close()
	scratch := filepath.Join(dir, rewriteScratch)
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return st, err
	}
	defer os.RemoveAll(scratch)
	st.Before = db.Metrics().Total().TablesSize
	err = rewriteRanges(ctx, db.DB, opts, scratch, writerOptions(target, db.TableFormat()), &st, progress)
	if err == nil {
		st.After = db.Metrics().Total().TablesSize
		err = db.Close()
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (a range's new tables take up to its size beside it until they replace it; the ranges not rewritten are unchanged)", err)
		}
		return st, fmt.Errorf("store: rewriting the index in %s: %w", dir, err)
	}
	return st, nil
}

// RewriteZstdLevel and RewriteBlockSize are linkgraph compact's defaults.
// On the 10M-edge generated index (layout 9) they took the tables from
// 26.4 to 22.2 bytes an edge, in 51-54 s on 2 cores. Copied with every table
// in 256 KiB blocks, zstd 7, 12, 13, 14, 15 and 19 took 26.1, 25.5, 24.6,
// 22.4, 22.2 and 21.9 bytes an edge, 19 twice as slowly as 15; zstd 15 on
// 64 KiB blocks took 25.3.
const (
	RewriteZstdLevel = 15
	RewriteBlockSize = 256 << 10
)

// RewriteStats is what Rewrite did.
type RewriteStats struct {
	Ranges        int   // ranges of keys that hold tables
	Stale         int   // ranges not written by Rewrite with its settings, to write anew
	Rewritten     int   // ranges written anew and put in place: Stale, unless Rewrite failed
	Keys          int64 // keys written anew
	Tables        int   // tables written
	Before, After int64 // bytes of the index's tables before and after
}

// rewriteScratch is where Rewrite writes a range's tables before they are
// ingested; a kill can leave it behind, and Open deletes it.
const rewriteScratch = "index.compact"

// rewriteStep is called after each range is swapped in, for tests: an error
// stops Rewrite there, as a kill would.
var rewriteStep = func() error { return nil }

// writerOptions returns the writer options of each key for Rewrite:
// aggregates and forward lists take the block size of opts, since an
// answer reads a record or a run of them. Edges, which Outlinks reads a
// key per row of its answer, take half of it, and the rest (source
// records, pages, ids, read a key per row) DefaultBlockSize. Each read
// that misses the block cache decompresses a whole block: on the 10M-edge
// generated index with 16 MiB of cache, 256 KiB blocks for every prefix
// took the first pages of 100 backlinks of random targets from 7,605 to
// 862 QPS, and these sizes to 3.5k-3.8k. The tables' compression profile
// is named for the settings (see rewriteProfile), so that the next
// Rewrite knows them.
func writerOptions(opts *pebble.Options, format sstable.TableFormat) func(key []byte) *sstable.WriterOptions {
	opts = opts.Clone()
	opts.EnsureDefaults()
	large := opts.MakeWriterOptions(len(opts.Levels)-1, format)
	profile := *large.Compression
	profile.Name = rewriteProfile(opts)
	large.Compression = &profile
	edges, small := large, large
	small.BlockSize = min(DefaultBlockSize, large.BlockSize)
	edges.BlockSize = max(small.BlockSize, large.BlockSize/2)
	return func(key []byte) *sstable.WriterOptions {
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
}

// rewriteProfile names the compression profile of the tables Rewrite
// writes with opts, which their properties keep.
func rewriteProfile(opts *pebble.Options) string {
	bottom := opts.Levels[len(opts.Levels)-1]
	return fmt.Sprintf("linkgraph-compact-zstd%d-%dK", bottom.Compression().DataBlocks.Level, bottom.BlockSize>>10)
}

// rewriteRanges rewrites each range of db, opened with opts, that needs
// it, one per core at a time.
func rewriteRanges(ctx context.Context, db *pebble.DB, opts *pebble.Options, scratch string, wopts func(key []byte) *sstable.WriterOptions, st *RewriteStats, progress func(done, total int64)) error {
	if err := db.Flush(); err != nil {
		return err
	}
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		return err
	}
	ranges := splitRanges(levels)
	profile := wopts(nil).Compression.Name
	var todo [][2][]byte
	var sizes []uint64 // of todo's ranges, for progress
	var total uint64
	for _, r := range ranges {
		tables, bottom := inRange(levels, r, profile)
		if tables == 0 {
			continue
		}
		st.Ranges++
		// A crawl's flushes and compactions leave tables above the bottom
		// level whose bounds span most of the key space but whose keys
		// are in a few ranges: a range whose bottom table is Rewrite's
		// stays as it is while what lies above it in the range is small.
		// (EstimateDiskUsage takes its end key in, hence the table's last.)
		if bottom != nil {
			n, err := db.EstimateDiskUsage(r[0], bottom.Largest.UserKey)
			if err != nil {
				return err
			}
			if n < bottom.Size+bottom.Size/32 {
				continue
			}
		}
		n, err := db.EstimateDiskUsage(r[0], r[1])
		if err != nil {
			return err
		}
		todo = append(todo, r)
		sizes = append(sizes, n)
		total += n
	}
	st.Stale = len(todo)
	var mu sync.Mutex // one ingest at a time; guards st, done and progress
	var done uint64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, r := range todo {
		g.Go(func() error {
			paths, keys, err := writeRange(gctx, db, r, scratch, i, wopts)
			if err == nil {
				err = sameKeys(gctx, db, opts, r, paths)
			}
			if err != nil {
				for _, p := range paths {
					os.Remove(p)
				}
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if err := gctx.Err(); err != nil {
				return err
			}
			if len(paths) == 0 {
				err = db.Excise(gctx, pebble.KeyRange{Start: r[0], End: r[1]})
			} else {
				_, err = db.IngestAndExcise(gctx, paths, nil, nil, pebble.KeyRange{Start: r[0], End: r[1]})
			}
			if err != nil {
				return err
			}
			st.Rewritten++
			st.Keys += keys
			st.Tables += len(paths)
			done += sizes[i]
			if progress != nil {
				progress(int64(done), int64(total))
			}
			return rewriteStep()
		})
	}
	return g.Wait()
}

// inRange counts the tables whose bounds overlap r, and returns the one
// of them in the bottom level if it is the only one there and Rewrite wrote
// it with the compression profile named profile, or nil.
func inRange(levels [][]pebble.SSTableInfo, r [2][]byte, profile string) (tables int, bottom *pebble.SSTableInfo) {
	var rewritten []*pebble.SSTableInfo
	for l, level := range levels {
		for i, t := range level {
			if bytes.Compare(t.Smallest.UserKey, r[1]) >= 0 || bytes.Compare(t.Largest.UserKey, r[0]) < 0 {
				continue
			}
			tables++
			if l == len(levels)-1 && !t.Virtual && t.Properties != nil && t.Properties.CompressionName == profile {
				rewritten = append(rewritten, &level[i])
			}
		}
	}
	if len(rewritten) != 1 {
		return tables, nil
	}
	return tables, rewritten[0]
}

// splitRanges cuts the key space at the first keys of the tables in the
// bottom level of levels, which hold nearly all of an index, into ranges
// that writeRange copies in parallel. Every key sorts between 0 and 0xff:
// prefixes are ASCII letters.
func splitRanges(levels [][]pebble.SSTableInfo) [][2][]byte {
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
	return append(ranges, [2][]byte{lo, {0xff}})
}

// rewriteTableSize is where writeRange starts a new table (a variable for
// tests, which need several tables of a small index).
var rewriteTableSize uint64 = 64 << 20

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
		if o != wo || keys%256 == 0 && w != nil && w.Raw().EstimatedSize() >= rewriteTableSize {
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

// sameKeys fails unless the tables at paths hold exactly the keys and
// values db holds in r.
func sameKeys(ctx context.Context, db *pebble.DB, opts *pebble.Options, r [2][]byte, paths []string) error {
	files := make([]sstable.ReadableFile, 0, len(paths))
	for _, p := range paths {
		f, err := vfs.Default.Open(p)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return err
		}
		files = append(files, f)
	}
	var levels [][]sstable.ReadableFile // none for a range with no keys left
	if len(files) > 0 {
		levels = append(levels, files)
	}
	bounds := &pebble.IterOptions{LowerBound: r[0], UpperBound: r[1]}
	// The external iterator closes the files.
	ib, err := pebble.NewExternalIterWithContext(ctx, opts, bounds, levels)
	if err != nil {
		return err
	}
	defer ib.Close()
	ia, err := db.NewIterWithContext(ctx, bounds)
	if err != nil {
		return err
	}
	defer ia.Close()
	oka, okb := ia.First(), ib.First()
	for ; oka && okb; oka, okb = ia.Next(), ib.Next() {
		if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
			return fmt.Errorf("the new tables differ from the index at key %q", ia.Key())
		}
	}
	if err := cmp.Or(ia.Error(), ib.Error()); err != nil {
		return err
	}
	if oka != okb {
		return fmt.Errorf("the new tables and the index hold different numbers of keys from %q", r[0])
	}
	return nil
}

// hasIndex reports whether dir holds an index.
func hasIndex(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "index"))
	return err == nil && st.IsDir()
}
