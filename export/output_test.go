package export

import (
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
				if _, err := a.WriteString(content); err != nil {
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
