//go:build unix

package store

import (
	"os"
	"syscall"
)

// errWouldBlock is the error of lockFile when another process holds the
// lock.
var errWouldBlock = syscall.EWOULDBLOCK

// lockFile takes an exclusive lock on f without waiting; closing f
// releases it.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
