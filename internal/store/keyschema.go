package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strings"
	"unsafe"

	"github.com/cockroachdb/crlib/crbytes"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/colblk"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// edgeKeySchema lays the keys of a data block out in columns, edge keys
// split into their parts. An edge key is
//
//	e target 0 id(domain) id(source) rest
//
// (see indexer/keys.go; ids as indexer/ids.go writes them). Pebble's
// default schema keeps each key whole, so the block interleaves targets,
// ids and anchors, which zstd compresses less well than each apart; here
// the target ('e' to the 0) goes in a prefix-compressed column, which stores
// a target once for all its edges in a bundle, the ids in two integer
// columns and the rest (type, anchor, value) in a bytes column. Any other
// key, and an edge key whose ids are not in that form, keeps its bytes in
// the first and last columns with ids 0 (no id is 0), so every key reads
// back exactly as written.
//
// The first column is sorted, as its prefix compression and binary search
// need: a key's first column is a prefix of the key, which ends at the
// key's first 0 when the key is an edge's, and keys sort bytewise with
// edge targets holding no 0.
var edgeKeySchema = colblk.KeySchema{
	Name: "linkgraph.edge-columns.1",
	ColumnTypes: []colblk.DataType{
		colHead:   colblk.DataTypePrefixBytes,
		colDomain: colblk.DataTypeUint,
		colSource: colblk.DataTypeUint,
		colRest:   colblk.DataTypeBytes,
	},
	NewKeyWriter: func() colblk.KeyWriter {
		w := &edgeKeyWriter{}
		w.heads.Init(16)
		w.domains.InitWithDefault()
		w.sources.InitWithDefault()
		w.rests.Init()
		return w
	},
	InitKeySeekerMetadata: func(meta *colblk.KeySeekerMetadata, d *colblk.DataBlockDecoder) {
		(*edgeKeySeeker)(unsafe.Pointer(meta)).init(d)
	},
	KeySeeker: func(meta *colblk.KeySeekerMetadata) colblk.KeySeeker {
		return (*edgeKeySeeker)(unsafe.Pointer(meta))
	},
}

const (
	colHead = iota
	colDomain
	colSource
	colRest
	colCount
)

// keySchemas are the schemas Pebble may find in tables: the default one
// wrote the tables of earlier releases.
var keySchemas = func() map[string]*pebble.KeySchema {
	def := colblk.DefaultKeySchema(pebble.DefaultComparer, 16)
	return map[string]*pebble.KeySchema{def.Name: &def, edgeKeySchema.Name: &edgeKeySchema}
}()

// checkKeySchema refuses, with ErrLayout, an index that a later linkgraph
// writes in a key schema this one does not know: Pebble would panic on the
// first read of one of its tables. Pebble's OPTIONS file names the schema
// of the tables it writes.
func checkKeySchema(indexDir string) error {
	desc, err := pebble.Peek(indexDir, vfs.Default)
	if errors.Is(err, os.ErrNotExist) || err == nil && desc.OptionsFilename == "" {
		return nil
	}
	if err != nil {
		return err
	}
	b, err := os.ReadFile(desc.OptionsFilename)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "key_schema="); ok && keySchemas[name] == nil {
			return fmt.Errorf("%w (its tables are in key schema %q)", ErrLayout, name)
		}
	}
	return nil
}

// splitKey splits a key into its columns (see edgeKeySchema).
func splitKey(k []byte) (head []byte, domain, source uint64, rest []byte) {
	if len(k) == 0 || k[0] != PrefixEdge {
		return k, 0, 0, nil
	}
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return k, 0, 0, nil
	}
	head, rest = k[:i+1], k[i+1:]
	d, n := schemaID(rest)
	if n == 0 {
		return head, 0, 0, rest
	}
	s, m := schemaID(rest[n:])
	if m == 0 {
		return head, 0, 0, rest
	}
	return head, d, s, rest[n+m:]
}

// AppendID appends an id as the index writes ids in keys (see package
// indexer): its length (1-8) and its big-endian bytes without leading
// zeros, an encoding that sorts as the numbers do.
func AppendID(dst []byte, id uint64) []byte {
	var b [9]byte
	return append(dst, b[:putID(b[:], id)]...)
}

// putID writes id as AppendID does into b, which has room for 9 bytes,
// and returns how many bytes that took.
func putID(b []byte, id uint64) int {
	n := max(1, (bits.Len64(id)+7)/8)
	b[0] = byte(n)
	binary.BigEndian.PutUint64(b[1:9], id<<(64-8*n))
	return 1 + n
}

