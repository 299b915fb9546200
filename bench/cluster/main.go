//go:build unix

// Command cluster measures how crawl throughput scales with worker
// processes: for each count in -procs it starts a fresh cluster of real
// processes on loopback (an external nats-server with JetStream, -shard-nodes
// shard nodes splitting the 64 shards, and K worker processes of -workers
// concurrent fetches each), seeds a synthetic web of -hosts sites, each on
// its own loopback address, and times the crawl from the seed to idle (every
// page recorded, frontier and streams empty). Politeness is off (--delay 0,
// --per-host-concurrency 8, --ignore-robots): it measures the pipeline.
//
// Each row reports pages, seconds, pages/s, the speed-up against one
// process, the CPU seconds each kind of process spent during the crawl
// (nats-server, shard nodes, workers, and this process, which serves the
// web), how busy that kept the machine's cores, and the peak RSS of one
// process of each kind. A paragraph derived from those figures says what
// limits scaling. Linux only: the sites listen on 127.0.0.2 and up, and CPU
// and memory are read from /proc.
//
//	go run ./bench/cluster                          # 8000 pages, 8 hosts, 1, 2 and 3 worker processes
//	go run ./bench/cluster -pages 20000 -procs 1,2,3,4 -workers 32
//
// Measured 2026-11-27 on the 2-core development machine (8 hosts, 8008
// pages, 800k links: -pages 8000), run twice in a row:
//
//	go run ./bench/cluster -pages 8000 -procs 1,2,3
//
//	procs  slots  seconds  pages/s  speed-up  cpu ms/page  cpu nats  cpu shards  cpu workers  cpu web  busy  rss nats/shard/worker MiB
//	    1     16     6.54     1224      1.00         1.57       2.4         6.9          2.5      0.7   94%  68/196/74
//	    2     32     5.46     1468      1.20         1.31       1.9         5.3          2.7      0.6   94%  97/213/73
//	    3     48     4.87     1643      1.34         1.20       1.6         4.8          2.7      0.5   96%  101/214/76
//
//	    1     16     6.08     1317      1.00         1.47       2.1         6.6          2.5      0.6   95%  66/189/74
//	    2     32     5.19     1544      1.17         1.26       1.7         5.2          2.6      0.6   95%  88/214/74
//	    3     48     5.01     1598      1.21         1.22       1.6         5.0          2.6      0.5   95%  91/209/74
//
// What limits scaling on 2 cores is CPU: every run kept both cores 94-96%
// busy, one worker process included, so another process adds no cores,
// only fetchers sharing them. A page costs 1.2-1.6 ms of CPU in all: the
// shard nodes about 53% (frontier, index, Pebble), the workers 24%,
// nats-server 17%, the web servers 5%, which caps this machine near 1,650
// pages/s. What a second and third process gain is a cheaper page, not
// parallelism: with more fetches in flight the shard nodes and nats-server
// take fuller batches (shard CPU 0.82 -> 0.63 ms a page). No one process
// comes near a whole core (the busiest, a shard node, 0.54), so there is no
// serial stage. Compare rows of one invocation: between invocations the
// same configuration varies by 10-15%, as much as the gains. (On
// 2026-11-25 a page cost about 3 ms and the crawl made 514-648 pages/s;
// the shard nodes' commits and batching have changed since.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/clustertest"
	"github.com/linkgraph/linkgraph/internal/testweb"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

