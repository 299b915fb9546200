// Package graphgen generates a realistic web link graph, deterministically
// from a seed, and writes it into an index through the same calls the crawl
// pipeline makes (RecordPage, ApplyLinks, Commit). It exists so that query
// latency and bytes per edge can be measured at 10M+ edges without crawling
// the web, on a graph whose shape resembles a crawl's:
//
//   - hosts under registrable domains with public suffixes such as com, de,
//     co.uk and com.au; most domains have one host, some several (blog.,
//     shop., en., ...), a few are platforms with hundreds of user
//     subdomains; a few percent of non-English domains are IDNs;
//   - pages per host follow a power law, and so does the popularity of
//     hosts and of pages within a host, so in-degree is power-law: home and
//     navigation pages of popular sites collect most links;
//   - 20 to 150 distinct links per page, mostly internal (navigation, then
//     content), the rest external; every link type the extractor emits
//     (a, img with alt text, area, frame, iframe, canonical, alternate,
//     meta refresh, redirect with its status); rel tokens as sites write
//     them (about 10% of links nofollow, some ugc and sponsored);
//   - anchors as they occur: navigation words repeated on every page, brand
//     names, long titles, "click here", bare URLs, non-ASCII text, empty
//     alt text; URLs with dated slugs, product pages with query strings,
//     forum topics, percent-encoded wiki titles;
//   - fetches spread over a year; a tenth of the pages is fetched again
//     later with a few links gone (lost links) and as many new ones.
//
// Two targets can be planted for benchmarks: HubURL, one URL with exactly
// Config.HubBacklinks live backlinks, and HubDomain, a registrable domain
// with many subdomains that receives exactly Config.DomainBacklinks live
// links from other registrable domains. No other generated link points at
// either.
//
// Everything is a pure function of the Config: the same Config yields the
// same fetch results, byte for byte, on every run and machine.
package graphgen

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
var (
	// DefaultStart is Config.Start when it is zero.
	DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	// DefaultSpan is Config.Span when it is zero: fetches spread over a year.
	DefaultSpan = 365 * 24 * time.Hour
	// MinOutDegree and MaxOutDegree bound the distinct links of an ordinary
	// page (redirects, error pages and the last page of the graph have fewer).
	MinOutDegree = 20
	MaxOutDegree = 150
	// RecrawlShare is the share of ordinary pages fetched a second time.
	RecrawlShare = 0.10
)

// maxUniverse bounds the URLs of one host: page ids are 24-bit (see
// slugWords).
const maxUniverse = 1<<24 - 1

// ErrConfig is wrapped by the errors of Config.Validate and New for a
// configuration that cannot be generated.
var ErrConfig = errors.New("graphgen: invalid config")

// Config selects a graph. The zero value of every field but Edges is valid.
type Config struct {
	// Seed selects the graph; the same Config always yields the same fetches.
	Seed uint64
	// Edges is the number of live links (distinct source, target, type and
	// anchor) the index holds after every fetch is written. Required.
	Edges int64
	// HubBacklinks is the exact number of live links to HubURL; 0 plants
	// no hub URL.
	HubBacklinks int64
	// DomainBacklinks is the exact number of live links from other
	// registrable domains to URLs of HubDomain; 0 plants no hub domain.
	DomainBacklinks int64
	// Start is the time of the earliest fetch (default DefaultStart).
	Start time.Time
	// Span is how long after Start the fetches spread (default DefaultSpan).
	Span time.Duration
}

// Validate reports every problem of c at once; each wraps ErrConfig.
func (c Config) Validate() error {
	var errs []error
	if c.Edges <= 0 {
		errs = append(errs, fmt.Errorf("%w: edges %d: must be positive", ErrConfig, c.Edges))
	}
	if c.HubBacklinks < 0 {
		errs = append(errs, fmt.Errorf("%w: hub backlinks %d: must not be negative", ErrConfig, c.HubBacklinks))
	}
	if c.DomainBacklinks < 0 {
		errs = append(errs, fmt.Errorf("%w: domain backlinks %d: must not be negative", ErrConfig, c.DomainBacklinks))
	}
	if c.Edges > 0 && c.HubBacklinks+c.DomainBacklinks > c.Edges/3 {
		errs = append(errs, fmt.Errorf("%w: hub and domain backlinks (%d + %d) must be at most a third of edges (%d)",
			ErrConfig, c.HubBacklinks, c.DomainBacklinks, c.Edges))
	}
	if c.Span < 0 {
		errs = append(errs, fmt.Errorf("%w: span %v: must not be negative", ErrConfig, c.Span))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	return c
}
