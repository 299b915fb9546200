package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/crawler"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/store"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// indexLoop is the bare loop plus what a crawl must do with a page besides
// fetching it: the crawler's link extraction (crawler.Extract) and the
// index's write path (indexer.Txn RecordFetch and ApplyLinks: page record,
// forward list, edges, source records, aggregates), committed and synced
// every batch of up to 64 pages by one writer, as a shard node's appliers
// do. No Colly, no NATS, no frontier: the crawl's pages/s against this
// one's is the cost of the pipeline, and this one's against the bare
// loop's the cost of indexing. The index is one shard, in dir.
//
// With dir "", it stops short of the index: that extract loop's pages/s
// against the bare loop's is the cost of crawler.Extract.
func indexLoop(sites []served, workers int, dir string) (pages, links int64, d time.Duration, err error) {
	var db *store.DB
	var ix *indexer.Index
	if dir != "" {
		if db, err = store.Open(dir); err != nil {
			return 0, 0, 0, err
		}
		defer db.Close()
		ix = indexer.New(db, 1)
	}
	client := newClient(workers)
	defer client.CloseIdleConnections()

	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	urls := make(chan string)
	results := make(chan *lgv1.PageResult, 64)
	g.Go(func() error {
		defer close(urls)
		for _, s := range sites {
			for i := range s.site.Pages() {
				select {
				case urls <- s.base + s.site.Path(i):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	var fetchers sync.WaitGroup
	for range workers {
		fetchers.Add(1)
		g.Go(func() error {
			defer fetchers.Done()
			for u := range urls {
				pr, err := fetchAndExtract(ctx, client, u)
				if err != nil {
					return err
				}
				select {
				case results <- pr:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	go func() {
		// Owned by the fetchers: ends when the last one does.
		fetchers.Wait()
		close(results)
	}()
	g.Go(func() error {
		for pr := range results {
			batch := []*lgv1.PageResult{pr}
		fill:
			for len(batch) < 64 {
				select {
				case pr, ok := <-results:
					if !ok {
						break fill
					}
					batch = append(batch, pr)
				default:
					break fill
				}
			}
			n, err := apply(ix, db, batch)
			if err != nil {
				return err
			}
			pages += int64(len(batch))
			links += int64(n)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return 0, 0, 0, err
	}
	return pages, links, time.Since(start), nil
}

// apply records a batch of fetched pages and applies their links, as a
// node's page and link appliers would, and makes it durable.
func apply(ix *indexer.Index, db *store.DB, batch []*lgv1.PageResult) (links int, err error) {
	if ix == nil { // the extract loop
		for _, pr := range batch {
			links += len(pr.GetLinks())
		}
		return links, nil
	}
	txn := ix.Begin()
	defer txn.Close()
	var lbs []*lgv1.LinkBatch
	for _, pr := range batch {
		rec, err := txn.RecordFetch(pr)
		if err != nil {
			return 0, err
		}
		for _, lb := range rec.Batches {
			lbs = append(lbs, lb)
		}
		links += len(pr.GetLinks())
	}
	for _, lb := range lbs {
		if err := txn.ApplyLinks(lb); err != nil {
			return 0, err
		}
	}
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	return links, db.Sync()
}

func fetchAndExtract(ctx context.Context, c *http.Client, u string) (*lgv1.PageResult, error) {
	page, err := urlnorm.Parse(u)
	if err != nil {
		return nil, err
	}
	res, body, err := get(ctx, c, page.String())
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, res.Status)
	}
	ex := crawler.Extract(body, res.Header.Get("Content-Type"), res.Header.Values("X-Robots-Tag"), page)
	return &lgv1.PageResult{Url: page.String(), Status: int32(res.StatusCode), FetchedAt: time.Now().UnixNano(),
		ContentType: res.Header.Get("Content-Type"), Title: ex.Title, Links: ex.Links, BodyBytes: int64(len(body))}, nil
}