// config is the benchmark's flags.
type config struct {
	pages      int           // pages over all hosts
	hosts      int           // sites, each on its own loopback address
	procs      []int         // worker-process counts, one fresh cluster each
	shardNodes int           // shard processes splitting the shards
	workers    int           // concurrent fetches per worker process
	perHost    int           // the shard nodes' --per-host-concurrency
	binDir     string        // prebuilt linkgraph and nats-server, or "" to build
	timeout    time.Duration // per crawl, from the seed to idle
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.pages, "pages", 8000, "pages in all, spread evenly over the hosts")
	fs.IntVar(&c.hosts, "hosts", 8, "sites, each on its own loopback address (127.0.0.2, ...), spread evenly over the shard nodes")
	procs := fs.String("procs", "1,2,3", "comma-separated worker-process counts; each gets a fresh cluster")
	fs.IntVar(&c.shardNodes, "shard-nodes", 2, "shard processes splitting the "+strconv.Itoa(bus.DefaultShards)+" shards")
	fs.IntVar(&c.workers, "workers", 16, "concurrent fetches per worker process (--workers)")
	fs.IntVar(&c.perHost, "per-host-concurrency", 8, "requests in flight per host (the shard nodes' --per-host-concurrency)")
	fs.StringVar(&c.binDir, "bin", "", "directory holding prebuilt linkgraph and nats-server binaries (default: build both into a temporary directory)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit of one crawl, from the seed to idle")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err}
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	for _, s := range strings.Split(*procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 64 {
			errs = append(errs, fmt.Errorf("-procs: %q is not a count between 1 and 64", s))
			continue
		}
		c.procs = append(c.procs, n)
	}
	if c.hosts < 1 || c.hosts > 1000 {
		errs = append(errs, fmt.Errorf("-hosts %d: must be between 1 and 1000", c.hosts))
	}
	if c.pages < c.hosts {
		errs = append(errs, fmt.Errorf("-pages %d: must be at least -hosts (%d)", c.pages, c.hosts))
	}
	if c.shardNodes < 1 || c.shardNodes > bus.DefaultShards {
		errs = append(errs, fmt.Errorf("-shard-nodes %d: must be between 1 and %d", c.shardNodes, bus.DefaultShards))
	}
	if c.workers < 1 {
		errs = append(errs, fmt.Errorf("-workers %d: must be at least 1", c.workers))
	}
	if c.perHost < 1 {
		errs = append(errs, fmt.Errorf("-per-host-concurrency %d: must be at least 1", c.perHost))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: must be positive", c.timeout))
	}
	if c.binDir != "" {
		for _, name := range []string{"linkgraph", "nats-server"} {
			if _, err := os.Stat(filepath.Join(c.binDir, name)); err != nil {
				errs = append(errs, fmt.Errorf("-bin: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// binaries are the programs a cluster runs.
type binaries struct{ linkgraph, natsServer string }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "linkgraph-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bins := binaries{filepath.Join(cfg.binDir, "linkgraph"), filepath.Join(cfg.binDir, "nats-server")}
	if cfg.binDir == "" {
		if bins.linkgraph, err = clustertest.BuildLinkgraph(ctx, tmp); err != nil {
			return err
		}
		if bins.natsServer, err = clustertest.BuildNATSServer(ctx, tmp); err != nil {
			return err
		}
	}

	web, err := serveWeb(cfg)
	if err != nil {
		return err
	}
	defer web.close()
	fmt.Fprintf(stdout, "web: %d hosts (%s), %d pages to record, %d links, %.1f MB; hosts per shard node: %v\n",
		len(web.sites), web.hostRange(), web.pages, web.links, float64(web.bytes)/1e6, web.perNode)
	fmt.Fprintf(stdout, "cluster: 1 nats-server, %d shard nodes (--delay 0 --per-host-concurrency %d --ignore-robots), worker processes of --workers %d each\n",
		cfg.shardNodes, cfg.perHost, cfg.workers)
	fmt.Fprintf(stdout, "machine: %d cores, load average %s before the first run\n", runtime.NumCPU(), loadAvg())

	var results []result
	for i, k := range cfg.procs {
		r, err := measure(ctx, cfg, bins, web, k, filepath.Join(tmp, fmt.Sprint("run-", i)))
		if err != nil {
			return fmt.Errorf("run with %d worker process(es): %w", k, err)
		}
		fmt.Fprintf(stdout, "run %d/%d: %d worker process(es): %d pages in %.2fs, %.0f pages/s\n",
			i+1, len(cfg.procs), k, r.pages, r.wall.Seconds(), r.rate())
		results = append(results, r)
	}
	fmt.Fprintln(stdout)
	printTable(stdout, results)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, reading(results, runtime.NumCPU()))
	return nil
}

// ---------------------------------------------------------------------------
// The web.

// web is the synthetic web: one testweb.Site per host, each served by a
// net/http server on its own loopback address.
type web struct {
	sites   []*http.Server
	seeds   []string // each host's root
	pages   int      // URLs a full crawl records: each site's pages plus its "/"
	links   int
	bytes   int64
	perNode []int // hosts on each shard node
}

// serveWeb starts the sites. Their addresses are picked from 127.0.0.2 up
// so that the hosts spread as evenly as they can over the shard nodes:
// hosts are sharded by a hash of their address, and a node with more hosts
// than the others would be the bottleneck of every run.
func serveWeb(cfg config) (*web, error) {
	w := &web{perNode: make([]int, cfg.shardNodes)}
	quota := make([]int, cfg.shardNodes)
	for i := range quota {
		quota[i] = cfg.hosts*(i+1)/cfg.shardNodes - cfg.hosts*i/cfg.shardNodes
	}
	nodeOf := func(shard int) int {
		for i := range cfg.shardNodes {
			if lo, hi := bus.NodeRange(i, cfg.shardNodes, bus.DefaultShards); shard >= lo && shard < hi {
				return i
			}
		}
		return 0
	}
	for ip := 2; len(w.sites) < cfg.hosts; ip++ {
		if ip >= 1<<16 {
			w.close()
			return nil, errors.New("ran out of loopback addresses for the hosts")
		}
		addr := fmt.Sprintf("127.0.%d.%d", ip>>8, ip&0xff)
		if ip&0xff == 0 || ip&0xff == 0xff {
			continue
		}
		node := nodeOf(urlnorm.Shard(addr, bus.DefaultShards))
		if w.perNode[node] == quota[node] {
			continue
		}
		l, err := net.Listen("tcp", addr+":0")
		if err != nil {
			w.close()
			return nil, fmt.Errorf("cannot listen on %s (loopback addresses other than 127.0.0.1 need Linux): %w", addr, err)
		}
		h := len(w.sites)
		base := "http://" + l.Addr().String()
		site := testweb.NewSite(testweb.SiteOptions{
			Pages:   cfg.pages*(h+1)/cfg.hosts - cfg.pages*h/cfg.hosts,
			BaseURL: base,
			Seed:    int64(1 + h),
		})
		srv := &http.Server{Handler: site.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l) // returns when closed
		w.sites = append(w.sites, srv)
		w.seeds = append(w.seeds, base+"/")
		w.perNode[node]++
		// "/" serves page 0 too and pages link to /p/0.html: one more URL.
		w.pages += site.Pages() + 1
		w.links += site.Links()
		w.bytes += site.Bytes()
	}
	return w, nil
}

func (w *web) hostRange() string {
	host := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, "http://"), "/") }
	if len(w.seeds) == 1 {
		return host(w.seeds[0])
	}
	return host(w.seeds[0]) + " ... " + host(w.seeds[len(w.seeds)-1])
}

