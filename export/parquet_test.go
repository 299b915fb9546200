package export

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// TestParquetEncoders writes row groups through the encoders in turn, more
// of them than encoders, and reads them back in order; and stops a writer
// that is never closed, which must end its encoders (abort returns).
func TestParquetEncoders(t *testing.T) {
	const rows, perGroup = 10_000, 700
	var buf bytes.Buffer
	p := newParquetWriter(&buf, perGroup)
	for i := range rows {
		if err := p.Write(&lgv1.Backlink{SourceUrl: fmt.Sprintf("http://s.example/%d", i), TargetUrl: "http://t.example/"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.RowGroups()), (rows+perGroup-1)/perGroup; got != want {
		t.Errorf("%d row groups, want %d", got, want)
	}
	r := parquet.NewGenericReader[ParquetRow](f)
	got := make([]ParquetRow, rows+1)
	n, _ := r.Read(got)
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	for i, row := range got[:n] {
		if want := fmt.Sprintf("http://s.example/%d", i); row.SourceURL != want {
			t.Fatalf("row %d: source %q, want %q", i, row.SourceURL, want)
		}
	}

	p = newParquetWriter(&bytes.Buffer{}, perGroup)
	for range 3*perGroup + 10 {
		if err := p.Write(&lgv1.Backlink{SourceUrl: "http://s.example/"}); err != nil {
			t.Fatal(err)
		}
	}
	p.abort() // waits for the encoders, so a stuck one fails the test by its timeout
}
