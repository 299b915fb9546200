package rank

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ReadHostGraph reads a host or domain graph in Common Crawl's layout, as
// `linkgraph export --format hostgraph` writes it: vertices.txt.gz with
// "id<TAB>name" lines, ids dense from 0, and edges.txt.gz with
// "from<TAB>to" lines. It returns the graph and the vertex names by id.
func ReadHostGraph(dir string) (*Graph, []string, error) {
	var names []string
	err := readGzipLines(filepath.Join(dir, "vertices.txt.gz"), func(line string) error {
		id, name, ok := strings.Cut(line, "\t")
		n, err := strconv.Atoi(id)
		if !ok || err != nil || n != len(names) {
			return fmt.Errorf("want \"%d<TAB>name\"", len(names))
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var edges []Edge
	err = readGzipLines(filepath.Join(dir, "edges.txt.gz"), func(line string) error {
		a, b, ok := strings.Cut(line, "\t")
		from, err1 := strconv.ParseUint(a, 10, 32)
		to, err2 := strconv.ParseUint(b, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("want \"from<TAB>to\"")
		}
		edges = append(edges, Edge{uint32(from), uint32(to)})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	g, err := NewGraph(len(names), edges)
	return g, names, err
}

func readGzipLines(path string, fn func(string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("rank: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("rank: %s: %w", path, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Text()); err != nil {
			return fmt.Errorf("rank: %s line %d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("rank: %s: %w", path, err)
	}
	return nil
}

// WriteRanks writes the ranks in Common Crawl's layout: a header line
// "#harmonicc_pos #harmonicc_val #pr_pos #pr_val #host_rev" (tab-separated)
// and one line per vertex, ordered by harmonic centrality, highest first;
// positions start at 1, ties broken by name.
func WriteRanks(w io.Writer, names []string, hc, pr []float64) error {
	return writeRanks(w, "#host_rev", names, hc, pr)
}

// WritePageRanks is WriteRanks for pages, named by URL in a last column
// "#url".
func WritePageRanks(w io.Writer, urls []string, hc, pr []float64) error {
	return writeRanks(w, "#url", urls, hc, pr)
}

func writeRanks(w io.Writer, nameColumn string, names []string, hc, pr []float64) error {
	byHC := order(names, hc)
	prPos := positions(names, pr)
	bw := bufio.NewWriterSize(w, 256<<10)
	fmt.Fprintln(bw, "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t"+nameColumn)
	for pos, v := range byHC {
		fmt.Fprintf(bw, "%d\t%s\t%d\t%s\t%s\n", pos+1, strconv.FormatFloat(hc[v], 'g', -1, 64), prPos[v], strconv.FormatFloat(pr[v], 'g', -1, 64), names[v])
	}
	return bw.Flush()
}

// order returns the node ids by value, highest first, ties by name.
// Values are compared to about 10 significant digits: nodes alike in the
// graph get values that differ in the last bits with the order of the
// floating-point sums, which depends on the order the nodes were read in,
// and their positions must not.
func order(names []string, vals []float64) []int {
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	coarse := func(v float64) float64 { return math.Float64frombits(math.Float64bits(v) &^ (1<<20 - 1)) }
	slices.SortFunc(idx, func(a, b int) int {
		if va, vb := coarse(vals[a]), coarse(vals[b]); va != vb {
			if va > vb {
				return -1
			}
			return 1
		}
		return strings.Compare(names[a], names[b])
	})
	return idx
}

// positions returns each node's position (from 1) in order.
func positions(names []string, vals []float64) []int {
	pos := make([]int, len(vals))
	for p, v := range order(names, vals) {
		pos[v] = p + 1
	}
	return pos
}
