package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

// ExportPath is the HTTP download of the Export call, served by
// Server.Gateway:
//
//	GET /v1/export?format=ndjson|csv&target=...&scope=...&filter.*=...&resume_token=...&resume_tokens=true
//
// The query parameters are ExportRequest's fields as on the other routes,
// plus format (ndjson, the default, or csv) and resume_tokens. The body is
// one row per line, in the order of Export: NDJSON (application/x-ndjson),
// each row a Backlink in protojson with the proto field names and every
// field; or CSV (text/csv) with a header row and the columns of
// linkrow.Columns, as the CLI's TSV. resume_tokens=true adds to every row
// the token that resumes the download after it: a "resume_token" key in
// NDJSON, a last "resume_token" column in CSV (the export then runs in
// batches of one row, which costs a token per row). A broken download is
// resumed by asking again with resume_token set to the last complete row's
// token; tokens of the gRPC Export's batches work too.
//
// The body is compressed (Content-Encoding) with zstd or gzip when the
// request's Accept-Encoding allows it, zstd first: an export is mostly
// URLs, which shrink 6 to 14 times. Go's client and curl --compressed
// ask for it and undo it on their own.
//
// Bad input (an unknown format, a bad target, scope or filter, a token of
// another export or tampered with, batch_size out of range) is a 400 JSON
// error before any byte of the body. The status is sent with the first
// batch of rows (or at the end of an export with none), so a narrow filter
// over a large index can take a while to answer. An error after that, when
// the status can no longer change, aborts the connection: the client sees
// a truncated transfer (an HTTP/1.1 chunked body without its last chunk,
// an HTTP/2 stream reset), never a complete-looking short file.
const ExportPath = "/v1/export"

// exportFlushEvery bounds how long written rows wait in buffers when the
// scan finds them slowly (a narrow filter over a large index); rows found
// quickly go out as the buffers fill.
const exportFlushEvery = 200 * time.Millisecond

// exportParams are the query parameters of the download that are not
// ExportRequest fields.
var exportParams = utilities.NewDoubleArray([][]string{{"format"}, {"resume_tokens"}})

// exportHandler serves ExportPath by running svc.Export in process with
// an exportStream that writes each batch to the response.
type exportHandler struct {
	svc lgv1.LinkGraphServiceServer
	// mux and marshaler render errors as the gateway renders its own.
	mux       *runtime.ServeMux
	marshaler runtime.Marshaler
	stall     time.Duration // see Config.ExportStall
}

func (h *exportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { runtime.HTTPError(r.Context(), h.mux, h.marshaler, w, r, err) }
	q := r.URL.Query()
	format := q.Get("format")
	switch format {
	case "":
		format = "ndjson"
	case "ndjson", "csv":
	default:
		fail(status.Errorf(codes.InvalidArgument, "format %q: use ndjson or csv", format))
		return
	}
	tokens := false
	if s := q.Get("resume_tokens"); s != "" {
		var err error
		if tokens, err = strconv.ParseBool(s); err != nil {
			fail(status.Errorf(codes.InvalidArgument, "resume_tokens %q: use true or false", s))
			return
		}
	}
	req := &lgv1.ExportRequest{}
	if err := runtime.PopulateQueryParameters(req, q, exportParams); err != nil {
		fail(status.Errorf(codes.InvalidArgument, "%v", err))
		return
	}
	if tokens {
		// A token comes with each batch, so a token per row needs batches
		// of one row.
		req.BatchSize = 1
	}
	st := &exportStream{ctx: r.Context(), w: w, format: format, tokens: tokens, encoding: contentEncoding(r.Header.Values("Accept-Encoding")), stall: h.stall}
	err := h.svc.Export(req, st)
	if err == nil {
		err = st.finish()
	}
	switch {
	case err == nil:
	case !st.started:
		fail(err)
	default:
		// The status line is gone: only a broken connection can still tell
		// the client that the body is incomplete.
		panic(http.ErrAbortHandler)
	}
}

// exportStream is the server side of an Export whose batches go to an
// HTTP response rather than to a gRPC stream. It is used by one call at a
// time, as a gRPC stream is.
type exportStream struct {
	ctx    context.Context
	w      http.ResponseWriter
	format string
	tokens bool

	// encoding is the Content-Encoding, "" for none; zw compresses.
	encoding string
	zw       interface {
		io.WriteCloser
		Flush() error
	}

	started   bool
	bw        *bufio.Writer
	cw        *csv.Writer
	fields    []string
	raw       []byte
	line      bytes.Buffer
	lastFlush time.Time
	// stall bounds each wait for the client to take bytes: every flush
	// moves the write deadline that far ahead (see Config.ExportStall).
	stall time.Duration
}

var _ grpc.ServerStreamingServer[lgv1.ExportBatch] = (*exportStream)(nil)

