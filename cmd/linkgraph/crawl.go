package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/linkgraph/linkgraph/crawler"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/node"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// DefaultDataDir is where the all-in-one commands keep their state.
const DefaultDataDir = "./linkgraph-data"

// crawlFlags are the flags shared by crawl and serve.
type crawlFlags struct {
	fetchFlags
	frontierFlags
	storeFlags
	data       string
	shards     int
	logLevel   string
	cpuprofile string
}

func (f *crawlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", DefaultDataDir, "data directory (index and queue); reused across runs")
	f.fetchFlags.register(fs, 8)
	f.frontierFlags.register(fs)
	f.storeFlags.register(fs)
	fs.IntVar(&f.shards, "shards", 0, fmt.Sprintf("shard count, fixed when a data directory is created (0: the directory's, or %d for a new one)", bus.DefaultShards))
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
}

// fetchFlags configure the workers' fetches.
type fetchFlags struct {
	workers      int
	allowPrivate bool
	maxBody      byteSize
	timeout      time.Duration
	userAgent    string
}

func (f *fetchFlags) register(fs *flag.FlagSet, defaultWorkers int) {
	f.maxBody = crawler.DefaultMaxBody
	fs.IntVar(&f.workers, "workers", defaultWorkers, "concurrent fetches")
	fs.BoolVar(&f.allowPrivate, "allow-private-networks", false, "allow fetching loopback, private and link-local addresses")
	fs.Var(&f.maxBody, "max-body", "cut response bodies at this size and record them as truncated")
	fs.DurationVar(&f.timeout, "timeout", crawler.DefaultTimeout, "time limit of one request, body included")
	fs.StringVar(&f.userAgent, "user-agent", crawler.DefaultUserAgent, "User-Agent header")
}

func (f *fetchFlags) config() (crawler.WorkerConfig, []error) {
	var errs []error
	if f.workers < 1 {
		errs = append(errs, usagef("--workers %d: must be at least 1", f.workers))
	}
	if f.timeout <= 0 {
		errs = append(errs, usagef("--timeout %v: must be positive", f.timeout))
	}
	return crawler.WorkerConfig{
		Concurrency: f.workers,
		Fetcher: crawler.FetcherConfig{
			UserAgent: f.userAgent, Timeout: f.timeout, MaxBody: int64(f.maxBody),
			AllowPrivateNetworks: f.allowPrivate,
		},
	}, errs
}

// frontierFlags configure what is crawled and how politely.
type frontierFlags struct {
	scope           string
	maxDepth        int
	maxPages        int
	delay           time.Duration
	perHost         int
	ignoreRobots    bool
	robotsTTL       time.Duration
	maxCrawlDelay   time.Duration
	maxAttempts     int
	retryBackoff    time.Duration
	maxBackoff      time.Duration
	maxHostFailures int
	maxPagesPerHost int
	maxURLLength    int
	maxRepeats      int
	maxQueryParams  int
	revisit         time.Duration
	minRevisit      time.Duration
	maxRevisit      time.Duration
}

func (f *frontierFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.scope, "scope", string(frontier.ScopeHost), "which links to follow: host (the seeds' hosts), domain (their registrable domains) or all")
	fs.IntVar(&f.maxDepth, "max-depth", 0, "follow links at most this many hops from a seed (0: no limit)")
	fs.IntVar(&f.maxPages, "max-pages", 0, "stop after fetching this many pages in this run (0: no limit)")
	fs.DurationVar(&f.delay, "delay", frontier.DefaultDelay, "least time between the end of one request to a host and the start of the next")
	fs.IntVar(&f.perHost, "per-host-concurrency", frontier.DefaultPerHostConcurrency, "most requests in flight to one host")
	fs.BoolVar(&f.ignoreRobots, "ignore-robots", false, "do not fetch or obey robots.txt")
	fs.DurationVar(&f.robotsTTL, "robots-ttl", frontier.DefaultRobotsTTL, "how long a fetched robots.txt is trusted")
	fs.DurationVar(&f.maxCrawlDelay, "max-crawl-delay", frontier.DefaultMaxCrawlDelay, "cap on a robots.txt Crawl-delay")
	fs.IntVar(&f.maxAttempts, "max-attempts", frontier.DefaultMaxAttempts, "fetch attempts of a URL failing with 429, 503 or a network error")
	fs.DurationVar(&f.retryBackoff, "retry-backoff", frontier.DefaultRetryBackoff, "first pause of a failing host; doubles with each failure")
	fs.DurationVar(&f.maxBackoff, "max-backoff", frontier.DefaultMaxBackoff, "longest pause of a failing host (also caps Retry-After)")
	fs.IntVar(&f.maxHostFailures, "max-host-failures", frontier.DefaultMaxHostFailures, "consecutive failures after which a host is given up")
	fs.IntVar(&f.maxPagesPerHost, "max-pages-per-host", 0, "URLs admitted per host (0: no limit)")
	fs.IntVar(&f.maxURLLength, "max-url-length", frontier.DefaultMaxURLLength, "longer URLs are skipped as traps")
	fs.IntVar(&f.maxRepeats, "max-repeated-segments", frontier.DefaultMaxRepeatedSegments, "URLs repeating a path segment more often are skipped as traps")
	fs.IntVar(&f.maxQueryParams, "max-query-params", frontier.DefaultMaxQueryParams, "URLs with more query parameters are skipped as traps")
	fs.DurationVar(&f.revisit, "revisit", frontier.DefaultRevisit, "fetch a page again after this long (with a conditional request), then sooner or later as its links change or not; negative: never")
	fs.DurationVar(&f.minRevisit, "min-revisit", 0, "shortest time between two fetches of a page (0: 24h, or --revisit if shorter)")
	fs.DurationVar(&f.maxRevisit, "max-revisit", 0, "longest time between two fetches of a page (0: 720h, or --revisit if longer)")
}

