package export

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

// csvColumns are the CSV columns, in order: those of the query commands'
// TSV and CSV and of the HTTP export (linkrow), so that a script reads
// them all alike.
var csvColumns = linkrow.Columns()

// flushAt is the size at which the text writers hand their buffer to the
// output: large enough that the write calls cost nothing per row.
const flushAt = 256 << 10

// typeName is linkrow.TypeName, the short name of a link type ("a",
// "img", "meta_refresh"; unknown values by number), from a table: it is
// called for every row.
func typeName(t lgv1.LinkType) string {
	if int(t) >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return strconv.Itoa(int(t))
}

var typeNames = func() []string {
	vals := lgv1.LinkType(0).Descriptor().Values()
	names := make([]string, vals.Len())
	for i := range names {
		v := vals.Get(i)
		if int(v.Number()) != i {
			panic("export: LinkType values are not dense from 0")
		}
		names[i] = strings.ToLower(strings.TrimPrefix(string(v.Name()), "LINK_TYPE_"))
	}
	return names
}()

// textWriter batches encoded rows into a buffer and writes it out in large
// pieces.
type textWriter struct {
	w   io.Writer
	buf []byte
}

func (t *textWriter) maybeFlush() error {
	if len(t.buf) < flushAt {
		return nil
	}
	return t.flush()
}

func (t *textWriter) flush() error {
	if len(t.buf) == 0 {
		return nil
	}
	_, err := t.w.Write(t.buf)
	t.buf = t.buf[:0]
	return err
}

// ndjsonWriter writes one JSON object per line with every field under its
// proto name, byte for byte what protojson (UseProtoNames,
// EmitUnpopulated) followed by json.Compact writes, as the query
// commands' --format json and the HTTP API do, so protojson reads it back.
// It is written by hand because protojson's reflection costs several
// microseconds a row.
type ndjsonWriter struct{ textWriter }

func newNDJSONWriter(w io.Writer) *ndjsonWriter {
	return &ndjsonWriter{textWriter{w: w, buf: make([]byte, 0, flushAt+4096)}}
}

func (n *ndjsonWriter) Write(bl *lgv1.Backlink) error {
	var err error
	if n.buf, err = appendNDJSON(n.buf, bl); err != nil {
		return err
	}
	return n.maybeFlush()
}

func (n *ndjsonWriter) Close() error { return n.flush() }

var errInvalidUTF8 = errors.New("export: invalid UTF-8 in a string field")

// appendNDJSON appends bl as one line of JSON. On error dst is returned
// as it was.
func appendNDJSON(dst []byte, bl *lgv1.Backlink) ([]byte, error) {
	start := len(dst)
	fail := func(err error) ([]byte, error) { return dst[:start], err }
	var ok bool
	dst = append(dst, `{"source_url":`...)
	if dst, ok = appendJSONString(dst, bl.SourceUrl); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"target_url":`...)
	if dst, ok = appendJSONString(dst, bl.TargetUrl); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"anchor_text":`...)
	if dst, ok = appendJSONString(dst, bl.AnchorText); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"rel":[`...)
	for i, r := range bl.Rel {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, ok = appendJSONString(dst, r); !ok {
			return fail(errInvalidUTF8)
		}
	}
	dst = append(dst, `],"type":`...)
	// protojson writes the enum's name, or its number when the value is
	// not one the descriptor knows.
	if name, known := lgv1.LinkType_name[int32(bl.Type)]; known {
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"')
	} else {
		dst = strconv.AppendInt(dst, int64(bl.Type), 10)
	}
	dst = append(dst, `,"redirect_status":`...)
	dst = strconv.AppendInt(dst, int64(bl.RedirectStatus), 10)
	dst = append(dst, `,"nofollow":`...)
	dst = strconv.AppendBool(dst, bl.Nofollow)
	var err error
	dst = append(dst, `,"first_seen":`...)
	if dst, err = appendJSONTime(dst, bl.FirstSeen); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"last_seen":`...)
	if dst, err = appendJSONTime(dst, bl.LastSeen); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"source_title":`...)
	if dst, ok = appendJSONString(dst, bl.SourceTitle); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"source_status":`...)
	dst = strconv.AppendInt(dst, int64(bl.SourceStatus), 10)
	dst = append(dst, `,"lost_at":`...)
	if dst, err = appendJSONTime(dst, bl.LostAt); err != nil {
		return fail(err)
	}
	return append(dst, "}\n"...), nil
}

