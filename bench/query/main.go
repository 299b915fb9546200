// Command query measures query latency and throughput over gRPC on an index
// written by `linkgraph generate`. It serves the index in process on
// 127.0.0.1 (the gRPC server of `linkgraph serve`, interceptors included)
// or asks a running server at -addr, and for each case runs -clients
// concurrent clients, each with its own connection, issuing one call after
// another for -duration. It prints p50/p90/p99/max latency and QPS per case:
//
//   - backlinks of random targets (sampled by generate into generate.json),
//     first page of 100 and of 10;
//   - backlinks of the hub URL (1M backlinks by default), first page;
//   - Summary and first pages of ReferringDomains and Anchors of the hub
//     domain at SCOPE_DOMAIN (1M backlinks from other domains by default);
//   - backlinks of the hub domain at SCOPE_DOMAIN, first page.
//
// A case whose RPC the server does not implement yet is reported as such.
//
//	go run ./cmd/linkgraph generate --data /tmp/gen10m --edges 10000000
//	go run ./bench/query -data /tmp/gen10m -clients 8 -duration 20s
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/graphgen"
	"github.com/linkgraph/linkgraph/internal/store"
)

func main() {
	// The in-process server runs Go's collector at the pace of linkgraph
	// serve (rolesGCPercent in cmd/linkgraph), GOGC deciding if set.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

// call issues one request; rows is how many rows it returned.
type call func(ctx context.Context, c client, rng *rand.Rand) (rows int, err error)

// client is a connection's LinkGraphService client, with the connection
// for the other services.
type client struct {
	lgv1.LinkGraphServiceClient
	conn grpc.ClientConnInterface
}

func newClient(conn grpc.ClientConnInterface) client {
	return client{lgv1.NewLinkGraphServiceClient(conn), conn}
}

type benchCase struct {
	name string
	call call
}

// cases are the benchmark's calls; sources are pages to ask Outlinks of,
// filled in before the first call (see sampleSources).
func cases(m *graphgen.Manifest, sources *[]string) []benchCase {
	random := func(size int32) call {
		return func(ctx context.Context, c client, rng *rand.Rand) (int, error) {
			t := m.SampleTargets[rng.IntN(len(m.SampleTargets))]
			r, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: t, Scope: lgv1.Scope_SCOPE_URL, PageSize: size})
			return len(r.GetBacklinks()), err
		}
	}
	backlinks := func(target string, scope lgv1.Scope, size int32) call {
		return func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
			r, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: target, Scope: scope, PageSize: size})
			return len(r.GetBacklinks()), err
		}
	}
	// grpc-health is the floor of every case: a gRPC call through the same
	// server, its interceptors and connection, that reads nothing.
	cs := []benchCase{{"grpc-health", func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
		_, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return 1, err
	}}}
	if len(m.SampleTargets) > 0 {
		cs = append(cs,
			benchCase{"backlinks-random-100", random(100)},
			benchCase{"backlinks-random-10", random(10)},
			benchCase{"outlinks-random-100", func(ctx context.Context, c client, rng *rand.Rand) (int, error) {
				s := *sources
				r, err := c.Outlinks(ctx, &lgv1.OutlinksRequest{Source: s[rng.IntN(len(s))], PageSize: 100})
				return len(r.GetLinks()), err
			}})
	}
	if m.HubURL != "" {
		cs = append(cs,
			benchCase{"backlinks-hub-100", backlinks(m.HubURL, lgv1.Scope_SCOPE_URL, 100)},
			benchCase{"backlinks-hub-10", backlinks(m.HubURL, lgv1.Scope_SCOPE_URL, 10)},
			// Newest first: the hub's every edge is read to find them.
			benchCase{"backlinks-hub-newest-10", func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
				r, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: m.HubURL, Scope: lgv1.Scope_SCOPE_URL, PageSize: 10,
					OrderBy: lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN, Descending: true})
				return len(r.GetBacklinks()), err
			}})
	}
	if m.HubDomain != "" {
		cs = append(cs,
			benchCase{"summary-hub-domain", func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
				_, err := c.Summary(ctx, &lgv1.SummaryRequest{Target: m.HubDomain, Scope: lgv1.Scope_SCOPE_DOMAIN})
				return 1, err
			}},
			benchCase{"refdomains-hub-domain-100", func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
				r, err := c.ReferringDomains(ctx, &lgv1.ReferringDomainsRequest{Target: m.HubDomain, Scope: lgv1.Scope_SCOPE_DOMAIN, PageSize: 100})
				return len(r.GetDomains()), err
			}},
			benchCase{"anchors-hub-domain-100", func(ctx context.Context, c client, _ *rand.Rand) (int, error) {
				r, err := c.Anchors(ctx, &lgv1.AnchorsRequest{Target: m.HubDomain, Scope: lgv1.Scope_SCOPE_DOMAIN, PageSize: 100})
				return len(r.GetAnchors()), err
			}},
			benchCase{"backlinks-hub-domain-100", backlinks(m.HubDomain, lgv1.Scope_SCOPE_DOMAIN, 100)})
	}
	return cs
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	data := fs.String("data", "", "data directory written by `linkgraph generate` (required: its "+graphgen.ManifestFile+" says what to query)")
	addr := fs.String("addr", "", "ask the linkgraph server at this gRPC address instead of serving -data in process")
	clients := fs.Int("clients", 8, "concurrent clients, each with its own connection")
	duration := fs.Duration("duration", 20*time.Second, "measuring time per case")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured calls before each case")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each call")
	only := fs.String("cases", "", "comma-separated case names to run (default: all)")
	rounds := fs.Int("rounds", 1, "run the cases this many times, in turn, and end with each case's median and range: this VM's speed moves between minutes")
	cacheMiB := fs.Int64("cache-mib", store.DefaultCacheSize()>>20, "Pebble block cache of the in-process server, in MiB (linkgraph serve --cache-size; the default is its default)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and clients when in process) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	switch {
	case *data == "":
		return usageError{errors.New("-data is required")}
	case *clients < 1:
		return usageError{fmt.Errorf("-clients %d: must be at least 1", *clients)}
	case *duration <= 0:
		return usageError{fmt.Errorf("-duration %v: must be positive", *duration)}
	case *rounds < 1:
		return usageError{fmt.Errorf("-rounds %d: must be at least 1", *rounds)}
	case *cacheMiB < 1:
		return usageError{fmt.Errorf("-cache-mib %d: must be at least 1", *cacheMiB)}
	}
	m, err := graphgen.ReadManifest(*data)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var sources []string
	all := cases(m, &sources)
	if *only != "" {
		var sel []benchCase
		for _, name := range strings.Split(*only, ",") {
			i := slices.IndexFunc(all, func(c benchCase) bool { return c.name == name })
			if i < 0 {
				return usageError{fmt.Errorf("-cases: unknown case %q", name)}
			}
			sel = append(sel, all[i])
		}
		all = sel
	}

	target := *addr
	where := "external server " + target
	if target == "" {
		srvAddr, stopServer, err := serve(*data, *cacheMiB<<20)
		if err != nil {
			return err
		}
		defer stopServer()
		target, where = srvAddr, "in-process server on "+srvAddr
	}
	conns := make([]*grpc.ClientConn, *clients)
	for i := range conns {
		// Dialled as the CLI dials (--server), with linkgraph's codec.
		conns[i], err = apiserver.Dial(target, apiserver.ClientConfig{})
		if err != nil {
			return err
		}
		defer conns[i].Close()
	}

	fmt.Fprintf(stdout, "index: %s (%d edges, %d pages, seed %d); %s\n", *data, m.Edges, m.Pages, m.Seed, where)
	fmt.Fprintf(stdout, "hub URL %s (%d backlinks), hub domain %s (%d from other domains), %d sample targets\n",
		m.HubURL, m.HubBacklinks, m.HubDomain, m.DomainBacklinks, len(m.SampleTargets))
	fmt.Fprintf(stdout, "%d clients, %v per case after %v warm-up, deadline %v per call\n\n", *clients, *duration, *warmup, *timeout)
	if err := checkAnswers(ctx, lgv1.NewLinkGraphServiceClient(conns[0]), m, *timeout, stdout); err != nil {
		return err
	}
	if len(m.SampleTargets) > 0 {
		if sources, err = sampleSources(ctx, lgv1.NewLinkGraphServiceClient(conns[0]), m, *timeout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d sample sources for Outlinks (a linking page of each sample target)\n\n", len(sources))
	}

	fmt.Fprintf(stdout, tableFormat, "case", "calls", "QPS", "p50", "p90", "p99", "max", "rows/call", "CPU/call", "errors")
	results := make([][]result, len(all))
	for round := range *rounds {
		if round > 0 {
			fmt.Fprintln(stdout)
		}
		for i, c := range all {
			if err := ctx.Err(); err != nil {
				return err
			}
			// One row per case as it finishes: a run takes minutes.
			r := measure(ctx, c, conns, *warmup, *duration, *timeout)
			results[i] = append(results[i], r)
			fmt.Fprint(stdout, r.row())
		}
	}
	if *rounds > 1 {
		fmt.Fprintf(stdout, "\nover %d rounds, median (min-max):\n", *rounds)
		for _, rs := range results {
			fmt.Fprintln(stdout, summarize(rs))
		}
	}
	return nil
}

