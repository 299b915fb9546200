package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// formats are the values of --format.
var formats = map[string]bool{"table": true, "tsv": true, "csv": true, "json": true}

// column is one output column of a row type T.
type column[T any] struct {
	// name heads TSV and CSV; tables head it upper-cased with spaces
	// unless title is set.
	name, title string
	// value is the field for TSV and CSV.
	value func(T) string
	// table is the field for tables; nil leaves the column out of them.
	table func(T) string
}

// rowWriter prints rows as --format says: an aligned table, TSV or CSV
// with a header row (even when there are no rows, so that consumers always
// see the columns), or JSON, one object per line (NDJSON) with the proto
// field names, as the HTTP API spells them.
type rowWriter[T any] struct {
	format string
	w      io.Writer
	cols   []column[T]
	// none is printed instead of an empty table ("no backlinks found").
	none string
	tw   *tabwriter.Writer
	cw   *csv.Writer
	n    int
}

func newRowWriter[T any](format string, w io.Writer, none string, cols []column[T]) *rowWriter[T] {
	rw := &rowWriter[T]{format: format, w: w, cols: cols, none: none}
	switch format {
	case "table":
		rw.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	case "csv":
		rw.cw = csv.NewWriter(w)
	}
	return rw
}

func (rw *rowWriter[T]) header() error {
	var names []string
	for _, c := range rw.cols {
		switch {
		case rw.format != "table":
			names = append(names, c.name)
		case c.table == nil:
		case c.title != "":
			names = append(names, c.title)
		default:
			names = append(names, strings.ToUpper(strings.ReplaceAll(c.name, "_", " ")))
		}
	}
	return rw.line(names)
}

func (rw *rowWriter[T]) line(fields []string) error {
	switch rw.format {
	case "csv":
		return rw.cw.Write(fields)
	case "table":
		_, err := fmt.Fprintln(rw.tw, strings.Join(fields, "\t"))
		return err
	default:
		_, err := fmt.Fprintln(rw.w, strings.Join(fields, "\t"))
		return err
	}
}

// Write prints one row.
func (rw *rowWriter[T]) Write(row T) error {
	if rw.format == "json" {
		m, ok := any(row).(proto.Message)
		if !ok {
			return fmt.Errorf("%T has no JSON form", row)
		}
		rw.n++
		return writeJSON(rw.w, m)
	}
	if rw.n == 0 {
		if err := rw.header(); err != nil {
			return err
		}
	}
	rw.n++
	var fields []string
	for _, c := range rw.cols {
		switch {
		case rw.format == "csv":
			fields = append(fields, c.value(row))
		case rw.format == "tsv":
			fields = append(fields, flatten(c.value(row)))
		case c.table != nil:
			fields = append(fields, flatten(c.table(row)))
		}
	}
	return rw.line(fields)
}

// Flush ends the output; call it once after the last row.
func (rw *rowWriter[T]) Flush() error {
	switch rw.format {
	case "json":
		return nil
	case "table":
		if rw.n == 0 {
			_, err := fmt.Fprintln(rw.w, rw.none)
			return err
		}
		return rw.tw.Flush()
	}
	if rw.n == 0 {
		if err := rw.header(); err != nil {
			return err
		}
	}
	if rw.cw != nil {
		rw.cw.Flush()
		return rw.cw.Error()
	}
	return nil
}

// writeJSON prints m as one line of JSON with the proto field names and
// every field, as the HTTP API does.
func writeJSON(w io.Writer, m proto.Message) error {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson adds spaces at random to stop byte comparisons; compact
	// it to keep one object per line.
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// flatten keeps a TSV or table field on its line.
func flatten(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// truncate cuts s to at most n bytes for a table, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
