//go:build linux

package export

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed file in dir (O_TMPFILE). It fails where
// the file system has no O_TMPFILE or /proc is not mounted, since
// linkUnnamed needs /proc/self/fd to give the file a name.
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), dir)
	if _, err := os.Stat(procPath(f)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func procPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// linkUnnamed gives an unnamed file the name path. Linking through
// /proc/self/fd with AT_SYMLINK_FOLLOW needs no privilege, unlike
// AT_EMPTY_PATH.
func linkUnnamed(f *os.File, path string) error {
	if err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("cannot link the export to %s: %w", path, err)
	}
	return nil
}

// exchange swaps the directories a and b in one step, so that b is never
// missing; where the file system cannot, it renames in two.
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return exchangeByRenames(a, b)
	}
	return err
}

// startWriteBack starts writing the bytes [from, to) to disk. Errors are
// left to the final sync, which reports any failed write.
func startWriteBack(f *os.File, from, to int64) {
	_ = unix.SyncFileRange(int(f.Fd()), from, to-from, unix.SYNC_FILE_RANGE_WRITE)
}

// finishWriteBack waits for the bytes [from, to) to be on disk and drops
// them from the page cache.
func finishWriteBack(f *os.File, from, to int64) {
	fd := int(f.Fd())
	_ = unix.SyncFileRange(fd, from, to-from, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	_ = unix.Fadvise(fd, from, to-from, unix.FADV_DONTNEED)
}