func (w *web) close() {
	for _, s := range w.sites {
		s.Close()
	}
}

// ---------------------------------------------------------------------------
// One run.

// result is one measured crawl. CPU seconds are those spent between the
// seed and idle; RSS is the peak of the largest process of each kind over
// its life.
type result struct {
	procs       int
	slots       int           // procs x --workers
	pages, ok   int           // recorded, recorded with a 2xx status
	wall        time.Duration // from the seed to idle
	window      time.Duration // between the CPU samples around the crawl: wall and the idle check
	cpu         cpuByKind
	busiest     string  // the process that spent the most CPU
	busiestCPU  float64 // its CPU seconds
	machineBusy float64 // the whole machine's busy fraction of all cores, other load included
	rss         struct{ nats, shard, worker int64 }
}

func (r result) rate() float64 { return float64(r.pages) / r.wall.Seconds() }

// msPerPage is the CPU milliseconds of all processes per page.
func (r result) msPerPage() float64 { return 1000 * r.cpu.total() / float64(r.pages) }

// busy is the share of the cores the cluster and this process kept busy.
func (r result) busy(cores int) float64 { return r.cpu.total() / (r.window.Seconds() * float64(cores)) }

type cpuByKind struct{ nats, shards, workers, web float64 }

func (c cpuByKind) total() float64 { return c.nats + c.shards + c.workers + c.web }

