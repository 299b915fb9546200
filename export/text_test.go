package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

// TestTimeFormats compares the time appenders with time.Format and
// protojson over the whole range protojson accepts.
func TestTimeFormats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var dates encodeCache
	check := func(secs int64, nanos int32) {
		ts := &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}
		want := ts.AsTime().UTC().Format(time.RFC3339Nano)
		for _, c := range []*encodeCache{nil, &dates} {
			if got := string(appendRFC3339Nano(nil, c, secs, nanos)); got != want {
				t.Fatalf("appendRFC3339Nano(%d, %d) = %s, want %s", secs, nanos, got, want)
			}
		}
		raw, err := protojson.Marshal(ts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendProtoTime([]byte{'"'}, &dates, secs, nanos)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(string(raw), `"`); string(got) != want {
			t.Fatalf("appendProtoTime(%d, %d) = %s, want %s", secs, nanos, got, want)
		}
	}
	for _, secs := range []int64{minProtoSeconds, maxProtoSeconds, 0, -1, 86399, 86400, 951782400, 951868800, 4107542400} {
		for _, nanos := range []int32{0, 1, 10, 999999999, 5e8, 120e6, 123e6, 123400, 1000} {
			check(secs, nanos)
		}
	}
	for range 200000 {
		nanos := int32(r.IntN(1e9))
		switch r.IntN(3) {
		case 0:
			nanos = nanos / 1e6 * 1e6 // the index's milliseconds
		case 1:
			nanos = 0
		}
		check(minProtoSeconds+r.Int64N(maxProtoSeconds-minProtoSeconds+1), nanos)
	}
	if _, err := appendProtoTime(nil, nil, maxProtoSeconds+1, 0); err == nil {
		t.Error("year 10000: no error (protojson refuses it)")
	}
}

// FuzzText checks the NDJSON and CSV encoders on arbitrary strings
// against protojson and encoding/csv.
func FuzzText(f *testing.F) {
	for i, s := range []string{"", " ", "\\.", "a,b", "\"", "x\r\ny", "\x00\x1f\x7f", "日本\u2028", "\xff", "\t lead", "\u00a0nbsp"} {
		f.Add(s, s, int32(3), int64(1e12), uint8(i), int32(200), int32(0))
		f.Add(s, s, int32(i), int64(1e12), uint8(0), int32(i*100), int32(i))
	}
	f.Fuzz(func(t *testing.T, anchor, title string, typ int32, ms int64, flags uint8, status, n int32) {
		ms = ms % (maxProtoSeconds * 1000)
		if ms < 0 {
			ms = -ms
		}
		ts := timestamppb.New(time.UnixMilli(ms))
		bl := &lgv1.Backlink{SourceUrl: "http://s.example/" + title, TargetUrl: "http://t.example/", AnchorText: anchor,
			Rel: strings.Fields(title), Type: lgv1.LinkType(typ), SourceTitle: title, FirstSeen: ts, LastSeen: ts,
			SourceStatus: status, Nofollow: flags&1 != 0}
		// The other fields take n where flags say so, to reach every path
		// of the encoders.
		if flags&2 != 0 {
			bl.RedirectStatus = n
		}
		if flags&4 != 0 {
			bl.LostAt, bl.LostReason = ts, lgv1.LostReason(n%8)
		}
		if flags&8 != 0 {
			bl.History = []*lgv1.LinkEvent{{LostAt: ts, Reason: lgv1.LostReason(n % 8), ReturnedAt: ts}}
		}
		if flags&16 != 0 {
			bl.SourceAuthority = n
		}
		if flags&32 != 0 {
			bl.SourcePageAuthority = n
		}
		raw, perr := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(bl)
		var wantCSV bytes.Buffer
		cw := csv.NewWriter(&wantCSV)
		cw.Write(linkrow.AppendFields(nil, bl))
		cw.Flush()
		// Both paths: every text checked, and the plain ones (as an
		// export finds them) taken as they are.
		for _, plain := range []indexer.PlainFields{0, plainOf(bl)} {
			got, err := appendNDJSON(nil, &encodeCache{}, bl, plain)
			if (perr != nil) != (err != nil) {
				t.Fatalf("plain %b: protojson error %v, ours %v", plain, perr, err)
			}
			if perr == nil {
				var want bytes.Buffer
				if err := json.Compact(&want, raw); err != nil {
					t.Fatal(err)
				}
				want.WriteByte('\n')
				if !bytes.Equal(got, want.Bytes()) {
					t.Fatalf("plain %b: NDJSON\n got %s\nwant %s", plain, got, want.Bytes())
				}
			}
			if got := appendCSV(nil, nil, bl, plain); !bytes.Equal(got, wantCSV.Bytes()) {
				t.Fatalf("plain %b: CSV\n got %q\nwant %q", plain, got, wantCSV.Bytes())
			}
		}
	})
}

