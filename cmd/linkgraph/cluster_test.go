package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/clustertest"
	"github.com/linkgraph/linkgraph/internal/testweb"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

var natsServer struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

// natsServerBin builds the nats-server command once per test binary.
func natsServerBin(t *testing.T) string {
	t.Helper()
	natsServer.once.Do(func() {
		natsServer.dir, natsServer.err = os.MkdirTemp("", "linkgraph-nats-server")
		if natsServer.err != nil {
			return
		}
		natsServer.path, natsServer.err = clustertest.BuildNATSServer(context.Background(), natsServer.dir)
	})
	if natsServer.err != nil {
		t.Fatal(natsServer.err)
	}
	return natsServer.path
}

// role is one linkgraph process of a test cluster: this test binary run as
// main (see TestMain), so under -race the roles are race-checked too.
type role struct {
	t    *testing.T
	name string
	args []string
	http string // its --http-addr
	proc *clustertest.Proc
}

func startRole(t *testing.T, name string, args ...string) *role {
	t.Helper()
	addr, err := clustertest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	r := &role{t: t, name: name, args: append(args, "--http-addr", addr, "--log-level", "warn"), http: addr}
	r.start()
	t.Cleanup(func() {
		if !r.proc.Exited() {
			r.proc.Kill()
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", r.name, r.proc.Output())
		}
	})
	return r
}

