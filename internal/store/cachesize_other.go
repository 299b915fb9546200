//go:build !linux

package store

// physicalMemory returns the machine's memory in bytes, 0 if unknown: on
// other systems the cgroup files decide, or MinDefaultCacheSize.
func physicalMemory() int64 { return 0 }
