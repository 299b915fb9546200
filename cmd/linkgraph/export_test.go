package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkgraph/linkgraph/internal/apiserver"
)

// TestExportCommandAgrees checks the export command against the query
// commands and itself: the CSV and NDJSON export of a URL are byte for
// byte what backlinks prints with --format csv and json, and every format
// is the same file whether the index is read in process (--data) or over
// gRPC (--server).
func TestExportCommandAgrees(t *testing.T) {
	dir := buildQueryIndex(t)
	for _, c := range []struct{ export, backlinks []string }{
		{[]string{"--format", "csv"}, []string{"--format", "csv"}},
		{[]string{"--format", "ndjson"}, []string{"--format", "json"}},
		{[]string{"--format", "csv", "--follow-only"}, []string{"--format", "csv", "--follow-only"}},
		{[]string{"--format", "ndjson", "--scope", "host", "--internal", "include"}, []string{"--format", "json", "--scope", "host", "--internal", "include"}},
	} {
		args := append(append([]string{"export", "--data", dir}, c.export...), "http://t.example/")
		if c.export[len(c.export)-1] == "include" {
			args[len(args)-1] = "t.example"
		}
		code, got, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		bargs := append(append([]string{"backlinks", "--data", dir}, c.backlinks...), args[len(args)-1])
		code, want, berr := runCLI(t, bargs...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", bargs, code, berr)
		}
		if got != want || strings.Count(got, "\n") < 2 {
			t.Errorf("%q printed\n%s\n%q printed\n%s", args, got, bargs, want)
		}
		if !strings.Contains(errOut, "exported") {
			t.Errorf("%q: no summary on stderr: %q", args, errOut)
		}
	}

	// Every format, in process and then over gRPC from a server on the
	// same index.
	out := t.TempDir()
	formats := []string{"ndjson", "csv", "parquet", "hostgraph"}
	read := func(from []string, format, path string) string {
		t.Helper()
		args := append([]string{"export", "--format", format, "--out", path, "--include-lost"}, from...)
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		if format == "hostgraph" {
			path = filepath.Join(path, "edges.txt.gz")
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	local := map[string]string{}
	for _, format := range formats {
		local[format] = read([]string{"--data", dir}, format, filepath.Join(out, format+"-data"))
	}
	addr, _ := serveIndex(t, dir, apiserver.Config{})
	for _, format := range formats {
		remote := read([]string{"--server", addr}, format, filepath.Join(out, format+"-server"))
		if remote != local[format] || len(remote) < 20 {
			t.Errorf("%s: --data wrote %d bytes, --server %d", format, len(local[format]), len(remote))
		}
	}
}

// TestExportCommandBadInput runs the export command with bad input: each
// must exit 2 with a message saying what is wrong, before any work, and
// leave nothing in the output directory.
func TestExportCommandBadInput(t *testing.T) {
	dir := buildQueryIndex(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, `unknown format "xml": use ndjson, csv, parquet, hostgraph or ranks`},
		{[]string{}, "--format is required: ndjson, csv, parquet, hostgraph or ranks"},
		{[]string{"--format", "parquet", "--out", "-"}, "parquet cannot go to stdout"},
		{[]string{"--format", "parquet"}, "parquet cannot go to stdout"},
		{[]string{"--format", "hostgraph", "--out", "-"}, "hostgraph cannot go to stdout"},
		{[]string{"--format", "csv", "--level", "domain", "--out", "OUT/x"}, "only for the hostgraph format"},
		{[]string{"--format", "hostgraph", "--level", "page", "--out", "OUT/x"}, `unknown level "page"`},
		{[]string{"--format", "csv", "--out", "OUT/missing/x.csv"}, "no such file or directory"},
		{[]string{"--format", "parquet", "--out", "/proc/x.parquet"}, "cannot write the output"},
		{[]string{"--format", "csv", "--scope", "host"}, "--scope needs a TARGET"},
		{[]string{"--format", "csv", "--internal", "exclude"}, "--internal exclude needs a TARGET"},
		{[]string{"--format", "csv", "--types", "nope"}, `unknown link type "nope"`},
		{[]string{"--format", "csv", "--out", "OUT/x.csv", "not a url"}, "not a url"},
		{[]string{"--format", "csv", "a", "b"}, "at most one TARGET"},
		{[]string{"--format", "csv", "--row-group-rows", "5", "--out", "OUT/x.csv"}, "--row-group-rows applies to --format parquet, not csv"},
	} {
		out := t.TempDir()
		args := []string{"export", "--data", dir}
		for _, a := range c.args {
			args = append(args, strings.ReplaceAll(a, "OUT", out))
		}
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%q: printed %q", c.args, stdout)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%q: left %v behind", c.args, entries)
		}
	}
	// A bad row group size is told once, not again by the export's check.
	_, _, stderr := runCLI(t, "export", "--data", dir, "--format", "parquet", "--row-group-rows", "-5", "--out", filepath.Join(t.TempDir(), "x.parquet"))
	if lines := strings.Count(stderr, "\n"); !strings.Contains(stderr, "--row-group-rows -5: must be positive") || lines != 2 {
		t.Errorf("--row-group-rows -5: %q, want the one error and the hint", stderr)
	}
}