func (r *role) start() {
	r.t.Helper()
	p, err := clustertest.Start(r.name, os.Args[0], []string{"LINKGRAPH_AS_MAIN=1"}, r.args...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.proc = p
}

func (r *role) waitReady() {
	r.t.Helper()
	if err := clustertest.WaitReady(r.http, r.proc, 60*time.Second); err != nil {
		r.t.Fatal(err)
	}
}

func (r *role) metrics() map[string]map[string]float64 {
	r.t.Helper()
	m, err := clustertest.Metrics(r.http)
	if err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
	return m
}

// TestClusterSurvivesKills runs a cluster of real processes on loopback: an
// external nats-server, 2 shard nodes, 3 workers and a gateway crawl a
// multi-host web. One worker and one shard node are killed with SIGKILL
// mid-crawl and the shard node restarted. In the end the gateway's answers
// equal the true graph (every edge exactly once, aggregates exact), every
// page was fetched once and only the killed worker's tasks again, as the
// workers' redelivery counts say, and every role exits 0 on SIGTERM.
func TestClusterSurvivesKills(t *testing.T) {
	nsrv, err := clustertest.StartNATS(natsServerBin(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Kill)
	web := testweb.Start(t, testweb.Options{Hosts: 6, PagesPerHost: 50, Seed: 11})
	pages := web.Pages()

	// A worker may start before any shard node: it waits, not ready, until
	// a shard node has created the streams.
	workerArgs := []string{"worker", "--nats", nsrv.URL, "--allow-private-networks", "--workers", "4", "--timeout", "5s"}
	workers := []*role{startRole(t, "worker-0", workerArgs...)}
	waitStatus(t, "http://"+workers[0].http+"/healthz", http.StatusOK)
	waitStatus(t, "http://"+workers[0].http+"/readyz", http.StatusServiceUnavailable)

	// A short ack wait, so that the killed worker's tasks come back soon.
	shardArgs := func(i int, shards string) []string {
		return []string{"shard", "--nats", nsrv.URL, "--data", filepath.Join(t.TempDir(), fmt.Sprint("shard-", i)),
			"--shards", shards, "--delay", "0", "--per-host-concurrency", "4", "--fetch-ack-wait", "10s"}
	}
	shards := []*role{startRole(t, "shard-0", shardArgs(0, "0-31")...), startRole(t, "shard-1", shardArgs(1, "32-63")...)}
	workers = append(workers, startRole(t, "worker-1", workerArgs...), startRole(t, "worker-2", workerArgs...))
	grpcAddr, err := clustertest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	gateway := startRole(t, "gateway", "gateway", "--nats", nsrv.URL, "--grpc-addr", grpcAddr)
	for _, r := range append(append(slices.Clone(shards), workers...), gateway) {
		r.waitReady()
	}
	hostsOnShard := map[int]int{}
	for _, s := range web.Seeds() {
		hostsOnShard[shardOfURL(s)/32]++
	}
	if hostsOnShard[0] == 0 || hostsOnShard[1] == 0 {
		t.Fatalf("the web's hosts are all on one shard node (%v); pick another seed", hostsOnShard)
	}

	if code, out, errOut := runCLI(t, append([]string{"seed", "--nats", nsrv.URL}, web.Seeds()...)...); code != 0 {
		t.Fatalf("seed exit %d: %s %s", code, out, errOut)
	}
	waitRequests(t, web, len(pages)/4)
	workers[0].proc.Kill()
	t.Logf("killed worker-0 after %d requests", web.TotalRequests())
	waitRequests(t, web, len(pages)/2)
	shards[1].proc.Kill()
	t.Logf("killed shard-1 after %d requests", web.TotalRequests())
	time.Sleep(300 * time.Millisecond)
	shards[1].start()
	shards[1].waitReady()

	waitIdle(t, nsrv.URL, shards, len(pages))

	// Every page once, plus at most what the surviving workers say was
	// redelivered, which is at most what the killed worker held: its
	// fetches in flight and its pull request, together no more than its
	// --workers slots. (A delivery the killed worker never started comes
	// back too, so redeliveries may exceed the pages fetched twice.)
	// Nothing else is fetched twice: a killed shard node's results wait in
	// the stream for its next life.
	fetches, redelivered := 0, 0
	for _, p := range pages {
		if web.Requests(p) == 0 {
			t.Errorf("%s never fetched", p)
		}
		fetches += web.Requests(p)
	}
	for _, w := range workers[1:] {
		redelivered += int(w.metrics()["linkgraph_fetch_redeliveries_total"][`kind="page"`])
	}
	t.Logf("%d pages, %d page fetches, %d redelivered", len(pages), fetches, redelivered)
	if again := fetches - len(pages); again > redelivered || redelivered > 4 {
		t.Errorf("%d pages fetched again and %d redelivered; want again <= redelivered <= 4 (what the killed worker held)", again, redelivered)
	}
	var edges, pagesTotal float64
	for _, s := range shards {
		m := s.metrics()
		edges += clustertest.Sum(m, "linkgraph_edges")
		pagesTotal += clustertest.Sum(m, "linkgraph_pages_total")
	}
	if int(edges) != len(web.Edges()) || int(pagesTotal) != len(pages) {
		t.Errorf("shard counters: %v edges, %v pages; want %d, %d (nothing counted twice)", edges, pagesTotal, len(web.Edges()), len(pages))
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := lgv1.NewLinkGraphServiceClient(conn)
	var want []string
	for _, e := range web.Edges() {
		want = append(want, edgeString(e.Source, e.Target, e.Anchor, e.Rel, e.Type, e.RedirectStatus, e.PageNoFollow || nofollowRel(e.Rel)))
	}
	got := exportedEdges(t, client, &lgv1.ExportRequest{BatchSize: 100, Filter: &lgv1.Filter{IncludeLost: true}})
	if missing, extra := diff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("the gateway's export differs from the true graph: %d missing, %d extra (first: %q %q)", len(missing), len(extra), first(missing), first(extra))
	}
	checkViews(t, web, remoteAPI{client})
	checkOutlinks(t, web, client)
	checkRecrawl(t, web, client)
	checkClusterRank(t, web, nsrv.URL, grpcAddr, client)

	var handled float64
	for labels, v := range gateway.metrics()["grpc_server_handled_total"] {
		if strings.Contains(labels, `grpc_code="OK"`) && strings.Contains(labels, `grpc_method="Summary"`) {
			handled += v
		}
	}
	if handled == 0 {
		t.Error("the gateway's metrics count no Summary call")
	}

	for _, r := range append(append(slices.Clone(workers[1:]), gateway), shards...) {
		if err := r.proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range append(append(slices.Clone(workers[1:]), gateway), shards...) {
		if err := r.proc.Wait(40 * time.Second); err != nil {
			t.Errorf("%s after SIGTERM: %v, want exit 0", r.name, err)
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// waitStatus waits until GET url answers with status code.
func waitStatus(t *testing.T, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %d, last %v %v", url, code, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRequests(t *testing.T, web *testweb.Web, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for web.TotalRequests() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests after 2 minutes, want %d", web.TotalRequests(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// connectJetStream connects the test to the NATS server at url until it
// ends.
func connectJetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitIdle waits until the shard nodes have recorded every page, their
// frontiers have nothing queued or in flight, and no stream holds a
// message: twice in a row, since a message may be between two streams.
func waitIdle(t *testing.T, natsURL string, shards []*role, pages int) {
	t.Helper()
	js := connectJetStream(t, natsURL)
	ctx := context.Background()
	idle := func() (bool, string) {
		var recorded, queued, inflight float64
		state := ""
		for _, s := range shards {
			m := s.metrics()
			r, q, i := clustertest.Sum(m, "linkgraph_pages_total"), clustertest.Sum(m, "linkgraph_frontier_queued_urls"), clustertest.Sum(m, "linkgraph_frontier_inflight_urls")
			state += fmt.Sprintf("%s: %v pages recorded, %v queued, %v in flight; ", s.name, r, q, i)
			recorded, queued, inflight = recorded+r, queued+q, inflight+i
		}
		state += fmt.Sprintf("%d pages in all", pages)
		if int(recorded) < pages || queued > 0 || inflight > 0 {
			return false, state
		}
		for _, name := range []string{"FETCH", "PAGES", "LINKS"} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			// Work-queue streams keep a message until it is acked.
			if n := s.CachedInfo().State.Msgs; n > 0 {
				return false, fmt.Sprintf("%s; %d messages in %s", state, n, name)
			}
		}
		return true, state
	}
	deadline := time.Now().Add(3 * time.Minute)
	streak := 0
	for streak < 2 {
		ok, state := idle()
		if ok {
			streak++
		} else {
			streak = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not idle after 3 minutes: %s", state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exportedEdges reads a whole export through client.
func exportedEdges(t *testing.T, client lgv1.LinkGraphServiceClient, req *lgv1.ExportRequest) []string {
	t.Helper()
	stream, err := client.Export(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.GetRows() {
			got = append(got, edgeString(r.SourceUrl, r.TargetUrl, r.AnchorText, r.Rel, r.Type, r.RedirectStatus, r.Nofollow))
		}
	}
	slices.Sort(got)
	return got
}

// checkOutlinks checks the outlinks of every page with links against the
// truth: their targets live on both shard nodes, so the page's node asks
// the other for the edges.
func checkOutlinks(t *testing.T, web *testweb.Web, client lgv1.LinkGraphServiceClient) {
	t.Helper()
	want := map[string][]string{}
	for _, e := range web.Edges() {
		want[e.Source] = append(want[e.Source], e.Target+" "+e.Anchor)
	}
	crossNode := 0
	for src, rows := range want {
		var got []string
		req := &lgv1.OutlinksRequest{Source: src, PageSize: 50, Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}}
		for {
			resp, err := client.Outlinks(context.Background(), req)
			if err != nil {
				t.Fatalf("outlinks of %s: %v", src, err)
			}
			for _, l := range resp.GetLinks() {
				got = append(got, l.TargetUrl+" "+l.AnchorText)
				if shardOfURL(l.TargetUrl)/32 != shardOfURL(src)/32 {
					crossNode++
				}
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		slices.Sort(got)
		slices.Sort(rows)
		if !slices.Equal(got, rows) {
			t.Errorf("outlinks of %s: got %d, want %d:\n got %s\nwant %s", src, len(got), len(rows), strings.Join(got, "\n"), strings.Join(rows, "\n"))
		}
	}
	if crossNode == 0 {
		t.Error("no outlink crossed shard nodes; the test checks nothing remote")
	}
}

// shardOfURL is the shard of a URL in a cluster of the default 64 shards.
func shardOfURL(u string) int { return urlnorm.Shard(urlnorm.Host(u), bus.DefaultShards) }

// checkRecrawl asks the gateway to recrawl a target whose source pages live
// on both shard nodes: each node queues its own, and every one of them is
// fetched again.
func checkRecrawl(t *testing.T, web *testweb.Web, client lgv1.LinkGraphServiceClient) {
	t.Helper()
	sources := map[string]map[string]bool{} // target -> sources
	for _, e := range web.Edges() {
		if sources[e.Target] == nil {
			sources[e.Target] = map[string]bool{}
		}
		sources[e.Target][e.Source] = true
	}
	var target string
	for tg, srcs := range sources {
		nodes := map[int]bool{}
		for s := range srcs {
			nodes[shardOfURL(s)/32] = true
		}
		if len(nodes) == 2 && (target == "" || len(srcs) > len(sources[target])) {
			target = tg
		}
	}
	if target == "" {
		t.Fatal("no target has sources on both shard nodes")
	}
	before := map[string]int{}
	for s := range sources[target] {
		before[s] = web.Requests(s)
	}
	res, err := client.Recrawl(context.Background(), &lgv1.RecrawlRequest{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if int(res.GetQueued()) != len(sources[target]) {
		t.Errorf("recrawl of %s queued %d pages, want its %d sources", target, res.GetQueued(), len(sources[target]))
	}
	deadline := time.Now().Add(time.Minute)
	for s, n := range before {
		for web.Requests(s) == n {
			if time.Now().After(deadline) {
				t.Fatalf("%s not fetched again a minute after the recrawl", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkClusterRank runs rank --nats, which gathers the host links of both
// shard nodes, ranks them in the test process and stores the ranks on the
// nodes: every host of a follow link is ranked, and the gateway serves the
// same ranks back (export --format ranks) and in a host's Summary.
func checkClusterRank(t *testing.T, web *testweb.Web, natsURL, grpcAddr string, client lgv1.LinkGraphServiceClient) {
	t.Helper()
	want := map[string]bool{}
	for _, e := range web.Edges() {
		if !e.PageNoFollow && !nofollowRel(e.Rel) {
			want[urlnorm.ReversedHost(urlnorm.Host(e.Source))] = true
			want[urlnorm.ReversedHost(urlnorm.Host(e.Target))] = true
		}
	}
	code, out, errOut := runCLI(t, "rank", "--nats", natsURL, "--out", "-")
	if code != 0 {
		t.Fatalf("rank --nats: exit %d: %s", code, errOut)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Split(line, "\t")
		got[f[len(f)-1]] = true
	}
	if !maps.Equal(got, want) {
		t.Errorf("rank --nats ranked %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if code, exported, errOut := runCLI(t, "export", "--server", grpcAddr, "--format", "ranks"); code != 0 || exported != out {
		t.Errorf("export --format ranks through the gateway: exit %d %s\n%s\nwant\n%s", code, errOut, exported, out)
	}
	host := urlnorm.Host(web.Seeds()[0])
	sum, err := client.Summary(context.Background(), &lgv1.SummaryRequest{Target: host, Scope: lgv1.Scope_SCOPE_HOST})
	if err != nil || sum.Summary.GetRank() == nil {
		t.Errorf("Summary of %s through the gateway has no rank: %v %v", host, sum, err)
	}
}

// TestClusterRefusesATwinShard starts a second shard node with the same
// --shards as a running one: it exits 1 saying so, and the first keeps
// running (the second used to delete the first's consumers from under it,
// which then died, and take over with an empty index).
func TestClusterRefusesATwinShard(t *testing.T) {
	nsrv, err := clustertest.StartNATS(natsServerBin(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Kill)
	shardArgs := func(i int) []string {
		return []string{"shard", "--nats", nsrv.URL, "--data", filepath.Join(t.TempDir(), fmt.Sprint("shard-", i)), "--shards", "0-63"}
	}
	first := startRole(t, "shard-a", shardArgs(0)...)
	first.waitReady()
	twin := startRole(t, "shard-b", shardArgs(1)...)
	err = twin.proc.Wait(60 * time.Second)
	if err == nil || !strings.Contains(twin.proc.Output(), "another shard node runs with the same --shards") {
		t.Errorf("the twin shard node: %v, output:\n%s", err, twin.proc.Output())
	}
	time.Sleep(time.Second) // time for the first to fail, had its consumers gone
	if first.proc.Exited() {
		t.Fatalf("the running shard node exited:\n%s", first.proc.Output())
	}
	waitStatus(t, "http://"+first.http+"/readyz", http.StatusOK)
	first.proc.Signal(syscall.SIGTERM)
	if err := first.proc.Wait(30 * time.Second); err != nil {
		t.Errorf("the running shard node on SIGTERM: %v", err)
	}
}

// A shard node whose shards another node has taken (its lease lapsed while
// it could not renew it, say) stops reading them and exits 1, naming the
// other node.
func TestShardNodeStopsWhenItsLeaseIsTaken(t *testing.T) {
	nsrv, err := clustertest.StartNATS(natsServerBin(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Kill)
	node := startRole(t, "shard", "shard", "--nats", nsrv.URL, "--data", t.TempDir(), "--shards", "0-63")
	node.waitReady()
	ctx := context.Background()
	kv, err := connectJetStream(t, nsrv.URL).KeyValue(ctx, bus.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "shard.5", []byte("other-host:/data\nabc")); err != nil {
		t.Fatal(err)
	}
	err = node.proc.Wait(3 * bus.DefaultLeaseTTL)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(node.proc.Output(), "shard.5 is now held by other-host:/data") {
		t.Fatalf("the node whose lease was taken: %v (want exit status 1), output:\n%s", err, node.proc.Output())
	}
}
