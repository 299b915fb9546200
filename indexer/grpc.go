package indexer

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
)

// GRPCServer serves the linkgraph.v1 LinkGraphService from an Index.
type GRPCServer struct {
	lgv1.UnimplementedLinkGraphServiceServer
	Index *Index
}

var _ lgv1.LinkGraphServiceServer = (*GRPCServer)(nil)

func backlinksQuery(req *lgv1.BacklinksRequest) Query {
	return Query{
		Target: req.GetTarget(), Scope: req.GetScope(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
		Filter: req.GetFilter(), Order: req.GetOrderBy(), Descending: req.GetDescending(),
		OnePerDomain: req.GetOnePerDomain(),
	}
}

// Backlinks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Backlinks(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
	page, err := s.Index.Backlinks(ctx, backlinksQuery(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &lgv1.BacklinksResponse{Backlinks: page.Backlinks, NextPageToken: page.NextPageToken}, nil
}

// StreamBacklinks implements lgv1.LinkGraphServiceServer: it sends every
// page of Backlinks, MaxPageSize rows at a time.
func (s *GRPCServer) StreamBacklinks(req *lgv1.BacklinksRequest, stream grpc.ServerStreamingServer[lgv1.Backlink]) error {
	return streamBacklinks(s.Backlinks, req, stream)
}

// ReferringDomains implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) ReferringDomains(ctx context.Context, req *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error) {
	resp, err := s.Index.ReferringDomains(ctx, req)
	return resp, toStatus(err)
}

// StreamReferringDomains implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) StreamReferringDomains(req *lgv1.ReferringDomainsRequest, stream grpc.ServerStreamingServer[lgv1.ReferringDomain]) error {
	return streamReferringDomains(s.ReferringDomains, req, stream)
}

// Anchors implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Anchors(ctx context.Context, req *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error) {
	resp, err := s.Index.Anchors(ctx, req)
	return resp, toStatus(err)
}

// StreamAnchors implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) StreamAnchors(req *lgv1.AnchorsRequest, stream grpc.ServerStreamingServer[lgv1.Anchor]) error {
	return streamAnchors(s.Anchors, req, stream)
}

// Summary implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Summary(ctx context.Context, req *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error) {
	resp, err := s.Index.Summary(ctx, req)
	return resp, toStatus(err)
}

// Outlinks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Outlinks(ctx context.Context, req *lgv1.OutlinksRequest) (*lgv1.OutlinksResponse, error) {
	resp, err := s.Index.Outlinks(ctx, req)
	return resp, toStatus(err)
}

// NewLinks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) NewLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*lgv1.BacklinksResponse, error) {
	page, err := s.Index.NewLinks(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &lgv1.BacklinksResponse{Backlinks: page.Backlinks, NextPageToken: page.NextPageToken}, nil
}

// LostLinks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) LostLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*lgv1.BacklinksResponse, error) {
	page, err := s.Index.LostLinks(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &lgv1.BacklinksResponse{Backlinks: page.Backlinks, NextPageToken: page.NextPageToken}, nil
}

// Velocity implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Velocity(ctx context.Context, req *lgv1.VelocityRequest) (*lgv1.VelocityResponse, error) {
	resp, err := s.Index.Velocity(ctx, req)
	return resp, toStatus(err)
}

// Batch sizes of Export.
const (
	DefaultExportBatch = 1000
	MaxExportBatch     = 10000
	// exportBatchBytes cuts a batch early when its rows reach this encoded
	// size: gRPC clients refuse messages over 4 MiB by default, and 10000
	// rows with long URLs and titles can exceed that.
	exportBatchBytes = 1 << 20
)

// Export implements lgv1.LinkGraphServiceServer: it sends the rows of
// Index.Export in batches, each with the token that resumes after its last
// row. The scan stops when the client cancels the stream.
func (s *GRPCServer) Export(req *lgv1.ExportRequest, stream grpc.ServerStreamingServer[lgv1.ExportBatch]) error {
	var sendErr error // an error of the stream, returned as it is
	err := s.exportBatches(stream.Context(), req, exportBatchBytes, func(b *lgv1.ExportBatch) error {
		sendErr = stream.Send(b)
		return sendErr
	})
	if sendErr != nil {
		return sendErr
	}
	return toStatus(err)
}

