package indexer

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
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
	q := backlinksQuery(req)
	q.PageSize = MaxPageSize
	for {
		page, err := s.Index.Backlinks(stream.Context(), q)
		if err != nil {
			return toStatus(err)
		}
		for _, bl := range page.Backlinks {
			if err := stream.Send(bl); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

// ReferringDomains implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) ReferringDomains(ctx context.Context, req *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error) {
	resp, err := s.Index.ReferringDomains(ctx, req)
	return resp, toStatus(err)
}

// StreamReferringDomains implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) StreamReferringDomains(req *lgv1.ReferringDomainsRequest, stream grpc.ServerStreamingServer[lgv1.ReferringDomain]) error {
	return streamPages(stream, func(size int32, token string) ([]*lgv1.ReferringDomain, string, error) {
		r, err := s.Index.ReferringDomains(stream.Context(), &lgv1.ReferringDomainsRequest{
			Target: req.GetTarget(), Scope: req.GetScope(), Filter: req.GetFilter(), PageSize: size, PageToken: token,
		})
		return r.GetDomains(), r.GetNextPageToken(), err
	}, req.GetPageToken())
}

// Anchors implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Anchors(ctx context.Context, req *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error) {
	resp, err := s.Index.Anchors(ctx, req)
	return resp, toStatus(err)
}

// StreamAnchors implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) StreamAnchors(req *lgv1.AnchorsRequest, stream grpc.ServerStreamingServer[lgv1.Anchor]) error {
	return streamPages(stream, func(size int32, token string) ([]*lgv1.Anchor, string, error) {
		r, err := s.Index.Anchors(stream.Context(), &lgv1.AnchorsRequest{
			Target: req.GetTarget(), Scope: req.GetScope(), Filter: req.GetFilter(), PageSize: size, PageToken: token,
		})
		return r.GetAnchors(), r.GetNextPageToken(), err
	}, req.GetPageToken())
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

// toStatus maps index errors to gRPC status errors; nil stays nil.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
