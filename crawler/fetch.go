package crawler

import (
	"compress/flate"
	"compress/gzip"
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
	"unicode/utf8"

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
	// Resolver resolves host names for dialing (default net.DefaultResolver).
	Resolver *net.Resolver
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
	cfg    FetcherConfig
	c      *colly.Collector
	robots *colly.Collector // for robots.txt: follows up to 5 redirects, 500 KiB cap
	tr     *http.Transport
}

// MaxRobotsBytes caps a robots.txt body (RFC 9309 asks crawlers to parse at
// least 500 KiB) and MaxRobotsRedirects the redirects followed to get it.
const (
	MaxRobotsBytes     = 500 << 10
	MaxRobotsRedirects = 5
)

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
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: cfg.Resolver}
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
	newCollector := func(maxBody int64) *colly.Collector {
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
		c.WithTransport(&limitTransport{base: base, max: maxBody})
		return c
	}
	c := newCollector(cfg.MaxBody)
	c.SetRedirectHandler(func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse })
	robots := newCollector(MaxRobotsBytes)
	robots.SetRedirectHandler(func(_ *http.Request, via []*http.Request) error {
		if len(via) > MaxRobotsRedirects {
			return http.ErrUseLastResponse
		}
		return nil
	})
	f := &Fetcher{cfg: cfg, c: c, robots: robots, tr: base}
	for _, c := range []*colly.Collector{c, robots} {
		f.callbacks(c)
	}
	return f
}

func (f *Fetcher) callbacks(c *colly.Collector) {
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
}

// Fetch fetches task's URL and returns the result; failures are described
// in the result (ErrorReason), never returned.
func (f *Fetcher) Fetch(task *lgv1.FetchTask) *lgv1.PageResult {
	res := resultOf(task)
	start := time.Now()
	ctx := colly.NewContext()
	ctx.Put("result", res)
	c := f.c
	if task.GetKind() == lgv1.FetchKind_FETCH_KIND_ROBOTS {
		c = f.robots
	}
	var hdr http.Header
	if task.GetEtag() != "" || task.GetLastModified() != "" {
		// A revisit asks for the page only if it changed: an unchanged page
		// costs a 304 with no body.
		hdr = http.Header{}
		if v := task.GetEtag(); v != "" {
			hdr.Set("If-None-Match", v)
		}
		if v := task.GetLastModified(); v != "" {
			hdr.Set("If-Modified-Since", v)
		}
	}
	err := c.Request(http.MethodGet, task.GetUrl(), nil, ctx, hdr)
	if err != nil && res.Status == 0 && res.ErrorReason == "" {
		res.ErrorReason, res.ErrorDetail = classify(err)
	}
	res.FetchedAt = start.UnixNano()
	res.DurationNs = int64(time.Since(start))
	wireSafe(res)
	return res
}

// resultOf is the result of task before any fetch: what the shard needs
// of the task to record, retry or revisit it.
func resultOf(task *lgv1.FetchTask) *lgv1.PageResult {
	return &lgv1.PageResult{Url: task.GetUrl(), Depth: task.GetDepth(), Kind: task.GetKind(), Attempt: task.GetAttempt(),
		Revisit: task.GetRevisit(), RequestEtag: task.GetEtag(), RequestLastModified: task.GetLastModified(), Recrawl: task.GetRecrawl()}
}

