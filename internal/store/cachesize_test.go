package store

import "testing"

func TestCacheSizeFor(t *testing.T) {
	for _, c := range []struct{ limit, want int64 }{
		{0, MinDefaultCacheSize},         // unknown
		{512 << 20, MinDefaultCacheSize}, // a small pod: at least 256 MiB
		{4 << 30, 1 << 30},               // a quarter
		{24 << 30, 6 << 30},              // this VM
		{512 << 30, MaxDefaultCacheSize}, // a large machine: at most 16 GiB
	} {
		if got := cacheSizeFor(c.limit); got != c.want {
			t.Errorf("cacheSizeFor(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}

func TestParseCgroupLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", 0, false},                 // v2, no limit
		{"9223372036854771712\n", 0, false}, // v1, no limit
		{"2147483648\n", 2 << 30, true},
		{"", 0, false},
		{"0\n", 0, false},
	} {
		got, ok := parseCgroupLimit(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseCgroupLimit(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestDefaultCacheSizeInBounds(t *testing.T) {
	if n := DefaultCacheSize(); n < MinDefaultCacheSize || n > MaxDefaultCacheSize {
		t.Errorf("DefaultCacheSize() = %d, outside %d..%d", n, MinDefaultCacheSize, MaxDefaultCacheSize)
	}
}