// TestProgressOnlyOnTerminal checks the decision to draw progress:
// only when stderr is a terminal (a pseudo-terminal here), never for a
// pipe, a file or a buffer.
func TestProgressOnlyOnTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]any{"pipe": w, "file": f, "buffer": &bytes.Buffer{}} {
		if isTerminal(w.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%s: taken for a terminal", name)
		}
	}
	if p := newProgress(w); p.bar != nil {
		t.Error("a progress bar on a pipe")
	}
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if !isTerminal(slave) {
		t.Fatal("a pseudo-terminal is not taken for a terminal")
	}
	p := newProgress(slave)
	if p.bar == nil {
		t.Fatal("no progress bar on a terminal")
	}
	// Throttled: the first update draws, later ones within 200ms do not.
	p.update(16384)
	time.Sleep(250 * time.Millisecond)
	p.update(32768)
	buf := make([]byte, 4096)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(buf[:n]); !strings.Contains(s, "rows") || !strings.Contains(s, "exporting") {
		t.Errorf("the terminal shows %q, want rows and a rate", s)
	}
	p.finish()
}

// openPTY opens a pseudo-terminal pair through /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

// generated returns a data directory with a generated index of edges
// links, made once per test binary run.
func generated(t *testing.T, edges int) string {
	t.Helper()
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "generate", "--data", dir, "--edges", strconv.Itoa(edges), "--hub-backlinks", "0",
		"--domain-backlinks", "0", "--samples", "0", "--compact=false")
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errOut)
	}
	return dir
}

// TestExportKilledLeavesNothing kills an export with SIGKILL while it
// writes rows: the output directory must hold nothing, not even a
// temporary file (the rows go to an unnamed O_TMPFILE until the end).
// And SIGINT ends one with exit 1, leaving nothing either.
func TestExportKilledLeavesNothing(t *testing.T) {
	data := generated(t, 30000)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		for _, format := range []string{"ndjson", "parquet", "hostgraph"} {
			var out string
			var cmd *exec.Cmd
			var stderr *bytes.Buffer
			var err error
			for try := 1; ; try++ {
				out, cmd, stderr = stopMidway(t, data, format)
				cmd.Process.Signal(sig)
				cmd.Process.Signal(syscall.SIGCONT)
				err = cmd.Wait()
				// The export goes on while its runtime turns SIGINT into a
				// cancellation, which a loaded machine can delay past its
				// end: then it has finished, which shows nothing.
				if sig != syscall.SIGINT || cmd.ProcessState.ExitCode() != 0 {
					break
				}
				if try == 10 {
					t.Fatalf("%s: SIGINT never interrupted the export in %d tries: %s", format, try, stderr)
				}
			}
			code := cmd.ProcessState.ExitCode()
			switch {
			case sig == syscall.SIGKILL && code != -1:
				t.Errorf("%s: SIGKILL: exit %d (%v)", format, code, err)
			case sig == syscall.SIGINT && (code != 1 || !strings.Contains(stderr.String(), "interrupted after")):
				t.Errorf("%s: SIGINT: exit %d, want 1 saying interrupted: %s", format, code, stderr)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("%s killed by %v: left %v behind; stderr: %s", format, sig, entries, stderr)
			}
		}
	}
}