func (c cpuByKind) minus(o cpuByKind) cpuByKind {
	return cpuByKind{c.nats - o.nats, c.shards - o.shards, c.workers - o.workers, c.web - o.web}
}

// member is one linkgraph process of a cluster.
type member struct {
	proc *clustertest.Proc
	http string // its --http-addr
	pid  int    // 0 if not found
}

type cluster struct {
	nats        *clustertest.NATS
	natsPID     int
	shards      []*member
	workers     []*member
	linkgraph   string
	stopTimeout time.Duration
}

// measure starts a fresh cluster under dir with k worker processes, crawls
// the web and stops the cluster.
func measure(ctx context.Context, cfg config, bins binaries, w *web, k int, dir string) (res result, err error) {
	defer os.RemoveAll(dir)
	c, err := startCluster(cfg, bins, k, dir)
	if c != nil {
		defer func() {
			if err != nil {
				c.kill()
				return
			}
			err = c.stop()
		}()
	}
	if err != nil {
		return res, err
	}
	nc, err := nats.Connect(c.nats.URL)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}

	// The CPU of every process, the machine's and the clock are sampled
	// together before the seed and after idle; the time between the
	// samples is the window the CPU seconds cover.
	beforeAt, machineBefore := time.Now(), machineCPU()
	before, beforeByProc, err := c.cpu()
	if err != nil {
		return res, err
	}
	start := time.Now()
	seedCtx, cancel := context.WithTimeout(ctx, time.Minute)
	out, err := exec.CommandContext(seedCtx, c.linkgraph, append([]string{"seed", "--nats", c.nats.URL, "--log-level", "warn"}, w.seeds...)...).CombinedOutput()
	cancel()
	if err != nil {
		return res, fmt.Errorf("linkgraph seed: %w\n%s", err, out)
	}
	end, err := c.waitIdle(ctx, js, w.pages, cfg.timeout)
	if err != nil {
		return res, err
	}
	after, afterByProc, err := c.cpu()
	if err != nil {
		return res, err
	}
	afterAt, machineAfter := time.Now(), machineCPU()

	res = result{procs: k, slots: k * cfg.workers, wall: end.Sub(start), window: afterAt.Sub(beforeAt), cpu: after.minus(before)}
	for name, v := range afterByProc {
		if d := v - beforeByProc[name]; d > res.busiestCPU {
			res.busiest, res.busiestCPU = name, d
		}
	}
	if machineBefore.ok && machineAfter.ok {
		total := machineAfter.total - machineBefore.total
		if total > 0 {
			res.machineBusy = (total - (machineAfter.idle - machineBefore.idle)) / total
		}
	}
	for _, s := range c.shards {
		m, err := clustertest.Metrics(s.http)
		if err != nil {
			return res, err
		}
		res.pages += int(clustertest.Sum(m, "linkgraph_pages_total"))
		res.ok += int(m["linkgraph_pages_by_status_total"][`class="2xx"`])
	}
	_, res.rss.nats = procStat(c.natsPID)
	for _, s := range c.shards {
		_, rss := procStat(s.pid)
		res.rss.shard = max(res.rss.shard, rss)
	}
	for _, wk := range c.workers {
		_, rss := procStat(wk.pid)
		res.rss.worker = max(res.rss.worker, rss)
	}
	if res.ok != w.pages {
		return res, fmt.Errorf("%d pages recorded, %d of them with status 2xx; want all %d fetched with 2xx", res.pages, res.ok, w.pages)
	}
	return res, nil
}

