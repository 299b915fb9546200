package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Shape says how the fields of a Record combine when two records for the
// same key merge.
type Shape byte

const (
	// ShapeSum adds every field.
	ShapeSum Shape = 1
	// ShapeSumSpan holds sums then (first, last): the sums add; first keeps
	// the minimum non-zero value and last the maximum. (Shape 2, a span
	// alone, is no longer written.)
	ShapeSumSpan Shape = 3
)

// Record is an aggregate value: a shape and its fields. Encoded, it is the
// shape byte, the field count and the fields as signed varints.
type Record struct {
	Shape  Shape
	Fields []int64
}

var errBadRecord = errors.New("store: malformed aggregate record")

// DecodeRecord parses an encoded Record.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 2 {
		return Record{}, errBadRecord
	}
	r := Record{Shape: Shape(b[0]), Fields: make([]int64, b[1])}
	b = b[2:]
	for i := range r.Fields {
		v, n := binary.Varint(b)
		if n <= 0 {
			return Record{}, errBadRecord
		}
		r.Fields[i] = v
		b = b[n:]
	}
	return r, nil
}

// Append appends the encoded record to dst.
func (r Record) Append(dst []byte) []byte {
	dst = append(dst, byte(r.Shape), byte(len(r.Fields)))
	for _, f := range r.Fields {
		dst = binary.AppendVarint(dst, f)
	}
	return dst
}

// Merge combines o into r. Records of one key always have one shape; a
// shorter record is padded with zero fields.
func (r *Record) Merge(o Record) error {
	if r.Shape != o.Shape {
		return fmt.Errorf("%w: shapes %d and %d for one key", errBadRecord, r.Shape, o.Shape)
	}
	for len(r.Fields) < len(o.Fields) {
		r.Fields = append(r.Fields, 0)
	}
	span := -1 // index of the first field of the (first, last) pair
	if r.Shape == ShapeSumSpan {
		span = len(r.Fields) - 2
	}
	for i, v := range o.Fields {
		switch {
		case i == span:
			if v != 0 && (r.Fields[i] == 0 || v < r.Fields[i]) {
				r.Fields[i] = v
			}
		case i == span+1 && span >= 0:
			r.Fields[i] = max(r.Fields[i], v)
		default:
			r.Fields[i] += v
		}
	}
	return nil
}
