package crawler

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gocolly/colly/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Defaults of FetcherConfig.
const (
	DefaultUserAgent = "linkgraph/0.1 (+https://github.com/linkgraph/linkgraph)"
	DefaultTimeout   = 30 * time.Second
	DefaultMaxBody   = 8 << 20
)

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// UserAgent is sent with every request (default DefaultUserAgent).
	UserAgent string
	// Timeout bounds a whole request, body included (default DefaultTimeout).
	Timeout time.Duration
	// MaxBody is the most body bytes read; longer bodies are cut there and
	// marked truncated (default DefaultMaxBody).
	MaxBody int64
	// AllowPrivateNetworks lifts the guard against loopback and private
	// addresses (default false).
	AllowPrivateNetworks bool
}

// Fetcher fetches one URL with Colly and turns the response into a
// PageResult. It is safe for concurrent use.
//
// Colly owns the HTTP exchange; the frontier owns revisits, politeness and
// robots, so the collector allows revisits, has no limit rules and ignores
// robots.txt. Redirects are not followed: a 3xx becomes a redirect edge and
// its target enters the frontier like any link, so every hop is
// deduplicated, scoped and scheduled politely, and loops end at URL-seen.
type Fetcher struct {
	cfg FetcherConfig
	c   *colly.Collector
}

// Header names the transport uses to pass facts past Colly (see
// limitTransport).
const (
	hdrContentType = "X-Linkgraph-Content-Type"
	hdrTruncated   = "X-Linkgraph-Truncated"
)

// NewFetcher builds a Fetcher. ctx bounds every request it makes.
func NewFetcher(ctx context.Context, cfg FetcherConfig) *Fetcher {
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivateNetworks {
		dialer.Control = guardControl
	}
	base := &http.Transport{
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	c := colly.NewCollector(
		colly.AllowURLRevisit(),
		colly.IgnoreRobotsTxt(),
		colly.ParseHTTPErrorResponse(),
		colly.UserAgent(cfg.UserAgent),
		colly.MaxBodySize(0), // limitTransport cuts and flags instead
		colly.StdlibContext(ctx),
	)
	c.DisableCookies()
	c.SetRequestTimeout(cfg.Timeout)
	c.WithTransport(&limitTransport{base: base, max: cfg.MaxBody})
	c.SetRedirectHandler(func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse })
	f := &Fetcher{cfg: cfg, c: c}
	c.OnResponse(func(r *colly.Response) {
		res := r.Ctx.GetAny("result").(*lgv1.PageResult)
		f.fill(res, r.StatusCode, *r.Headers, r.Body)
	})
	c.OnError(func(r *colly.Response, err error) {
		res := r.Ctx.GetAny("result").(*lgv1.PageResult)
		if r.StatusCode > 0 && r.Headers != nil {
			f.fill(res, r.StatusCode, *r.Headers, r.Body)
			return
		}
		res.ErrorReason, res.ErrorDetail = classify(err)
	})
	return f
}

// Fetch fetches task's URL and returns the result; failures are described
// in the result (ErrorReason), never returned.
func (f *Fetcher) Fetch(task *lgv1.FetchTask) *lgv1.PageResult {
	res := &lgv1.PageResult{Url: task.GetUrl(), Depth: task.GetDepth()}
	start := time.Now()
	ctx := colly.NewContext()
	ctx.Put("result", res)
	err := f.c.Request(http.MethodGet, task.GetUrl(), nil, ctx, nil)
	if err != nil && res.Status == 0 && res.ErrorReason == "" {
		res.ErrorReason, res.ErrorDetail = classify(err)
	}
	res.FetchedAt = start.UnixNano()
	res.DurationNs = int64(time.Since(start))
	return res
}

func (f *Fetcher) fill(res *lgv1.PageResult, status int, h http.Header, body []byte) {
	res.Status = int32(status)
	res.ContentType = h.Get(hdrContentType)
	res.Truncated = h.Get(hdrTruncated) != ""
	res.BodyBytes = int64(len(body))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		res.RetryAfterSeconds = retryAfter(h.Get("Retry-After"), time.Now())
	}
	page, err := urlnorm.Parse(res.Url)
	if err != nil {
		return
	}
	switch {
	case isRedirect(status):
		if loc := h.Get("Location"); loc != "" {
			if target, err := urlnorm.Resolve(page, loc); err == nil {
				if target != res.Url {
					res.Links = []*lgv1.OutLink{{Url: target, Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: int32(status)}}
				}
			} else {
				res.SkippedLinks++
			}
		}
	case status >= 200 && status < 300 && IsHTML(res.ContentType, body):
		ex := Extract(body, res.ContentType, h.Values("X-Robots-Tag"), page)
		res.Title, res.Lang = ex.Title, ex.Lang
		res.MetaNofollow, res.MetaNoindex = ex.NoFollow, ex.NoIndex
		res.Links = ex.Links
		res.SkippedLinks += int32(ex.Skipped)
	}
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// retryAfter parses a Retry-After value (delay seconds or HTTP date) into
// seconds; 0 if absent or invalid.
func retryAfter(v string, now time.Time) int32 {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return int32(min(n, 1<<30))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return int32(min(t.Sub(now)/time.Second+1, 1<<30))
	}
	return 0
}

// classify maps a fetch error to a short reason for counting and a detail.
func classify(err error) (reason, detail string) {
	if err == nil {
		return "", ""
	}
	detail = err.Error()
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return "private_address", detail
	case errors.As(err, &dnsErr):
		return "dns", detail
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return "timeout", detail
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", detail
	case errors.As(err, &tlsErr), errors.As(err, &recordErr), strings.Contains(detail, "tls:"):
		return "tls", detail
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "reset", detail
	case errors.Is(err, context.Canceled):
		return "canceled", detail
	}
	var uerr *url.Error
	if errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "unsupported protocol") {
		return "bad_url", detail
	}
	return "other", detail
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// limitTransport adapts responses for Colly: it cuts bodies at max bytes and
// flags the cut (Colly would cut silently), hides Content-Type from Colly so
// it does not transcode bodies (Extract decodes using Content-Type, BOM and
// <meta charset> together, which Colly's header-only conversion would break),
// and marks the body uncompressed so Colly never gunzips on its own: the
// limit applies to decompressed bytes, which defuses gzip bombs.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if ct, ok := res.Header["Content-Type"]; ok {
		res.Header[hdrContentType] = ct
		delete(res.Header, "Content-Type")
	}
	res.Uncompressed = true
	res.Body = &limitedBody{rc: res.Body, left: t.max, header: res.Header}
	return res, nil
}

// limitedBody reads at most left bytes; if the body has more it sets the
// truncated header and reports EOF.
type limitedBody struct {
	rc     io.ReadCloser
	left   int64
	header http.Header
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			b.header.Set(hdrTruncated, "1")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