// startCluster starts a nats-server storing under dir, the shard nodes and
// k workers, and waits until every one is ready. On error it returns the
// cluster started so far, for the caller to kill.
func startCluster(cfg config, bins binaries, k int, dir string) (*cluster, error) {
	if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o755); err != nil {
		return nil, err
	}
	nsrv, err := clustertest.StartNATS(bins.natsServer, filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	c := &cluster{nats: nsrv, linkgraph: bins.linkgraph, stopTimeout: 40 * time.Second}
	start := func(name string, args ...string) (*member, error) {
		addr, err := clustertest.FreeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--nats", nsrv.URL, "--http-addr", addr, "--log-level", "warn")
		p, err := clustertest.Start(name, bins.linkgraph, nil, args...)
		if err != nil {
			return nil, err
		}
		return &member{proc: p, http: addr}, nil
	}
	for i := range cfg.shardNodes {
		lo, hi := bus.NodeRange(i, cfg.shardNodes, bus.DefaultShards)
		m, err := start(fmt.Sprint("shard-", i), "shard", "--data", filepath.Join(dir, fmt.Sprint("shard-", i)),
			"--shards", fmt.Sprintf("%d-%d", lo, hi-1), "--delay", "0", "--per-host-concurrency", strconv.Itoa(cfg.perHost), "--ignore-robots")
		if err != nil {
			return c, err
		}
		c.shards = append(c.shards, m)
	}
	// The shard nodes create the streams the workers wait for.
	for _, m := range c.shards {
		if err := clustertest.WaitReady(m.http, m.proc, time.Minute); err != nil {
			return c, err
		}
	}
	for i := range k {
		m, err := start(fmt.Sprint("worker-", i), "worker", "--workers", strconv.Itoa(cfg.workers), "--allow-private-networks")
		if err != nil {
			return c, err
		}
		c.workers = append(c.workers, m)
	}
	for _, m := range c.workers {
		if err := clustertest.WaitReady(m.http, m.proc, time.Minute); err != nil {
			return c, err
		}
	}
	pids := childPIDs()
	c.natsPID = pids[strings.Join(nsrv.Args, "\x00")]
	for _, m := range c.members() {
		m.pid = pids[strings.Join(m.proc.Args, "\x00")]
	}
	return c, nil
}

func (c *cluster) members() []*member { return append(slices.Clone(c.workers), c.shards...) }

// cpu returns the CPU seconds spent so far by each kind of process and by
// each process: the linkgraph roles' from their process_cpu_seconds_total,
// the nats-server's from /proc and this process's (the web servers, and the
// polling) from getrusage.
func (c *cluster) cpu() (cpuByKind, map[string]float64, error) {
	var out cpuByKind
	byProc := map[string]float64{}
	for _, kind := range []struct {
		members []*member
		sum     *float64
	}{{c.shards, &out.shards}, {c.workers, &out.workers}} {
		for _, m := range kind.members {
			metrics, err := clustertest.Metrics(m.http)
			if err != nil {
				return out, nil, fmt.Errorf("%s: %w", m.proc.Name, err)
			}
			v := clustertest.Sum(metrics, "process_cpu_seconds_total")
			*kind.sum += v
			byProc[m.proc.Name] = v
		}
	}
	if c.natsPID == 0 {
		return out, nil, errors.New("cannot find the nats-server process in /proc")
	}
	out.nats, _ = procStat(c.natsPID)
	byProc[c.nats.Name] = out.nats
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return out, nil, err
	}
	out.web = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	byProc["web (this process)"] = out.web
	return out, byProc, nil
}

