package main

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeZeros writes n zero bytes to path as the text exports write their
// files (O_DIRECT from 4 MiB aligned buffers, the unaligned tail through the
// page cache, then fsync): what the disk alone allows.
func writeZeros(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_DIRECT, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	const align, size = 4096, 4 << 20
	raw := make([]byte, size+align)
	skip := (align - int(uintptr(unsafe.Pointer(&raw[0])))%align) % align
	buf := raw[skip : skip+size]
	left := n
	for left >= align {
		k := min(left, size) &^ (align - 1)
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	if left > 0 {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFL, 0); err != nil {
			return err
		}
		if _, err := f.Write(buf[:left]); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