func appendJSONTime(dst []byte, ts *timestamppb.Timestamp) ([]byte, error) {
	if ts == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '"')
	dst, err := appendProtoTime(dst, ts.GetSeconds(), ts.GetNanos())
	if err != nil {
		return dst, err
	}
	return append(dst, '"'), nil
}

// jsonPlain marks the bytes a JSON string carries as they are: printable
// ASCII but the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as protojson quotes it: only the quote, the
// backslash and control characters escaped (\b \f \n \r \t or \u00xx), the
// rest as UTF-8. It reports false for invalid UTF-8, which protojson
// refuses too.
func appendJSONString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"'), true
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case jsonPlain[c]:
			dst = append(dst, c)
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return dst, false
			}
			dst = append(dst, s[i:i+n]...)
			i += n
		default:
			dst = append(dst, '\\')
			switch c {
			case '"', '\\':
				dst = append(dst, c)
			case '\b':
				dst = append(dst, 'b')
			case '\f':
				dst = append(dst, 'f')
			case '\n':
				dst = append(dst, 'n')
			case '\r':
				dst = append(dst, 'r')
			case '\t':
				dst = append(dst, 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
		}
	}
	return append(dst, '"'), true
}

// csvWriter writes a header row and one row per backlink, byte for byte
// what encoding/csv writes for linkrow.AppendFields, as the query
// commands' --format csv does (fields quoted only when they need it, LF
// line ends), without the []string of every row and the time.Format of
// every time.
type csvWriter struct {
	textWriter
	header bool
}

func newCSVWriter(w io.Writer) *csvWriter {
	return &csvWriter{textWriter: textWriter{w: w, buf: make([]byte, 0, flushAt+4096)}}
}

func (c *csvWriter) writeHeader() {
	for i, name := range csvColumns {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.buf = append(c.buf, name...)
	}
	c.buf = append(c.buf, '\n')
	c.header = true
}

func (c *csvWriter) Write(bl *lgv1.Backlink) error {
	if !c.header {
		c.writeHeader()
	}
	c.buf = appendCSV(c.buf, bl)
	return c.maybeFlush()
}

// Close writes the header if no row did (consumers always see the
// columns) and flushes.
func (c *csvWriter) Close() error {
	if !c.header {
		c.writeHeader()
	}
	return c.flush()
}

// appendCSV appends bl as one CSV row in the order of Columns.
func appendCSV(dst []byte, bl *lgv1.Backlink) []byte {
	dst = appendCSVField(dst, bl.SourceUrl)
	dst = append(dst, ',')
	dst = appendCSVField(dst, bl.TargetUrl)
	dst = append(dst, ',')
	dst = appendCSVField(dst, bl.AnchorText)
	dst = append(dst, ',')
	switch len(bl.Rel) {
	case 0:
	case 1:
		dst = appendCSVField(dst, bl.Rel[0])
	default:
		dst = appendCSVField(dst, strings.Join(bl.Rel, " "))
	}
	dst = append(dst, ',')
	dst = appendCSVField(dst, typeName(bl.Type))
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.RedirectStatus), 10)
	dst = append(dst, ',')
	dst = strconv.AppendBool(dst, bl.Nofollow)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, bl.FirstSeen)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, bl.LastSeen)
	dst = append(dst, ',')
	dst = appendCSVField(dst, bl.SourceTitle)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.SourceStatus), 10)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, bl.LostAt)
	return append(dst, '\n')
}

func appendCSVTime(dst []byte, ts *timestamppb.Timestamp) []byte {
	if ts == nil {
		return dst
	}
	return appendRFC3339Nano(dst, ts.GetSeconds(), ts.GetNanos())
}

// csvPlain marks the bytes that never make a field need quotes (as
// encoding/csv decides it: a comma, a quote, CR or LF anywhere, or a
// leading space).
var csvPlain = func() (t [256]bool) {
	for c := range t {
		t[c] = c != ',' && c != '"' && c != '\r' && c != '\n'
	}
	return t
}()

func appendCSVField(dst []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	for i := 0; i < len(s); i++ {
		if !csvPlain[s[i]] {
			return true
		}
	}
	if s[0] < utf8.RuneSelf {
		return unicode.IsSpace(rune(s[0]))
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}