// waitIdle waits until the shard nodes have recorded every page, their
// frontiers have nothing queued or in flight and no stream holds a message,
// twice in a row (a message may be between two streams), and returns the
// time of the first of the two observations.
func (c *cluster) waitIdle(ctx context.Context, js jetstream.JetStream, pages int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var first time.Time
	streak := 0
	state := ""
	for {
		now := time.Now()
		idle, s, err := c.idle(ctx, js, pages)
		if err != nil {
			return now, err
		}
		state = s
		if idle {
			if streak == 0 {
				first = now
			}
			if streak++; streak == 2 {
				return first, nil
			}
		} else {
			streak = 0
		}
		for _, m := range append(c.members(), &member{proc: c.nats.Proc}) {
			if m.proc.Exited() {
				return now, fmt.Errorf("%s exited during the crawl:\n%s", m.proc.Name, tail(m.proc.Output(), 4096))
			}
		}
		if now.After(deadline) {
			return now, fmt.Errorf("not idle after %v: %s", timeout, state)
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) idle(ctx context.Context, js jetstream.JetStream, pages int) (bool, string, error) {
	var recorded, queued, inflight float64
	for _, s := range c.shards {
		m, err := clustertest.Metrics(s.http)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", s.proc.Name, err)
		}
		recorded += clustertest.Sum(m, "linkgraph_pages_total")
		queued += clustertest.Sum(m, "linkgraph_frontier_queued_urls")
		inflight += clustertest.Sum(m, "linkgraph_frontier_inflight_urls")
	}
	state := fmt.Sprintf("%v of %d pages recorded, %v queued, %v in flight", recorded, pages, queued, inflight)
	if int(recorded) < pages || queued > 0 || inflight > 0 {
		return false, state, nil
	}
	for _, name := range []string{"FETCH", "PAGES", "LINKS"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false, state, fmt.Errorf("stream %s: %w", name, err)
		}
		// Work-queue streams keep a message until it is acked.
		if n := s.CachedInfo().State.Msgs; n > 0 {
			return false, fmt.Sprintf("%s, %d messages in %s", state, n, name), nil
		}
	}
	return true, state, nil
}

// stop sends SIGTERM to the workers, then the shard nodes, then the
// nats-server, and waits for each to exit (killing it after stopTimeout).
// A role that does not exit 0 is an error.
func (c *cluster) stop() error {
	var errs []error
	for _, group := range [][]*clustertest.Proc{procs(c.workers), procs(c.shards), {c.nats.Proc}} {
		for _, p := range group {
			if err := p.Signal(syscall.SIGTERM); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			}
		}
		for _, p := range group {
			if err := p.Wait(c.stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("%s after SIGTERM: %w\n%s", p.Name, err, tail(p.Output(), 4096)))
			}
		}
	}
	return errors.Join(errs...)
}

// kill kills every process still running.
func (c *cluster) kill() {
	for _, p := range append(procs(c.members()), c.nats.Proc) {
		if !p.Exited() {
			p.Kill()
		}
	}
}

func procs(ms []*member) []*clustertest.Proc {
	out := make([]*clustertest.Proc, len(ms))
	for i, m := range ms {
		out[i] = m.proc
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// ---------------------------------------------------------------------------
// /proc.

// clockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// childPIDs returns this process's children by their arguments (without
// the program name), joined with NUL.
func childPIDs() map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields := statFields(pid)
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != self {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		out[strings.Join(args[1:], "\x00")] = pid
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] is the state, [1] the parent's pid, [11] utime, [12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procStat returns the CPU seconds (user + system) and the peak resident
// set (VmHWM, bytes) of process pid; zero for what it cannot read.
func procStat(pid int) (cpu float64, hwm int64) {
	if pid <= 0 {
		return 0, 0
	}
	if f := statFields(pid); len(f) > 12 {
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		cpu = (u + s) / clockTicks
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return cpu, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			hwm = kb << 10
		}
	}
	return cpu, hwm
}

type machineSample struct {
	total, idle float64
	ok          bool
}

// machineCPU reads the whole machine's CPU time from /proc/stat.
func machineCPU() machineSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return machineSample{}
	}
	var s machineSample
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		// guest and guest_nice are already counted in user and nice.
		if i < 8 {
			s.total += x
		}
		if i == 3 || i == 4 { // idle, iowait
			s.idle += x
		}
	}
	s.ok = true
	return s
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ---------------------------------------------------------------------------
// Report.

