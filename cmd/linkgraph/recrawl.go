package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/node"
)

type recrawlCmd struct{}

func (*recrawlCmd) name() string { return "recrawl" }
func (*recrawlCmd) synopsis() string {
	return "fetch now the pages that link to a target, to verify its backlinks"
}

func (c *recrawlCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recrawl", "recrawl [--data DIR | --server ADDR] [--scope S] [flags] TARGET", stderr)
	q := queryFlags{format: "table"} // it prints a summary, not rows
	q.registerSelection(fs, true)
	maxSources := fs.Int("max-sources", indexer.DefaultRecrawlSources, fmt.Sprintf("fetch at most this many source pages (1..%d)", indexer.MaxRecrawlSources))
	// The flags registered after these configure the local fetches, which
	// a recrawl through --server leaves to the server.
	remote := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { remote[f.Name] = true })
	var ff fetchFlags
	ff.register(fs, 8)
	delay := fs.Duration("delay", frontier.DefaultDelay, "with --data: least time between the end of one request to a host and the start of the next")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	target, scope, filter, err := q.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	if !proto.Equal(filter, &lgv1.Filter{}) {
		return usagef("recrawl takes no link filters: it fetches every page that links to the target, live or lost")
	}
	if *maxSources < 1 || *maxSources > indexer.MaxRecrawlSources {
		return usagef("--max-sources %d: must be between 1 and %d", *maxSources, indexer.MaxRecrawlSources)
	}
	if q.server != "" {
		// Silently ignored, a local setting would mislead.
		var local []string
		fs.Visit(func(f *flag.Flag) {
			if !remote[f.Name] {
				local = append(local, "--"+f.Name)
			}
		})
		if len(local) > 0 {
			return usagef("%s: not with --server, whose fetches use the server's settings (they apply with --data)", strings.Join(local, ", "))
		}
	}
	req := &lgv1.RecrawlRequest{Target: target, Scope: scope, MaxSources: int32(*maxSources)}
	if q.server != "" {
		api, closeAPI, err := q.open()
		if err != nil {
			return err
		}
		defer closeAPI()
		res, err := api.(remoteAPI).c.Recrawl(ctx, req)
		if err != nil {
			return callError(err)
		}
		fmt.Fprintf(stdout, "queued %d source pages for a fetch now%s\n", res.GetQueued(), truncatedNote(res.GetTruncated()))
		return nil
	}

	wc, errs := ff.config()
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	fr := frontierFlags{scope: string(frontier.ScopeHost), delay: *delay, perHost: frontier.DefaultPerHostConcurrency}
	fc, ferrs := fr.config(1)
	if err := errors.Join(ferrs...); err != nil {
		return usageError{err}
	}
	// Only the sources: what a crawl left queued waits for the next crawl.
	fc.RecrawlOnly = true
	bc := bus.DefaultConfig()
	bc.Shards = 0
	dir := q.data
	if dir == "" {
		dir = DefaultDataDir
	}
	n, err := node.OpenAllInOne(ctx, node.Config{DataDir: dir, Bus: bc, Frontier: fc, Worker: wc}, log)
	if err != nil {
		return err
	}
	defer n.Close()
	count := func(ctx context.Context) (live, lost int, err error) {
		res, err := n.Index().Summary(ctx, &lgv1.SummaryRequest{Target: target, Scope: scope, Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}})
		if err != nil {
			return 0, 0, err
		}
		all, err := n.Index().Summary(ctx, &lgv1.SummaryRequest{Target: target, Scope: scope, Filter: &lgv1.Filter{State: lgv1.LinkState_LINK_STATE_ALL, Internal: lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE}})
		if err != nil {
			return 0, 0, err
		}
		return int(res.GetSummary().GetBacklinks()), int(all.GetSummary().GetBacklinks() - res.GetSummary().GetBacklinks()), nil
	}
	liveBefore, lostBefore, err := count(ctx)
	if err != nil {
		return callError(indexer.Status(err))
	}
	countersBefore, err := n.Index().Counters()
	if err != nil {
		return err
	}
	queued, truncated, err := n.Recrawl(ctx, target, scope, *maxSources)
	if err != nil {
		return callError(indexer.Status(err))
	}
	if queued == 0 {
		fmt.Fprintln(stdout, "no known backlinks: nothing to recrawl")
		return nil
	}
	if err := runUntilIdle(ctx, n); err != nil {
		return err
	}
	// An interrupted run has drained: what it did is in the index, and the
	// summary reads it even though ctx is done.
	liveAfter, lostAfter, err := count(context.WithoutCancel(ctx))
	if err != nil {
		return callError(indexer.Status(err))
	}
	countersAfter, err := n.Index().Counters()
	if err != nil {
		return err
	}
	var notFetched []string
	var unfetched, refused int64
	for _, reason := range []string{frontier.SkipPrivateAddress, frontier.SkipHostGivenUp} {
		name := frontier.CounterSkipped(reason)
		if d := countersAfter[name] - countersBefore[name]; d > 0 {
			notFetched = append(notFetched, fmt.Sprintf("%s %d", reason, d))
			unfetched += d
			if reason == frontier.SkipPrivateAddress {
				refused = d
			}
		}
	}
	state := "verified"
	switch {
	case ctx.Err() != nil:
		state = "interrupted (run again with the same --data to go on)"
	case unfetched > 0:
		state = fmt.Sprintf("%d not fetched, their links left as they were", unfetched)
	}
	fmt.Fprintf(stdout, "recrawled %d source pages%s: %s\n", queued, truncatedNote(truncated), state)
	fmt.Fprintf(stdout, "  not fetched     %s\n", orNone(notFetched))
	if refused > 0 {
		fmt.Fprintln(stdout, "                  (loopback and private addresses are refused: pass --allow-private-networks to fetch them)")
	}
	fmt.Fprintf(stdout, "  live backlinks  %d (were %d)\n  lost backlinks  %d (were %d)\n", liveAfter, liveBefore, lostAfter, lostBefore)
	return nil
}

func truncatedNote(t bool) string {
	if t {
		return " (more link to the target; raise --max-sources)"
	}
	return ""
}