// config returns the frontier's configuration for a cluster of shards
// shards.
func (f *frontierFlags) config(shards int) (frontier.Config, []error) {
	c := frontier.Config{
		Shards: shards,
		Scope:  frontier.ScopeMode(f.scope), MaxDepth: f.maxDepth, MaxPages: f.maxPages,
		Delay: f.delay, PerHostConcurrency: f.perHost,
		IgnoreRobots: f.ignoreRobots, RobotsTTL: f.robotsTTL, MaxCrawlDelay: f.maxCrawlDelay,
		MaxAttempts: f.maxAttempts, RetryBackoff: f.retryBackoff, MaxBackoff: f.maxBackoff,
		MaxHostFailures: f.maxHostFailures, MaxPagesPerHost: f.maxPagesPerHost,
		MaxURLLength: f.maxURLLength, MaxRepeatedSegments: f.maxRepeats, MaxQueryParams: f.maxQueryParams,
		Revisit: f.revisit, MinRevisit: f.minRevisit, MaxRevisit: f.maxRevisit,
	}
	if err := c.Validate(); err != nil {
		return c, []error{usageError{err}}
	}
	return c, nil
}

// startProfile starts CPU profiling if asked; the returned stop is never nil.
func (f *crawlFlags) startProfile() (stop func(), err error) {
	if f.cpuprofile == "" {
		return func() {}, nil
	}
	if err := checkOutsideData("--cpuprofile", f.cpuprofile, f.data); err != nil {
		return nil, err
	}
	out, err := os.Create(f.cpuprofile)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

func (f *crawlFlags) config() (node.Config, error) {
	var errs []error
	if f.shards < 0 || f.shards > 1<<16 {
		errs = append(errs, usagef("--shards %d: must be between 1 and 65536", f.shards))
	}
	if f.data == "" {
		errs = append(errs, usagef("--data must not be empty"))
	}
	so, err := f.storeFlags.options()
	if err != nil {
		errs = append(errs, err)
	}
	bc := bus.DefaultConfig()
	bc.Shards = f.shards
	wc, werrs := f.fetchFlags.config()
	fc, ferrs := f.frontierFlags.config(max(f.shards, 1))
	errs = append(errs, append(werrs, ferrs...)...)
	if len(errs) > 0 {
		return node.Config{}, usageError{errors.Join(errs...)}
	}
	return node.Config{DataDir: f.data, Store: so, Bus: bc, Frontier: fc, Worker: wc}, nil
}

// normalizeSeeds validates every seed and reports all bad ones at once.
func normalizeSeeds(raw []string) ([]string, error) {
	var seeds []string
	var errs []error
	for _, r := range raw {
		n, err := urlnorm.Normalize(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w (give an absolute http:// or https:// URL)", r, err))
			continue
		}
		seeds = append(seeds, n)
	}
	if len(errs) > 0 {
		return nil, usageError{errors.Join(errs...)}
	}
	return seeds, nil
}

type crawlCmd struct{}

func (*crawlCmd) name() string { return "crawl" }
func (*crawlCmd) synopsis() string {
	return "crawl from seed URLs and index their links, until done (all-in-one)"
}

func (c *crawlCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	paceCollector(rolesGCPercent)
	fs := newFlagSet("crawl", "crawl [flags] SEED...", stderr)
	var f crawlFlags
	f.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	seeds, err := normalizeSeeds(pos)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	stopProfile, err := f.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	n, err := node.OpenAllInOne(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	if len(seeds) == 0 && n.Frontier().Stats().Queued == 0 && !n.Frontier().RevisitsDue() {
		return usagef("give at least one seed URL (the data directory has nothing queued to resume and no page due for a revisit)")
	}
	before, err := n.Index().Counters()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := n.Seed(ctx, seeds); err != nil {
		return err
	}

	if err := runUntilIdle(ctx, n); err != nil {
		return err
	}
	elapsed := time.Since(start)
	after, err := n.Index().Counters()
	if err != nil {
		return err
	}
	interrupted := ctx.Err() != nil
	printSummary(stdout, before, after, elapsed, n.Frontier().Stats(), interrupted)
	log.Info("crawl finished", slog.Duration("elapsed", elapsed))
	if interrupted {
		return nil
	}
	return nothingAnswered(before, after)
}

// nothingAnswered returns an error when the run tried URLs and no server
// answered a single page: a script must not mistake a crawl that reached
// nothing (every seed refused, unreachable or disallowed) for one that
// worked. A run with nothing to do (every seed already crawled) is fine.
func nothingAnswered(before, after map[string]int64) error {
	var answered, failed int64
	var private bool
	for name, v := range after {
		v -= before[name]
		switch {
		case v == 0:
		case strings.HasPrefix(name, indexer.FetchStatusCounter("")):
			answered += v
		case strings.HasPrefix(name, indexer.FetchErrorCounter("")), strings.HasPrefix(name, frontier.CounterSkipped("")):
			failed += v
			private = private || strings.HasSuffix(name, frontier.SkipPrivateAddress)
		}
	}
	if answered > 0 || failed == 0 {
		return nil
	}
	hint := "the summary above says why"
	if private {
		hint += "; a seed on a private or loopback address needs --allow-private-networks"
	}
	return fmt.Errorf("no page was fetched: every URL tried failed or was skipped (%s)", hint)
}

// runUntilIdle runs n until it has nothing left to do or ctx ends.
func runUntilIdle(ctx context.Context, n *node.AllInOne) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return n.Run(gctx) })
	g.Go(func() error {
		defer stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-tick.C:
			}
			idle, err := n.Idle(gctx)
			if err != nil && gctx.Err() == nil {
				return err
			}
			if idle {
				return nil
			}
		}
	})
	return g.Wait()
}

