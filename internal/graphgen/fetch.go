package graphgen

import (
	"context"
	"math/rand/v2"
	"time"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Fetch is one fetch result of the generated crawl.
type Fetch struct {
	// Result is what a worker would publish for the fetch; links are
	// normalized URLs, anchors folded and at most indexer.MaxAnchorBytes.
	Result *lgv1.PageResult
	// Recrawl is set on a page's second fetch.
	Recrawl bool
	// Lost counts the links of the first fetch that are gone in this one.
	Lost int
}

// Each calls fn for every fetch, in crawl order: the first fetch of every
// page, then the second fetches. It stops at the first error and returns
// it. fn owns each Result.
func (w *Web) Each(ctx context.Context, fn func(Fetch) error) error {
	for i := range w.pages {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := w.fetch(&w.pages[i], false)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	for i := range w.pages {
		if w.pages[i].reat == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := w.fetch(&w.pages[i], true)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (w *Web) fetch(pg *page, again bool) (Fetch, error) {
	var (
		b    *builder
		lost int
		err  error
	)
	if again {
		b, lost, err = w.recrawl(pg)
	} else {
		b, err = w.firstFetch(pg)
	}
	if err != nil {
		return Fetch{}, err
	}
	hh := &w.hosts[pg.host]
	r := w.hashOf(pg.host, pg.id)
	pr := &lgv1.PageResult{
		Url:        b.self,
		Depth:      int32(min(6, pg.id%7)),
		Status:     200,
		Title:      w.title(pg),
		FetchedAt:  pg.at,
		DurationNs: int64(30*time.Millisecond) + int64(r>>20%uint64(2*time.Second)),
		Lang:       langCodes[hh.lang],
		Links:      b.links,
		BodyBytes:  int64(8000 + r>>8%200000),
		Kind:       lgv1.FetchKind_FETCH_KIND_PAGE,
		// Some pages say <meta name=robots content=nofollow>.
		MetaNofollow: r>>32%200 == 0,
	}
	if again {
		pr.FetchedAt = pg.reat
	}
	switch pg.kind {
	case kindRedirect:
		pr.Status = b.links[0].RedirectStatus
		pr.BodyBytes = 0
	case kindNotFound:
		pr.Status = 404
		pr.ContentType = "text/html; charset=utf-8"
	case kindError:
		pr.Status = []int32{500, 503, 502}[r%3]
		pr.ContentType = "text/html"
		pr.BodyBytes = int64(r % 2000)
	default:
		pr.ContentType = "text/html; charset=utf-8"
	}
	return Fetch{Result: pr, Recrawl: again, Lost: lost}, nil
}

// SampleTargets returns up to n distinct URLs that have live backlinks once
// every fetch is written, drawn from random links of random pages (so
// popular targets are more likely, as in a link-weighted sample). HubURL
// and the URLs of HubDomain are left out.
func (w *Web) SampleTargets(n int) ([]string, error) {
	rng := rand.New(rand.NewPCG(w.cfg.Seed, saltSample))
	seen := make(map[string]bool, n)
	var out []string
	hub := w.HubDomain()
	for tries := 0; len(out) < n && tries < 20*n && len(w.pages) > 0; tries++ {
		pg := &w.pages[rng.IntN(len(w.pages))]
		f, err := w.fetch(pg, pg.reat != 0)
		if err != nil {
			return nil, err
		}
		links := f.Result.Links
		if len(links) == 0 {
			continue
		}
		u := links[rng.IntN(len(links))].Url
		if seen[u] || u == w.hubURL || hub != "" && urlnorm.RegistrableDomain(urlnorm.Host(u)) == hub {
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	return out, nil
}