// ReadID reads an id from the start of b and returns it and its length,
// 0 when b does not start with one.
func ReadID(b []byte) (uint64, int) {
	if len(b) == 0 || b[0] < 1 || b[0] > 8 || len(b) < 1+int(b[0]) {
		return 0, 0
	}
	var id uint64
	for _, c := range b[1 : 1+b[0]] {
		id = id<<8 | uint64(c)
	}
	return id, 1 + int(b[0])
}

// schemaID reads an id as ReadID does, but only in the form AppendID
// writes (no leading zero byte) and not 0, so that writing it again gives
// back the same bytes; n is 0 otherwise.
func schemaID(b []byte) (id uint64, n int) {
	id, n = ReadID(b)
	if n == 0 || id == 0 || n > 2 && b[1] == 0 {
		return 0, 0
	}
	return id, n
}

// edgeKeyWriter writes the key columns of a data block.
type edgeKeyWriter struct {
	heads            colblk.PrefixBytesBuilder
	domains, sources colblk.UintBuilder
	rests            colblk.RawBytesBuilder
	prev             []byte // the last key written
}

var _ colblk.KeyWriter = (*edgeKeyWriter)(nil)

// ComparePrev compares key with the last key written. The comparer's
// prefix of a key is the whole key (pebble.DefaultComparer).
func (w *edgeKeyWriter) ComparePrev(key []byte) colblk.KeyComparison {
	c := colblk.KeyComparison{PrefixLen: int32(len(key))}
	if w.heads.Rows() == 0 {
		c.UserKeyComparison = 1
		return c
	}
	c.CommonPrefixLen = int32(crbytes.CommonPrefix(w.prev, key))
	c.UserKeyComparison = int32(bytes.Compare(key, w.prev))
	return c
}

func (w *edgeKeyWriter) WriteKey(row int, key []byte, _, sharedWithPrev int32) {
	head, domain, source, rest := splitKey(key)
	// The heads share what their keys share, up to the end of the
	// shorter head: were the keys to share more, the previous head would
	// end at a 0 they share, where this one ends too.
	w.heads.Put(head, min(int(sharedWithPrev), len(head)))
	if domain != 0 {
		w.domains.Set(row, domain)
		w.sources.Set(row, source)
	}
	w.rests.Put(rest)
	w.prev = append(w.prev[:0], key...)
}

func (w *edgeKeyWriter) MaterializeKey(dst []byte, row int) []byte {
	dst = append(dst, w.heads.UnsafeGet(row)...)
	if d := w.domains.Get(row); d != 0 {
		dst = AppendID(AppendID(dst, d), w.sources.Get(row))
	}
	return append(dst, w.rests.UnsafeGet(row)...)
}

func (w *edgeKeyWriter) NumColumns() int                  { return colCount }
func (w *edgeKeyWriter) DataType(col int) colblk.DataType { return edgeKeySchema.ColumnTypes[col] }
func (w *edgeKeyWriter) FinishHeader([]byte)              {}

func (w *edgeKeyWriter) Reset() {
	w.heads.Reset()
	w.domains.Reset()
	w.sources.Reset()
	w.rests.Reset()
	w.prev = w.prev[:0]
}

func (w *edgeKeyWriter) Size(rows int, offset uint32) uint32 {
	offset = w.heads.Size(rows, offset)
	offset = w.domains.Size(rows, offset)
	offset = w.sources.Size(rows, offset)
	return w.rests.Size(rows, offset)
}

func (w *edgeKeyWriter) Finish(col, rows int, offset uint32, buf []byte) uint32 {
	switch col {
	case colHead:
		return w.heads.Finish(0, rows, offset, buf)
	case colDomain:
		return w.domains.Finish(0, rows, offset, buf)
	case colSource:
		return w.sources.Finish(0, rows, offset, buf)
	case colRest:
		return w.rests.Finish(0, rows, offset, buf)
	}
	panic(fmt.Sprintf("store: no key column %d", col))
}

func (w *edgeKeyWriter) WriteDebug(dst io.Writer, rows int) {
	fmt.Fprint(dst, "heads: ")
	w.heads.WriteDebug(dst, rows)
	fmt.Fprint(dst, "\ndomains: ")
	w.domains.WriteDebug(dst, rows)
	fmt.Fprint(dst, "\nsources: ")
	w.sources.WriteDebug(dst, rows)
	fmt.Fprint(dst, "\nrests: ")
	w.rests.WriteDebug(dst, rows)
	fmt.Fprintln(dst)
}

