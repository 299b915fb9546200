package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/testweb"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCommand runs the command of args in the background, as its own
// process would run. stop cancels its context, as SIGTERM does through
// signal.NotifyContext, and returns its exit code once it has returned;
// the test's end stops it if nothing did before.
func startCommand(t *testing.T, args []string) (ctx context.Context, stderr *strings.Builder, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &strings.Builder{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &strings.Builder{}, stderr) }()
	var once sync.Once
	var code int
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return ctx, stderr, stop
}

// TestServeAnswersBacklinksOverGRPC runs serve long-running on a test web
// and asks it over gRPC while it crawls, then stops it as SIGTERM would.
func TestServeAnswersBacklinksOverGRPC(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 3, PagesPerHost: 40})
	addr, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data", t.TempDir(), "--grpc-addr", addr, "--http-addr", httpAddr, "--allow-private-networks", "--delay", "0", "--per-host-concurrency", "4"}
	for _, s := range web.Seeds() {
		args = append(args, "--seed", s)
	}
	ctx, errOut, stop := startCommand(t, args)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: lgv1.LinkGraphService_ServiceDesc.ServiceName})
		if err == nil && res.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 30s: %v; stderr: %s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Reflection lists the service.
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "linkgraph.v1.LinkGraphService") {
		t.Errorf("reflection lists %v, want linkgraph.v1.LinkGraphService", names)
	}

	// The backlinks of the most linked target arrive as the crawl goes on.
	want := map[string]int{}
	for _, e := range web.Edges() {
		want[e.Target]++
	}
	var target string
	for tg, n := range want {
		if n > want[target] {
			target = tg
		}
	}
	client := lgv1.NewLinkGraphServiceClient(conn)
	for {
		res, err := client.Backlinks(ctx, &lgv1.BacklinksRequest{Target: target, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Backlinks) == want[target] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d backlinks after 30s, want %d", target, len(res.Backlinks), want[target])
		}
		time.Sleep(100 * time.Millisecond)
	}

	// /metrics tells what happened, /readyz that all is up.
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://" + httpAddr + path)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, res, err)
		}
	}
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`linkgraph_pages_by_status_total{class="2xx"}`, `linkgraph_robots_fetches_total 3`,
		"linkgraph_frontier_queued_urls", "linkgraph_frontier_ready_hosts", "linkgraph_edges",
		`linkgraph_fetch_duration_seconds_bucket{kind="page",outcome="2xx"`, "linkgraph_skipped_urls_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Bad requests are InvalidArgument with a message that says why.
	for _, req := range []*lgv1.BacklinksRequest{
		{Target: "not a url"},
		{Target: target, PageSize: 20000},
		{Target: target, PageToken: "garbage"},
	} {
		_, err := client.Backlinks(ctx, req)
		if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() == "" {
			t.Errorf("%v: got %v, want InvalidArgument with a message", req, err)
		}
	}
	// An expired deadline is honoured.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-dctx.Done()
	if _, err := client.Backlinks(dctx, &lgv1.BacklinksRequest{Target: target}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("expired deadline: got %v, want DeadlineExceeded", err)
	}

	// recrawl --server queues the target's source pages in the running
	// crawl, once each.
	sources := map[string]bool{}
	for _, e := range web.Edges() {
		if e.Target == target {
			sources[e.Source] = true
		}
	}
	rcode, out, rerr := runCLI(t, "recrawl", "--server", addr, target)
	if want := fmt.Sprintf("queued %d source pages", len(sources)); rcode != 0 || !strings.Contains(out, want) {
		t.Errorf("recrawl --server: exit %d, %q %s; want %q", rcode, out, rerr, want)
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after shutdown; stderr: %s", code, errOut.String())
	}
}
