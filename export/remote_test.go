package export_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/export"
	"github.com/linkgraph/linkgraph/indexer"
)

// serve answers the LinkGraphService on ix over gRPC on loopback until the
// test ends.
func serve(t *testing.T, ix *indexer.Index) string {
	addr, _ := serveGRPC(t, ix)
	return addr
}

// serveGRPC is serve, also returning the server, for a test that stops it.
func serveGRPC(t *testing.T, ix *indexer.Index) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	lgv1.RegisterLinkGraphServiceServer(srv, &indexer.GRPCServer{Index: ix})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv
}

// cutProxy forwards TCP connections to a backend and cuts each of the
// first cuts connections once limit bytes have come back from the
// backend, as a dropped connection does mid-transfer.
type cutProxy struct {
	backend string
	limit   int64
	cuts    atomic.Int32 // connections still to cut
	cut     atomic.Int32 // connections cut
	wg      sync.WaitGroup
}

func startCutProxy(t *testing.T, backend string, limit int64, cuts int32) (*cutProxy, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{backend: backend, limit: limit}
	p.cuts.Store(cuts)
	t.Cleanup(func() { lis.Close(); p.wg.Wait() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go p.forward(c)
		}
	}()
	return p, lis.Addr().String()
}

func (p *cutProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		io.Copy(b, c)
		// The client hung up: hang up on the backend too.
		b.Close()
		c.Close()
	}()
	if p.cuts.Add(-1) >= 0 {
		io.CopyN(c, b, p.limit)
		p.cut.Add(1)
		return // closes both ends
	}
	io.Copy(c, b)
}

// TestRemoteResumes exports over gRPC through a proxy that drops the
// first two connections midway: the export resumes with the last batch's
// token and the file is byte for byte the in-process export, so no row is
// lost or repeated.
func TestRemoteResumes(t *testing.T) {
	ix := testIndex(t, 5000)
	want, _ := run(t, all(ix), export.Options{Format: export.NDJSON})
	wantRaw, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	proxy, addr := startCutProxy(t, serve(t, ix), 300<<10, 2)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := &export.RemoteSource{Client: lgv1.NewLinkGraphServiceClient(conn), Backoff: 10 * time.Millisecond,
		Request: &lgv1.ExportRequest{Filter: &lgv1.Filter{IncludeLost: true}, BatchSize: 100}}
	got, st := run(t, src, export.Options{Format: export.NDJSON})
	gotRaw, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.cut.Load() != 2 || src.Resumes < 2 {
		t.Fatalf("%d connections cut, %d resumes; want 2 and at least 2 (the transfer is too small to cut?)", proxy.cut.Load(), src.Resumes)
	}
	if !bytes.Equal(gotRaw, wantRaw) {
		t.Fatalf("the resumed export has %d rows, %d bytes; the in-process one %d bytes", st.Rows, len(gotRaw), len(wantRaw))
	}
}

// TestRemoteBadRequest: a request the server refuses is not resumed.
func TestRemoteBadRequest(t *testing.T) {
	ix := testIndex(t, 100)
	conn, err := grpc.NewClient(serve(t, ix), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := &export.RemoteSource{Client: lgv1.NewLinkGraphServiceClient(conn), Request: &lgv1.ExportRequest{Target: "not a url"}}
	job, err := export.Create(export.Options{Format: export.CSV, Out: export.Stdout, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Run(context.Background(), src)
	if status.Code(err) != codes.InvalidArgument || src.Resumes != 0 {
		t.Fatalf("Run: %v after %d resumes; want InvalidArgument at once", err, src.Resumes)
	}
}

// TestRemoteServerGone stops the server during an export, for good: the
// resume waits ReconnectWait for it and then fails, naming why, rather
// than hang (it waited for ever).
func TestRemoteServerGone(t *testing.T) {
	addr, srv := serveGRPC(t, testIndex(t, 3000))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := &export.RemoteSource{Client: lgv1.NewLinkGraphServiceClient(conn), Backoff: 10 * time.Millisecond, ReconnectWait: 300 * time.Millisecond,
		Request: &lgv1.ExportRequest{BatchSize: 10}}
	rows := 0
	done := make(chan error, 1)
	go func() {
		done <- src.Rows(context.Background(), func(*lgv1.Backlink) error {
			if rows++; rows == 100 {
				go srv.Stop()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not come back within 300ms") {
			t.Errorf("Rows: %v after %d rows, want the server's absence named", err, rows)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Rows still waiting 30s after the server went away")
	}
}