// stopMidway starts an export of data into a new directory and stops it
// (SIGSTOP) early in writing its output, so that a signal sent next lands
// well before it could finish. An export takes tens of milliseconds,
// which a loaded machine can spend before the test looks: one caught too
// late is tried again.
func stopMidway(t *testing.T, data, format string) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	// Parquet writes a row group (256Ki rows) at a time, and hostgraph
	// its files only at the end, from memory: for them, an open output
	// is early enough. An ndjson export writes about 15 MB, in 4 MiB
	// pieces (export/direct_linux.go): after the first, most is left.
	written := format == "ndjson"
	early := func(pos int64) bool { return !written || pos > 0 && pos <= 4<<20 }
	for range 20 {
		out := t.TempDir()
		cmd, stderr := startCLI(t, "export", "--data", data, "--format", format, "--out", filepath.Join(out, "x"))
		pid := cmd.Process.Pid
		if waitWriting(pid, out, written) {
			cmd.Process.Signal(syscall.SIGSTOP)
			if waitStopped(pid) {
				if pos, ok := openOutput(pid, out); ok && early(pos) {
					return out, cmd, stderr
				}
			}
		}
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Wait()
	}
	t.Fatalf("%s: every export was past its start before the test could stop it", format)
	return "", nil, nil
}

// waitWriting waits until process pid has its output open in dir (see
// openOutput) and, with written, has written to it.
func waitWriting(pid int, dir string, written bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pos, ok := openOutput(pid, dir); ok && (!written || pos > 0) {
			return true
		}
		if state, ok := procState(pid); !ok || state == 'Z' {
			return false // exited
		}
		time.Sleep(200 * time.Microsecond)
	}
	return false
}

// openOutput says whether process pid has an unnamed file open in dir
// (its fd links to "dir/#inode (deleted)"), and the file's offset.
func openOutput(pid int, dir string) (pos int64, ok bool) {
	fds := "/proc/" + strconv.Itoa(pid) + "/fd/"
	entries, err := os.ReadDir(fds)
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		target, err := os.Readlink(fds + e.Name())
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		info, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		// fdinfo starts "pos:\t<offset>\n".
		line, _, _ := strings.Cut(string(info), "\n")
		if pos, err := strconv.ParseInt(strings.TrimPrefix(line, "pos:\t"), 10, 64); err == nil {
			return pos, true
		}
	}
	return 0, false
}