// printSummary prints what the run did: the differences of the index's
// counters over the run. Fetches count every page fetch of the run, first
// fetches and revisits alike; a 304 Not Modified answer to a revisit's
// conditional request shows as "304" under by status.
func printSummary(w io.Writer, before, after map[string]int64, elapsed time.Duration, fs frontier.Stats, interrupted bool) {
	d := func(name string) int64 { return after[name] - before[name] }
	pages := d(indexer.CounterFetches)
	state := "finished"
	if interrupted {
		state = "interrupted (run again with the same --data to continue)"
	}
	fmt.Fprintf(w, "crawl %s in %s\n", state, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  pages fetched     %d (%.1f pages/s)\n", pages, float64(pages)/elapsed.Seconds())
	var status, errs, skips, robotsErrs []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if v := d(name); v != 0 {
			if class, ok := strings.CutPrefix(name, indexer.FetchStatusCounter("")); ok {
				status = append(status, fmt.Sprintf("%s %d", class, v))
			}
			if reason, ok := strings.CutPrefix(name, indexer.FetchErrorCounter("")); ok {
				errs = append(errs, fmt.Sprintf("%s %d", reason, v))
			}
			if reason, ok := strings.CutPrefix(name, frontier.CounterSkipped("")); ok {
				skips = append(skips, fmt.Sprintf("%s %d", reason, v))
			}
			if reason, ok := strings.CutPrefix(name, frontier.CounterRobotsError("")); ok {
				robotsErrs = append(robotsErrs, fmt.Sprintf("%s %d", reason, v))
			}
		}
	}
	fmt.Fprintf(w, "  by status         %s\n", orNone(status))
	fmt.Fprintf(w, "  fetch errors      %s\n", orNone(errs))
	fmt.Fprintf(w, "  retries           %d (429, 503 and network errors fetched again)\n", d(frontier.CounterRetries))
	fmt.Fprintf(w, "  robots.txt        %d fetched, failures: %s\n", d(frontier.CounterRobotsFetched), orNone(robotsErrs))
	fmt.Fprintf(w, "  sitemaps          %d fetched\n", d(indexer.CounterSitemapFetches))
	fmt.Fprintf(w, "  skipped URLs      %s\n", orNone(skips))
	fmt.Fprintf(w, "  links indexed     %d new, %d lost (live edges added and lost)\n", d(indexer.CounterEdgesAdded), d(indexer.CounterEdgesLost))
	fmt.Fprintf(w, "  distinct targets  %d\n", d(indexer.CounterTargets))
	fmt.Fprintf(w, "  skipped links     %d (unparseable or not http/https)\n", d(indexer.CounterSkippedLinks))
	fmt.Fprintf(w, "  truncated bodies  %d\n", d(indexer.CounterFetchesTruncated))
	fmt.Fprintf(w, "  still queued      %d\n", fs.Queued)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
