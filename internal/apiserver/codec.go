package apiserver

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// vtMessage is what protoc-gen-go-vtproto generates for the linkgraph.v1
// messages: marshalling without protobuf-go's reflection, which took 2-3
// times as long for a page of backlinks.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVTUnsafe([]byte) error
}

// codec is the gRPC codec of linkgraph's servers and clients. It speaks
// the standard protobuf wire format under the standard name ("proto"), so
// any gRPC client or server talks to it; it only marshals the messages of
// linkgraph.v1 faster. Other messages (health, reflection) go through
// protobuf-go.
type codec struct {
	// strict unmarshals with protobuf-go, which refuses a string field
	// that is not UTF-8 (the generated fast code does not check): a server
	// reads requests from strangers, and they are small.
	strict bool
}

var (
	serverCodec encoding.CodecV2 = codec{strict: true}
	clientCodec encoding.CodecV2 = codec{}
	// protoCodec is grpc-go's own, for the other messages and strict
	// unmarshalling.
	protoCodec = encoding.GetCodecV2("proto")
)

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return protoCodec.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok || c.strict {
		return protoCodec.Unmarshal(data, v)
	}
	// The message's strings point into one fresh copy of the bytes rather
	// than into a string each (a page of backlinks has 4 or 5 a row); the
	// copy is never reused, so they stay valid for as long as they are kept.
	if err := m.UnmarshalVTUnsafe(data.Materialize()); err != nil {
		return fmt.Errorf("cannot unmarshal %T: %w", v, err)
	}
	return nil
}

// A message left out of the vtproto generation would silently take the
// slow path.
var _ vtMessage = (*lgv1.BacklinksResponse)(nil)