// summarize is one case's line over the rounds: the median, least and
// most of its QPS, p99 latency and CPU a call.
func summarize(rs []result) string {
	var qps []float64
	var p99, cpu []time.Duration
	for _, r := range rs {
		if r.unimplemented || r.calls == 0 {
			continue
		}
		qps = append(qps, r.qps())
		p99 = append(p99, r.quantile(0.99))
		if c, ok := r.cpuPerCall(); ok {
			cpu = append(cpu, c)
		}
	}
	if len(qps) == 0 {
		return fmt.Sprintf("  %-26s no calls", rs[0].name)
	}
	q, lo, hi := spread(qps)
	line := fmt.Sprintf("  %-26s QPS %.0f (%.0f-%.0f)", rs[0].name, q, lo, hi)
	d, dlo, dhi := spread(p99)
	line += fmt.Sprintf("  p99 %s (%s-%s)", fmtDur(d), fmtDur(dlo), fmtDur(dhi))
	if len(cpu) > 0 {
		d, dlo, dhi := spread(cpu)
		line += fmt.Sprintf("  CPU/call %s (%s-%s)", fmtDur(d), fmtDur(dlo), fmtDur(dhi))
	}
	return line
}

// spread returns the median, least and most of xs, which it sorts.
func spread[T cmp.Ordered](xs []T) (median, least, most T) {
	slices.Sort(xs)
	return xs[len(xs)/2], xs[0], xs[len(xs)-1]
}

