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
	"github.com/linkgraph/linkgraph/indexer"
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

// writeEncoded writes rows encoded elsewhere, after those it holds.
func (t *textWriter) writeEncoded(b []byte) error {
	if err := t.flush(); err != nil {
		return err
	}
	_, err := t.w.Write(b)
	return err
}

// A textRowWriter is a rowWriter whose rows can be encoded on other
// goroutines, by encoders from newEncoder, and written with writeEncoded
// (see encodingSource).
type textRowWriter interface {
	rowWriter
	newEncoder() indexer.Encoder
	writeEncoded(b []byte) error
}

var (
	_ textRowWriter = (*ndjsonWriter)(nil)
	_ textRowWriter = (*csvWriter)(nil)
)

// ndjsonWriter writes one JSON object per line with every field under its
// proto name, byte for byte what protojson (UseProtoNames,
// EmitUnpopulated) followed by json.Compact writes, as the query
// commands' --format json and the HTTP API do, so protojson reads it back.
// It is written by hand because protojson's reflection costs several
// microseconds a row.
type ndjsonWriter struct {
	textWriter
	dates encodeCache
}

func newNDJSONWriter(w io.Writer) *ndjsonWriter {
	return &ndjsonWriter{textWriter: textWriter{w: w, buf: make([]byte, 0, flushAt+4096)}}
}

func (n *ndjsonWriter) Write(bl *lgv1.Backlink) error {
	var err error
	if n.buf, err = appendNDJSON(n.buf, &n.dates, bl, 0); err != nil {
		return err
	}
	return n.maybeFlush()
}

func (n *ndjsonWriter) Close() error { return n.flush() }

func (n *ndjsonWriter) newEncoder() indexer.Encoder {
	var dates encodeCache
	return func(dst []byte, bl *lgv1.Backlink, plain indexer.PlainFields) ([]byte, error) {
		return appendNDJSON(dst, &dates, bl, plain)
	}
}

var errInvalidUTF8 = errors.New("export: invalid UTF-8 in a string field")

// appendNDJSON appends bl as one line of JSON; the plain fields go in as
// they are. On error dst is returned as it was.
func appendNDJSON(dst []byte, c *encodeCache, bl *lgv1.Backlink, plain indexer.PlainFields) ([]byte, error) {
	start := len(dst)
	fail := func(err error) ([]byte, error) { return dst[:start], err }
	var ok bool
	dst = append(dst, `{"source_url":`...)
	if dst, ok = appendJSONText(dst, bl.SourceUrl, plain&indexer.PlainSourceURL != 0); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"target_url":`...)
	if dst, ok = c.appendTarget(dst, bl.TargetUrl, appendJSONString); !ok {
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
	if t := int(bl.Type); bl.RedirectStatus == 0 && t >= 0 && t < len(ndjsonMiddles) && ndjsonMiddles[t][0] != "" {
		dst = append(dst, ndjsonMiddles[t][b2i(bl.Nofollow)]...)
	} else {
		dst = append(dst, `],"type":`...)
		dst = appendJSONEnum(dst, linkTypeNames, int32(bl.Type))
		dst = append(dst, `,"redirect_status":`...)
		dst = strconv.AppendInt(dst, int64(bl.RedirectStatus), 10)
		dst = append(dst, `,"nofollow":`...)
		dst = strconv.AppendBool(dst, bl.Nofollow)
		dst = append(dst, `,"first_seen":`...)
	}
	var err error
	if dst, err = appendJSONTime(dst, c, bl.FirstSeen); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"last_seen":`...)
	if dst, err = appendJSONTime(dst, c, bl.LastSeen); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"source_title":`...)
	if dst, ok = appendJSONText(dst, bl.SourceTitle, plain&indexer.PlainSourceTitle != 0); !ok {
		return fail(errInvalidUTF8)
	}
	dst = append(dst, `,"source_status":`...)
	dst = strconv.AppendInt(dst, int64(bl.SourceStatus), 10)
	if bl.LostAt == nil && bl.LostReason == 0 && len(bl.History) == 0 {
		dst = append(dst, ndjsonLive...)
		return appendNDJSONAuthorities(dst, bl), nil
	}
	dst = append(dst, `,"lost_at":`...)
	if dst, err = appendJSONTime(dst, c, bl.LostAt); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"lost_reason":`...)
	dst = appendJSONEnum(dst, lostReasonNames, int32(bl.LostReason))
	dst = append(dst, `,"history":[`...)
	for i, h := range bl.History {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"lost_at":`...)
		if dst, err = appendJSONTime(dst, c, h.LostAt); err != nil {
			return fail(err)
		}
		dst = append(dst, `,"reason":`...)
		dst = appendJSONEnum(dst, lostReasonNames, int32(h.Reason))
		dst = append(dst, `,"returned_at":`...)
		if dst, err = appendJSONTime(dst, c, h.ReturnedAt); err != nil {
			return fail(err)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"source_authority":`...)
	return appendNDJSONAuthorities(dst, bl), nil
}

