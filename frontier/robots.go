package frontier

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/temoto/robotstxt"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// ProductToken is the user-agent token matched against robots.txt groups.
const ProductToken = "linkgraph"

// MaxRobotsBytes caps the robots.txt body read (RFC 9309 asks for at least
// 500 KiB to be parsed).
const MaxRobotsBytes = 500 << 10

// robots is what the frontier knows of a host's robots.txt.
type robots struct {
	group       *robotstxt.Group // nil: allow all
	denyAll     bool
	unreachable bool // denyAll because the fetch failed: wait and retry
	crawlDelay  time.Duration
	sitemaps    []string
	expires     time.Time
}

func (r *robots) allowed(rawURL string) bool {
	if r.denyAll {
		return false
	}
	if r.group == nil {
		return true
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	return r.group.Test(u.EscapedPath() + queryPart(u))
}

func queryPart(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	return "?" + u.RawQuery
}

// parseRobots interprets a robots.txt fetch per RFC 9309: 2xx is parsed,
// 4xx (and a body that does not parse) allows everything, 5xx and network
// errors disallow everything until a retry. It uses
// github.com/temoto/robotstxt, the maintained parser Colly itself uses:
// groups by product token, longest-match rules, * and $, Crawl-delay and
// Sitemap lines.
func parseRobots(status int32, errReason string, body []byte, now time.Time, ttl, maxDelay time.Duration) *robots {
	return parseRobotsFor(ProductToken, status, errReason, body, now, ttl, maxDelay)
}

func parseRobotsFor(token string, status int32, errReason string, body []byte, now time.Time, ttl, maxDelay time.Duration) *robots {
	if errReason != "" || status >= 500 || status == 0 {
		// The caller sets when to retry.
		return &robots{denyAll: true, unreachable: true, expires: now}
	}
	if status >= 400 || status < 200 || status >= 300 {
		return &robots{expires: now.Add(ttl)}
	}
	data, err := robotstxt.FromBytes(body)
	if err != nil {
		return &robots{expires: now.Add(ttl)}
	}
	g := data.FindGroup(token)
	return &robots{
		group:      g,
		crawlDelay: min(g.CrawlDelay, maxDelay),
		sitemaps:   data.Sitemaps,
		expires:    now.Add(ttl),
	}
}

// backoff returns base * 2^(n-1), capped, with ±25% jitter so that hosts
// failing together do not retry together.
func backoff(base time.Duration, n int, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// robotsKey is r HostSURT(host): the last robots.txt fetch of a host.
func robotsKey(hostKey string) []byte {
	return append([]byte{store.PrefixRobots}, hostKey...)
}

// RecordRobots stores a robots.txt fetch result within b, so a restarted
// frontier does not fetch it again before it expires.
func (f *Frontier) RecordRobots(b *pebble.Batch, hostKey string, pr *lgv1.PageResult) error {
	v := binary.AppendVarint(nil, pr.GetFetchedAt())
	v = binary.AppendVarint(v, int64(pr.GetStatus()))
	v = binary.AppendUvarint(v, uint64(len(pr.GetErrorReason())))
	v = append(v, pr.GetErrorReason()...)
	v = append(v, pr.GetRobotsTxt()...)
	return b.Set(robotsKey(hostKey), v, nil)
}

// loadRobotsLocked reads a stored robots.txt result for h, if any.
func (f *Frontier) loadRobotsLocked(h *host) error {
	raw, closer, err := f.db.Get(robotsKey(h.key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	at, n := binary.Varint(raw)
	raw = raw[max(n, 0):]
	status, n := binary.Varint(raw)
	raw = raw[max(n, 0):]
	rl, n := binary.Uvarint(raw)
	raw = raw[max(n, 0):]
	if n <= 0 || uint64(len(raw)) < rl {
		return nil // unreadable: fetch again
	}
	reason, body := string(raw[:rl]), raw[rl:]
	r := parseRobots(int32(status), reason, body, time.Unix(0, at), f.cfg.RobotsTTL, f.cfg.MaxCrawlDelay)
	if !r.unreachable && r.expires.After(f.now()) {
		h.robots = r
	}
	return nil
}

// RobotsAllow reports whether the robots.txt fetch pr allows url (always,
// with Config.IgnoreRobots).
func (f *Frontier) RobotsAllow(pr *lgv1.PageResult, url string) bool {
	if f.cfg.IgnoreRobots {
		return true
	}
	return parseRobots(pr.GetStatus(), pr.GetErrorReason(), pr.GetRobotsTxt(), time.Unix(0, pr.GetFetchedAt()), f.cfg.RobotsTTL, f.cfg.MaxCrawlDelay).allowed(url)
}

// Sitemaps returns the Sitemap: URLs of a robots.txt body, as written.
func Sitemaps(body []byte) []string {
	data, err := robotstxt.FromBytes(body)
	if err != nil {
		return nil
	}
	return data.Sitemaps
}