// baseline is the result the speed-ups are against: the run with one
// worker process, else the first.
func baseline(rs []result) result {
	for _, r := range rs {
		if r.procs == 1 {
			return r
		}
	}
	return rs[0]
}

func printTable(w io.Writer, rs []result) {
	base := baseline(rs)
	cores := runtime.NumCPU()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "procs\tslots\tpages\tseconds\tpages/s\tspeed-up\tcpu ms/page\tcpu nats\tcpu shards\tcpu workers\tcpu web\tcpu total\tbusy\tmachine busy\trss nats\trss shard\trss worker\t")
	mib := func(b int64) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(b)/(1<<20))
	}
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f%%\t%.0f%%\t%s\t%s\t%s\t\n",
			r.procs, r.slots, r.pages, r.wall.Seconds(), r.rate(), r.rate()/base.rate(), r.msPerPage(),
			r.cpu.nats, r.cpu.shards, r.cpu.workers, r.cpu.web, r.cpu.total(),
			100*r.busy(cores), 100*r.machineBusy,
			mib(r.rss.nats), mib(r.rss.shard), mib(r.rss.worker))
	}
	tw.Flush()
	fmt.Fprintf(w, "slots: worker processes x --workers, the most fetches in flight. speed-up: pages/s against %d worker process(es).\n", base.procs)
	fmt.Fprintln(w, "cpu: seconds spent from the seed to idle, in all and by kind (web: this process, which serves the sites); cpu ms/page: cpu total per page.")
	fmt.Fprintf(w, "busy: cpu total / (seconds x %d cores); machine busy: the same for everything on the machine (/proc/stat). rss: peak MiB of the largest process of the kind.\n", cores)
}

