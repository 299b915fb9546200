package indexer

import (
	"context"
	"errors"

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

// Backlinks implements lgv1.LinkGraphServiceServer.
func (s *GRPCServer) Backlinks(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
	page, err := s.Index.Backlinks(ctx, Query{
		Target: req.GetTarget(), Scope: req.GetScope(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &lgv1.BacklinksResponse{Backlinks: page.Backlinks, NextPageToken: page.NextPageToken}, nil
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