// wireSafe replaces invalid UTF-8 in res's strings, which come from the
// server (headers, error messages quoting its bytes): proto3 refuses to
// marshal invalid strings, and a result the worker cannot publish would be
// redelivered forever.
func wireSafe(res *lgv1.PageResult) {
	fix := func(s *string) {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	fix(&res.Url)
	fix(&res.ErrorDetail)
	fix(&res.ContentType)
	fix(&res.Title)
	fix(&res.Lang)
	fix(&res.Etag)
	fix(&res.LastModified)
	for _, l := range res.Links {
		fix(&l.Url)
		fix(&l.AnchorText)
		for i := range l.Rel {
			fix(&l.Rel[i])
		}
	}
}

// CloseIdleConnections closes the fetcher's idle keep-alive connections.
func (f *Fetcher) CloseIdleConnections() { f.tr.CloseIdleConnections() }

func (f *Fetcher) fill(res *lgv1.PageResult, status int, h http.Header, body []byte) {
	res.Status = int32(status)
	res.ContentType = h.Get(hdrContentType)
	res.Etag, res.LastModified = validator(h.Get("ETag")), validator(h.Get("Last-Modified"))
	res.Truncated = h.Get(hdrTruncated) != ""
	res.BodyBytes = int64(len(body))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		res.RetryAfterSeconds = retryAfter(h.Get("Retry-After"), time.Now())
	}
	page, err := urlnorm.Parse(res.Url)
	if err != nil {
		return
	}
	ok := status >= 200 && status < 300
	switch {
	case res.Kind == lgv1.FetchKind_FETCH_KIND_ROBOTS:
		if ok {
			res.RobotsTxt = body
		}
	case isRedirect(status):
		if loc := h.Get("Location"); loc != "" {
			if target, err := urlnorm.Resolve(page, loc); err == nil {
				if target != res.Url {
					// A moved sitemap is still a sitemap.
					res.Links = []*lgv1.OutLink{{Url: target, Type: lgv1.LinkType_LINK_TYPE_REDIRECT, RedirectStatus: int32(status),
						Sitemap: res.Kind == lgv1.FetchKind_FETCH_KIND_SITEMAP}}
				}
			} else {
				res.SkippedLinks++
			}
		}
	case ok && res.Kind == lgv1.FetchKind_FETCH_KIND_SITEMAP:
		links, skipped, err := ParseSitemap(body, page, MaxSitemapURLs, MaxSitemapBytes)
		if err != nil {
			res.ErrorDetail = err.Error()
		}
		res.Links, res.SkippedLinks = links, int32(skipped)
	case ok && IsHTML(res.ContentType, body):
		ex := Extract(body, res.ContentType, h.Values("X-Robots-Tag"), page)
		res.Title, res.Lang = ex.Title, ex.Lang
		res.MetaNofollow, res.MetaNoindex = ex.NoFollow, ex.NoIndex
		res.Links = ex.Links
		res.SkippedLinks += int32(ex.Skipped)
	}
}

// maxValidator bounds the ETag and Last-Modified kept for the next revisit:
// they are stored with the page, and a hostile server could send 64 KiB.
const maxValidator = 256

func validator(v string) string {
	if len(v) > maxValidator {
		return ""
	}
	return v
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

// classify maps a fetch error to a short reason for counting and a detail:
//
//   - "private_address": the host is or resolves to a non-public address
//     (see IsPublicAddr), refused before connecting;
//   - "dns": the host name did not resolve;
//   - "timeout": FetcherConfig.Timeout passed (connecting, awaiting headers or
//     reading a slow body);
//   - "refused": nothing listens at the address;
//   - "tls": handshake or certificate failure;
//   - "too_many_bytes": the response header (1xx responses included)
//     exceeded the transport's MaxResponseHeaderBytes (64 KiB), or a chunk
//     header its 4 KiB, so an endless header fails after reading that much
//     (a long body is not an error: it is cut at MaxBody and flagged
//     Truncated);
//   - "bad_encoding": a gzip Content-Encoding that does not decompress;
//   - "reset": the connection was reset or closed before the response ended;
//   - "canceled": the fetcher's context was canceled;
//   - "bad_url": the URL's scheme is not http(s);
//   - "other": anything else, such as a malformed response.
func classify(err error) (reason, detail string) {
	if err == nil {
		return "", ""
	}
	detail = err.Error()
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var flateErr flate.CorruptInputError
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return lgv1.ErrorReasonPrivateAddress, detail
	case errors.As(err, &dnsErr):
		return "dns", detail
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return "timeout", detail
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", detail
	case errors.As(err, &tlsErr), errors.As(err, &recordErr), strings.Contains(detail, "tls:"):
		return "tls", detail
	case errors.Is(err, http.ErrLineTooLong),
		// net/http exports no error values for these:
		strings.Contains(detail, "server response headers exceeded"),
		strings.Contains(detail, "chunked encoding contains too much non-data"):
		return "too_many_bytes", detail
	case errors.As(err, &flateErr), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum):
		return "bad_encoding", detail
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
	// The server must not be able to set the facts passed to fill.
	delete(res.Header, hdrContentType)
	delete(res.Header, hdrTruncated)
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
