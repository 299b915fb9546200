package testweb

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"

	linkgraphv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// This file is an independent implementation of the extraction rules, used
// only to check that the HTML the generator serves says what its model
// claims. The model is the ground truth; this is the cross-check.

type extraction struct {
	edges        []Edge
	skipped      int
	hasBase      bool
	metaNoFollow bool
}

func extractHTML(pageURL string, header http.Header, body []byte) (extraction, error) {
	var ex extraction
	r, err := charset.NewReader(bytes.NewReader(body), header.Get("Content-Type"))
	if err != nil {
		return ex, err
	}
	doc, err := html.Parse(r)
	if err != nil {
		return ex, err
	}
	docURL, err := url.Parse(pageURL)
	if err != nil {
		return ex, err
	}

	// The first <base href> in tree order applies to every link, wherever
	// the link is.
	base := docURL
	walk(doc, func(n *html.Node) {
		if ex.hasBase || !isElement(n, atom.Base) {
			return
		}
		if h, ok := attr(n, "href"); ok {
			ex.hasBase = true
			if b, err := docURL.Parse(h); err == nil {
				base = b
			}
		}
	})

	var raw []Edge
	add := func(href string, t linkgraphv1.LinkType, anchor string, rel []string) {
		u, err := base.Parse(href)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			ex.skipped++
			return
		}
		raw = append(raw, Edge{Source: pageURL, Target: normalizeURL(u), Type: t, Anchor: anchor, Rel: rel})
	}
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.DataAtom {
		case atom.A:
			href, ok := attr(n, "href")
			if !ok {
				return
			}
			rel := splitRel(n)
			if alt, isImg := imgAnchor(n); isImg {
				if alt == "" {
					alt = fold(textOf(n))
				}
				add(href, typeIMG, alt, rel)
				return
			}
			add(href, typeA, fold(textOf(n)), rel)
		case atom.Area:
			if href, ok := attr(n, "href"); ok {
				alt, _ := attr(n, "alt")
				add(href, typeArea, fold(alt), splitRel(n))
			}
		case atom.Frame, atom.Iframe:
			if src, ok := attr(n, "src"); ok {
				t := typeFrame
				if n.DataAtom == atom.Iframe {
					t = typeIFrame
				}
				add(src, t, "", nil)
			}
		case atom.Link:
			href, ok := attr(n, "href")
			rel := splitRel(n)
			if !ok {
				return
			}
			for _, tok := range rel {
				switch tok {
				case "canonical":
					add(href, typeCanonical, "", rel)
					return
				case "alternate":
					add(href, typeAlternate, "", rel)
					return
				}
			}
		case atom.Meta:
			if eq, _ := attr(n, "http-equiv"); strings.EqualFold(eq, "refresh") {
				content, _ := attr(n, "content")
				_, after, ok := strings.Cut(content, ";")
				after = strings.TrimSpace(after)
				if ok && len(after) > 4 && strings.EqualFold(after[:4], "url=") {
					add(after[4:], typeMetaRefresh, "", nil)
				}
			}
			if name, _ := attr(n, "name"); strings.EqualFold(name, "robots") {
				content, _ := attr(n, "content")
				ex.metaNoFollow = ex.metaNoFollow || strings.Contains(strings.ToLower(content), "nofollow")
			}
		}
	})

	nofollow := ex.metaNoFollow || strings.Contains(strings.ToLower(header.Get("X-Robots-Tag")), "nofollow")
	seen := make(map[string]bool)
	for _, e := range raw {
		key := e.Target + "\x00" + e.Type.String() + "\x00" + e.Anchor
		if e.Target == pageURL || seen[key] {
			continue
		}
		seen[key] = true
		e.PageNoFollow = nofollow
		ex.edges = append(ex.edges, e)
	}
	return ex, nil
}

// normalizeURL applies the target normalization rules.
func normalizeURL(u *url.URL) string {
	v := *u
	v.Scheme = strings.ToLower(v.Scheme)
	v.Host = strings.ToLower(v.Host)
	switch v.Scheme {
	case "http":
		v.Host = strings.TrimSuffix(v.Host, ":80")
	case "https":
		v.Host = strings.TrimSuffix(v.Host, ":443")
	}
	v.Fragment, v.RawFragment = "", ""
	if v.Path == "" {
		v.Path, v.RawPath = "/", ""
	}
	return v.String()
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func isElement(n *html.Node, a atom.Atom) bool { return n.Type == html.ElementNode && n.DataAtom == a }

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

func fold(s string) string { return strings.Join(strings.Fields(s), " ") }

// imgAnchor reports whether n contains an <img> and the first non-empty
// folded alt among them.
func imgAnchor(n *html.Node) (alt string, isImg bool) {
	walk(n, func(c *html.Node) {
		if !isElement(c, atom.Img) {
			return
		}
		isImg = true
		if alt == "" {
			a, _ := attr(c, "alt")
			alt = fold(a)
		}
	})
	return alt, isImg
}

func splitRel(n *html.Node) []string {
	v, ok := attr(n, "rel")
	if !ok {
		return nil
	}
	var out []string
	seen := make(map[string]bool)
	for _, t := range strings.Fields(v) {
		t = strings.ToLower(t)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
