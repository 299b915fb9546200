package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// DefaultMaxResumes is RemoteSource.MaxResumes when it is zero.
const DefaultMaxResumes = 5

// DefaultReconnectWait is RemoteSource.ReconnectWait when it is zero.
const DefaultReconnectWait = time.Minute

// RemoteSource exports from a linkgraph server's Export call. When the
// stream breaks (the connection drops, the server restarts) it calls
// Export again with the resume token of the last batch received, so every
// row arrives exactly once. Each part is read from one snapshot on the
// server, so a resumed export is consistent only part by part: what
// changed after the resume point between the parts shows as such.
type RemoteSource struct {
	Client  lgv1.LinkGraphServiceClient
	Request *lgv1.ExportRequest
	// MaxResumes bounds the resumes in a row that receive nothing
	// (default DefaultMaxResumes); a batch received resets the count.
	MaxResumes int
	// Backoff is the wait before the first resume in a row, doubled for
	// each further one up to 10s (default 200ms).
	Backoff time.Duration
	// ReconnectWait bounds how long a resume waits for the server to be
	// reachable again (default DefaultReconnectWait): a server gone for
	// good must end the export with an error, not hang it.
	ReconnectWait time.Duration
	// Logger, if set, reports each resume.
	Logger *slog.Logger

	// Resumes counts the resumes of the last Rows call.
	Resumes int
}

var _ Source = (*RemoteSource)(nil)

// Rows implements Source.
func (s *RemoteSource) Rows(ctx context.Context, fn func(*lgv1.Backlink) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when fn fails
	req := proto.Clone(s.Request).(*lgv1.ExportRequest)
	maxResumes, wait := s.MaxResumes, s.Backoff
	if maxResumes == 0 {
		maxResumes = DefaultMaxResumes
	}
	if wait == 0 {
		wait = 200 * time.Millisecond
	}
	s.Resumes = 0
	failed := 0
	for {
		rows, err := s.receive(ctx, req, s.Resumes > 0, fn)
		var stop stopError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &stop):
			return stop.err
		case ctx.Err() != nil:
			return ctx.Err()
		case !resumable(err) || failed >= maxResumes:
			return err
		}
		if rows > 0 {
			failed, wait = 0, s.Backoff
			if wait == 0 {
				wait = 200 * time.Millisecond
			}
		}
		failed++
		s.Resumes++
		if s.Logger != nil {
			s.Logger.Warn("export stream broken; resuming", "err", err, "resume", s.Resumes, "from_start", req.GetResumeToken() == s.Request.GetResumeToken())
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// stopError is an error of fn, which ends the export without a resume.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// receive runs one Export call, passing its rows to fn and keeping the
// last batch's token in req. It returns the rows received. A resume waits
// for the connection to come back rather than failing at once while it
// reconnects, for ReconnectWait at most.
func (s *RemoteSource) receive(ctx context.Context, req *lgv1.ExportRequest, resume bool, fn func(*lgv1.Backlink) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opts []grpc.CallOption
	var timer *time.Timer
	limit := cmp.Or(s.ReconnectWait, DefaultReconnectWait)
	if resume {
		opts = append(opts, grpc.WaitForReady(true))
		timer = time.AfterFunc(limit, cancel)
	}
	stream, err := s.Client.Export(ctx, req, opts...)
	if timer != nil && !timer.Stop() {
		return 0, fmt.Errorf("export: the server did not come back within %v to resume the export (%v)", limit, cmp.Or(err, context.Canceled))
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		b, err := stream.Recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		for _, bl := range b.GetRows() {
			if err := fn(bl); err != nil {
				return n, stopError{err}
			}
		}
		n += len(b.GetRows())
		if b.GetResumeToken() != "" {
			req.ResumeToken = b.GetResumeToken()
		}
	}
}

// resumable reports whether a failed Export is worth resuming: the
// transport broke, not the request.
func resumable(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}