const tableFormat = "%-26s %8s %8s %9s %9s %9s %9s %9s %9s  %s\n"

// serve opens the index in dir and serves it on a loopback port with the
// gRPC server of `linkgraph serve` (its interceptors included).
func serve(dir string, cacheSize int64) (string, func(), error) {
	db, err := store.OpenWith(dir, store.Options{CacheSize: cacheSize})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return "", nil, fmt.Errorf("%w; while a server runs on it, give its address with -addr", err)
		}
		return "", nil, err
	}
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return "", nil, fmt.Errorf("cannot listen on loopback: %w", err)
	}
	api, err := apiserver.New(apiserver.Config{Service: &indexer.GRPCServer{Index: indexer.New(db, shards)}})
	if err != nil {
		db.Close()
		lis.Close()
		return "", nil, err
	}
	srv := api.GRPC
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis) // returns when stopped
	}()
	return lis.Addr().String(), func() {
		srv.Stop()
		<-done
		db.Close()
	}, nil
}

// sampleSources returns a page linking to each sample target: pages with
// outlinks, as likely to be asked about as their links are common.
func sampleSources(ctx context.Context, c lgv1.LinkGraphServiceClient, m *graphgen.Manifest, timeout time.Duration) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, t := range m.SampleTargets[:min(len(m.SampleTargets), 1000)] {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		r, err := c.Backlinks(ctx, &lgv1.BacklinksRequest{Target: t, Scope: lgv1.Scope_SCOPE_URL, PageSize: 1})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cannot sample a source of %s: %w", t, err)
		}
		for _, bl := range r.GetBacklinks() {
			if !seen[bl.GetSourceUrl()] {
				seen[bl.GetSourceUrl()] = true
				out = append(out, bl.GetSourceUrl())
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no sample target has a backlink: is the index empty?")
	}
	return out, nil
}

// checkAnswers prints what the planted targets look like through the API,
// so that a fast answer that is wrong does not go unnoticed.
func checkAnswers(ctx context.Context, c lgv1.LinkGraphServiceClient, m *graphgen.Manifest, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*timeout)
	defer cancel()
	if m.HubDomain != "" {
		r, err := c.Summary(ctx, &lgv1.SummaryRequest{Target: m.HubDomain, Scope: lgv1.Scope_SCOPE_DOMAIN})
		switch {
		case status.Code(err) == codes.Unimplemented:
			fmt.Fprintf(w, "Summary(%s): unimplemented\n", m.HubDomain)
		case err != nil:
			fmt.Fprintf(w, "Summary(%s): %v\n", m.HubDomain, err)
		default:
			s := r.GetSummary()
			mark := "as planted"
			if s.GetBacklinks() != m.DomainBacklinks {
				mark = fmt.Sprintf("MISMATCH: planted %d", m.DomainBacklinks)
			}
			fmt.Fprintf(w, "Summary(%s): %d backlinks (%s), %d referring pages, %d hosts, %d domains, %d follow\n",
				m.HubDomain, s.GetBacklinks(), mark, s.GetReferringPages(), s.GetReferringHosts(), s.GetReferringDomains(), s.GetFollow())
		}
	}
	if m.HubURL != "" {
		r, err := c.Summary(ctx, &lgv1.SummaryRequest{Target: m.HubURL, Scope: lgv1.Scope_SCOPE_URL})
		switch {
		case status.Code(err) == codes.Unimplemented:
		case err != nil:
			fmt.Fprintf(w, "Summary(%s): %v\n", m.HubURL, err)
		default:
			mark := "as planted"
			if r.GetSummary().GetBacklinks() != m.HubBacklinks {
				mark = fmt.Sprintf("MISMATCH: planted %d", m.HubBacklinks)
			}
			s := r.GetSummary()
			fmt.Fprintf(w, "Summary(%s): %d backlinks (%s), %d referring pages, %d domains, %d follow\n",
				m.HubURL, s.GetBacklinks(), mark, s.GetReferringPages(), s.GetReferringDomains(), s.GetFollow())
		}
	}
	fmt.Fprintln(w)
	return nil
}

