package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/colblk"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// schemaTestKeys are keys of every shape the schema must give back
// exactly: edges, edges whose ids it cannot split, and other keys.
func schemaTestKeys(rng *rand.Rand, n int) [][]byte {
	edge := func(target string, d, s uint64, rest string) []byte {
		k := append([]byte{PrefixEdge}, target...)
		k = AppendID(AppendID(append(k, 0), d), s)
		return append(k, rest...)
	}
	keys := [][]byte{
		{PrefixEdge},
		{PrefixEdge, 0},
		[]byte("ecom,example)/\x00"),                      // no ids
		[]byte("ecom,example)/\x00\x01"),                  // a cut id
		[]byte("ecom,example)/\x00\x01\x00\x01\x05a"),     // id 0
		[]byte("ecom,example)/\x00\x02\x00\x05\x01\x05a"), // a leading zero
		[]byte("ecom,example)/\x00\x09\x01\x01\x05a"),     // length 9
		[]byte("ecom,example)/\x00\x01\x05\x01\x07"),      // ids, no type
		[]byte("ecom,example)/\x00\x01\x05\x01\x07\x01anchor\x00value"),
		[]byte("ecom,example)/"),
		[]byte("ecom,example)/a\x00\x01\x05"),
		[]byte("e\xff\xff"),
		[]byte("acom,example)\x00s"),
		[]byte("f"),
		[]byte("d\x00\x00"),
		edge("com,example)/", 1<<63, 1<<56, "\x01\xff"),
		edge("com,example)/", 255, 256, "\x01"),
	}
	targets := []string{"com,example)/", "com,example)/a", "com,example)/a/b", "com,example,www)/", "org,other)/x?y=1"}
	anchors := []string{"", "home", "home page", "read more", "\xe2\x80\x9cquoted\xe2\x80\x9d"}
	for range n {
		t := targets[rng.IntN(len(targets))]
		d := 1 + rng.Uint64N(300)
		if rng.IntN(8) == 0 {
			d = 1 + rng.Uint64N(1<<40)
		}
		s := 1 + rng.Uint64N(70000)
		rest := string(rune('0'+rng.IntN(5))) + anchors[rng.IntN(len(anchors))]
		if rng.IntN(3) == 0 {
			rest += "\x00" + string([]byte{byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		keys = append(keys, edge(t, d, s, rest))
		if rng.IntN(10) == 0 {
			keys = append(keys, []byte(string(PrefixSource)+t))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return slices.CompactFunc(keys, bytes.Equal)
}

func TestIDsSortAsNumbers(t *testing.T) {
	ids := []uint64{1, 2, 255, 256, 65535, 65536, 1<<24 - 1, 1 << 24, 1<<32 + 7, 1<<56 - 1, 1 << 56, 1<<64 - 1}
	var prev []byte
	for _, id := range ids {
		b := AppendID(nil, id)
		got, n := ReadID(append(slices.Clone(b), 0xAA))
		if got != id || n != len(b) {
			t.Errorf("id %d: encoded %x, read back %d in %d bytes", id, b, got, n)
		}
		if prev != nil && string(prev) >= string(b) {
			t.Errorf("id %d encodes to %x, not after the one before, %x", id, b, prev)
		}
		prev = b
	}
	for _, bad := range [][]byte{nil, {0}, {9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 1, 2}} {
		if _, n := ReadID(bad); n != 0 {
			t.Errorf("ReadID(%x) read %d bytes, want none", bad, n)
		}
	}
}

func TestSplitKeyRoundTrip(t *testing.T) {
	for _, k := range schemaTestKeys(rand.New(rand.NewPCG(1, 2)), 1000) {
		w := edgeKeySchema.NewKeyWriter().(*edgeKeyWriter)
		w.WriteKey(0, k, int32(len(k)), 0)
		if got := w.MaterializeKey(nil, 0); !bytes.Equal(got, k) {
			t.Errorf("key %q reads back as %q", k, got)
		}
	}
	head, d, s, rest := splitKey([]byte("ecom,example)/\x00\x01\x05\x02\x01\x07\x01anchor"))
	if string(head) != "ecom,example)/\x00" || d != 5 || s != 263 || string(rest) != "\x01anchor" {
		t.Errorf("split into %q %d %d %q", head, d, s, rest)
	}
}

func FuzzSplitKey(f *testing.F) {
	for _, k := range schemaTestKeys(rand.New(rand.NewPCG(1, 2)), 20) {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k []byte) {
		w := edgeKeySchema.NewKeyWriter().(*edgeKeyWriter)
		w.WriteKey(0, k, int32(len(k)), 0)
		if got := w.MaterializeKey(nil, 0); !bytes.Equal(got, k) {
			t.Fatalf("key %q reads back as %q", k, got)
		}
	})
}

// openSchemaDB opens a Pebble database on fs that writes its tables in
// the key schema named schema, with blocks of blockSize bytes.
func openSchemaDB(tb testing.TB, fs vfs.FS, schema string, blockSize int) *pebble.DB {
	tb.Helper()
	opts := &pebble.Options{FS: fs, FormatMajorVersion: pebble.FormatNewest, KeySchemas: keySchemas, KeySchema: schema, Logger: quietLogger{}}
	for i := range opts.Levels {
		opts.Levels[i].BlockSize = blockSize
	}
	db, err := pebble.Open("db", opts)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// TestEdgeKeySchema writes keys into tables of the schema with small
// blocks (many blocks and bundles) and checks that iteration, seeks and
// gets see exactly the keys written, in order.
func TestEdgeKeySchema(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	keys := schemaTestKeys(rng, 5000)
	fs := vfs.NewMem()
	open := func(schema string) *pebble.DB { return openSchemaDB(t, fs, schema, 512) }
	// Half the keys go into a table of Pebble's default schema, as an
	// index written by an earlier release has; the full compaction then
	// rewrites them all with the edge schema.
	def := colblk.DefaultKeySchema(pebble.DefaultComparer, 16)
	db := open(def.Name)
	write := func(db *pebble.DB, keys [][]byte) {
		b := db.NewBatch()
		for _, k := range keys {
			if err := b.Set(k, []byte{k[len(k)/2]}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(db, keys[:len(keys)/2])
	db.Close()
	db = open(edgeKeySchema.Name)
	defer db.Close()
	write(db, keys[len(keys)/2:])
	check := func(stage string) {
		t.Helper()
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var got [][]byte
		for it.First(); it.Valid(); it.Next() {
			got = append(got, slices.Clone(it.Key()))
			if v := it.Value(); len(v) != 1 || v[0] != it.Key()[len(it.Key())/2] {
				t.Fatalf("%s: key %q has value %q", stage, it.Key(), v)
			}
		}
		if !slices.EqualFunc(got, keys, bytes.Equal) {
			t.Fatalf("%s: iteration gave %d keys, want %d", stage, len(got), len(keys))
		}
		n := 0
		for it.Last(); it.Valid(); it.Prev() {
			n++
		}
		if n != len(keys) {
			t.Fatalf("%s: reverse iteration gave %d keys, want %d", stage, n, len(keys))
		}
		probes := slices.Clone(keys)
		for _, k := range keys {
			probes = append(probes, append(slices.Clone(k), 0), k[:len(k)-1], append(slices.Clone(k), 0xff))
		}
		for _, p := range probes {
			if len(p) == 0 {
				continue // the index has no empty key
			}
			i, found := slices.BinarySearchFunc(keys, p, bytes.Compare)
			valid := it.SeekGE(p)
			if valid != (i < len(keys)) || valid && !bytes.Equal(it.Key(), keys[i]) {
				t.Fatalf("%s: SeekGE(%q) at %q (valid %v), want key %d of %d", stage, p, it.Key(), valid, i, len(keys))
			}
			valid = it.SeekLT(p)
			if valid != (i > 0) || valid && !bytes.Equal(it.Key(), keys[i-1]) {
				t.Fatalf("%s: SeekLT(%q) at %q (valid %v), want key %d", stage, p, it.Key(), valid, i-1)
			}
			_, closer, err := db.Get(p)
			if found != (err == nil) || err != nil && !errors.Is(err, pebble.ErrNotFound) {
				t.Fatalf("%s: Get(%q): %v, want found %v", stage, p, err, found)
			}
			if err == nil {
				closer.Close()
			}
		}
	}
	check("two schemas")
	if err := db.Compact(t.Context(), []byte{0}, []byte{0xff, 0xff}, false); err != nil {
		t.Fatal(err)
	}
	tables, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, level := range tables {
		for _, tb := range level {
			n++
			if tb.Properties.KeySchemaName != edgeKeySchema.Name {
				t.Errorf("table %s has key schema %q after compaction", tb.FileNum, tb.Properties.KeySchemaName)
			}
		}
	}
	if n == 0 {
		t.Fatal("no tables after compaction")
	}
	check("compacted")
}

// BenchmarkScanEdges scans a compacted table of edge keys, in Pebble's
// default key schema and in edgeKeySchema.
func BenchmarkScanEdges(b *testing.B) {
	keys := schemaTestKeys(rand.New(rand.NewPCG(5, 6)), 200000)
	def := colblk.DefaultKeySchema(pebble.DefaultComparer, 16)
	for _, schema := range []string{def.Name, edgeKeySchema.Name} {
		b.Run(schema, func(b *testing.B) {
			db := openSchemaDB(b, vfs.NewMem(), schema, 64<<10)
			defer db.Close()
			batch := db.NewBatch()
			for _, k := range keys {
				batch.Set(k, nil, nil)
			}
			if err := batch.Commit(nil); err != nil {
				b.Fatal(err)
			}
			if err := db.Compact(b.Context(), []byte{0}, []byte{0xff}, false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			n := 0
			for b.Loop() {
				it, _ := db.NewIter(nil)
				for it.First(); it.Valid(); it.Next() {
					n += len(it.Key())
				}
				it.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/key")
		})
	}
}

// TestOpenRefusesUnknownKeySchema checks that an index whose tables a later
// linkgraph writes in a key schema this one lacks is refused with
// ErrLayout, before Pebble would panic reading one.
func TestOpenRefusesUnknownKeySchema(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	desc, err := pebble.Peek(filepath.Join(dir, "index"), vfs.Default)
	if err != nil || desc.OptionsFilename == "" {
		t.Fatalf("no OPTIONS file: %v", err)
	}
	b, err := os.ReadFile(desc.OptionsFilename)
	if err != nil {
		t.Fatal(err)
	}
	later := strings.ReplaceAll(string(b), "key_schema="+edgeKeySchema.Name, "key_schema=linkgraph.edge-columns.99")
	if later == string(b) {
		t.Fatalf("OPTIONS does not name the key schema %q:\n%s", edgeKeySchema.Name, b)
	}
	if err := os.WriteFile(desc.OptionsFilename, []byte(later), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "linkgraph.edge-columns.99") {
		t.Fatalf("Open gave %v, want ErrLayout naming the key schema", err)
	}
}
