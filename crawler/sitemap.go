// Sitemap parsing: ParseSitemap reads the body of a FETCH_KIND_SITEMAP fetch
// (an XML urlset or sitemap index, or a text sitemap, possibly gzipped) and
// returns its URLs as sitemap links, resolved and normalized by
// internal/urlnorm. (The package documentation is in worker.go.)

package crawler

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Limits of the sitemap protocol (sitemaps.org), the usual arguments of
// ParseSitemap.
const (
	// MaxSitemapURLs is the maximum number of URLs in one sitemap.
	MaxSitemapURLs = 50000
	// MaxSitemapBytes is the maximum uncompressed size of one sitemap.
	MaxSitemapBytes = 50 << 20
)

// ErrNotSitemap is wrapped by every error of ParseSitemap: the body is
// neither an XML sitemap nor a text sitemap, or cannot be decompressed.
var ErrNotSitemap = errors.New("crawler: not a sitemap")

// Limits against hostile sitemaps. The decompressed size is capped by
// ParseSitemap's maxBytes; these bound the work done on that many bytes.
const (
	// maxSitemapDepth is the deepest element nesting read; real sitemaps
	// (with image and video extensions) stay under 5.
	maxSitemapDepth = 64
	// maxSitemapTokens bounds the XML tokens read (CPU time): a 50 MB
	// sitemap of 50,000 URLs with extensions has a few million tokens.
	maxSitemapTokens = 10_000_000
	// maxLocBytes is the longest raw <loc> or text line considered; anything
	// longer cannot normalize to urlnorm.MaxLength bytes in practice and is
	// skipped without being accumulated further.
	maxLocBytes = 4 * urlnorm.MaxLength
	// maxGzipLayers: a .gz served with Content-Encoding: gzip and decoded
	// only once by the client arrives gzipped twice.
	maxGzipLayers = 2
)

// ParseSitemap extracts the URLs of a sitemap body: a <urlset> (each
// <url><loc>), a <sitemapindex> (each <sitemap><loc>, returned with
// Sitemap: true so they are fetched as sitemaps), or a plain-text sitemap
// (one URL per line). A gzip body (by magic bytes 1f 8b, whatever the
// Content-Type or URL says) is decompressed with the output capped at
// maxBytes. Each loc is resolved against sitemapURL and normalized with
// urlnorm; unusable ones (bad URL, not http(s)) are counted in skipped. At
// most maxURLs links are returned (the protocol's limit is 50,000); the rest
// count as skipped. Links have Type LINK_TYPE_SITEMAP, no anchor, no rel.
// Duplicate URLs are returned once.
//
// Details:
//
//   - The body (decompressed or not) is cut at maxBytes, and a sitemap that
//     ends early (cut, or malformed after the root element) yields the URLs
//     found before that point, without error: a cut <loc> or a cut last
//     line of a text sitemap is not used.
//   - XML: element names are matched by local name only (any namespace or
//     prefix), case-insensitively; only a <loc> that is a direct child of a
//     <url> or <sitemap> that is a direct child of the root counts (so
//     <image:loc> and the like are ignored). <url> entries are pages,
//     <sitemap> entries are sitemaps, whichever the root. The parser is
//     non-strict: a raw '&' in a URL (a common mistake) is kept as it is,
//     HTML entities are decoded, mismatched end tags close the open element.
//     Anything after the root element is ignored. A UTF-8 BOM is skipped, a
//     UTF-16 BOM selects UTF-16, and a declared encoding (ISO-8859-1, ...)
//     is honored.
//   - Text: each line is trimmed; blank lines are ignored; a line that is
//     not an absolute http(s) URL is skipped (relative lines are not
//     resolved).
//   - An empty or blank body is an empty sitemap: no links, no error.
//   - An error (wrapping ErrNotSitemap, with nil links and 0 skipped) is
//     returned for a body that is neither: an XML document whose root is not
//     <urlset> or <sitemapindex> (an HTML page, an RSS feed) or that is
//     malformed before its root, binary data, text of which no line looks
//     like an absolute URL, undecodable gzip.
//   - A duplicate does not count as skipped; a distinct valid URL beyond
//     maxURLs does. maxURLs <= 0 returns no links.
//   - sitemapURL may be nil: absolute locs are still used, relative ones are
//     skipped.
func ParseSitemap(body []byte, sitemapURL *url.URL, maxURLs int, maxBytes int64) (links []*linkgraphv1.OutLink, skipped int, err error) {
	data, truncated, err := sitemapData(body, maxBytes)
	if err != nil {
		return nil, 0, err
	}
	c := sitemapCollector{base: sitemapURL, max: maxURLs, seen: make(map[string]struct{})}
	rest := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(rest) == 0:
		return nil, 0, nil
	case rest[0] == '<':
		err = c.parseXML(rest)
	default:
		err = c.parseText(data, truncated)
	}
	if err != nil {
		return nil, 0, err
	}
	return c.links, c.skipped, nil
}