// reading derives what limits scaling from the results.
func reading(rs []result, cores int) string {
	base := baseline(rs)
	best := slices.MaxFunc(rs, func(a, b result) int { return cmpFloat(a.rate(), b.rate()) })
	most := slices.MaxFunc(rs, func(a, b result) int { return a.procs - b.procs })
	idlest := slices.MinFunc(rs, func(a, b result) int { return cmpFloat(a.busy(cores), b.busy(cores)) })
	busiest := slices.MaxFunc(rs, func(a, b result) int { return cmpFloat(a.busy(cores), b.busy(cores)) })
	cheapest := slices.MinFunc(rs, func(a, b result) int { return cmpFloat(a.msPerPage(), b.msPerPage()) })
	ceiling := float64(cores) * 1000 / cheapest.msPerPage()
	perPage := func(cpu float64, r result) float64 { return 1000 * cpu / float64(r.pages) }

	var b strings.Builder
	b.WriteString("What limits scaling: ")
	saturated := idlest.busy(cores) >= 0.85
	if saturated {
		fmt.Fprintf(&b, "CPU. The crawl kept the %d cores %.0f-%.0f%% busy in every run, so a run could be faster only by spending less CPU per page, not by adding parallelism. ",
			cores, 100*idlest.busy(cores), 100*busiest.busy(cores))
	} else {
		fmt.Fprintf(&b, "not CPU alone. With %d worker process(es) the cores were only %.0f%% busy, so something else held that run back: latency, too few fetch slots, or a serial stage. ",
			idlest.procs, 100*idlest.busy(cores))
	}
	b.WriteString("A page cost ")
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.2f ms of CPU with %d process(es) (%d fetch slots)", r.msPerPage(), r.procs, r.slots)
	}
	b.WriteString(". ")
	if best.procs != base.procs {
		saving := base.msPerPage() / best.msPerPage()
		fmt.Fprintf(&b, "The best speed-up, %.2f with %d processes, is the saving in CPU per page (x%.2f) times the change in busy cores (x%.2f)",
			best.rate()/base.rate(), best.procs, saving, best.busy(cores)/base.busy(cores))
		if saving > 1.05 && best.slots > base.slots {
			fmt.Fprintf(&b, ": with more fetches in flight the shard nodes and nats-server take fuller batches (they handle whatever has arrived at once), "+
				"so their costs per batch (Pebble commits, fsyncs, acks) are shared by more pages: shard nodes %.2f -> %.2f ms a page, nats-server %.2f -> %.2f, workers %.2f -> %.2f",
				perPage(base.cpu.shards, base), perPage(best.cpu.shards, best), perPage(base.cpu.nats, base), perPage(best.cpu.nats, best),
				perPage(base.cpu.workers, base), perPage(best.cpu.workers, best))
		}
		b.WriteString(". ")
		if most.procs != best.procs {
			fmt.Fprintf(&b, "More processes did not add to it: %d gave %.2f. ", most.procs, most.rate()/base.rate())
		}
	} else if len(rs) > 1 {
		fmt.Fprintf(&b, "No run beat %d process(es): more processes only divided the same cores among more fetchers (%d gave %.2f). ", base.procs, most.procs, most.rate()/base.rate())
	}

	// Where the CPU goes, over all runs.
	var sum cpuByKind
	pages := 0
	for _, r := range rs {
		sum.nats, sum.shards, sum.workers, sum.web = sum.nats+r.cpu.nats, sum.shards+r.cpu.shards, sum.workers+r.cpu.workers, sum.web+r.cpu.web
		pages += r.pages
	}
	type part struct {
		name string
		v    float64
	}
	parts := []part{{"the shard nodes (frontier, index, Pebble)", sum.shards}, {"the workers (fetch, parse, publish)", sum.workers}, {"nats-server (JetStream file store)", sum.nats}, {"the web servers", sum.web}}
	slices.SortStableFunc(parts, func(a, b part) int { return cmpFloat(b.v, a.v) })
	b.WriteString("Over all runs the CPU went to ")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f%% (%.2f ms a page)", p.name, 100*p.v/sum.total(), 1000*p.v/float64(pages))
	}
	b.WriteString(". ")
	top := slices.MaxFunc(rs, func(a, b result) int {
		return cmpFloat(a.busiestCPU/a.window.Seconds(), b.busiestCPU/b.window.Seconds())
	})
	if share := top.busiestCPU / top.window.Seconds(); share >= 0.9 {
		fmt.Fprintf(&b, "The busiest process, %s with %d worker process(es), used %.2f of a core: a serial stage that caps the crawl by itself. ", top.busiest, top.procs, share)
	} else {
		fmt.Fprintf(&b, "No one process is a serial bottleneck: the busiest, %s with %d worker process(es), used %.2f of a core. ", top.busiest, top.procs, share)
	}
	fmt.Fprintf(&b, "At the cheapest %.2f ms a page, %d cores cap this crawl near %.0f pages/s, and the best run reached %.0f%% of that. ",
		cheapest.msPerPage(), cores, ceiling, 100*best.rate()/ceiling)
	if saturated {
		fmt.Fprintf(&b, "So on %d cores worker processes help only as far as they make a page cheaper; beyond that, more throughput needs more cores or machines (the workers are stateless, the shards split), or less CPU per page, starting with %s.",
			cores, strings.SplitN(parts[0].name, " (", 2)[0])
	}
	if other := maxOther(rs, cores); other > 0.1 {
		fmt.Fprintf(&b, " Note: other processes on the machine took up to %.0f%% of its cores during a run, which disturbs these timings.", 100*other)
	}
	return b.String()
}

// maxOther is the largest share of the cores that processes outside the
// cluster and this one took during a run.
func maxOther(rs []result, cores int) float64 {
	var m float64
	for _, r := range rs {
		m = max(m, r.machineBusy-r.busy(cores))
	}
	return m
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
