package crawler

import (
	"net/url"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// fuzzContentTypes are picked by the fuzzer's ct argument, so that the
// charset paths are exercised too.
var fuzzContentTypes = []string{
	"",
	"text/html",
	"text/html; charset=utf-8",
	"text/html; charset=windows-1252",
	"text/html; charset=shift_jis",
	"text/html; charset=utf-16le",
}

func FuzzExtract(f *testing.F) {
	seeds := []string{
		`<html lang="en"><head><title>T</title><base href="/b/"></head><body><a href="x" rel="nofollow">x</a></body></html>`,
		`<a href="/1">one<a href="/2"><img alt="two"></a>three</a>`,
		`<meta http-equiv="refresh" content="0; url='/next'"><meta name="robots" content="none">`,
		`<map><area href="/a" alt="A"></map><frameset><frame src="f"></frameset><iframe src="//x.org/i"></iframe>`,
		`<link rel="canonical alternate" href="https://example.com/c"><a href="mailto:x">m</a><a href="#top">top</a>`,
		`<a href="/s">a<script>"<a href=/no>"</script>b<noscript><a href=/ns>ns</a></noscript></a>`,
		"<meta charset=windows-1252><title>caf\xe9</title><a href='\xe9'>\xff\xfe</a>",
		`<svg><title>icon</title><a href="/svg">s</a></svg><title>real</title>`,
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	page, err := urlnorm.Parse("http://example.com/dir/page.html")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		contentType := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]
		ex := Extract(body, contentType, []string{string(body[:min(len(body), 40)])}, page)

		if !utf8.ValidString(ex.Title) || len(ex.Title) > MaxTitleBytes {
			t.Errorf("bad title %q (%d bytes)", ex.Title, len(ex.Title))
		}
		if !utf8.ValidString(ex.Lang) {
			t.Errorf("invalid UTF-8 lang %q", ex.Lang)
		}
		if len(ex.Links) > MaxLinksPerPage || ex.Skipped < 0 {
			t.Errorf("%d links, %d skipped", len(ex.Links), ex.Skipped)
		}
		for _, l := range ex.Links {
			u := l.GetUrl()
			if n, err := urlnorm.Normalize(u); err != nil || n != u {
				t.Errorf("link %q is not normalized: %q, %v", u, n, err)
			}
			pu, err := url.Parse(u)
			if err != nil || !pu.IsAbs() || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				t.Errorf("link %q is not an absolute http(s) URL (%v)", u, err)
			}
			if u == "http://example.com/dir/page.html" {
				t.Errorf("self link kept")
			}
			if !utf8.ValidString(l.GetAnchorText()) || len(l.GetAnchorText()) > MaxAnchorBytes {
				t.Errorf("bad anchor %q (%d bytes)", l.GetAnchorText(), len(l.GetAnchorText()))
			}
			if l.GetType() == linkgraphv1.LinkType_LINK_TYPE_UNSPECIFIED {
				t.Errorf("link %q without type", u)
			}
			for _, r := range l.GetRel() {
				if r == "" || !utf8.ValidString(r) {
					t.Errorf("bad rel token %q", r)
				}
			}
		}
		// Everything must be publishable: proto3 strings must be UTF-8.
		msg := &linkgraphv1.PageResult{Title: ex.Title, Lang: ex.Lang, Links: ex.Links}
		if _, err := proto.Marshal(msg); err != nil {
			t.Errorf("proto.Marshal: %v", err)
		}
	})
}
