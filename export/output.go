package export

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// An export's files are written aside and appear under their name only
// when complete. Where the system allows it (Linux, a file system with
// O_TMPFILE, /proc mounted) they have no name at all until then, so not
// even a killed process leaves a partial file behind; elsewhere they are
// hidden temporary files in the same directory, removed on any error.

// asideFile is a file being written for an export, not yet under its name.
// Not safe for concurrent use.
type asideFile struct {
	f *os.File
	// direct writes f past the page cache where the file system can; nil
	// otherwise, when f is written through the page cache in windows.
	direct *directWriter
	// named is the temporary path of a named temporary file; "" for an
	// unnamed one.
	named string
	// written counts the bytes written; the windows in flight are being
	// written to disk, oldest first (see Write).
	written  int64
	inFlight [][2]int64
}

// writeBackEvery is the window of an aside file's data that Write hands to
// the disk at once, and writeBackWindows how many windows may be in flight.
const (
	writeBackEvery   = 32 << 20
	writeBackWindows = 3
)

// Write writes p and, every writeBackEvery bytes, starts writing the
// latest window to disk; with more than writeBackWindows in flight it
// waits for the oldest and drops it from the page cache (see startWriteBack
// and finishWriteBack). An export is written once and not read back: left
// to the page cache, gigabytes of it cost the kernel more time than the
// export's own work (15-22 s of system time for a 5 GB NDJSON export on
// the benchmark's VM, against 5 s this way), and the final sync waits for
// all of it at once.
func (a *asideFile) Write(p []byte) (int, error) {
	if a.direct != nil {
		return a.direct.Write(p)
	}
	n, err := a.f.Write(p)
	a.written += int64(n)
	from := int64(0)
	if k := len(a.inFlight); k > 0 {
		from = a.inFlight[k-1][1]
	}
	if a.written-from >= writeBackEvery {
		startWriteBack(a.f, from, a.written)
		a.inFlight = append(a.inFlight, [2]int64{from, a.written})
		if len(a.inFlight) > writeBackWindows {
			w := a.inFlight[0]
			finishWriteBack(a.f, w[0], w[1])
			a.inFlight = append(a.inFlight[:0], a.inFlight[1:]...)
		}
	}
	return n, err
}

// Sync writes what Write holds back and commits the file to disk.
func (a *asideFile) Sync() error {
	if a.direct != nil {
		if err := a.direct.finish(); err != nil {
			return err
		}
	}
	return a.f.Sync()
}

// Close closes the file, dropping what Write holds back unless Sync wrote
// it.
func (a *asideFile) Close() error {
	if a.direct != nil {
		a.direct.stop()
	}
	return a.f.Close()
}

// tmpPattern names the temporary files and directories of the fallback
// and of the last step of publishing.
const tmpPattern = ".linkgraph-export-*.tmp"

// createAside creates an aside file in dir. It fails when dir is not a
// writable directory, which is how an export checks its output before any
// work.
func createAside(dir string) (*asideFile, error) {
	if f, err := openUnnamed(dir); err == nil {
		return &asideFile{f: f, direct: newDirectWriter(f)}, nil
	}
	return createNamed(dir)
}

// createNamed creates an aside file as a hidden temporary file, where no
// unnamed one can be had.
func createNamed(dir string) (*asideFile, error) {
	// Not os.CreateTemp: its 0600 would stay with the published file,
	// where the unnamed file gets 0666 less the umask, as a shell's > does.
	for range 100 {
		name := filepath.Join(dir, strings.Replace(tmpPattern, "*", rand.Text(), 1))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &asideFile{f: f, direct: newDirectWriter(f), named: name}, nil
	}
	return nil, fmt.Errorf("cannot find an unused temporary name in %s", dir)
}