// sitemapData returns the body decompressed (if gzipped), cut at maxBytes,
// without BOM and in UTF-8 if it was UTF-16. truncated reports that the end
// of the data is not the end of the sitemap.
func sitemapData(body []byte, maxBytes int64) (data []byte, truncated bool, err error) {
	maxBytes = max(maxBytes, 0)
	data = body
	for layer := 0; isGzip(data); layer++ {
		if layer == maxGzipLayers {
			return nil, false, fmt.Errorf("%w: gzip nested more than %d times", ErrNotSitemap, maxGzipLayers)
		}
		var cut bool
		data, cut, err = gunzip(data, maxBytes)
		if err != nil {
			return nil, false, err
		}
		truncated = truncated || cut
	}
	if int64(len(data)) > maxBytes {
		data, truncated = data[:maxBytes], true
	}
	data, err = decodeBOM(data)
	return data, truncated, err
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// gunzip decompresses gz, reading at most maxBytes+1 bytes of output so that
// a gzip bomb costs no more than maxBytes of memory. A stream that ends
// early (a body cut by the fetcher) gives what could be decompressed, with
// cut set; so does output longer than maxBytes.
func gunzip(gz []byte, maxBytes int64) (out []byte, cut bool, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, false, fmt.Errorf("%w: bad gzip data: %w", ErrNotSitemap, err)
	}
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++
	}
	var buf bytes.Buffer
	// A guess that avoids most regrowing for ordinary compression ratios.
	buf.Grow(int(min(limit, 8*int64(len(gz))+512, 1<<20)))
	_, err = buf.ReadFrom(io.LimitReader(zr, limit))
	out = buf.Bytes()
	if int64(len(out)) > maxBytes {
		return out[:maxBytes], true, nil
	}
	if err != nil {
		if len(out) == 0 {
			return nil, false, fmt.Errorf("%w: bad gzip data: %w", ErrNotSitemap, err)
		}
		// A checksum error or garbage after the stream leaves the data
		// complete; only an early end cuts it.
		cut = errors.Is(err, io.ErrUnexpectedEOF)
	}
	return out, cut, nil
}

var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
)

// decodeBOM drops a UTF-8 BOM and converts UTF-16 with a BOM to UTF-8
// (Windows tools save text sitemaps that way).
func decodeBOM(data []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(data, bomUTF8):
		return data[len(bomUTF8):], nil
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		// ExpectBOM reads the byte order from the BOM and removes it.
		out, err := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
		if err != nil {
			return nil, fmt.Errorf("%w: bad UTF-16: %w", ErrNotSitemap, err)
		}
		return out, nil
	}
	return data, nil
}

// sitemapCollector resolves, deduplicates and caps the URLs found.
type sitemapCollector struct {
	base    *url.URL
	max     int
	seen    map[string]struct{}
	links   []*linkgraphv1.OutLink
	skipped int
}

// add adds one raw URL. XML locs are resolved against the sitemap URL;
// text lines must be absolute.
func (c *sitemapCollector) add(raw string, resolve, sitemap bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxLocBytes {
		// An empty loc would resolve to the sitemap itself.
		c.skipped++
		return
	}
	var u string
	var err error
	if resolve && c.base != nil {
		u, err = urlnorm.Resolve(c.base, raw)
	} else {
		u, err = urlnorm.Normalize(raw)
	}
	if err != nil {
		c.skipped++
		return
	}
	if _, dup := c.seen[u]; dup {
		return
	}
	c.seen[u] = struct{}{}
	if len(c.links) >= c.max {
		c.skipped++
		return
	}
	c.links = append(c.links, &linkgraphv1.OutLink{
		Url:     u,
		Type:    linkgraphv1.LinkType_LINK_TYPE_SITEMAP,
		Sitemap: sitemap,
	})
}

// The kinds of entry (children of the root) that hold a <loc>.
const (
	entryOther = iota
	entryURL
	entrySitemap
)

