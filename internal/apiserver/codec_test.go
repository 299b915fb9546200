package apiserver_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
)

// TestCodecInterop checks that linkgraph's gRPC codec speaks the standard
// wire format both ways: a stock grpc-go client gets from a linkgraph
// server what a linkgraph client gets, and a linkgraph client reads a
// stock server's answers, for the generated messages and for the others
// (health).
func TestCodecInterop(t *testing.T) {
	ix := buildIndex(t)
	ours := startServer(t, ix, "", nil)

	stockSrv := grpc.NewServer()
	lgv1.RegisterLinkGraphServiceServer(stockSrv, &indexer.GRPCServer{Index: ix})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go stockSrv.Serve(lis)
	t.Cleanup(stockSrv.Stop)

	stockClient, err := grpc.NewClient(ours.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stockClient.Close() })

	ctx := context.Background()
	// 3 of the 4 rows, so that the page has a token.
	req := &lgv1.BacklinksRequest{Target: "http://t.example/", Scope: lgv1.Scope_SCOPE_DOMAIN, Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}, PageSize: 3}
	var answers []*lgv1.BacklinksResponse
	var outlinks []*lgv1.OutlinksResponse
	for name, conn := range map[string]*grpc.ClientConn{
		"linkgraph client, linkgraph server": dial(t, ours.grpcAddr, apiserver.ClientConfig{}),
		"stock client, linkgraph server":     stockClient,
		"linkgraph client, stock server":     dial(t, lis.Addr().String(), apiserver.ClientConfig{}),
	} {
		res, err := lgv1.NewLinkGraphServiceClient(conn).Backlinks(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Backlinks) != 3 || res.Backlinks[0].GetFirstSeen() == nil || res.NextPageToken == "" {
			t.Fatalf("%s: want 3 backlinks with times and a page token, got %v", name, res)
		}
		answers = append(answers, res)
		out, err := lgv1.NewLinkGraphServiceClient(conn).Outlinks(ctx, &lgv1.OutlinksRequest{Source: "http://b.example/"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out.Links) != 2 {
			t.Fatalf("%s: want 2 outlinks, got %v", name, out)
		}
		outlinks = append(outlinks, out)
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil && name != "linkgraph client, stock server" {
			t.Errorf("%s: health: %v", name, err)
		}
	}
	for i := 1; i < len(answers); i++ {
		if !proto.Equal(answers[i], answers[0]) || !proto.Equal(outlinks[i], outlinks[0]) {
			t.Errorf("answers differ:\n%v\n%v\n%v\n%v", answers[i], answers[0], outlinks[i], outlinks[0])
		}
	}
}

// TestCodecKeepsStrings checks that the strings of an answer stay as they
// were after later calls: the client's codec points them into the
// received bytes, which must never be reused.
func TestCodecKeepsStrings(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	c := lgv1.NewLinkGraphServiceClient(dial(t, s.grpcAddr, apiserver.ClientConfig{}))
	ctx := context.Background()
	first, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: "http://t.example/"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Clone(strings.Join(sources(first.Backlinks), "|"))
	for range 20 {
		if _, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: "http://t.example/x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(sources(first.Backlinks), "|"); got != want {
		t.Errorf("rows changed under the caller: %q, were %q", got, want)
	}
}

// TestCodecRefusesInvalidUTF8 checks that the server still refuses a
// request whose strings are not UTF-8, as protobuf-go does; linkgraph's
// client does not check what it sends.
func TestCodecRefusesInvalidUTF8(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	c := lgv1.NewLinkGraphServiceClient(dial(t, s.grpcAddr, apiserver.ClientConfig{}))
	_, err := c.Backlinks(context.Background(), &lgv1.BacklinksRequest{Target: "http://t.example/\xff"})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("want an Internal error naming UTF-8, got %v", err)
	}
}
