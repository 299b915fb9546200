package deploy

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
)

// No Docker engine runs where the tests do, so the image is not built here. What can be
// checked is checked: the Dockerfile's shape, and its build command, run as written (less
// the output path) against this repository, must give a static binary, which is all that
// distroless/static can run.

// dockerfile returns the Dockerfile's instructions, continuation lines joined and comments
// dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "#") || (s == "" && cur.Len() == 0) {
			continue
		}
		if body, ok := strings.CutSuffix(s, "\\"); ok {
			cur.WriteString(body)
			continue
		}
		cur.WriteString(s)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	var froms, users, entrypoints []string
	for _, ins := range dockerfile(t) {
		op, args, _ := strings.Cut(ins, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, args)
		case "USER":
			users = append(users, args)
		case "ENTRYPOINT":
			entrypoints = append(entrypoints, args)
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[0], "golang:${GO_VERSION} AS build") {
		t.Errorf("stages %q, want a golang builder and a final stage", froms)
	}
	if len(froms) > 0 && froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot", froms[len(froms)-1])
	}
	if !slices.Equal(users, []string{"65532:65532"}) {
		t.Errorf("USER %q, want 65532:65532 (the chart's runAsUser)", users)
	}
	if !slices.Equal(entrypoints, []string{`["/linkgraph"]`}) {
		t.Errorf("ENTRYPOINT %q, want [\"/linkgraph\"] (the chart passes the role as the first arg)", entrypoints)
	}
}

// shellWords splits a command line the way sh does for the simple quoting a Dockerfile
// RUN line uses here (double quotes, no escapes).
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// built is the binary the Dockerfile's build command makes, built once per test run.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// dockerfileBinary runs the Dockerfile's go build line, as written but for the output path,
// in the repository root (the build context), and returns the binary.
func dockerfileBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles the whole product")
	}
	var run string
	for _, ins := range dockerfile(t) {
		if strings.HasPrefix(ins, "RUN ") && strings.Contains(ins, "go build") {
			run = ins
		}
	}
	if run == "" {
		t.Fatal("no RUN ... go build in the Dockerfile")
	}
	// Drop the RUN flags (cache mounts), keep VAR=value assignments and the go command.
	var env, cmd []string
	for _, w := range shellWords(strings.TrimPrefix(run, "RUN ")) {
		switch {
		case len(cmd) > 0:
			cmd = append(cmd, w)
		case strings.HasPrefix(w, "--mount="):
		case strings.Contains(w, "="):
			w = strings.ReplaceAll(w, "$TARGETOS", runtime.GOOS)
			w = strings.ReplaceAll(w, "$TARGETARCH", runtime.GOARCH)
			env = append(env, w)
		default:
			cmd = append(cmd, w)
		}
	}
	if !slices.Contains(env, "CGO_ENABLED=1") {
		t.Errorf("build environment %q lacks CGO_ENABLED=1 (Pebble's C zstd)", env)
	}
	for _, want := range []string{"-trimpath", "-tags", "netgo,osusergo", "-ldflags=-s -w -linkmode=external -extldflags=-static", "./cmd/linkgraph"} {
		if !slices.Contains(cmd, want) {
			t.Errorf("build command %q lacks %q", cmd, want)
		}
	}
	i := slices.Index(cmd, "-o")
	if i < 0 || i+1 >= len(cmd) || cmd[i+1] != "/out/linkgraph" {
		t.Fatalf("build command %q does not write /out/linkgraph (what the final stage copies)", cmd)
	}
	built.once.Do(func() {
		// Not t.TempDir: the binary outlives the test that builds it; TestMain removes it.
		if built.dir, built.err = os.MkdirTemp("", "linkgraph-image-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "linkgraph")
		cmd[i+1] = built.path
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Dir = ".." // the repository root: the Dockerfile's build context
		c.Env = append(os.Environ(), env...)
		if b, err := c.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd, " "), err, b)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func TestDockerfileBuildIsStatic(t *testing.T) {
	bin := dockerfileBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v): distroless/static has no libc", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table although -s strips it")
	}
	if st, err := os.Stat(bin); err == nil {
		t.Logf("static binary: %.1f MB", float64(st.Size())/1e6)
	}
	// Pebble links the C zstd library only when built with cgo; without it the index takes
	// a sixth more disk after linkgraph compact.
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(info.Deps, func(m *debug.Module) bool { return m.Path == "github.com/DataDog/zstd" }) {
		t.Error("the binary does not link github.com/DataDog/zstd: Pebble compresses with its pure-Go zstd")
	}
}

// flagLine is a flag in the output of `linkgraph <command> -h` (Go's flag.PrintDefaults).
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// TestChartFlagsMatchBinary checks that every flag the chart may pass to a role, and the NATS
// flags of the seed command NOTES.txt prints, are flags the binary has: a flag it lacks
// stops the pod with a usage error.
func TestChartFlagsMatchBinary(t *testing.T) {
	bin := dockerfileBinary(t)
	roles := maps.Clone(roleFlags)
	roles["seed"] = []string{"nats", "nats-creds", "nats-tls-ca", "nats-tls-cert", "nats-tls-key"}
	for _, role := range slices.Sorted(maps.Keys(roles)) {
		out, _ := exec.Command(bin, role, "-h").CombinedOutput() // -h may exit non-zero
		have := map[string]bool{}
		for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
			have[m[1]] = true
		}
		if len(have) == 0 {
			t.Errorf("linkgraph %s -h lists no flags:\n%s", role, out)
			continue
		}
		for _, f := range roles[role] {
			if !have[f] {
				t.Errorf("the chart may pass --%s to linkgraph %s, which has no such flag", f, role)
			}
		}
	}
}
