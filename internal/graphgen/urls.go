package graphgen

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// URLs and titles are pure functions of (seed, host, page id), computed
// when a link needs them: a 10M-edge graph has millions of targets, and
// keeping their strings would cost gigabytes.

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// hashOf is the per-page hash that URL and title shapes are drawn from.
func (w *Web) hashOf(h, id int32) uint64 {
	return splitmix(splitmix(w.cfg.Seed^saltHash) ^ uint64(uint32(h))<<32 ^ uint64(uint32(id)))
}

// url returns the normalized URL of page id of host h. Distinct (h, id)
// give distinct URLs: every shape embeds the id or its slugWords.
func (w *Web) url(h, id int32) string {
	hh := &w.hosts[h]
	return hh.origin + w.path(hh, h, id)
}

// slugWords are three words that identify id on its host: the id goes
// through a bijection of 24-bit numbers (multiplication by an odd constant
// plus the host's offset), whose bytes index words.
func slugWords(hh *host, id int32) (a, b, c string) {
	x := (uint32(id)*0x9E3779B1 + hh.perm) & 0xFFFFFF
	return words[x&0xFF], words[x>>8&0xFF], words[x>>16]
}

func (w *Web) path(hh *host, h, id int32) string {
	if id == 0 {
		return "/"
	}
	if id < hh.navN {
		return "/" + hh.navSlot(id).slug + hh.navSuffix
	}
	r := w.hashOf(h, id)
	a, b, c := slugWords(hh, id)
	slug := a + "-" + b + "-" + c
	for i := range int(r >> 60 & 3) { // up to 3 more words, after the identifying ones
		slug += "-" + words[r>>(8*i)&0xFF]
	}
	ids := strconv.Itoa(int(id))
	switch hh.style {
	case styleBlog:
		if r%10 == 0 {
			return "/?p=" + ids
		}
		return "/" + strconv.Itoa(2012+int(r>>8%14)) + "/" + twoDigits(1+int(r>>16%12)) + "/" + slug + "/"
	case styleNews:
		return "/" + newsSections[r>>8%uint64(len(newsSections))] + "/" + slug + "-" + ids + ".html"
	case styleShop:
		switch r % 4 {
		case 0:
			return "/collections/" + words[r>>8&0xFF] + "/products/" + slug + "?variant=" + strconv.Itoa(30000000+int(r>>16%10000000))
		case 1:
			return "/catalog/" + slug + "?sort=price&page=" + strconv.Itoa(1+int(r>>8%9))
		}
		return "/products/" + slug
	case styleForum:
		switch r % 10 {
		case 0, 1, 2, 3, 4:
			return "/threads/" + slug + "." + ids + "/"
		case 9:
			return "/members/" + words[r>>8&0xFF] + strconv.Itoa(int(r>>16%1000)) + "." + ids + "/"
		}
		return "/viewtopic.php?f=" + strconv.Itoa(1+int(r>>8%40)) + "&t=" + ids
	case styleWiki:
		if nw := nativeWords[hh.lang]; len(nw) > 0 {
			return "/wiki/" + pctEncode(capitalize(nw[r>>8%uint64(len(nw))])) + "_" + pctEncode(nw[r>>16%uint64(len(nw))]) + "_(" + ids + ")"
		}
		return "/wiki/" + capitalize(a) + "_" + b + "_" + c
	case styleDocs:
		return "/docs/v" + strconv.Itoa(1+int(r>>8%4)) + "/" + words[r>>16&0xFF] + "/" + slug + ".html"
	}
	return "/" + corpSections[r>>8%uint64(len(corpSections))] + "/" + slug + "/"
}

func (hh *host) navSlot(id int32) *navSlot {
	return &navSlots[(id-1+hh.navOff)%int32(len(navSlots))]
}

// headline is the title of a page without the site's name, as links to it
// quote it.
func (w *Web) headline(h, id int32) string {
	hh := &w.hosts[h]
	brand := w.domains[hh.domain].brand
	r := w.hashOf(h, id)
	nw := nativeWords[hh.lang]
	if id == 0 {
		return brand + " – " + w.phrase(hh, r, 2+int(r%3))
	}
	if id < hh.navN {
		return hh.navSlot(id).anchor[hh.lang]
	}
	var s string
	if len(nw) > 0 {
		s = capitalize(w.phrase(hh, r, 3+int(r%6)))
	} else {
		a, b, c := slugWords(hh, id)
		year := strconv.Itoa(2012 + int(r>>8%14))
		switch r >> 4 % 8 {
		case 0:
			s = "How to " + a + " " + b + " " + c
		case 1:
			s = strconv.Itoa(3+int(r>>12%20)) + " " + a + " " + b + " " + c + " in " + year
		case 2:
			s = capitalize(a) + " " + b + " " + c + ": a complete guide"
		case 3:
			s = "Review: " + capitalize(a) + " " + b + " " + c
		case 4: // the long titles
			s = capitalize(a) + " " + b + " " + c + " " + w.phrase(hh, r>>16, 4+int(r>>12%12))
		case 5:
			s = capitalize(a) + " " + b + " " + c + " (updated " + year + ")"
		case 6:
			s = "Why " + a + " " + b + " matters for " + c
		default:
			s = capitalize(a) + " " + b + " " + c + " – " + w.phrase(hh, r>>16, 2+int(r>>12%4))
		}
	}
	if r>>40%50 == 0 {
		s = "🔥 " + s
	}
	return s
}

// phrase returns n words of the host's language drawn from r.
func (w *Web) phrase(hh *host, r uint64, n int) string {
	nw := nativeWords[hh.lang]
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		x := splitmix(r + uint64(i))
		if len(nw) > 0 && x%4 != 0 {
			b.WriteString(nw[x>>8%uint64(len(nw))])
		} else {
			b.WriteString(words[x>>8&0xFF])
		}
	}
	return b.String()
}

// title is the <title> of a fetched page.
func (w *Web) title(pg *page) string {
	hh := &w.hosts[pg.host]
	brand := w.domains[hh.domain].brand
	switch pg.kind {
	case kindRedirect, kindError:
		return ""
	case kindNotFound:
		return "Page not found" + hh.titleSep + brand
	}
	if pg.id == 0 {
		return w.headline(pg.host, 0)
	}
	return w.headline(pg.host, pg.id) + hh.titleSep + brand
}

// zipf draws a rank in [0, n) with P(k) proportional to (k+1)^-s, s > 1,
// by inverting the continuous power-law CDF (no tables, so any n works).
func zipf(rng *rand.Rand, n int32, s float64) int32 {
	if n <= 1 {
		return 0
	}
	e := 1 - s
	top := math.Pow(float64(n)+1, e)
	x := math.Pow(1+rng.Float64()*(top-1), 1/e)
	return min(n-1, max(0, int32(x)-1))
}

// pick draws an index of a cumulative weight table.
func pick(rng *rand.Rand, cum []float64) int {
	x := rng.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError || unicode.IsUpper(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// pctEncode percent-encodes s for a path segment the way urlnorm.Normalize
// leaves it: unreserved bytes raw, everything else %XX with uppercase hex.
func pctEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// truncateAnchor cuts s to at most n bytes on a rune boundary, without a
// trailing space (the extractor folds and trims whitespace).
func truncateAnchor(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimRight(s[:n], " ")
}