// rowJSON is the JSON of a row as the gateway's marshaler writes it.
var rowJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// start sends the status and headers, and the CSV header row.
func (s *exportStream) start() error {
	s.started = true
	h := s.w.Header()
	name := "linkgraph-export." + s.format
	if s.format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	var body io.Writer = s.w
	switch s.encoding {
	case "zstd":
		// One goroutine, the handler's: a failed export then just drops
		// the encoder, without the end of the stream that would make a
		// cut body look whole.
		zw, err := zstd.NewWriter(s.w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		s.zw, body = zw, zw
	case "gzip":
		zw, err := gzip.NewWriterLevel(s.w, gzip.BestSpeed)
		if err != nil {
			return err
		}
		s.zw, body = zw, zw
	}
	if s.zw != nil {
		h.Set("Content-Encoding", s.encoding)
	}
	s.extendDeadline()
	s.w.WriteHeader(http.StatusOK)
	s.bw = bufio.NewWriterSize(body, 64<<10)
	s.lastFlush = time.Now()
	if s.format != "csv" {
		return nil
	}
	s.cw = csv.NewWriter(s.bw)
	head := linkrow.Columns()
	if s.tokens {
		head = append(head, "resume_token")
	}
	return s.cw.Write(head)
}

// Send writes the rows of b.
func (s *exportStream) Send(b *lgv1.ExportBatch) error {
	first := !s.started
	if first {
		if err := s.start(); err != nil {
			return err
		}
	}
	for _, bl := range b.Rows {
		if err := s.writeRow(bl, b.ResumeToken); err != nil {
			return fmt.Errorf("cannot write export row: %w", err)
		}
	}
	// The first batch goes out at once, so that the client sees the status
	// and the first rows without waiting for the buffers to fill.
	if first || time.Since(s.lastFlush) >= exportFlushEvery {
		return s.flush()
	}
	return nil
}

func (s *exportStream) writeRow(bl *lgv1.Backlink, token string) error {
	if s.cw != nil {
		s.fields = linkrow.AppendFields(s.fields[:0], bl)
		if s.tokens {
			s.fields = append(s.fields, token)
		}
		return s.cw.Write(s.fields)
	}
	var err error
	if s.raw, err = rowJSON.MarshalAppend(s.raw[:0], bl); err != nil {
		return err
	}
	// protojson varies its spacing on purpose; compact it so that the
	// bytes of a row do not depend on the build.
	s.line.Reset()
	if err := json.Compact(&s.line, s.raw); err != nil {
		return err
	}
	if s.tokens {
		// The object ends with '}'; tokens are base64url, safe in a JSON
		// string as they are.
		s.line.Truncate(s.line.Len() - 1)
		s.line.WriteString(`,"resume_token":"` + token + `"}`)
	}
	s.line.WriteByte('\n')
	_, err = s.bw.Write(s.line.Bytes())
	return err
}

// extendDeadline gives the client s.stall from now to take what is
// written next.
func (s *exportStream) extendDeadline() {
	if s.stall > 0 {
		// Not every ResponseWriter has deadlines (ErrNotSupported): those
		// keep the server's own timeouts.
		_ = http.NewResponseController(s.w).SetWriteDeadline(time.Now().Add(s.stall))
	}
}

// flush sends what the buffers hold to the client.
func (s *exportStream) flush() error {
	s.extendDeadline()
	if s.cw != nil {
		s.cw.Flush()
		if err := s.cw.Error(); err != nil {
			return fmt.Errorf("cannot write export: %w", err)
		}
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("cannot write export: %w", err)
	}
	if s.zw != nil {
		if err := s.zw.Flush(); err != nil {
			return fmt.Errorf("cannot write export: %w", err)
		}
	}
	s.lastFlush = time.Now()
	if err := http.NewResponseController(s.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("cannot write export: %w", err)
	}
	return nil
}

// finish ends a successful export: the headers of one without rows, the
// rest of the buffers and the end of the compressed stream.
func (s *exportStream) finish() error {
	if !s.started {
		if err := s.start(); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	if s.zw == nil {
		return nil
	}
	if err := s.zw.Close(); err != nil {
		return fmt.Errorf("cannot write export: %w", err)
	}
	return nil
}

// contentEncoding picks the compression of a download from the request's
// Accept-Encoding values: zstd, else gzip, else none ("").
func contentEncoding(accept []string) string {
	var gz, zst bool
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue // refused
				}
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip":
				gz = true
			case "zstd":
				zst = true
			}
		}
	}
	switch {
	case zst:
		return "zstd"
	case gz:
		return "gzip"
	}
	return ""
}

func (s *exportStream) Context() context.Context { return s.ctx }

// SetHeader, SendHeader and SetTrailer accept gRPC metadata and drop it:
// the download has only the headers start sets.
func (s *exportStream) SetHeader(metadata.MD) error  { return nil }
func (s *exportStream) SendHeader(metadata.MD) error { return nil }
func (s *exportStream) SetTrailer(metadata.MD)       {}

func (s *exportStream) SendMsg(m any) error {
	b, ok := m.(*lgv1.ExportBatch)
	if !ok {
		return status.Errorf(codes.Internal, "apiserver: export sends %T, not an ExportBatch", m)
	}
	return s.Send(b)
}

// RecvMsg has nothing to receive: the request came with the call.
func (s *exportStream) RecvMsg(any) error {
	return status.Error(codes.Internal, "apiserver: RecvMsg on a server-streaming export")
}
