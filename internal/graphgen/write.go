package graphgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/linkgraph/linkgraph/indexer"
)

// DefaultPagesPerTxn is WriteOptions.PagesPerTxn when it is zero.
const DefaultPagesPerTxn = 256

// WriteOptions tune Write.
type WriteOptions struct {
	// PagesPerTxn is how many fetch results one index transaction records
	// (default DefaultPagesPerTxn).
	PagesPerTxn int
	// Progress, if set, is called after every committed transaction.
	Progress func(WriteStats)
}

// WriteStats describe a Write.
type WriteStats struct {
	// Fetches are the fetch results recorded, Recrawls the second fetches
	// among them.
	Fetches, Recrawls int
	// Links counts the links of the recorded results, repeats included;
	// Lost the links that disappeared with a second fetch.
	Links, Lost int64
	// Elapsed is the time since Write started.
	Elapsed time.Duration
}

// Write records every fetch of w in ix exactly as the shard role does with
// a crawl's results: per transaction of PagesPerTxn results, RecordPage for
// each, ApplyLinks for each LinkBatch it returns, then Commit. The index
// must be empty or hold an earlier Write of the same graph. Results are
// generated on another goroutine while the previous transaction is
// written.
func Write(ctx context.Context, ix *indexer.Index, w *Web, opts WriteOptions) (WriteStats, error) {
	per := opts.PagesPerTxn
	if per <= 0 {
		per = DefaultPagesPerTxn
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan []Fetch, 4)
	g.Go(func() error {
		defer close(batches)
		batch := make([]Fetch, 0, per)
		err := w.Each(gctx, func(f Fetch) error {
			batch = append(batch, f)
			if len(batch) < per {
				return nil
			}
			select {
			case batches <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
			batch = make([]Fetch, 0, per)
			return nil
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		select {
		case batches <- batch:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	})
	var st WriteStats
	g.Go(func() error {
		for batch := range batches {
			if err := writeBatch(ix, batch); err != nil {
				return err
			}
			for _, f := range batch {
				st.Fetches++
				st.Links += int64(len(f.Result.Links))
				st.Lost += int64(f.Lost)
				if f.Recrawl {
					st.Recrawls++
				}
			}
			if opts.Progress != nil {
				st.Elapsed = time.Since(start)
				opts.Progress(st)
			}
		}
		return nil
	})
	err := g.Wait()
	st.Elapsed = time.Since(start)
	return st, err
}

func writeBatch(ix *indexer.Index, batch []Fetch) error {
	txn := ix.Begin()
	defer txn.Close()
	for _, f := range batch {
		out, err := txn.RecordPage(f.Result)
		if err != nil {
			return fmt.Errorf("graphgen: cannot record %s: %w", f.Result.GetUrl(), err)
		}
		// In shard order, as the batches would arrive on their streams; the
		// order does not change the result.
		shards := make([]int, 0, len(out))
		for s := range out {
			shards = append(shards, s)
		}
		slices.Sort(shards)
		for _, s := range shards {
			if err := txn.ApplyLinks(out[s]); err != nil {
				return fmt.Errorf("graphgen: cannot apply links of %s: %w", f.Result.GetUrl(), err)
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("graphgen: cannot commit: %w", err)
	}
	return nil
}