// createScratch creates a file in dir that is never published (sort
// runs): unnamed, or named and unlinked at once, so it goes away with the
// process whatever happens.
func createScratch(dir string) (*os.File, error) {
	if f, err := openUnnamed(dir); err == nil {
		return f, nil
	}
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// linkInto syncs the file and gives it the name path, which must not
// exist. The file stays open.
func (a *asideFile) linkInto(path string) error {
	if err := a.Sync(); err != nil {
		return err
	}
	if a.named != "" {
		if err := os.Rename(a.named, path); err != nil {
			return err
		}
		a.named = ""
		return nil
	}
	return linkUnnamed(a.f, path)
}

// publish syncs the file and puts it at path, replacing a file there, in
// one rename, then syncs the directory so the new name survives a crash.
func (a *asideFile) publish(path string) error {
	dir := filepath.Dir(path)
	tmp, err := tempName(dir)
	if err != nil {
		return err
	}
	if err := a.linkInto(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// discard closes the file and removes it if it has a name.
func (a *asideFile) discard() {
	a.Close()
	if a.named != "" {
		os.Remove(a.named)
		a.named = ""
	}
}

// tempName returns an unused name in dir for the moment between linking
// and renaming.
func tempName(dir string) (string, error) {
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}

// OpenInPlace opens path for writing when an export must write it in
// place rather than replace it: a device (/dev/null, /dev/stdout on a
// terminal), a pipe (a FIFO a loader reads from) or a symbolic link, which
// the export writes through as a shell's > would. Replacing those would
// destroy what they are: the rename that publishes an export once turned
// /dev/null into a regular file. It returns nil for anything else,
// including a path that does not exist. Opening a FIFO waits for its
// reader, until ctx ends.
func OpenInPlace(ctx context.Context, path string) (*os.File, error) {
	lst, err := os.Lstat(path)
	if err != nil || lst.Mode().IsRegular() || lst.IsDir() {
		return nil, nil
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("%s is a directory", path)
	case err == nil && IsFIFO(st):
		return openFIFO(ctx, path)
	}
	flags := os.O_WRONLY
	if lst.Mode()&fs.ModeSymlink != 0 {
		flags |= os.O_CREATE | os.O_TRUNC // a dangling link gets its file, as with >
	}
	return os.OpenFile(path, flags, 0o644)
}

// IsFIFO reports whether st is a named pipe's, which opening for writing
// waits on until a reader opens it.
func IsFIFO(st fs.FileInfo) bool { return st.Mode()&fs.ModeNamedPipe != 0 }

// openFIFO opens the named pipe at path for writing once a reader has
// opened it. A plain open would wait in the kernel, deaf to ctx: an
// interrupted export waiting for its reader would never end.
func openFIFO(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkFileOut checks that path can become an export file: its directory
// exists and it is not a directory.
func checkFileOut(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrOutput, path)
	}
	return checkParent(path)
}

func checkParent(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrOutput, dir)
	}
	return nil
}

// checkDirOut checks that path can become an export directory holding
// names: it does not exist, or it is a directory holding nothing but
// those names (an earlier export of the same kind, which it replaces).
// Anything else is refused: replacing it would delete what the user put
// there.
func checkDirOut(path string, names []string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkParent(path)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s exists and is not a directory", ErrOutput, path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) || !e.Type().IsRegular() {
			return fmt.Errorf("%w: %s exists and holds %s, which is not from an export; remove it or choose another --out", ErrOutput, path, e.Name())
		}
	}
	return nil
}

// publishDir puts files at path/name, all at once: it links them into a
// temporary directory beside path, syncs it and then moves it to path,
// swapping it with an earlier export there (see checkDirOut), which it
// then removes.
func publishDir(path string, files map[string]*asideFile) error {
	parent := filepath.Dir(path)
	// Not os.MkdirTemp: its 0700 would stay on the published directory.
	tmp, err := tempName(parent)
	if err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o777); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	for name, f := range files {
		if err := f.linkInto(filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		// The old export moves to tmp and is removed below.
		if err := exchange(tmp, path); err != nil {
			return err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	} else {
		done = true
	}
	return syncDir(parent)
}

// exchangeByRenames swaps a and b with three renames, for systems without
// an atomic exchange: b is missing for a moment.
func exchangeByRenames(a, b string) error {
	old, err := tempName(filepath.Dir(b))
	if err != nil {
		return err
	}
	if err := os.Rename(b, old); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		os.Rename(old, b)
		return err
	}
	return os.Rename(old, a)
}
