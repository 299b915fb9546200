package store

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// Bounds of DefaultCacheSize.
const (
	MinDefaultCacheSize = 256 << 20
	MaxDefaultCacheSize = 16 << 30
)

// DefaultCacheSize is the Pebble block cache of a node unless
// Options.CacheSize says otherwise: a quarter of the memory the process may
// use (its cgroup's limit, as in a Kubernetes pod, or else the machine's
// memory), from MinDefaultCacheSize to MaxDefaultCacheSize, and
// MinDefaultCacheSize where neither can be read. The cache takes memory only
// as it fills. On the 10M-edge generated index, 2 GiB rather than 256 MiB
// doubled the Outlinks a second (each reads the edges of ~80 targets, most
// of their blocks not in a small cache) and served 5-12% more first pages
// of backlinks of random targets (bench/query -cache-mib).
func DefaultCacheSize() int64 {
	defaultCacheOnce.Do(func() { defaultCache = cacheSizeFor(memoryLimit()) })
	return defaultCache
}

var (
	defaultCacheOnce sync.Once
	defaultCache     int64
)

// cacheSizeFor is DefaultCacheSize for a process that may use limit bytes
// (0: unknown).
func cacheSizeFor(limit int64) int64 {
	return min(max(limit/4&^(1<<20-1), MinDefaultCacheSize), MaxDefaultCacheSize)
}

// memoryLimit returns the memory the process may use: the smaller of its
// cgroup's limit and the machine's memory, 0 if neither is known.
func memoryLimit() int64 {
	limit := physicalMemory()
	for _, path := range []string{
		"/sys/fs/cgroup/memory.max",                   // cgroup v2, as seen inside the container
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	} {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if n, ok := parseCgroupLimit(string(raw)); ok && (limit == 0 || n < limit) {
			limit = n
		}
		break
	}
	return limit
}

// parseCgroupLimit reads a cgroup memory limit file: a number of bytes, or
// "max" (v2) or a number near 2^63 (v1) for none.
func parseCgroupLimit(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