// exportBatches runs Index.Export for req and hands its rows to send in
// batches of req.batch_size rows or maxBytes encoded bytes, whichever is
// reached first; each batch carries the token that resumes after it. An
// error of send ends the export and is returned.
func (s *GRPCServer) exportBatches(ctx context.Context, req *lgv1.ExportRequest, maxBytes int, send func(*lgv1.ExportBatch) error) error {
	size := int(req.GetBatchSize())
	switch {
	case size == 0:
		size = DefaultExportBatch
	case size < 0 || size > MaxExportBatch:
		return fmt.Errorf("%w: batch_size %d out of range 1..%d", ErrInvalidArgument, size, MaxExportBatch)
	}
	q := ExportQuery{Target: req.GetTarget(), Scope: req.GetScope(), Filter: req.GetFilter(), ResumeToken: req.GetResumeToken()}
	var (
		batch  = &lgv1.ExportBatch{Rows: make([]*lgv1.Backlink, 0, size)}
		nbytes int
		last   []byte // position of the batch's last row
	)
	flush := func() error {
		tok, err := s.Index.ResumeToken(q, last)
		if err != nil {
			return err
		}
		batch.ResumeToken = tok
		if err := send(batch); err != nil {
			return err
		}
		// A new batch rather than a reset: gRPC may still read a sent
		// message (stats handlers, tracing) after Send returns.
		batch, nbytes = &lgv1.ExportBatch{Rows: make([]*lgv1.Backlink, 0, size)}, 0
		return nil
	}
	err := s.Index.Export(ctx, q, func(bl *lgv1.Backlink, pos []byte) error {
		batch.Rows = append(batch.Rows, bl)
		nbytes += proto.Size(bl)
		last = append(last[:0], pos...) // pos is valid only during the call
		if len(batch.Rows) >= size || nbytes >= maxBytes {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch.Rows) > 0 {
		err = flush()
	}
	return err
}

// The streaming views send every page of their unary view, MaxPageSize
// rows at a time; the gateway streams through the same functions.

func streamBacklinks(unary func(context.Context, *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error), req *lgv1.BacklinksRequest, stream grpc.ServerStreamingServer[lgv1.Backlink]) error {
	return streamPages(stream, func(size int32, token string) ([]*lgv1.Backlink, string, error) {
		q := proto.CloneOf(req)
		q.PageSize, q.PageToken = size, token
		r, err := unary(stream.Context(), q)
		return r.GetBacklinks(), r.GetNextPageToken(), err
	}, req.GetPageToken())
}

func streamReferringDomains(unary func(context.Context, *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error), req *lgv1.ReferringDomainsRequest, stream grpc.ServerStreamingServer[lgv1.ReferringDomain]) error {
	return streamPages(stream, func(size int32, token string) ([]*lgv1.ReferringDomain, string, error) {
		q := proto.CloneOf(req)
		q.PageSize, q.PageToken = size, token
		r, err := unary(stream.Context(), q)
		return r.GetDomains(), r.GetNextPageToken(), err
	}, req.GetPageToken())
}

func streamAnchors(unary func(context.Context, *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error), req *lgv1.AnchorsRequest, stream grpc.ServerStreamingServer[lgv1.Anchor]) error {
	return streamPages(stream, func(size int32, token string) ([]*lgv1.Anchor, string, error) {
		q := proto.CloneOf(req)
		q.PageSize, q.PageToken = size, token
		r, err := unary(stream.Context(), q)
		return r.GetAnchors(), r.GetNextPageToken(), err
	}, req.GetPageToken())
}

// streamPages sends every row of a paged view, MaxPageSize at a time.
func streamPages[T any](stream grpc.ServerStreamingServer[T], page func(size int32, token string) ([]*T, string, error), token string) error {
	for {
		rows, next, err := page(MaxPageSize, token)
		if err != nil {
			return toStatus(err)
		}
		for _, r := range rows {
			if err := stream.Send(r); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// Status maps an error of the index to a gRPC status error, for services
// that wrap GRPCServer.
func Status(err error) error { return toStatus(err) }

// toStatus maps index errors to gRPC status errors; nil stays nil.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err // nil, or already a status
	}
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrRankingRunning), errors.Is(err, rank.ErrSuperseded):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
