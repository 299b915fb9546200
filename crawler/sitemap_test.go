package crawler

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/unicode"
	"google.golang.org/protobuf/proto"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

const sitemapTestURL = "http://example.com/dir/sitemap.xml"

// smLink is a returned link in short form: URL and Sitemap flag.
type smLink struct {
	url     string
	sitemap bool
}

func smPage(u string) smLink    { return smLink{u, false} }
func smSitemap(u string) smLink { return smLink{u, true} }

func smGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func smUTF16(t testing.TB, s string, order unicode.Endianness) []byte {
	t.Helper()
	b, err := unicode.UTF16(order, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// urlset wraps entries in a urlset with the sitemaps.org namespace.
func smURLSet(entries ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n" +
		strings.Join(entries, "\n") + "\n</urlset>\n"
}

func smURLEntry(loc string) string { return "  <url><loc>" + loc + "</loc></url>" }

// checkSitemapLinks checks what every link must satisfy and returns the
// links in short form.
func smCheckLinks(t testing.TB, links []*linkgraphv1.OutLink, maxURLs int) []smLink {
	t.Helper()
	if len(links) > max(maxURLs, 0) {
		t.Errorf("%d links, more than maxURLs %d", len(links), maxURLs)
	}
	seen := make(map[string]bool)
	var out []smLink
	for _, l := range links {
		u := l.GetUrl()
		if n, err := urlnorm.Normalize(u); err != nil || n != u {
			t.Errorf("link %q is not normalized: %q, %v", u, n, err)
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			t.Errorf("link %q is not http(s)", u)
		}
		if seen[u] {
			t.Errorf("duplicate link %q", u)
		}
		seen[u] = true
		if l.GetType() != linkgraphv1.LinkType_LINK_TYPE_SITEMAP {
			t.Errorf("link %q has type %v", u, l.GetType())
		}
		if l.GetAnchorText() != "" || l.GetRel() != nil || l.GetRedirectStatus() != 0 {
			t.Errorf("link %q has anchor %q, rel %q, status %d", u, l.GetAnchorText(), l.GetRel(), l.GetRedirectStatus())
		}
		out = append(out, smLink{u, l.GetSitemap()})
	}
	// Everything must be publishable: proto3 strings must be UTF-8.
	if _, err := proto.Marshal(&linkgraphv1.PageResult{Links: links}); err != nil {
		t.Errorf("proto.Marshal: %v", err)
	}
	return out
}

func TestParseSitemap(t *testing.T) {
	urlsetGz := smGzip(t, []byte(smURLSet(smURLEntry("/a"), smURLEntry("http://example.com/b"))))
	tests := []struct {
		name     string
		body     []byte
		base     string // sitemapTestURL if empty, none if "-"
		maxURLs  int    // MaxSitemapURLs if 0
		maxBytes int64  // MaxSitemapBytes if 0
		want     []smLink
		skipped  int
		wantErr  string // substring of the error; "" for none
	}{
		{
			name: "urlset",
			body: []byte(smURLSet(
				`  <url>
    <loc>http://example.com/</loc>
    <lastmod>2024-01-02</lastmod>
    <changefreq>daily</changefreq>
    <priority>0.8</priority>
  </url>`,
				smURLEntry("http://example.com/a"),
				smURLEntry("https://www.example.com/b?x=1"),
				smURLEntry("http://other.example/c"),
			)),
			want: []smLink{
				smPage("http://example.com/"), smPage("http://example.com/a"),
				smPage("https://www.example.com/b?x=1"), smPage("http://other.example/c"),
			},
		},
		{
			name: "relative and absolute locs",
			body: []byte(smURLSet(
				smURLEntry("/root"), smURLEntry("rel.html"), smURLEntry("../up"), smURLEntry("//cdn.example/x"),
				smURLEntry("HTTPS://Example.COM:443/Abs/./p"), smURLEntry("?q=1"),
			)),
			want: []smLink{
				smPage("http://example.com/root"), smPage("http://example.com/dir/rel.html"),
				smPage("http://example.com/up"), smPage("http://cdn.example/x"),
				smPage("https://example.com/Abs/p"), smPage("http://example.com/dir/sitemap.xml?q=1"),
			},
		},
		{
			name: "entities",
			body: []byte(smURLSet(
				smURLEntry("http://example.com/?a=1&amp;b=2&amp;c=&quot;&apos;&#x41;&#66;"),
				smURLEntry("http://example.com/caf&eacute;"), // HTML entity
				smURLEntry("http://example.com/?raw=1&x=2"),  // unescaped '&'
				smURLEntry("http://example.com/?u=&unknown;"),
			)),
			want: []smLink{
				smPage(`http://example.com/?a=1&b=2&c="'AB`),
				smPage("http://example.com/caf%C3%A9"),
				smPage("http://example.com/?raw=1&x=2"),
				smPage("http://example.com/?u=&unknown;"),
			},
		},
		{
			name: "CDATA, comments and whitespace in loc",
			body: []byte(smURLSet(
				"<url><loc><![CDATA[http://example.com/c?x=1&y=<2>]]></loc></url>",
				"<url><loc>\n\t   http://example.com/ws  \r\n </loc></url>",
				"<url><loc>  <![CDATA[ http://example.com/mixed ]]> </loc></url>",
				"<url><loc>http://example.com/<!-- comment -->split</loc></url>",
				"<url><loc>&#160;http://example.com/nbsp&#xA0;</loc></url>",
			)),
			want: []smLink{
				smPage("http://example.com/c?x=1&y=<2>"), smPage("http://example.com/ws"),
				smPage("http://example.com/mixed"), smPage("http://example.com/split"),
				smPage("http://example.com/nbsp"),
			},
		},
		{
			name: "namespace prefixes",
			body: []byte(`<?xml version="1.0"?>
<ns:urlset xmlns:ns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <ns:url><ns:loc>http://example.com/p1</ns:loc></ns:url>
  <ns:url><ns:loc>http://example.com/p2</ns:loc></ns:url>
</ns:urlset>`),
			want: []smLink{smPage("http://example.com/p1"), smPage("http://example.com/p2")},
		},
		{
			name: "undeclared prefix, no namespace, odd case",
			body: []byte(`<sm:urlset><sm:url><sm:loc>http://example.com/u</sm:loc></sm:url></sm:urlset>` +
				`<URLSET><Url><LOC>http://example.com/ignored-after-root</LOC></Url></URLSET>`),
			want: []smLink{smPage("http://example.com/u")},
		},
		{
			name: "uppercase element names",
			body: []byte(`<URLSET><Url><LOC>http://example.com/upper</LOC></Url></URLSET>`),
			want: []smLink{smPage("http://example.com/upper")},
		},
		{
			name: "extensions: only the entry's own loc",
			body: []byte(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
  xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
  xmlns:video="http://www.google.com/schemas/sitemap-video/1.1"
  xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <url>
    <loc>http://example.com/page</loc>
    <image:image><image:loc>http://example.com/img.jpg</image:loc></image:image>
    <video:video><video:content_loc>http://example.com/v.mp4</video:content_loc>
      <video:player_loc>http://example.com/player</video:player_loc></video:video>
    <xhtml:link rel="alternate" hreflang="de" href="http://example.com/de/page"/>
  </url>
  <loc>http://example.com/loc-outside-url</loc>
  <other><loc>http://example.com/loc-in-other</loc></other>
</urlset>`),
			want: []smLink{smPage("http://example.com/page")},
		},
		{
			name: "sitemap index",
			body: []byte(`<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>http://example.com/sitemap1.xml.gz</loc><lastmod>2024-01-01</lastmod></sitemap>
  <sitemap><loc>sitemap2.xml</loc></sitemap>
</sitemapindex>`),
			want: []smLink{smSitemap("http://example.com/sitemap1.xml.gz"), smSitemap("http://example.com/dir/sitemap2.xml")},
		},
		{
			name: "entries by their own name, whatever the root",
			body: []byte(smURLSet(smURLEntry("http://example.com/p"), "<sitemap><loc>http://example.com/s.xml</loc></sitemap>")),
			want: []smLink{smPage("http://example.com/p"), smSitemap("http://example.com/s.xml")},
		},
		{
			name: "gzipped urlset",
			body: urlsetGz,
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/b")},
		},
		{
			name: "gzipped twice",
			body: smGzip(t, urlsetGz),
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/b")},
		},
		{
			name:    "gzipped three times",
			body:    smGzip(t, smGzip(t, urlsetGz)),
			wantErr: "gzip nested",
		},
		{
			name: "gzipped text sitemap",
			body: smGzip(t, []byte("http://example.com/t1\nhttp://example.com/t2\n")),
			want: []smLink{smPage("http://example.com/t1"), smPage("http://example.com/t2")},
		},
		{
			name: "gzip cut by the fetcher",
			body: func() []byte {
				var raw strings.Builder
				for i := range 2000 {
					fmt.Fprintf(&raw, "http://example.com/%d\n", i)
				}
				gz := smGzip(t, []byte(raw.String()))
				return gz[:len(gz)/2]
			}(),
			// Checked separately below: some URLs, all complete lines.
			want: nil,
		},
		{
			name:    "bad gzip",
			body:    []byte("\x1f\x8bnot really gzip"),
			wantErr: "bad gzip",
		},
		{
			name: "text sitemap",
			body: []byte("\xef\xbb\xbfhttp://example.com/1\r\n\r\n   https://example.com/2  \n\n" +
				"/relative\nftp://example.com/f\nmailto:a@example.com\nnot a url\nhttp://\nhttp://example.com/3"),
			want:    []smLink{smPage("http://example.com/1"), smPage("https://example.com/2"), smPage("http://example.com/3")},
			skipped: 5,
		},
		{
			name: "text sitemap cut at maxBytes",
			body: []byte("http://example.com/first\nhttp://example.com/second-line-that-is-cut\n"),
			// The cut second line is dropped, not returned as ".../sec".
			maxBytes: int64(len("http://example.com/first\nhttp://example.com/sec")),
			want:     []smLink{smPage("http://example.com/first")},
		},
		{
			name: "duplicates",
			body: []byte(smURLSet(
				smURLEntry("http://example.com/a"), smURLEntry("HTTP://EXAMPLE.com:80/a#frag"), smURLEntry("/a"),
				smURLEntry("http://example.com/b"), smURLEntry("http://example.com/a"),
				"<sitemap><loc>http://example.com/b</loc></sitemap>",
			)),
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/b")},
		},
		{
			name: "unusable locs",
			body: []byte(smURLSet(
				smURLEntry("mailto:someone@example.com"), smURLEntry("javascript:alert(1)"), smURLEntry("ftp://example.com/f"),
				smURLEntry("http://exa mple.com/"), smURLEntry("http://[::1/"), smURLEntry("ht!tp://x"), smURLEntry(""),
				smURLEntry("   "), smURLEntry("http://example.com/"+strings.Repeat("x", 3000)),
				smURLEntry("http://example.com/"+strings.Repeat("y", 20000)),
				smURLEntry("http://example.com/ok"),
			)),
			want:    []smLink{smPage("http://example.com/ok")},
			skipped: 10,
		},
		{
			name:    "maxURLs cap",
			body:    []byte(smURLSet(smURLEntry("/1"), smURLEntry("/2"), smURLEntry("/3"), smURLEntry("/2"), smURLEntry("/4"), smURLEntry("/5"), smURLEntry("/5"), smURLEntry("mailto:x"))),
			maxURLs: 3,
			want:    []smLink{smPage("http://example.com/1"), smPage("http://example.com/2"), smPage("http://example.com/3")},
			skipped: 3, // /4, /5 (once) and mailto:
		},
		{
			name:    "maxURLs cap on text",
			body:    []byte("http://example.com/1\nhttp://example.com/2\nhttp://example.com/3\n"),
			maxURLs: 1,
			want:    []smLink{smPage("http://example.com/1")},
			skipped: 2,
		},
		{
			name:    "maxURLs -1",
			body:    []byte(smURLSet(smURLEntry("/1"))),
			maxURLs: -1,
			skipped: 1,
		},
		{
			name: "garbage after the root",
			body: []byte(smURLSet(smURLEntry("http://example.com/a")) + "<html><<<&&& \x00\xff garbage </urlset>"),
			want: []smLink{smPage("http://example.com/a")},
		},
		{
			name: "cut inside a loc",
			body: []byte(smURLSet(smURLEntry("http://example.com/a"), smURLEntry("http://example.com/b"))[:strings.Index(smURLSet(smURLEntry("http://example.com/a"), smURLEntry("http://example.com/b")), "/b<")]),
			want: []smLink{smPage("http://example.com/a")},
		},
		{
			name:     "cut by maxBytes",
			body:     []byte(smURLSet(smURLEntry("http://example.com/a"), smURLEntry("http://example.com/b"))),
			maxBytes: int64(strings.Index(smURLSet(smURLEntry("http://example.com/a"), smURLEntry("http://example.com/b")), "/b<")),
			want:     []smLink{smPage("http://example.com/a")},
		},
		{
			name: "malformed after the root keeps what was found",
			body: []byte(smURLSet(smURLEntry("http://example.com/a"), "<url><loc>http://example.com/b</loc></url", smURLEntry("http://example.com/c"))),
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/b")},
		},
		{
			name: "mismatched end tags",
			body: []byte(`<urlset><url><loc>http://example.com/a</url><url><loc>http://example.com/b</loc></url></urlset>`),
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/b")},
		},
		{
			name: "BOM, doctype and comments before the root",
			body: []byte("\xef\xbb\xbf  <?xml version=\"1.0\"?>\n<!-- generated -->\n<!DOCTYPE urlset [<!ENTITY x \"http://example.com/entity\">]>\n" +
				smURLSet(smURLEntry("http://example.com/a"), smURLEntry("&x;"))),
			// Custom entities are not expanded: "&x;" stays a relative URL.
			want: []smLink{smPage("http://example.com/a"), smPage("http://example.com/dir/&x;")},
		},
		{
			name: "ISO-8859-1",
			body: []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><urlset><url><loc>http://example.com/caf\xe9</loc></url></urlset>"),
			want: []smLink{smPage("http://example.com/caf%C3%A9")},
		},
		{
			name: "unknown encoding label is ignored",
			body: []byte(`<?xml version="1.0" encoding="x-no-such-charset"?><urlset><url><loc>http://example.com/x</loc></url></urlset>`),
			want: []smLink{smPage("http://example.com/x")},
		},
		{
			name: "UTF-16LE with BOM",
			body: smUTF16(t, `<?xml version="1.0" encoding="UTF-16"?><urlset><url><loc>http://example.com/é</loc></url></urlset>`, unicode.LittleEndian),
			want: []smLink{smPage("http://example.com/%C3%A9")},
		},
		{
			name: "UTF-16BE text sitemap",
			body: smUTF16(t, "http://example.com/u16\r\nhttp://example.com/v16\r\n", unicode.BigEndian),
			want: []smLink{smPage("http://example.com/u16"), smPage("http://example.com/v16")},
		},
		{
			name: "no base URL",
			body: []byte(smURLSet(smURLEntry("http://example.com/abs"), smURLEntry("/rel"))),
			base: "-",
			want: []smLink{smPage("http://example.com/abs")}, skipped: 1,
		},
		{
			name: "https base",
			body: []byte(smURLSet(smURLEntry("//cdn.example/x"), smURLEntry("y"))),
			base: "https://example.com/s/sitemap.xml",
			want: []smLink{smPage("https://cdn.example/x"), smPage("https://example.com/s/y")},
		},
		{
			name: "empty urlset",
			body: []byte(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>`),
		},
		{name: "empty body", body: nil},
		{name: "blank body", body: []byte(" \r\n\t\n")},
		{name: "BOM only", body: []byte("\xef\xbb\xbf")},
		{name: "gzipped empty body", body: smGzip(t, nil)},
		{
			name: "HTML page",
			body: []byte(`<!DOCTYPE html>
<html lang="en"><head><title>Not found</title></head>
<body><a href="http://example.com/a">a</a></body></html>`),
			wantErr: "root element is <\"html\">",
		},
		{
			name:    "HTML page that is not XML",
			body:    []byte("<!doctype html><meta charset=utf-8><title>x</title><p>http://example.com/a<br>"),
			wantErr: "not a sitemap",
		},
		{
			name:    "RSS feed",
			body:    []byte(`<?xml version="1.0"?><rss version="2.0"><channel><item><link>http://example.com/a</link></item></channel></rss>`),
			wantErr: "root element is <\"rss\">",
		},
		{
			name:    "malformed before the root",
			body:    []byte(`<?xml version="1.0"?><!-- unterminated comment <urlset>`),
			wantErr: "XML syntax error",
		},
		{
			name:    "XML without a root",
			body:    []byte(`<?xml version="1.0"?><!-- only a comment -->`),
			wantErr: "without a root",
		},
		{
			name:    "plain text without URLs",
			body:    []byte("404 Not Found\nThe page does not exist.\n"),
			wantErr: "text without any absolute URL",
		},
		{
			name:    "binary",
			body:    []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
			wantErr: "binary",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base *url.URL
			switch tc.base {
			case "":
				base = smMustParse(t, sitemapTestURL)
			case "-":
			default:
				base = smMustParse(t, tc.base)
			}
			maxURLs, maxBytes := tc.maxURLs, tc.maxBytes
			if maxURLs == 0 {
				maxURLs = MaxSitemapURLs
			}
			if maxBytes == 0 {
				maxBytes = MaxSitemapBytes
			}
			links, skipped, err := ParseSitemap(tc.body, base, maxURLs, maxBytes)
			if tc.wantErr != "" {
				t.Logf("err: %v", err)
				if err == nil || !errors.Is(err, ErrNotSitemap) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want ErrNotSitemap containing %q", err, tc.wantErr)
				}
				if links != nil || skipped != 0 {
					t.Errorf("with an error: %d links, %d skipped; want none", len(links), skipped)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			got := smCheckLinks(t, links, maxURLs)
			if tc.name == "gzip cut by the fetcher" {
				if len(got) < 10 || skipped != 0 {
					t.Fatalf("%d links, %d skipped; want many, none skipped", len(got), skipped)
				}
				for i, l := range got {
					if want := fmt.Sprintf("http://example.com/%d", i); l.url != want {
						t.Fatalf("link %d = %q, want %q", i, l.url, want)
					}
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("links:\n got %v\nwant %v", got, tc.want)
			}
			if skipped != tc.skipped {
				t.Errorf("skipped = %d, want %d", skipped, tc.skipped)
			}
		})
	}
}

func smMustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := urlnorm.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestParseSitemapProtocolLimit fills a sitemap to the protocol's limit
// and one over it.
func TestParseSitemapProtocolLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
	for i := range MaxSitemapURLs + 1 {
		fmt.Fprintf(&b, "<url><loc>http://example.com/p/%d</loc><lastmod>2024-01-01</lastmod></url>\n", i)
	}
	b.WriteString(`</urlset>`)
	links, skipped, err := ParseSitemap(smGzip(t, []byte(b.String())), smMustParse(t, sitemapTestURL), MaxSitemapURLs, MaxSitemapBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != MaxSitemapURLs || skipped != 1 {
		t.Fatalf("%d links, %d skipped; want %d, 1", len(links), skipped, MaxSitemapURLs)
	}
	if got, want := links[MaxSitemapURLs-1].GetUrl(), fmt.Sprintf("http://example.com/p/%d", MaxSitemapURLs-1); got != want {
		t.Errorf("last link %q, want %q", got, want)
	}
}

// gzipBomb returns prefix followed by n zero bytes (or n spaces), gzipped
// with the best compression: about 1000:1.
func smGzipBomb(t testing.TB, prefix string, filler byte, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, prefix)
	chunk := bytes.Repeat([]byte{filler}, 1<<20)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	smBombOnce                 sync.Once
	smZeroBomb, smXMLBomb      []byte
	smBombSize, smBombMaxBytes = 32 << 20, int64(1 << 20)
)

func TestParseSitemapGzipBomb(t *testing.T) {
	smBombOnce.Do(func() {
		smZeroBomb = smGzipBomb(t, "", 0, smBombSize)
		// A sitemap that never ends: one URL, then 32 MB of spaces.
		smXMLBomb = smGzipBomb(t, `<urlset><url><loc>http://example.com/a</loc></url>`, ' ', smBombSize)
	})
	t.Logf("bombs: %d and %d bytes gzipped, %d MiB each decompressed", len(smZeroBomb), len(smXMLBomb), smBombSize>>20)

	for _, tc := range []struct {
		name    string
		body    []byte
		want    int
		wantErr bool
	}{
		{"zeros", smZeroBomb, 0, true},
		{"sitemap padded with spaces", smXMLBomb, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			links, _, err := ParseSitemap(tc.body, smMustParse(t, sitemapTestURL), MaxSitemapURLs, smBombMaxBytes)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if (err != nil) != tc.wantErr || len(links) != tc.want {
				t.Errorf("%d links, err %v; want %d links, error %v", len(links), err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNotSitemap) {
				t.Errorf("err %v does not wrap ErrNotSitemap", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v, %d KiB allocated", elapsed, alloc>>10)
			if alloc > 16*uint64(smBombMaxBytes) {
				t.Errorf("allocated %d bytes for a %d-byte cap", alloc, smBombMaxBytes)
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

// TestParseSitemapHostileXML checks the depth and size limits.
func TestParseSitemapHostileXML(t *testing.T) {
	base := smMustParse(t, sitemapTestURL)
	t.Run("deep nesting", func(t *testing.T) {
		// Parsing stops at the depth limit, keeping what was found.
		body := "<urlset>" + smURLEntry("http://example.com/a") +
			strings.Repeat("<x>", 100000) + smURLEntry("http://example.com/deep") + strings.Repeat("</x>", 100000) + "</urlset>"
		links, _, err := ParseSitemap([]byte(body), base, MaxSitemapURLs, MaxSitemapBytes)
		if err != nil || len(links) != 1 {
			t.Errorf("%d links, err %v; want 1 link", len(links), err)
		}
	})
	t.Run("huge loc", func(t *testing.T) {
		body := "<urlset><url><loc>http://example.com/" + strings.Repeat("a", 10<<20) + "</loc></url>" + smURLEntry("http://example.com/b") + "</urlset>"
		links, skipped, err := ParseSitemap([]byte(body), base, MaxSitemapURLs, MaxSitemapBytes)
		if err != nil || len(links) != 1 || skipped != 1 {
			t.Errorf("%d links, %d skipped, err %v; want 1, 1", len(links), skipped, err)
		}
	})
	t.Run("huge text line", func(t *testing.T) {
		body := "http://example.com/" + strings.Repeat("a", 10<<20) + "\nhttp://example.com/b\n"
		links, skipped, err := ParseSitemap([]byte(body), base, MaxSitemapURLs, MaxSitemapBytes)
		if err != nil || len(links) != 1 || skipped != 1 {
			t.Errorf("%d links, %d skipped, err %v; want 1, 1", len(links), skipped, err)
		}
	})
	t.Run("maxBytes 0", func(t *testing.T) {
		links, skipped, err := ParseSitemap([]byte(smURLSet(smURLEntry("/a"))), base, MaxSitemapURLs, 0)
		if err != nil || len(links) != 0 || skipped != 0 {
			t.Errorf("%d links, %d skipped, err %v; want nothing", len(links), skipped, err)
		}
	})
}

func FuzzParseSitemap(f *testing.F) {
	seeds := []string{
		smURLSet(smURLEntry("http://example.com/a"), smURLEntry("/rel"), smURLEntry("mailto:x"), smURLEntry("http://example.com/a")),
		`<ns:urlset xmlns:ns="http://www.sitemaps.org/schemas/sitemap/0.9"><ns:url><ns:loc><![CDATA[ http://example.com/c?a&b ]]></ns:loc></ns:url></ns:urlset>`,
		`<sitemapindex><sitemap><loc>sitemap2.xml.gz</loc></sitemap><sitemap><loc>http://x.example/s?a=1&amp;b=2</loc></sitemap></sitemapindex>`,
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><urlset><url><loc>/caf\xe9</loc></url></urlset>",
		"\xef\xbb\xbfhttp://example.com/1\r\n\nhttps://Example.com:443/2\n/rel\nftp://x/\n",
		`<!DOCTYPE html><html><body><a href="/x">x</a></body></html>`,
		`<urlset><url><loc>http://example.com/a</loc></url></urlset><garbage`,
		"\xff\xfe<\x00u\x00r\x00l\x00s\x00e\x00t\x00>\x00",
		"",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint16(0), false)
		f.Add([]byte(s), uint8(2), uint16(len(s)/2), true)
	}
	base, err := urlnorm.Parse(sitemapTestURL)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxURLs uint8, maxBytes uint16, gz bool) {
		if gz {
			body = smGzip(t, body)
		}
		mb := int64(maxBytes)
		if mb == 0 {
			mb = MaxSitemapBytes
		}
		max := int(maxURLs) - 8 // some negative
		links, skipped, err := ParseSitemap(body, base, max, mb)
		if err != nil {
			if !errors.Is(err, ErrNotSitemap) {
				t.Errorf("error %v does not wrap ErrNotSitemap", err)
			}
			if links != nil || skipped != 0 {
				t.Errorf("error with %d links, %d skipped", len(links), skipped)
			}
			return
		}
		if skipped < 0 {
			t.Errorf("skipped = %d", skipped)
		}
		smCheckLinks(t, links, max)
	})
}
