package frontier

import (
	"hash/maphash"
	"sync"
)

// seenCacheSize is the number of URL hashes per generation of the seen
// cache: two generations of 256k take about 10 MB at most.
const seenCacheSize = 1 << 18

// seenCache remembers hashes of URLs known to be in the URL-seen set, so the
// frequent re-discoveries of a URL (navigation links on every page) skip the
// disk lookup. It holds two generations and drops the older when the newer
// fills, so its memory is bounded and recently seen URLs stay. It only ever
// answers "seen" for a URL that was committed as seen (or collides on 64
// bits with one), so a miss just costs a lookup. Safe for concurrent use.
type seenCache struct {
	seed      maphash.Seed
	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	size      int
}

func newSeenCache(size int) *seenCache {
	return &seenCache{seed: maphash.MakeSeed(), cur: make(map[uint64]struct{}), size: size}
}

func (c *seenCache) hash(url string) uint64 { return maphash.String(c.seed, url) }

func (c *seenCache) has(h uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[h]; ok {
		return true
	}
	_, ok := c.prev[h]
	return ok
}

func (c *seenCache) add(h uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[uint64]struct{}, c.size/4)
	}
	c.cur[h] = struct{}{}
}
