package export_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"golang.org/x/net/publicsuffix"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/linkrow"
	"github.com/linkgraph/linkgraph/internal/store"
)

// ms is a time in ms since the epoch as the index's fetch times (ns).
func nsOf(ms int64) int64 { return ms * 1e6 }

// crawl records one fetch of page and applies its links, in one
// transaction, as a shard that owns both the page and its targets does.
func crawl(t testing.TB, ix *indexer.Index, pr *lgv1.PageResult) {
	t.Helper()
	if err := crawlErr(ix, pr); err != nil {
		t.Fatal(err)
	}
}

func crawlErr(ix *indexer.Index, pr *lgv1.PageResult) error {
	txn := ix.Begin()
	defer txn.Close()
	out, err := txn.RecordPage(pr)
	if err != nil {
		return err
	}
	for _, lb := range out {
		if err := txn.ApplyLinks(lb); err != nil {
			return err
		}
	}
	return txn.Commit()
}

func link(u, anchor string, typ lgv1.LinkType, rel ...string) *lgv1.OutLink {
	return &lgv1.OutLink{Url: u, AnchorText: anchor, Type: typ, Rel: rel}
}

// testIndex returns an index holding a generated web of about edges links
// (power-law, every link type, rel tokens, recrawls with lost links, IDN
// hosts) plus pages whose text needs escaping in every format and whose
// hosts have ports, IP addresses and links to themselves.
func testIndex(t testing.TB, edges int64) *indexer.Index {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix := indexer.New(db, 3)
	w, err := graphgen.New(graphgen.Config{Seed: 7, Edges: edges})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := graphgen.Write(context.Background(), ix, w, graphgen.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	a, img := lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_IMG
	at := time.Date(2025, 3, 4, 5, 6, 7, 891e6, time.UTC).UnixMilli()
	crawl(t, ix, &lgv1.PageResult{Url: "http://quote.example:8080/a", Status: 200, FetchedAt: nsOf(at),
		Title: "Title with \"quotes\", commas\nand a newline\x01 and \\ backslash",
		Links: []*lgv1.OutLink{
			link("https://t.example/", `  leading space, "quoted"`, a, "nofollow", "ugc"),
			link("http://[::1]:8080/x", `\.`, a),
			link("http://127.0.0.1/y", "tab\there\r\nCRLF\x1f", img),
			link("https://xn--mnchen-3ya.de/", "München ü 日本 \u2028 \ufffd", a, "sponsored"),
			link("http://quote.example:8080/b", "self", a),
			link("http://www.quote.example/", "same domain", a),
			link("https://t.example/", "", img),
		}})
	crawl(t, ix, &lgv1.PageResult{Url: "http://quote.example:8080/b", Status: 404, FetchedAt: nsOf(at + 1), MetaNofollow: true,
		Links: []*lgv1.OutLink{link("https://t.example/", " ", a)}})
	crawl(t, ix, &lgv1.PageResult{Url: "https://old.example/", Status: 301, FetchedAt: nsOf(at + 2),
		Links: []*lgv1.OutLink{{Url: "https://t.example/moved", Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: 301}}})
	// A recrawl without the link to /a makes it lost.
	crawl(t, ix, &lgv1.PageResult{Url: "http://lost.example/", Status: 200, FetchedAt: nsOf(at),
		Links: []*lgv1.OutLink{link("https://t.example/a", "gone", a), link("https://t.example/b", "kept", a)}})
	crawl(t, ix, &lgv1.PageResult{Url: "http://lost.example/", Status: 200, FetchedAt: nsOf(at + 60000), Title: "Lost",
		Links: []*lgv1.OutLink{link("https://t.example/b", "kept", a)}})
	// A link lost twice and back again has a history of two.
	for i, back := range []bool{true, false, true, false, true} {
		pr := &lgv1.PageResult{Url: "http://back.example/", Status: 200, FetchedAt: nsOf(at + int64(i)*60000)}
		if back {
			pr.Links = []*lgv1.OutLink{link("https://t.example/c", "back", a)}
		}
		crawl(t, ix, pr)
	}
	return ix
}

// scan returns every edge of the index with ScanEdges, the index's own
// reader, which the export must reproduce.
func scan(t testing.TB, ix *indexer.Index, live bool) []*lgv1.Backlink {
	t.Helper()
	var rows []*lgv1.Backlink
	err := ix.ScanEdges(context.Background(), func(bl *lgv1.Backlink, isLive bool) error {
		if isLive || !live {
			rows = append(rows, bl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// run exports src to a file in a new directory and returns its path.
func run(t testing.TB, src export.Source, opts export.Options) (string, export.Stats) {
	t.Helper()
	if opts.Out == "" {
		opts.Out = filepath.Join(t.TempDir(), "out."+opts.Format)
	}
	job, err := export.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := job.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return opts.Out, st
}

func all(ix *indexer.Index) export.IndexSource {
	return export.IndexSource{Index: ix, Query: indexer.ExportQuery{Filter: &lgv1.Filter{IncludeLost: true}}}
}

// openText opens an NDJSON or CSV export, decompressing it when its first
// bytes are gzip's or zstd's magic number (whatever its name says).
func openText(t testing.TB, path string) io.Reader {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case bytes.HasPrefix(raw, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(raw)) // the standard library's, not the writer's
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	return bytes.NewReader(raw)
}

func readNDJSON(t testing.TB, path string) []*lgv1.Backlink {
	t.Helper()
	var rows []*lgv1.Backlink
	sc := bufio.NewScanner(openText(t, path))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		bl := &lgv1.Backlink{}
		if err := protojson.Unmarshal(sc.Bytes(), bl); err != nil {
			t.Fatalf("line %d: %v: %s", len(rows)+1, err, sc.Bytes())
		}
		rows = append(rows, bl)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func readCSV(t testing.TB, path string) []*lgv1.Backlink {
	t.Helper()
	recs, err := csv.NewReader(openText(t, path)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], linkrow.Columns()) {
		t.Fatalf("CSV header %q, want %q", recs[0], linkrow.Columns())
	}
	var rows []*lgv1.Backlink
	for _, rec := range recs[1:] {
		bl, err := linkrow.Parse(rec)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, bl)
	}
	return rows
}

// csvRead is what a CSV reader gives back for a row: encoding/csv, like
// most readers, turns CRLF inside a quoted field into LF (the file holds
// the CRLF; TestTextIsWhatTheCLIWrites checks the bytes). Crawled anchors
// and titles are whitespace-folded and hold neither.
func csvRead(rows []*lgv1.Backlink) []*lgv1.Backlink {
	out := make([]*lgv1.Backlink, len(rows))
	for i, bl := range rows {
		if strings.Contains(bl.AnchorText+bl.SourceTitle, "\r\n") {
			bl = proto.Clone(bl).(*lgv1.Backlink)
			bl.AnchorText = strings.ReplaceAll(bl.AnchorText, "\r\n", "\n")
			bl.SourceTitle = strings.ReplaceAll(bl.SourceTitle, "\r\n", "\n")
		}
		out[i] = bl
	}
	return out
}

// reason is the LostReason of a short name (linkrow.ReasonName).
func reason(t testing.TB, name string) lgv1.LostReason {
	v, ok := lgv1.LostReason_value["LOST_REASON_"+strings.ToUpper(name)]
	if !ok {
		t.Fatalf("lost reason %q", name)
	}
	return lgv1.LostReason(v)
}

func readParquet(t testing.TB, path string) []*lgv1.Backlink {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := parquet.NewGenericReader[export.ParquetRow](f)
	defer r.Close()
	var rows []*lgv1.Backlink
	buf := make([]export.ParquetRow, 100)
	for {
		n, err := r.Read(buf)
		for _, pr := range buf[:n] {
			bl := &lgv1.Backlink{SourceUrl: pr.SourceURL, TargetUrl: pr.TargetURL, AnchorText: pr.AnchorText,
				Rel: pr.Rel, RedirectStatus: pr.RedirectStatus, Nofollow: pr.Nofollow,
				FirstSeen: timestamppb.New(time.UnixMilli(pr.FirstSeen)), LastSeen: timestamppb.New(time.UnixMilli(pr.LastSeen)),
				SourceTitle: pr.SourceTitle, SourceStatus: pr.SourceStatus}
			v, ok := lgv1.LinkType_value["LINK_TYPE_"+strings.ToUpper(pr.Type)]
			if !ok {
				t.Fatalf("type %q", pr.Type)
			}
			bl.Type = lgv1.LinkType(v)
			if len(bl.Rel) == 0 {
				bl.Rel = nil
			}
			if pr.LostAt != nil {
				bl.LostAt = timestamppb.New(time.UnixMilli(*pr.LostAt))
			}
			if pr.LostReason != "" {
				bl.LostReason = reason(t, pr.LostReason)
			}
			for _, h := range pr.History {
				bl.History = append(bl.History, &lgv1.LinkEvent{LostAt: timestamppb.New(time.UnixMilli(h.LostAt)),
					Reason: reason(t, h.Reason), ReturnedAt: timestamppb.New(time.UnixMilli(h.ReturnedAt))})
			}
			rows = append(rows, bl)
		}
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// sameRows fails the test unless got and want are the same rows in the
// same order, every field.
func sameRows(t testing.TB, what string, got, want []*lgv1.Backlink) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("%s: row %d:\n got %v\nwant %v", what, i, got[i], want[i])
			if bad++; bad == 5 {
				return
			}
		}
	}
}

// TestRoundTrip exports every edge of an index in each format, reads the
// files back with the format's own reader (protojson, encoding/csv and
// linkrow, parquet-go) and compares every field of every row with the
// index's contents.
func TestRoundTrip(t *testing.T) {
	ix := testIndex(t, 5000)
	want := scan(t, ix, false)
	if len(want) < 5000 {
		t.Fatalf("only %d edges in the test index", len(want))
	}
	var lost, rel, redirect int
	for _, bl := range want {
		if bl.LostAt != nil {
			lost++
		}
		if len(bl.Rel) > 0 {
			rel++
		}
		if bl.RedirectStatus != 0 {
			redirect++
		}
	}
	if lost == 0 || rel == 0 || redirect == 0 {
		t.Fatalf("the test index lacks lost links (%d), rel tokens (%d) or redirects (%d)", lost, rel, redirect)
	}
	read := map[string]func(testing.TB, string) []*lgv1.Backlink{
		export.NDJSON: readNDJSON, export.CSV: readCSV, export.Parquet: readParquet,
	}
	for _, format := range []string{export.NDJSON, export.CSV, export.Parquet} {
		t.Run(format, func(t *testing.T) {
			// Small row groups, so that the file has several.
			path, st := run(t, all(ix), export.Options{Format: format, RowGroupRows: 1000})
			w := want
			if format == export.CSV {
				w = csvRead(want)
			}
			sameRows(t, format, read[format](t, path), w)
			if st.Rows != int64(len(want)) {
				t.Errorf("Stats.Rows %d, want %d", st.Rows, len(want))
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != st.Bytes {
				t.Errorf("Stats.Bytes %d, file: %v %v", st.Bytes, fi.Size(), err)
			}
		})
	}
	// Compression chosen by the file's extension, or named whatever the
	// file is called; the rows read back the same and take far less room.
	plain := map[string]int64{}
	for _, format := range []string{export.NDJSON, export.CSV} {
		_, st := run(t, all(ix), export.Options{Format: format})
		plain[format] = st.Bytes
	}
	for _, c := range []struct {
		format, name, compress string
	}{
		{export.NDJSON, "out.ndjson.zst", ""},
		{export.CSV, "out.csv.gz", ""},
		{export.NDJSON, "out.ndjson", export.Gzip},
		{export.CSV, "out.csv.zst", export.Zstd},
	} {
		t.Run(c.name+" "+c.compress, func(t *testing.T) {
			path, st := run(t, all(ix), export.Options{Format: c.format, Out: filepath.Join(t.TempDir(), c.name), Compress: c.compress})
			w, read := want, readNDJSON
			if c.format == export.CSV {
				w, read = csvRead(want), readCSV
			}
			sameRows(t, c.name, read(t, path), w)
			if fi, err := os.Stat(path); err != nil || fi.Size() != st.Bytes {
				t.Errorf("Stats.Bytes %d, file: %v %v", st.Bytes, fi.Size(), err)
			}
			if st.Bytes*3 > plain[c.format] {
				t.Errorf("compressed to %d bytes, not under a third of the %d uncompressed", st.Bytes, plain[c.format])
			}
		})
	}
	t.Run("live only", func(t *testing.T) {
		path, _ := run(t, export.IndexSource{Index: ix}, export.Options{Format: export.NDJSON})
		sameRows(t, "live", readNDJSON(t, path), scan(t, ix, true))
	})
	t.Run("filtered", func(t *testing.T) {
		q := indexer.ExportQuery{Target: "t.example", Scope: lgv1.Scope_SCOPE_DOMAIN,
			Filter: &lgv1.Filter{FollowOnly: true, Types: []lgv1.LinkType{lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_REDIRECT}}}
		path, _ := run(t, export.IndexSource{Index: ix, Query: q}, export.Options{Format: export.CSV})
		var want []*lgv1.Backlink
		for _, bl := range scan(t, ix, true) {
			u, _ := url.Parse(bl.TargetUrl)
			if u.Hostname() == "t.example" && !bl.Nofollow && (bl.Type == lgv1.LinkType_LINK_TYPE_A || bl.Type == lgv1.LinkType_LINK_TYPE_REDIRECT) {
				want = append(want, bl)
			}
		}
		if len(want) < 2 {
			t.Fatalf("only %d rows match the filter", len(want))
		}
		sameRows(t, "filtered", readCSV(t, path), csvRead(want))
	})
}

// TestTextIsWhatTheCLIWrites checks the hand-written encoders byte for
// byte against the code they stand in for: protojson then json.Compact
// (the query commands' and HTTP API's JSON), and encoding/csv over
// linkrow.AppendFields (their CSV).
func TestTextIsWhatTheCLIWrites(t *testing.T) {
	ix := testIndex(t, 2000)
	rows := scan(t, ix, false)
	// Times the index never holds, to cover the formatting of fractions
	// of every length and dates far from now.
	for i, ts := range []*timestamppb.Timestamp{{Seconds: 0}, {Seconds: -1, Nanos: 5e8}, {Seconds: 951782400, Nanos: 1},
		{Seconds: 253402300799, Nanos: 999999999}, {Seconds: -62135596800}, {Seconds: 1e9, Nanos: 120e6}, {Seconds: 1e9, Nanos: 123400}} {
		rows = append(rows, &lgv1.Backlink{SourceUrl: "http://x.example/", TargetUrl: "http://y.example/", FirstSeen: ts, LastSeen: ts, LostAt: ts,
			Type: lgv1.LinkType(i * 7), Rel: []string{"a\"b", "\x00"}})
	}
	var wantJSON, wantCSV bytes.Buffer
	cw := csv.NewWriter(&wantCSV)
	if err := cw.Write(linkrow.Columns()); err != nil {
		t.Fatal(err)
	}
	for _, bl := range rows {
		raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(bl)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&wantJSON, raw); err != nil {
			t.Fatal(err)
		}
		wantJSON.WriteByte('\n')
		if err := cw.Write(linkrow.AppendFields(nil, bl)); err != nil {
			t.Fatal(err)
		}
	}
	cw.Flush()
	src := sliceSource(rows)
	for format, want := range map[string][]byte{export.NDJSON: wantJSON.Bytes(), export.CSV: wantCSV.Bytes()} {
		var got bytes.Buffer
		job, err := export.Create(export.Options{Format: format, Out: export.Stdout, Stdout: &got})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := job.Run(context.Background(), src); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Errorf("%s line %d:\n got %s\nwant %s", format, i+1, gl[i], wl[i])
					break
				}
			}
			t.Errorf("%s: %d bytes, want %d", format, got.Len(), len(want))
		}
	}
}

// TestEncodedIsRowByRow: the index encodes its NDJSON and CSV rows on its
// own goroutines, reusing one row each (IndexSource); the output is byte
// for byte that of the rows encoded one by one on the writer's goroutine,
// as for a remote source, lost links included.
func TestEncodedIsRowByRow(t *testing.T) {
	ix := testIndex(t, 5000)
	rows := scan(t, ix, false)
	for _, format := range []string{export.NDJSON, export.CSV} {
		var out [2]bytes.Buffer
		for i, src := range []export.Source{all(ix), sliceSource(rows)} {
			job, err := export.Create(export.Options{Format: format, Out: export.Stdout, Stdout: &out[i]})
			if err != nil {
				t.Fatal(err)
			}
			st, err := job.Run(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != int64(len(rows)) {
				t.Errorf("%s: source %d: %d rows, want %d", format, i, st.Rows, len(rows))
			}
		}
		if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
			t.Errorf("%s: encoded by the index, %d bytes; row by row, %d", format, out[0].Len(), out[1].Len())
		}
	}
}

// sliceSource is a Source of fixed rows, for checks of the encoders on
// rows no index holds.
type sliceSource []*lgv1.Backlink

func (s sliceSource) Rows(ctx context.Context, fn func(*lgv1.Backlink) error) error {
	for _, bl := range s {
		if err := fn(bl); err != nil {
			return err
		}
	}
	return nil
}

func TestInvalidUTF8Fails(t *testing.T) {
	job, err := export.Create(export.Options{Format: export.NDJSON, Out: export.Stdout, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Run(context.Background(), sliceSource{{SourceUrl: "http://x.example/", AnchorText: "bad \xff"}})
	if err == nil {
		t.Fatal("NDJSON of invalid UTF-8: no error (protojson refuses it)")
	}
}

// TestParquetSchema checks the file's schema and metadata: logical types,
// compression, row groups.
func TestParquetSchema(t *testing.T) {
	ix := testIndex(t, 3000)
	path, st := run(t, all(ix), export.Options{Format: export.Parquet, RowGroupRows: 1000})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pf.NumRows(), st.Rows; got != want {
		t.Errorf("NumRows %d, want %d", got, want)
	}
	if got, want := len(pf.RowGroups()), int((st.Rows+999)/1000); got != want {
		t.Errorf("%d row groups, want %d", got, want)
	}
	schema := pf.Schema()
	for _, c := range []struct{ path, want string }{
		{"source_url", "STRING"}, {"target_url", "STRING"}, {"anchor_text", "STRING"}, {"type", "ENUM"},
		{"first_seen", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"}, {"last_seen", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"},
		{"lost_at", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"}, {"source_title", "STRING"}, {"rel", "LIST"},
		{"history", "LIST"}, {"history.list.element.lost_at", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"},
		{"history.list.element.reason", "ENUM"}, {"history.list.element.returned_at", "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)"},
	} {
		col, ok := schema.Lookup(strings.Split(c.path, ".")...)
		var lt string
		if ok {
			lt = fmt.Sprint(col.Node.Type().LogicalType())
		} else if f := fieldOf(schema, c.path); f != nil {
			lt = fmt.Sprint(f.Type().LogicalType())
		}
		if !strings.Contains(lt, c.want) {
			t.Errorf("column %s: logical type %q, want %s", c.path, lt, c.want)
		}
	}
	if f := fieldOf(schema, "lost_at"); f == nil || !f.Optional() {
		t.Errorf("lost_at is not optional")
	}
	for _, rg := range pf.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			if cc.MetaData.Codec.String() != "ZSTD" {
				t.Fatalf("column %v compressed with %v, want ZSTD", cc.MetaData.PathInSchema, cc.MetaData.Codec)
			}
		}
	}
}

func fieldOf(s *parquet.Schema, name string) parquet.Field {
	for _, f := range s.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// hostGraph is a hostgraph export read back.
type hostGraph struct {
	vertices []string // by id
	edges    [][2]int
}

func readHostGraph(t testing.TB, dir string) hostGraph {
	t.Helper()
	lines := func(name string) [][]string {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for l := range strings.Lines(string(raw)) {
			if !strings.HasSuffix(l, "\n") {
				t.Fatalf("%s: last line without a newline", name)
			}
			out = append(out, strings.Split(strings.TrimSuffix(l, "\n"), "\t"))
		}
		return out
	}
	var g hostGraph
	for i, f := range lines(export.VerticesFile) {
		if len(f) != 2 || f[0] != strconv.Itoa(i) {
			t.Fatalf("vertex line %d is %q: ids must be dense from 0", i, f)
		}
		if i > 0 && f[1] <= g.vertices[i-1] {
			t.Fatalf("vertex %d %q after %q: not in sorted order", i, f[1], g.vertices[i-1])
		}
		g.vertices = append(g.vertices, f[1])
	}
	for i, f := range lines(export.EdgesFile) {
		if len(f) != 2 {
			t.Fatalf("edge line %d is %q", i, f)
		}
		from, err1 := strconv.Atoi(f[0])
		to, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || from < 0 || to < 0 || from >= len(g.vertices) || to >= len(g.vertices) {
			t.Fatalf("edge line %d %q: not two vertex ids", i, f)
		}
		e := [2]int{from, to}
		if i > 0 && !(slices.Compare(g.edges[i-1][:], e[:]) < 0) {
			t.Fatalf("edge %v after %v: not sorted and unique", e, g.edges[i-1])
		}
		if from == to {
			t.Fatalf("self-loop %v", e)
		}
		g.edges = append(g.edges, e)
	}
	return g
}

// reversedHost is the vertex name of a URL, computed here from net/url
// and publicsuffix, independently of the export's code.
func reversedHost(t testing.TB, raw string, domain bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil {
		if ip.To4() == nil {
			return "[" + h + "]"
		}
		return h
	}
	if domain {
		if d, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
			h = d
		}
	}
	labels := strings.Split(h, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

// wantHostGraph aggregates rows to a host (or domain) graph by names.
func wantHostGraph(t testing.TB, rows []*lgv1.Backlink, domain bool) (vertices []string, edges map[[2]string]bool) {
	set := map[string]bool{}
	edges = map[[2]string]bool{}
	for _, bl := range rows {
		s, d := reversedHost(t, bl.SourceUrl, domain), reversedHost(t, bl.TargetUrl, domain)
		set[s], set[d] = true, true
		if s != d {
			edges[[2]string{s, d}] = true
		}
	}
	for v := range set {
		vertices = append(vertices, v)
	}
	slices.Sort(vertices)
	return vertices, edges
}

// TestHostGraph checks that the hostgraph files are valid by the format's
// rules (readHostGraph) and hold exactly the host- and domain-level
// aggregation of the index's live links, computed here independently,
// whether the edges are sorted in memory or spilled to disk and merged.
func TestHostGraph(t *testing.T) {
	ix := testIndex(t, 20000)
	rows := scan(t, ix, true)
	for _, level := range []string{export.LevelHost, export.LevelDomain} {
		wantV, wantE := wantHostGraph(t, rows, level == export.LevelDomain)
		var first []byte
		for _, sortPairs := range []int{0, 64} {
			t.Run(fmt.Sprintf("%s/sort%d", level, sortPairs), func(t *testing.T) {
				dir, st := run(t, export.IndexSource{Index: ix}, export.Options{Format: export.HostGraph, Level: level, SortPairs: sortPairs})
				g := readHostGraph(t, dir)
				if !slices.Equal(g.vertices, wantV) {
					t.Errorf("%d vertices, want %d (%q... vs %q...)", len(g.vertices), len(wantV), g.vertices[:min(5, len(g.vertices))], wantV[:min(5, len(wantV))])
				}
				got := map[[2]string]bool{}
				for _, e := range g.edges {
					got[[2]string{g.vertices[e[0]], g.vertices[e[1]]}] = true
				}
				for e := range wantE {
					if !got[e] {
						t.Errorf("missing edge %v", e)
						break
					}
				}
				for e := range got {
					if !wantE[e] {
						t.Errorf("extra edge %v", e)
						break
					}
				}
				if st.Vertices != int64(len(wantV)) || st.Edges != int64(len(wantE)) {
					t.Errorf("Stats: %d vertices, %d edges; want %d, %d", st.Vertices, st.Edges, len(wantV), len(wantE))
				}
				if len(wantE) < 100 {
					t.Errorf("only %d edges: the test graph is too small to spill", len(wantE))
				}
				// Spilled or not, the files are the same.
				raw, err := os.ReadFile(filepath.Join(dir, export.EdgesFile))
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = raw
				} else if !bytes.Equal(raw, first) {
					t.Errorf("edges differ between the in-memory and the spilled sort")
				}
			})
		}
	}
	// The hosts with a port and an IP literal are vertices without the
	// port, and the link within quote.example:8080 is no edge.
	dir, _ := run(t, export.IndexSource{Index: ix}, export.Options{Format: export.HostGraph})
	g := readHostGraph(t, dir)
	for _, v := range []string{"example.quote", "[::1]", "127.0.0.1", "de.xn--mnchen-3ya", "example.quote.www"} {
		if !slices.Contains(g.vertices, v) {
			t.Errorf("no vertex %q", v)
		}
	}
}

// TestOptionsRejected checks that bad options fail in Create, before any
// work, with the sentinel, and leave nothing behind.
func TestOptionsRejected(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign")
	if err := os.MkdirAll(filepath.Join(foreign, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts export.Options
		want error
	}{
		{"unknown format", export.Options{Format: "xml", Out: filepath.Join(dir, "o")}, export.ErrOptions},
		{"parquet to stdout", export.Options{Format: export.Parquet, Out: export.Stdout, Stdout: io.Discard}, export.ErrOptions},
		{"hostgraph to stdout", export.Options{Format: export.HostGraph, Out: export.Stdout, Stdout: io.Discard}, export.ErrOptions},
		{"level of csv", export.Options{Format: export.CSV, Level: export.LevelDomain, Out: filepath.Join(dir, "o")}, export.ErrOptions},
		{"unknown level", export.Options{Format: export.HostGraph, Level: "page", Out: filepath.Join(dir, "o")}, export.ErrOptions},
		{"no out", export.Options{Format: export.CSV}, export.ErrOptions},
		{"missing directory", export.Options{Format: export.CSV, Out: filepath.Join(dir, "no", "o.csv")}, export.ErrOutput},
		{"under a file", export.Options{Format: export.Parquet, Out: filepath.Join(file, "o.parquet")}, export.ErrOutput},
		{"out is a directory", export.Options{Format: export.NDJSON, Out: foreign}, export.ErrOutput},
		{"hostgraph over a file", export.Options{Format: export.HostGraph, Out: file}, export.ErrOutput},
		{"hostgraph over a foreign directory", export.Options{Format: export.HostGraph, Out: foreign}, export.ErrOutput},
		{"unwritable", export.Options{Format: export.CSV, Out: "/proc/linkgraph-export.csv"}, export.ErrOutput},
		{"unknown compression", export.Options{Format: export.CSV, Out: filepath.Join(dir, "o.csv"), Compress: "lz4"}, export.ErrOptions},
		{"compressed parquet", export.Options{Format: export.Parquet, Out: filepath.Join(dir, "o.parquet"), Compress: export.Gzip}, export.ErrOptions},
		{"extension disagrees", export.Options{Format: export.NDJSON, Out: filepath.Join(dir, "o.ndjson.gz"), Compress: export.Zstd}, export.ErrOptions},
	} {
		job, err := export.Create(c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			if job != nil {
				job.Abort()
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(foreign, "mine")); err != nil {
		t.Errorf("the foreign directory was touched: %v", err)
	}
}

// TestCancelLeavesNothing cancels exports of every format midway, as a
// SIGINT does: Run fails with the context's error and the directory holds
// nothing new, not even a temporary file.
func TestCancelLeavesNothing(t *testing.T) {
	ix := testIndex(t, 3000)
	for _, format := range export.Formats {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			job, err := export.Create(export.Options{Format: format, Out: filepath.Join(dir, "out"), ProgressEvery: 500,
				Progress: func(rows int64) {
					if calls++; calls == 2 {
						cancel()
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = job.Run(ctx, all(ix))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v, want context.Canceled", err)
			}
			if calls < 2 {
				t.Fatalf("cancelled after %d progress calls", calls)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// TestFailingSourceLeavesNothing: an error of the source (the index
// failing midway) leaves nothing behind either.
func TestFailingSourceLeavesNothing(t *testing.T) {
	ix := testIndex(t, 2000)
	boom := errors.New("boom")
	for _, format := range export.Formats {
		dir := t.TempDir()
		job, err := export.Create(export.Options{Format: format, Out: filepath.Join(dir, "out")})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		_, err = job.Run(context.Background(), sourceFunc(func(ctx context.Context, fn func(*lgv1.Backlink) error) error {
			return all(ix).Rows(ctx, func(bl *lgv1.Backlink) error {
				if n++; n == 1500 {
					return boom
				}
				return fn(bl)
			})
		}))
		if !errors.Is(err, boom) {
			t.Errorf("%s: Run: %v, want boom", format, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: left behind: %v", format, entries)
		}
	}
}

type sourceFunc func(ctx context.Context, fn func(*lgv1.Backlink) error) error

func (f sourceFunc) Rows(ctx context.Context, fn func(*lgv1.Backlink) error) error { return f(ctx, fn) }

// TestReplace checks that an export replaces an earlier one at its path:
// a file, and a hostgraph directory.
func TestReplace(t *testing.T) {
	ix := testIndex(t, 1000)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.csv")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, all(ix), export.Options{Format: export.CSV, Out: out})
	sameRows(t, "replaced csv", readCSV(t, out), csvRead(scan(t, ix, false)))

	hg := filepath.Join(dir, "hg")
	run(t, export.IndexSource{Index: ix, Query: indexer.ExportQuery{Target: "t.example", Scope: lgv1.Scope_SCOPE_HOST}},
		export.Options{Format: export.HostGraph, Out: hg})
	small := readHostGraph(t, hg)
	run(t, export.IndexSource{Index: ix}, export.Options{Format: export.HostGraph, Out: hg})
	if big := readHostGraph(t, hg); len(big.vertices) <= len(small.vertices) {
		t.Errorf("the second hostgraph (%d vertices) did not replace the first (%d)", len(big.vertices), len(small.vertices))
	}
	if fi, err := os.Stat(hg); err != nil || fi.Mode().Perm()&0o055 == 0 {
		t.Errorf("hostgraph directory mode %v (%v): the temporary directory's 0700 was kept", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("entries %v, want x.csv and hg", entries)
	}
}

// TestDiskFullLeavesNothing exports into a 64 KiB tmpfs, too small for the
// output: Run fails with ENOSPC and the file system is empty again, with
// all its space. It needs the privilege to mount (root), else it skips.
func TestDiskFullLeavesNothing(t *testing.T) {
	ix := testIndex(t, 5000)
	for _, format := range []string{export.NDJSON, export.CSV, export.Parquet} {
		dir := t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
			t.Skipf("cannot mount a small tmpfs: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(dir, 0) })
		job, err := export.Create(export.Options{Format: format, Out: filepath.Join(dir, "out"), RowGroupRows: 1000})
		if err != nil {
			t.Fatal(err)
		}
		_, err = job.Run(context.Background(), all(ix))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s: Run: %v, want ENOSPC", format, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: left %v behind", format, entries)
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Bfree != st.Blocks {
			t.Errorf("%s: %d of %d blocks still used", format, st.Blocks-st.Bfree, st.Blocks)
		}
	}
}

// TestEmptyExport: a selection with no rows still gives a valid file of
// each format (the CSV header, an empty Parquet file, an empty graph).
func TestEmptyExport(t *testing.T) {
	ix := testIndex(t, 100)
	none := export.IndexSource{Index: ix, Query: indexer.ExportQuery{Target: "http://nowhere.example/"}}
	dir := t.TempDir()
	for _, format := range export.Formats {
		out := filepath.Join(dir, format) + "/" // a trailing slash names the same path
		path, st := run(t, none, export.Options{Format: format, Out: out})
		if st.Rows != 0 {
			t.Errorf("%s: %d rows", format, st.Rows)
		}
		path = filepath.Clean(path)
		switch format {
		case export.NDJSON:
			if rows := readNDJSON(t, path); len(rows) != 0 {
				t.Errorf("ndjson: %d rows", len(rows))
			}
		case export.CSV:
			if rows := readCSV(t, path); len(rows) != 0 {
				t.Errorf("csv: %d rows", len(rows))
			}
		case export.Parquet:
			if rows := readParquet(t, path); len(rows) != 0 {
				t.Errorf("parquet: %d rows", len(rows))
			}
		case export.HostGraph:
			if g := readHostGraph(t, path); len(g.vertices)+len(g.edges) != 0 {
				t.Errorf("hostgraph: %d vertices, %d edges", len(g.vertices), len(g.edges))
			}
		}
	}
}

// TestInPlace exports to outputs that must be written, not replaced: a
// FIFO (as /dev/null or a loader's pipe would be) and a symbolic link. The
// reader of the FIFO gets every row, and both stay what they were: the
// publishing rename once turned /dev/null into a regular file.
func TestInPlace(t *testing.T) {
	ix := testIndex(t, 1000)
	want := csvRead(scan(t, ix, false))
	dir := t.TempDir()

	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		raw, _ := os.ReadFile(fifo) // opening waits for the writer
		got <- raw
	}()
	run(t, all(ix), export.Options{Format: export.CSV, Out: fifo})
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO is now %v (%v)", fi.Mode(), err) // and its reader waits for ever
	}
	copied := filepath.Join(dir, "from-pipe.csv")
	if err := os.WriteFile(copied, <-got, 0o644); err != nil {
		t.Fatal(err)
	}
	sameRows(t, "csv through a FIFO", readCSV(t, copied), want)
	// With no reader, the export waits for one until it is cancelled.
	job, err := export.Create(export.Options{Format: export.CSV, Out: fifo})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := job.Run(ctx, all(ix)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with no reader of the FIFO: %v, want the context's error", err)
	}

	target := filepath.Join(dir, "real.csv")
	if err := os.WriteFile(target, []byte("an older, longer export that must not show through\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "latest.csv")
	if err := os.Symlink("real.csv", link); err != nil {
		t.Fatal(err)
	}
	run(t, all(ix), export.Options{Format: export.CSV, Out: link})
	sameRows(t, "csv through a symbolic link", readCSV(t, target), want)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symbolic link is now %v (%v)", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("entries %v, want pipe, from-pipe.csv, real.csv and latest.csv", entries)
	}
}
