package export

import (
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAsideFiles publishes and discards aside files of both kinds, the
// unnamed one of Linux and the named fallback, alone and as a directory:
// the content appears whole under its name, and nothing else is left.
func TestAsideFiles(t *testing.T) {
	for _, kind := range []struct {
		name   string
		create func(string) (*asideFile, error)
	}{{"unnamed", createAside}, {"named", createNamed}} {
		t.Run(kind.name, func(t *testing.T) {
			dir := t.TempDir()
			list := func() []string {
				entries, _ := os.ReadDir(dir)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				return names
			}
			create := func(content string) *asideFile {
				a, err := kind.create(dir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Write([]byte(content)); err != nil {
					t.Fatal(err)
				}
				return a
			}
			create("dropped").discard()
			if l := list(); len(l) != 0 {
				t.Fatalf("discard left %v", l)
			}
			out := filepath.Join(dir, "out")
			if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			a := create("new")
			if err := a.publish(out); err != nil {
				t.Fatal(err)
			}
			a.Close()
			if raw, _ := os.ReadFile(out); string(raw) != "new" {
				t.Fatalf("published %q", raw)
			}
			// The mode a shell's > would give (0666 less the umask).
			probe := filepath.Join(t.TempDir(), "probe")
			pf, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY, 0o666)
			if err != nil {
				t.Fatal(err)
			}
			pf.Close()
			want, _ := os.Stat(probe)
			if got, err := os.Stat(out); err != nil || got.Mode().Perm() != want.Mode().Perm() {
				t.Errorf("published with mode %v (%v), want %v", got.Mode().Perm(), err, want.Mode().Perm())
			}
			graph := filepath.Join(dir, "graph")
			for _, content := range []string{"first", "second"} {
				files := map[string]*asideFile{"a": create(content + "a"), "b": create(content + "b")}
				if err := publishDir(graph, files); err != nil {
					t.Fatal(err)
				}
				for name, f := range files {
					f.Close()
					if raw, _ := os.ReadFile(filepath.Join(graph, name)); string(raw) != content+name {
						t.Fatalf("%s/%s: %q", content, name, raw)
					}
				}
			}
			if l := list(); !slices.Equal(l, []string{"graph", "out"}) {
				t.Fatalf("left %v", l)
			}
		})
	}
}

// A file larger than the write-back windows in flight is written whole,
// whatever the sizes of the writes, with no more windows in flight than
// the bound.
func TestAsideFileWriteBack(t *testing.T) {
	dir := t.TempDir()
	uf, err := openUnnamed(dir)
	if err != nil {
		t.Skipf("no unnamed file in %s: %v", dir, err)
	}
	f := &asideFile{f: uf} // through the page cache, as without O_DIRECT
	total := writeBackEvery*(writeBackWindows+2) + 12345
	chunk := make([]byte, 1<<20+7)
	sum := crc32.NewIEEE()
	for off := 0; off < total; {
		n := min(len(chunk), total-off)
		for i := range chunk[:n] {
			chunk[i] = byte((off + i) * 31 >> 8)
		}
		if _, err := f.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
		sum.Write(chunk[:n])
		off += n
		if len(f.inFlight) > writeBackWindows {
			t.Fatalf("%d windows in flight after %d bytes", len(f.inFlight), off)
		}
	}
	if len(f.inFlight) != writeBackWindows {
		t.Errorf("%d windows in flight at the end, want %d", len(f.inFlight), writeBackWindows)
	}
	path := filepath.Join(dir, "out")
	if err := f.publish(path); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total || crc32.ChecksumIEEE(got) != sum.Sum32() {
		t.Errorf("published %d bytes (crc %08x), wrote %d (crc %08x)", len(got), crc32.ChecksumIEEE(got), total, sum.Sum32())
	}
}
