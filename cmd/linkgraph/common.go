package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/linkgraph/linkgraph/internal/store"
)

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// byteSize is a flag value like 8MiB, 512KiB or 1048576.
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(given string) error {
	s := strings.TrimSpace(given)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<40 {
			return usagef("size %q: use a number with an optional unit (KiB, MiB, GiB)", given)
		}
		n = n*10 + int64(c-'0')
	}
	if s == "" || n == 0 {
		return usagef("size must be positive, e.g. 8MiB")
	}
	*b = byteSize(n * mult)
	return nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return itoa(n>>30) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// storeFlags configure a node's Pebble store.
type storeFlags struct {
	cacheSize byteSize
	zstdLevel int
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	f.cacheSize = byteSize(store.DefaultCacheSize())
	fs.Var(&f.cacheSize, "cache-size", "Pebble block cache of the index (blocks not in it are read and decompressed again); the default is a quarter of the memory the process may use, 256MiB to 16GiB")
	registerZstdLevel(fs, &f.zstdLevel)
}

func registerZstdLevel(fs *flag.FlagSet, level *int) {
	fs.IntVar(level, "zstd-level", store.DefaultZstdLevel, fmt.Sprintf("zstd level (1-%d) of the index's bottom level, which holds nearly all of it: higher takes less disk and more CPU to compact (see docs/operations.md)", store.MaxZstdLevel))
}

func checkZstdLevel(level int) error {
	if level < 1 || level > store.MaxZstdLevel {
		return usagef("--zstd-level %d: must be from 1 to %d", level, store.MaxZstdLevel)
	}
	return nil
}

func (f *storeFlags) options() (store.Options, error) {
	if f.cacheSize < 1<<20 {
		return store.Options{}, usagef("--cache-size %s: must be at least 1MiB", f.cacheSize.String())
	}
	if err := checkZstdLevel(f.zstdLevel); err != nil {
		return store.Options{}, err
	}
	return store.Options{CacheSize: int64(f.cacheSize), ZstdLevel: f.zstdLevel}, nil
}

// rolesGCPercent is the collector's pace in the long-running roles (crawl,
// serve, worker, shard, gateway) when GOGC is not set. Their live heap is
// small (Pebble's block cache is not on it) and they allocate for every
// page, batch and query, so at Go's default pace of 100 the collector
// takes a large share of the CPU: 400 crawls 12-26% more pages a second
// and answers 20-76% more first pages, for some 60 MiB more (figures in
// docs/operations.md, Sizing). In a container GOMEMLIMIT, which the Helm
// chart sets from the memory limit, still bounds the heap.
const rolesGCPercent = 400

// paceCollector sets the collector's pace to percent unless GOGC says
// otherwise.
func paceCollector(percent int) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(percent)
	}
}

// checkOutsideData refuses an output path (the value of flag) that lies
// in the data directory dir the command reads: replacing or writing
// through a file there (an .sst, CURRENT, LOCK) leaves the index
// unreadable, and nothing there is the user's to overwrite. Paths are
// compared once symbolic links are resolved, since a link outside the
// directory is written through. dir need not exist yet: a command that
// creates it (crawl, generate) would put its index there.
func checkOutsideData(flag, out, dir string) error {
	return checkOutside(flag, out, "--data", "the data directory", dir)
}

// checkOutside refuses an output path (the value of flag) inside dir, the
// value of dirFlag, which what names.
func checkOutside(flag, out, dirFlag, what, dir string) error {
	data, err := resolvePath(dir)
	if err != nil {
		return usagef("%s %s: %w", dirFlag, dir, err)
	}
	path, err := resolvePath(out)
	if err != nil {
		return usagef("%s %s: %w", flag, out, err)
	}
	rel, err := filepath.Rel(data, path)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usagef("%s %s is inside %s %s; write it elsewhere", flag, out, what, dir)
	}
	return nil
}

// maxLinks bounds the symbolic links resolvePath follows, as the kernel's
// ELOOP does.
const maxLinks = 40

// resolvePath returns the absolute path that path names once every
// symbolic link is followed, also when path, or the link it is, does not
// exist yet: it then names where the file would be created.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	links := 0
	return resolveAbs(abs, &links)
}

func resolveAbs(abs string, links *int) (string, error) {
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	if target, err := os.Readlink(abs); err == nil {
		// A dangling link: writing through it creates its target.
		if *links++; *links > maxLinks {
			return "", fmt.Errorf("more than %d symbolic links", maxLinks)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(abs), target)
		}
		return resolveAbs(target, links)
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return abs, nil
	}
	r, err := resolveAbs(parent, links)
	if err != nil {
		return "", err
	}
	return filepath.Join(r, filepath.Base(abs)), nil
}