// edgeKeySeeker reads the keys of a data block. It lives in the block's
// metadata, where pointers are invisible to the garbage collector: it
// holds pointers into the block only.
type edgeKeySeeker struct {
	heads            colblk.PrefixBytes
	domains, sources colblk.UnsafeUints
	rests            colblk.RawBytes
}

var _ uint = colblk.KeySeekerMetadataSize - uint(unsafe.Sizeof(edgeKeySeeker{}))

var _ colblk.KeySeeker = (*edgeKeySeeker)(nil)

func (s *edgeKeySeeker) init(d *colblk.DataBlockDecoder) {
	bd := d.BlockDecoder()
	s.heads = bd.PrefixBytes(colHead)
	s.domains = bd.Uints(colDomain)
	s.sources = bd.Uints(colSource)
	s.rests = bd.RawBytes(colRest)
}

// ids writes row's ids into buf as its key holds them and returns them,
// none when the row's key keeps its bytes whole.
func (s *edgeKeySeeker) ids(buf *[18]byte, row int) []byte {
	d := s.domains.At(row)
	if d == 0 {
		return nil
	}
	n := putID(buf[:], d)
	return buf[:n+putID(buf[n:], s.sources.At(row))]
}

// tail appends to dst the part of row's key after its head.
func (s *edgeKeySeeker) tail(dst []byte, row int) []byte {
	var buf [18]byte
	return append(append(dst, s.ids(&buf, row)...), s.rests.At(row)...)
}

// compareTail compares the part of row's key after its head with t.
func (s *edgeKeySeeker) compareTail(row int, t []byte) int {
	var buf [18]byte
	ids := s.ids(&buf, row)
	n := min(len(ids), len(t))
	if c := bytes.Compare(ids[:n], t[:n]); c != 0 || n < len(ids) {
		if c == 0 {
			return 1 // t is a proper prefix of the row's tail
		}
		return c
	}
	return bytes.Compare(s.rests.At(row), t[n:])
}

// IsLowerBound reports whether every key of the block is at least k. The
// schema's keys have no suffix to replace (the comparer's prefix is the
// whole key).
func (s *edgeKeySeeker) IsLowerBound(k []byte, syntheticSuffix []byte) bool {
	head, _, _, _ := splitKey(k)
	if c := bytes.Compare(s.heads.UnsafeFirstSlice(), head); c != 0 {
		return c > 0
	}
	return s.compareTail(0, k[len(head):]) >= 0
}

// SeekGE returns the first row whose key is at least key, and whether it
// is key.
func (s *edgeKeySeeker) SeekGE(key []byte, boundRow int, searchDir int8) (int, bool) {
	head, _, _, _ := splitKey(key)
	row, eq := s.heads.Search(head)
	if !eq {
		return row, false
	}
	// The rows with this head follow; find the first whose tail is at
	// least key's.
	t := key[len(head):]
	lo, hi := row, s.heads.Rows()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !s.headIs(m, head) || s.compareTail(m, t) >= 0 {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo, lo < s.heads.Rows() && s.headIs(lo, head) && s.compareTail(lo, t) == 0
}

// headIs reports whether row's head is head.
func (s *edgeKeySeeker) headIs(row int, head []byte) bool {
	a, b, c := s.heads.SharedPrefix(), s.heads.RowBundlePrefix(row), s.heads.RowSuffix(row)
	return len(a)+len(b)+len(c) == len(head) &&
		bytes.Equal(a, head[:len(a)]) && bytes.Equal(b, head[len(a):len(a)+len(b)]) && bytes.Equal(c, head[len(a)+len(b):])
}

func (s *edgeKeySeeker) MaterializeUserKey(it *colblk.PrefixBytesIter, prevRow, row int) []byte {
	if prevRow >= 0 && row == prevRow+1 {
		s.heads.SetNext(it)
	} else {
		s.heads.SetAt(it, row)
	}
	// The iterator's buffer holds the block's longest key.
	return s.tail(it.Buf, row)
}

func (s *edgeKeySeeker) MaterializeUserKeyWithSyntheticSuffix(it *colblk.PrefixBytesIter, suffix []byte, prevRow, row int) []byte {
	return append(s.MaterializeUserKey(it, prevRow, row), suffix...)
}