// waitStopped waits until process pid is stopped (state T), or reports
// false if it is gone.
func waitStopped(pid int) bool {
	for range 10000 {
		switch state, ok := procState(pid); {
		case !ok || state == 'Z':
			return false
		case state == 'T':
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// procState returns the state letter of process pid (R, S, T, Z...).
func procState(pid int) (byte, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ...: comm may hold spaces, so look after its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, false
	}
	return stat[i+2], true
}

// TestExportFileTooLarge runs an export under a file size limit
// (RLIMIT_FSIZE, as a full disk would stop it): it fails with exit 1 and
// says why, and leaves nothing behind.
func TestExportFileTooLarge(t *testing.T) {
	data := generated(t, 10000)
	out := t.TempDir()
	// 2 MiB: enough for the index's own files, not for the export.
	cmd := exec.Command("sh", "-c", `ulimit -f 4096 && exec "$0" "$@"`, os.Args[0],
		"export", "--data", data, "--format", "ndjson", "--out", filepath.Join(out, "x.ndjson"))
	cmd.Env = append(os.Environ(), "LINKGRAPH_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "file too large") {
		t.Errorf("exit %d, stderr %q; want 1 and file too large", code, stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

// TestOutputInsideDataRefused writes the outputs of export and rank into
// the data directory they read, directly, through a symbolic link, a
// dangling one or a --data given by a link: each is a usage error found
// before any work, and the index is left as it was and still opens.
func TestOutputInsideDataRefused(t *testing.T) {
	data := buildQueryIndex(t)
	if code, _, errOut := runCLI(t, "rank", "--data", data); code != 0 {
		t.Fatalf("rank: exit %d: %s", code, errOut)
	}
	ssts, _ := filepath.Glob(filepath.Join(data, "index", "*.sst"))
	if len(ssts) == 0 {
		t.Fatalf("no .sst in %s", data)
	}
	before := snapshotTree(t, data)
	outside := t.TempDir()
	link := filepath.Join(outside, "link.csv")
	if err := os.Symlink(ssts[0], link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(outside, "dangling.csv")
	if err := os.Symlink(filepath.Join(data, "new.csv"), dangling); err != nil {
		t.Fatal(err)
	}
	dataLink := filepath.Join(outside, "data")
	if err := os.Symlink(data, dataLink); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"export", "--data", data, "--format", "csv", "--out", ssts[0]},
		{"export", "--data", data, "--format", "ndjson", "--out", filepath.Join(data, "LOCK")},
		{"export", "--data", data, "--format", "csv", "--out", filepath.Join(data, "index", "CURRENT")},
		{"export", "--data", data, "--format", "parquet", "--out", filepath.Join(data, "index", "..", "x.parquet")},
		{"export", "--data", data, "--format", "hostgraph", "--out", filepath.Join(data, "graph")},
		{"export", "--data", data, "--format", "hostgraph", "--out", data},
		{"export", "--data", data, "--format", "csv", "--out", link},
		{"export", "--data", data, "--format", "csv", "--out", dangling},
		{"export", "--data", dataLink, "--format", "csv", "--out", ssts[0]},
		{"export", "--data", data, "--format", "csv", "--out", filepath.Join(outside, "x.csv"), "--cpuprofile", filepath.Join(data, "cpu.prof")},
		{"export", "--data", data, "--format", "ranks", "--out", filepath.Join(data, "index", "CURRENT")},
		{"export", "--data", data, "--format", "ranks", "--out", link},
		{"rank", "--data", data, "--out", ssts[0]},
		{"rank", "--data", dataLink, "--out", filepath.Join(data, "ranks.txt")},
		{"rank", "--data", data, "--out", dangling},
		{"crawl", "--data", data, "--cpuprofile", filepath.Join(data, "index", "CURRENT"), "http://127.0.0.1:1/"},
		{"generate", "--data", filepath.Join(data, "new"), "--edges", "1000", "--hub-backlinks", "0", "--domain-backlinks", "0", "--samples", "0",
			"--cpuprofile", filepath.Join(data, "new", "cpu.prof")},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, "is inside the data directory") || strings.Contains(errOut, "exported") || strings.Contains(errOut, "ranked") {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
	}
	if after := snapshotTree(t, data); !slices.Equal(after, before) {
		t.Errorf("the data directory changed:\n%v\nwas\n%v", after, before)
	}
	if code, out, errOut := runCLI(t, "export", "--data", data, "--format", "csv"); code != 0 || strings.Count(out, "\n") < 3 {
		t.Errorf("export after the refusals: exit %d: %s", code, errOut)
	}
	// Outside the data directory, a link is still written through and a
	// device in place.
	outLink := filepath.Join(outside, "out-link.csv")
	if err := os.Symlink(filepath.Join(outside, "target.csv"), outLink); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "export", "--data", data, "--format", "csv", "--out", outLink); code != 0 {
		t.Errorf("export through a link outside: exit %d: %s", code, errOut)
	} else if raw, err := os.ReadFile(filepath.Join(outside, "target.csv")); err != nil || len(raw) == 0 {
		t.Errorf("export through a link outside: target %q, %v", raw, err)
	}
	for _, args := range [][]string{
		{"export", "--data", data, "--format", "csv", "--out", os.DevNull},
		{"export", "--data", data, "--format", "ranks", "--out", os.DevNull},
		{"rank", "--data", data, "--out", os.DevNull},
	} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Errorf("%q: exit %d: %s", args[1:], code, errOut)
		}
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Errorf("%s is no longer a device: %v %v", os.DevNull, st, err)
	}
}

// snapshotTree lists every file under dir with its size and a digest of
// its contents, sorted.
func snapshotTree(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, fmt.Sprintf("%s %d %x", path, len(raw), sha256.Sum256(raw)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}