// plainOf is what an export knows of bl's source texts.
func plainOf(bl *lgv1.Backlink) indexer.PlainFields {
	var p indexer.PlainFields
	if indexer.PlainText(bl.SourceUrl) {
		p |= indexer.PlainSourceURL
	}
	if indexer.PlainText(bl.SourceTitle) {
		p |= indexer.PlainSourceTitle
	}
	return p
}

func TestTypeNames(t *testing.T) {
	for v := range int32(len(typeNames) + 3) {
		if got, want := typeName(lgv1.LinkType(v)), linkrow.TypeName(lgv1.LinkType(v)); got != want {
			t.Errorf("typeName(%d) = %q, linkrow says %q", v, got, want)
		}
	}
}

// benchRows are rows of a generated web, read once for the encoder
// benchmarks.
func benchRows(b *testing.B) []*lgv1.Backlink {
	b.Helper()
	var rows []*lgv1.Backlink
	title := "Modrigo – opinion winter weather software"
	for i := range 4096 {
		ts := timestamppb.New(time.UnixMilli(1735689600000 + int64(i)*7919000))
		rows = append(rows, &lgv1.Backlink{
			SourceUrl: fmt.Sprintf("https://blog.caldri%d.nl/2017/02/health-api-cheese-%d/", i%97, i), TargetUrl: "https://www.arriquo.com.au/products/item?id=" + fmt.Sprint(i/10),
			AnchorText: "Arriquo – sensor recipe widget math", Rel: []string{"noopener", "noreferrer"}[:i%3%2*2],
			Type: lgv1.LinkType_LINK_TYPE_A, FirstSeen: ts, LastSeen: ts, SourceTitle: title, SourceStatus: 200,
		})
	}
	return rows
}

// benchPlains is plainOf of each row, which an export works out once per
// source page.
func benchPlains(rows []*lgv1.Backlink) []indexer.PlainFields {
	plains := make([]indexer.PlainFields, len(rows))
	for i, bl := range rows {
		plains[i] = plainOf(bl)
	}
	return plains
}

func BenchmarkAppendNDJSON(b *testing.B) {
	rows := benchRows(b)
	plains := benchPlains(rows)
	var buf []byte
	var c encodeCache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ = appendNDJSON(buf[:0], &c, rows[i%len(rows)], plains[i%len(rows)])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendCSV(b *testing.B) {
	rows := benchRows(b)
	plains := benchPlains(rows)
	var buf []byte
	var c encodeCache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = appendCSV(buf[:0], &c, rows[i%len(rows)], plains[i%len(rows)])
	}
	b.SetBytes(int64(len(buf)))
}

// TestCSVNeedsQuotesAgreesWithEncodingCSV puts each byte that matters at
// every offset of a word-long run of URL text (and of UTF-8), where the
// word-at-a-time scan could miss it.
func TestCSVNeedsQuotesAgreesWithEncodingCSV(t *testing.T) {
	var buf bytes.Buffer
	quoted := func(s string) bool {
		buf.Reset()
		w := csv.NewWriter(&buf)
		if err := w.Write([]string{s}); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		return strings.HasPrefix(buf.String(), `"`)
	}
	for _, base := range []string{"https://www.example.com/path-%20/x?y=1&z=2#f", "Ünïcödé ≠ ascii — títle …"} {
		for _, b := range []string{",", `"`, "\r", "\n", " ", "-", "+", "!", "é"} {
			for i := 0; i <= len(base); i++ {
				s := base[:i] + b + base[i:]
				if got, want := csvNeedsQuotes(s), quoted(s); got != want {
					t.Errorf("csvNeedsQuotes(%q) = %v, encoding/csv quotes: %v", s, got, want)
				}
			}
		}
	}
}

// TestJSONPlainLen puts each byte JSON must look at at every position of
// strings of every length up to three words, where the word loop and the
// byte loop each decide.
func TestJSONPlainLen(t *testing.T) {
	for n := 0; n <= 24; n++ {
		plain := strings.Repeat("a", n)
		if got := jsonPlainLen(plain); got != n {
			t.Errorf("jsonPlainLen(%q) = %d, want %d", plain, got, n)
		}
		for p := 0; p < n; p++ {
			for _, c := range []byte{'"', '\\', 0x00, 0x1f, 0x80, 0xff} {
				s := plain[:p] + string([]byte{c}) + plain[p+1:]
				if got := jsonPlainLen(s); got != p {
					t.Errorf("jsonPlainLen(%q) = %d, want %d", s, got, p)
				}
			}
		}
	}
}