// parseXML reads an XML sitemap with a streaming token loop. Errors are
// returned only for what happens before the root element is accepted.
func (c *sitemapCollector) parseXML(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	d.CharsetReader = sitemapCharsetReader

	var (
		depth   int
		entry   = entryOther // kind of the open child of the root
		inLoc   bool         // in a <loc> of an entry
		loc     []byte
		locLong bool
	)
	for range maxSitemapTokens {
		tok, err := d.Token()
		if err != nil {
			if depth > 0 {
				return nil // cut or malformed after the root: keep what was found
			}
			if err == io.EOF {
				return fmt.Errorf("%w: XML without a root element", ErrNotSitemap)
			}
			return fmt.Errorf("%w: %w", ErrNotSitemap, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if !isLocal(t.Name, "urlset") && !isLocal(t.Name, "sitemapindex") {
					return fmt.Errorf("%w: root element is <%s>", ErrNotSitemap, shortName(t.Name))
				}
			case 2:
				switch {
				case isLocal(t.Name, "url"):
					entry = entryURL
				case isLocal(t.Name, "sitemap"):
					entry = entrySitemap
				default:
					entry = entryOther
				}
			case 3:
				if entry != entryOther && isLocal(t.Name, "loc") {
					inLoc, loc, locLong = true, loc[:0], false
				}
			case maxSitemapDepth + 1:
				return nil
			}
		case xml.EndElement:
			if depth == 3 && inLoc {
				inLoc = false
				if locLong {
					c.skipped++
				} else {
					c.add(string(loc), true, entry == entrySitemap)
				}
			}
			depth--
			if depth == 0 {
				return nil // the root is closed: anything after it is ignored
			}
		case xml.CharData:
			if inLoc && depth == 3 && !locLong {
				if len(loc)+len(t) > maxLocBytes+1024 {
					// Room is left for surrounding whitespace; add skips
					// what is still too long after trimming.
					locLong = true
				} else {
					loc = append(loc, t...)
				}
			}
		}
	}
	return nil // token limit: keep what was found
}

// isLocal reports whether n's local name is local, ignoring case, namespace
// and prefix.
func isLocal(n xml.Name, local string) bool { return strings.EqualFold(n.Local, local) }

// shortName returns an element name for an error message.
func shortName(n xml.Name) string {
	s := n.Local
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// sitemapCharsetReader honors a declared non-UTF-8 encoding. UTF-16 labels
// are ignored: the bytes the XML decoder sees are UTF-8 already (decodeBOM
// converted them, or the declaration is wrong, as a '<' read as one byte
// shows). An unknown label is ignored too, rather than failing the sitemap.
func sitemapCharsetReader(label string, input io.Reader) (io.Reader, error) {
	l := strings.ToLower(strings.TrimSpace(label))
	if strings.HasPrefix(l, "utf-16") || strings.HasPrefix(l, "utf16") || strings.HasPrefix(l, "ucs-2") {
		return input, nil
	}
	r, err := charset.NewReaderLabel(label, input)
	if err != nil {
		return input, nil
	}
	return r, nil
}

// parseText reads a text sitemap: one absolute URL per line.
func (c *sitemapCollector) parseText(data []byte, truncated bool) error {
	if isBinary(data[:min(len(data), 1024)]) {
		return fmt.Errorf("%w: binary data", ErrNotSitemap)
	}
	if truncated {
		// The last line may be a cut URL.
		data = data[:bytes.LastIndexByte(data, '\n')+1]
	}
	lines, urlish := 0, false
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		lines++
		urlish = urlish || hasURLScheme(line)
		if len(line) > maxLocBytes {
			c.skipped++
			continue
		}
		c.add(string(line), false, false)
	}
	if lines > 0 && !urlish {
		return fmt.Errorf("%w: text without any absolute URL", ErrNotSitemap)
	}
	return nil
}

// isBinary reports whether b contains a binary data byte as defined by the
// WHATWG MIME sniffing standard (controls other than whitespace and ESC).
func isBinary(b []byte) bool {
	for _, c := range b {
		if c <= 0x08 || c == 0x0b || 0x0e <= c && c <= 0x1a || 0x1c <= c && c <= 0x1f {
			return true
		}
	}
	return false
}

// hasURLScheme reports whether line starts with "scheme://".
func hasURLScheme(line []byte) bool {
	for i, c := range line {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return bytes.HasPrefix(line[i+1:], []byte("//"))
		default:
			return false
		}
	}
	return false
}