type result struct {
	name        string
	calls, rows int
	elapsed     time.Duration
	// cpu is the CPU time this process used while measuring (server and
	// clients in process; the clients with -addr), 0 if unknown.
	cpu           time.Duration
	lat           []time.Duration
	errs          map[codes.Code]int
	unimplemented bool
}

// measure runs c on every connection at once, one client per connection,
// first for warmup, then for d, and collects every call's latency.
func measure(ctx context.Context, c benchCase, conns []*grpc.ClientConn, warmup, d, timeout time.Duration) result {
	res := result{name: c.name, errs: make(map[codes.Code]int)}
	// One call first: an RPC the server lacks fails at once, and the case
	// is reported as such instead of measuring errors.
	cctx, cancel := context.WithTimeout(ctx, timeout)
	_, err := c.call(cctx, newClient(conns[0]), rand.New(rand.NewPCG(0, 0)))
	cancel()
	if status.Code(err) == codes.Unimplemented {
		res.unimplemented = true
		return res
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	warmEnd, end := start.Add(warmup), start.Add(warmup+d)
	// CPU a call is steadier than QPS on a VM whose speed varies, to tell
	// two builds apart.
	cpuAtWarmEnd := make(chan time.Duration, 1)
	time.AfterFunc(warmup, func() {
		cpu, _ := processCPU()
		cpuAtWarmEnd <- cpu
	})
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient(conn)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			var lat []time.Duration
			errs := make(map[codes.Code]int)
			rows := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				// At least one measured call per client, even when the
				// machine is so busy that warm-up took the whole time.
				if t0.After(end) && len(lat) > 0 {
					break
				}
				cctx, cancel := context.WithTimeout(ctx, timeout)
				n, err := c.call(cctx, client, rng)
				cancel()
				if t0.Before(warmEnd) {
					continue
				}
				lat = append(lat, time.Since(t0))
				rows += n
				if err != nil {
					errs[status.Code(err)]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			res.rows += rows
			for code, n := range errs {
				res.errs[code] += n
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(warmEnd)
	if cpu, ok := processCPU(); ok {
		res.cpu = cpu - <-cpuAtWarmEnd
	}
	res.calls = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// quantile is the latency below which a fraction p of the calls fell;
// r.lat is sorted and not empty.
func (r result) quantile(p float64) time.Duration {
	return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
}

func (r result) qps() float64 { return float64(r.calls) / r.elapsed.Seconds() }

// cpuPerCall is the process's CPU time a measured call, if it was read.
func (r result) cpuPerCall() (time.Duration, bool) {
	if r.cpu <= 0 || r.calls == 0 {
		return 0, false
	}
	return r.cpu / time.Duration(r.calls), true
}

func (r result) row() string {
	if r.unimplemented {
		return fmt.Sprintf(tableFormat, r.name, "-", "-", "-", "-", "-", "-", "-", "-", "unimplemented")
	}
	if r.calls == 0 {
		return fmt.Sprintf(tableFormat, r.name, "0", "-", "-", "-", "-", "-", "-", "-", "")
	}
	q := func(p float64) string { return fmtDur(r.quantile(p)) }
	var errs []string
	for code, n := range r.errs {
		errs = append(errs, fmt.Sprintf("%d %v", n, code))
	}
	slices.Sort(errs)
	e := strings.Join(errs, ", ")
	if e == "" {
		e = "0"
	}
	cpu := "-"
	if c, ok := r.cpuPerCall(); ok {
		cpu = fmtDur(c)
	}
	return fmt.Sprintf(tableFormat, r.name, fmt.Sprint(r.calls), fmt.Sprintf("%.0f", r.qps()),
		q(0.50), q(0.90), q(0.99), fmtDur(r.lat[len(r.lat)-1]), fmt.Sprintf("%.1f", float64(r.rows)/float64(r.calls)), cpu, e)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