// appendNDJSONAuthorities ends a row from its source_authority value on.
func appendNDJSONAuthorities(dst []byte, bl *lgv1.Backlink) []byte {
	if bl.SourceAuthority == 0 && bl.SourcePageAuthority == 0 {
		return append(dst, `0,"source_page_authority":0}`+"\n"...)
	}
	dst = strconv.AppendInt(dst, int64(bl.SourceAuthority), 10)
	dst = append(dst, `,"source_page_authority":`...)
	dst = strconv.AppendInt(dst, int64(bl.SourcePageAuthority), 10)
	return append(dst, "}\n"...)
}

// Most rows are live links with no history and no redirect status, whose
// NDJSON has long runs of the same bytes: these are written in one piece
// rather than field by field.
var (
	// ndjsonMiddles[type][nofollow] runs from the end of rel to the value
	// of first_seen, for a redirect status of 0.
	ndjsonMiddles = func() (m [][2]string) {
		for t, name := range linkTypeNames {
			m = append(m, [2]string{})
			if name == "" {
				continue
			}
			for nofollow := range 2 {
				m[t][nofollow] = `],"type":` + name + `,"redirect_status":0,"nofollow":` + strconv.FormatBool(nofollow == 1) + `,"first_seen":`
			}
		}
		return m
	}()
	// ndjsonLive runs from the end of source_status to the value of
	// source_authority, for a live link with no history.
	ndjsonLive = `,"lost_at":null,"lost_reason":` + lostReasonNames[0] + `,"history":[],"source_authority":`
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendJSONEnum writes an enum as protojson does: its quoted name, or its
// number when the descriptor does not know the value.
func appendJSONEnum(dst []byte, names []string, v int32) []byte {
	if v >= 0 && int(v) < len(names) && names[v] != "" {
		return append(dst, names[v]...)
	}
	return strconv.AppendInt(dst, int64(v), 10)
}

// quotedNames lists an enum's names, quoted, by number (a map lookup a
// row costs more than the rest of an enum's encoding).
func quotedNames(names map[int32]string) []string {
	var out []string
	for v, name := range names {
		if v >= 0 && v < 1024 {
			if int(v) >= len(out) {
				out = append(out, make([]string, int(v)+1-len(out))...)
			}
			out[v] = strconv.Quote(name)
		}
	}
	return out
}

var (
	linkTypeNames   = quotedNames(lgv1.LinkType_name)
	lostReasonNames = quotedNames(lgv1.LostReason_name)
)

func appendJSONTime(dst []byte, c *encodeCache, ts *timestamppb.Timestamp) ([]byte, error) {
	if ts == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '"')
	dst, err := appendProtoTime(dst, c, ts.GetSeconds(), ts.GetNanos())
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

// appendJSONText is appendJSONString, or s quoted as it is when it is
// plain (indexer.PlainText).
func appendJSONText(dst []byte, s string, plain bool) ([]byte, bool) {
	if !plain {
		return appendJSONString(dst, s)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// appendJSONString appends s as protojson quotes it: only the quote, the
// backslash and control characters escaped (\b \f \n \r \t or \u00xx), the
// rest as UTF-8. It reports false for invalid UTF-8, which protojson
// refuses too.
func appendJSONString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	for {
		n := jsonPlainLen(s)
		dst = append(dst, s[:n]...)
		if n == len(s) {
			return append(dst, '"'), true
		}
		s = s[n:]
		c := s[0]
		if c >= utf8.RuneSelf {
			// Checked rune by rune rather than with utf8.ValidString
			// up front, which goes a byte at a time after the first
			// non-ASCII byte.
			r, size := utf8.DecodeRuneInString(s)
			if r == utf8.RuneError && size == 1 {
				return dst, false
			}
			dst = append(dst, s[:size]...)
			s = s[size:]
			continue
		}
		s = s[1:]
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
	}
}

// The scans below test 8 bytes at a time (SWAR): URLs, anchors and
// titles are mostly plain ASCII, and a byte at a time is most of the cost
// of a text row.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load8 reads s[i:i+8] as a little-endian word; the compiler merges the
// byte loads into one.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasByte is non-zero when a byte of w equals b (exact as a boolean).
func hasByte(w uint64, b byte) uint64 {
	x := w ^ (ones * uint64(b))
	return (x - ones) &^ x & highs
}

// jsonPlainLen returns the length of the longest prefix of s that JSON
// carries as it is without a further look: printable ASCII but the quote
// and the backslash.
func jsonPlainLen(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		// A byte below 0x20 (exact as a boolean for bytes below 0x80),
		// a quote, a backslash, or a byte of 0x80 and above.
		if (w-ones*0x20)&^w&highs|hasByte(w, '"')|hasByte(w, '\\')|w&highs != 0 {
			break
		}
	}
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	return i
}

// csvWriter writes a header row and one row per backlink, byte for byte
// what encoding/csv writes for linkrow.AppendFields, as the query
// commands' --format csv does (fields quoted only when they need it, LF
// line ends), without the []string of every row and the time.Format of
// every time.
type csvWriter struct {
	textWriter
	dates  encodeCache
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
	c.buf = appendCSV(c.buf, &c.dates, bl, 0)
	return c.maybeFlush()
}

func (c *csvWriter) newEncoder() indexer.Encoder {
	var dates encodeCache
	return func(dst []byte, bl *lgv1.Backlink, plain indexer.PlainFields) ([]byte, error) {
		return appendCSV(dst, &dates, bl, plain), nil
	}
}

func (c *csvWriter) writeEncoded(b []byte) error {
	if !c.header {
		c.writeHeader()
	}
	return c.textWriter.writeEncoded(b)
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
func appendCSV(dst []byte, c *encodeCache, bl *lgv1.Backlink, plain indexer.PlainFields) []byte {
	if plain&indexer.PlainSourceURL != 0 {
		dst = append(dst, bl.SourceUrl...)
	} else {
		dst = appendCSVField(dst, bl.SourceUrl)
	}
	dst = append(dst, ',')
	dst, _ = c.appendTarget(dst, bl.TargetUrl, func(dst []byte, s string) ([]byte, bool) { return appendCSVField(dst, s), true })
	dst = append(dst, ',')
	dst = appendCSVField(dst, bl.AnchorText)
	dst = append(dst, ',')
	dst = appendCSVRel(dst, bl.Rel)
	dst = append(dst, ',')
	dst = appendCSVField(dst, typeName(bl.Type))
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.RedirectStatus), 10)
	dst = append(dst, ',')
	dst = strconv.AppendBool(dst, bl.Nofollow)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, c, bl.FirstSeen)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, c, bl.LastSeen)
	dst = append(dst, ',')
	if plain&indexer.PlainSourceTitle != 0 {
		dst = append(dst, bl.SourceTitle...)
	} else {
		dst = appendCSVField(dst, bl.SourceTitle)
	}
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.SourceStatus), 10)
	dst = append(dst, ',')
	dst = appendCSVTime(dst, c, bl.LostAt)
	dst = append(dst, ',')
	dst = appendCSVField(dst, linkrow.ReasonName(bl.LostReason))
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.SourceAuthority), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(bl.SourcePageAuthority), 10)
	dst = append(dst, ',')
	if len(bl.History) > 0 {
		dst = appendCSVField(dst, linkrow.History(bl.History))
	}
	return append(dst, '\n')
}

func appendCSVTime(dst []byte, c *encodeCache, ts *timestamppb.Timestamp) []byte {
	if ts == nil {
		return dst
	}
	return appendRFC3339Nano(dst, c, ts.GetSeconds(), ts.GetNanos())
}

// appendCSVRel appends the rel tokens joined by spaces as one field,
// without joining them first when none needs quotes.
func appendCSVRel(dst []byte, rel []string) []byte {
	if len(rel) < 2 {
		if len(rel) == 1 {
			dst = appendCSVField(dst, rel[0])
		}
		return dst
	}
	// The joined field needs quotes if a token does, or if it starts
	// with a space (an empty first token).
	for _, r := range rel {
		if r == "" || csvNeedsQuotes(r) {
			return appendCSVField(dst, strings.Join(rel, " "))
		}
	}
	for i, r := range rel {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, r...)
	}
	return dst
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
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		// The four bytes are all below '-': a word without any such byte
		// (most of a URL) needs one test, not four.
		if (w-ones*'-')&^w&highs == 0 {
			continue
		}
		if hasByte(w, ',')|hasByte(w, '"')|hasByte(w, '\r')|hasByte(w, '\n') != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
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
