package graphgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
)

// Short names for the link types.
const (
	typeA         = lgv1.LinkType_LINK_TYPE_A
	typeImg       = lgv1.LinkType_LINK_TYPE_IMG
	typeArea      = lgv1.LinkType_LINK_TYPE_AREA
	typeFrame     = lgv1.LinkType_LINK_TYPE_FRAME
	typeIframe    = lgv1.LinkType_LINK_TYPE_IFRAME
	typeRedirect  = lgv1.LinkType_LINK_TYPE_REDIRECT
	typeCanonical = lgv1.LinkType_LINK_TYPE_CANONICAL
	typeAlternate = lgv1.LinkType_LINK_TYPE_ALTERNATE
	typeRefresh   = lgv1.LinkType_LINK_TYPE_META_REFRESH
)

// Rel token lists as pages write them. Shared and never modified.
var (
	relNofollow    = []string{"nofollow"}
	relNoopener    = []string{"noopener"}
	relNoreferrer  = []string{"noopener", "noreferrer"}
	relNofollowNo  = []string{"nofollow", "noopener", "noreferrer"}
	relUGC         = []string{"ugc", "nofollow"}
	relSponsored   = []string{"sponsored"}
	relSponsoredNF = []string{"sponsored", "nofollow"}
	relExternalNF  = []string{"external", "nofollow"}
)

// hubVariants are the distinct ways a page links to HubURL (a link is
// identified by target, type and anchor, so a page can carry each once):
// widgets, logos, share buttons and text links. %s is the brand, %d the
// domain name, %u the URL.
var hubVariants = []struct {
	typ    lgv1.LinkType
	anchor string
}{
	{typeA, "%s"}, {typeA, "%d"}, {typeA, "www.%d"}, {typeA, "%u"},
	{typeA, "Follow us on %s"}, {typeA, "Share on %s"}, {typeA, "Powered by %s"},
	{typeA, "%s – Official Site"}, {typeImg, "%s"}, {typeImg, "%s logo"}, {typeImg, ""},
	{typeIframe, ""}, {typeA, "Visit %s"}, {typeA, "click here"},
}

// role says what a link is on its page, for the recrawl's changes.
type role uint8

const (
	roleNav     role = iota // navigation: kept
	roleContent             // content: may be dropped or change rel
	rolePlanted             // to HubURL or HubDomain: kept
	roleOther               // canonical, alternate, embeds: kept
	roleDup                 // a repeat of an earlier link (not distinct)
)

// errStuck means a page could not get enough distinct links; it cannot
// happen with the planned universes and guards against an endless loop.
var errStuck = errors.New("graphgen: cannot find enough distinct links for a page")

// builder assembles the links of one fetch of one page.
type builder struct {
	w     *Web
	rng   *rand.Rand
	pg    *page
	hh    *host
	self  string
	links []*lgv1.OutLink
	roles []role
	seen  map[string]struct{}
	key   []byte
	// internalFails counts failed internal draws; small sites run out of
	// distinct internal targets, and their pages then link outward.
	internalFails int
}

func (w *Web) newBuilder(pg *page, rng *rand.Rand) *builder {
	return &builder{
		w: w, rng: rng, pg: pg, hh: &w.hosts[pg.host],
		self:  w.url(pg.host, pg.id),
		links: make([]*lgv1.OutLink, 0, int(pg.degree)+2),
		roles: make([]role, 0, int(pg.degree)+2),
		seen:  make(map[string]struct{}, int(pg.degree)),
	}
}

// add appends l if it is distinct on the page and not a self link (the
// extractor drops both); it reports whether it did.
func (b *builder) add(l *lgv1.OutLink, r role) bool {
	if l.Url == b.self {
		return false
	}
	l.AnchorText = truncateAnchor(l.AnchorText, indexer.MaxAnchorBytes)
	b.key = append(append(append(append(b.key[:0], l.Url...), 0), byte(l.Type)), l.AnchorText...)
	if _, dup := b.seen[string(b.key)]; dup {
		return false
	}
	b.seen[string(b.key)] = struct{}{}
	b.links = append(b.links, l)
	b.roles = append(b.roles, r)
	return true
}

// firstFetch builds the links of a page's first fetch. The result depends
// only on the seed and the page.
func (w *Web) firstFetch(pg *page) (*builder, error) {
	b := w.newBuilder(pg, rand.New(rand.NewPCG(w.cfg.Seed^saltPage, uint64(uint32(pg.host))<<32|uint64(uint32(pg.id)))))
	switch pg.kind {
	case kindError:
		return b, nil
	case kindRedirect:
		return b, b.redirect()
	case kindNotFound:
		b.nav(int(pg.degree))
		return b, b.check()
	}
	regular := int(pg.degree) - int(pg.hub) - int(pg.dom)
	b.nav(min(regular*2/3, int(b.hh.navN)+1))
	head := len(b.links)
	b.others(regular)
	if err := b.planted(); err != nil {
		return nil, err
	}
	if err := b.content(int(pg.degree)); err != nil {
		return nil, err
	}
	// Header navigation first, then the body in no particular order.
	b.rng.Shuffle(len(b.links)-head, func(i, j int) {
		b.links[head+i], b.links[head+j] = b.links[head+j], b.links[head+i]
		b.roles[head+i], b.roles[head+j] = b.roles[head+j], b.roles[head+i]
	})
	// Footers repeat a navigation link; the index keeps it once.
	if head > 0 && b.rng.Float64() < 0.3 {
		l := b.links[b.rng.IntN(head)]
		b.links = append(b.links, &lgv1.OutLink{Url: l.Url, AnchorText: l.AnchorText, Rel: l.Rel, Type: l.Type})
		b.roles = append(b.roles, roleDup)
	}
	return b, b.check()
}

// check verifies that the page got exactly its planned distinct links.
func (b *builder) check() error {
	if len(b.seen) != int(b.pg.degree) {
		return fmt.Errorf("graphgen: page %s has %d distinct links, planned %d", b.self, len(b.seen), b.pg.degree)
	}
	return nil
}

// nav adds up to n links of the site's navigation: the logo and "Home" to
// the home page, then the navigation pages.
func (b *builder) nav(n int) {
	hh, w := b.hh, b.w
	for i := int32(-1); i < hh.navN && len(b.links) < n; i++ {
		switch {
		case i == -1:
			b.add(&lgv1.OutLink{Url: w.url(b.pg.host, 0), AnchorText: hh.logoAlt, Type: typeImg}, roleNav)
		case i == 0:
			b.add(&lgv1.OutLink{Url: w.url(b.pg.host, 0), AnchorText: homeAnchors[hh.lang], Type: typeA}, roleNav)
		default:
			slot := hh.navSlot(i)
			l := &lgv1.OutLink{Url: w.url(b.pg.host, i), AnchorText: slot.anchor[hh.lang], Type: typeA}
			if hh.nofollow && (slot.slug == "login" || slot.slug == "register" || slot.slug == "cart") {
				l.Rel = relNofollow
			}
			b.add(l, roleNav)
		}
	}
}

// redirect adds the one link of a 3xx response.
func (b *builder) redirect() error {
	statuses := []int32{301, 301, 301, 301, 301, 302, 302, 302, 307, 308, 303}
	st := statuses[b.rng.IntN(len(statuses))]
	for range 1000 {
		var u string
		if b.rng.Float64() < 0.85 {
			u = b.w.url(b.pg.host, zipf(b.rng, b.hh.universe, 1.05))
		} else {
			u = b.w.url(b.w.pool[pick(b.rng, b.w.poolCum)], 0)
		}
		if b.add(&lgv1.OutLink{Url: u, Type: typeRedirect, RedirectStatus: st}, roleOther) {
			return nil
		}
	}
	return fmt.Errorf("%w: redirect of %s", errStuck, b.self)
}

// others adds the links that are neither navigation nor content, while
// fewer than limit links are on the page: canonical, alternates, embeds,
// image maps, frames and meta refresh.
func (b *builder) others(limit int) {
	w, hh, rng := b.w, b.hh, b.rng
	room := func() bool { return len(b.links) < limit }
	internal := func() string { return w.url(b.pg.host, zipf(rng, hh.universe, 1.05)) }
	if rng.Float64() < 0.04 && room() {
		b.add(&lgv1.OutLink{Url: internal(), Type: typeCanonical}, roleOther)
	}
	if d := &w.domains[hh.domain]; len(d.hosts) > 1 && len(d.hosts) < 40 && rng.Float64() < 0.25 {
		// Language or mobile versions on sibling hosts.
		for _, sib := range d.hosts[:min(4, len(d.hosts))] {
			if sib == b.pg.host || !room() {
				continue
			}
			id := b.pg.id
			if id >= w.hosts[sib].universe {
				id = 0
			}
			b.add(&lgv1.OutLink{Url: w.url(sib, id), Type: typeAlternate}, roleOther)
		}
	}
	if rng.Float64() < 0.03 && room() {
		v := &w.hosts[w.video]
		b.add(&lgv1.OutLink{Url: v.origin + "/embed/" + strconv.FormatUint(rng.Uint64()>>24, 36), Type: typeIframe}, roleOther)
	}
	if rng.Float64() < 0.005 {
		for range 2 + rng.IntN(3) {
			if room() {
				id := zipf(rng, hh.universe, 1.05)
				b.add(&lgv1.OutLink{Url: w.url(b.pg.host, id), AnchorText: w.headline(b.pg.host, id), Type: typeArea}, roleOther)
			}
		}
	}
	if rng.Float64() < 0.002 {
		for range 2 {
			if room() {
				b.add(&lgv1.OutLink{Url: internal(), Type: typeFrame}, roleOther)
			}
		}
	}
	if rng.Float64() < 0.002 && room() {
		b.add(&lgv1.OutLink{Url: internal(), Type: typeRefresh}, roleOther)
	}
}

// planted adds the page's links to HubURL and into HubDomain.
func (b *builder) planted() error {
	w, rng := b.w, b.rng
	if b.pg.hub > 0 {
		hh := &w.hosts[w.hubHost]
		d := &w.domains[hh.domain]
		order := rng.Perm(len(hubVariants))
		for _, i := range order[:b.pg.hub] {
			v := hubVariants[i]
			l := &lgv1.OutLink{Url: w.hubURL, AnchorText: expandHub(v.anchor, d.brand, d.name, w.hubURL), Type: v.typ, Rel: hubRel(rng)}
			if !b.add(l, rolePlanted) {
				// The variants differ in type or anchor, so this is a bug.
				return fmt.Errorf("graphgen: hub link variant %q repeats on %s", l.AnchorText, b.self)
			}
		}
	}
	want := len(b.links) + int(b.pg.dom)
	for tries := 0; len(b.links) < want; tries++ {
		if tries > 1000 {
			return fmt.Errorf("%w: hub domain links of %s", errStuck, b.self)
		}
		th := w.hubHosts[pick(rng, w.hubCum)]
		id := zipf(rng, w.hosts[th].universe, 1.05)
		l := &lgv1.OutLink{Url: w.url(th, id), Type: typeA}
		switch r := rng.Float64(); {
		case r < 0.5:
			l.AnchorText = w.headline(th, id)
		case r < 0.6:
			l.AnchorText = w.domains[w.hosts[th].domain].brand
		case r < 0.75:
			l.AnchorText = "[" + strconv.Itoa(1+rng.IntN(40)) + "]" // a citation
		case r < 0.85:
			l.AnchorText = l.Url
		default:
			l.Type, l.AnchorText = typeImg, w.headline(th, id)
		}
		if rng.Float64() < 0.1 {
			l.Rel = relNofollow
		}
		b.add(l, rolePlanted)
	}
	return nil
}

func expandHub(pattern, brand, domain, url string) string {
	out := make([]byte, 0, len(pattern)+len(url))
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '%' && i+1 < len(pattern) {
			i++
			switch pattern[i] {
			case 's':
				out = append(out, brand...)
			case 'd':
				out = append(out, domain...)
			case 'u':
				out = append(out, url...)
			}
			continue
		}
		out = append(out, pattern[i])
	}
	return string(out)
}

func hubRel(rng *rand.Rand) []string {
	switch r := rng.IntN(100); {
	case r < 8:
		return relNofollow
	case r < 13:
		return relNoreferrer
	case r < 17:
		return relSponsored
	case r < 20:
		return relNofollowNo
	}
	return nil
}

// content adds content links until the page has total distinct links.
func (b *builder) content(total int) error {
	for fails := 0; len(b.seen) < total; {
		if !b.contentLink() {
			if fails++; fails > 100000 {
				return fmt.Errorf("%w: %s", errStuck, b.self)
			}
		}
	}
	return nil
}

// contentLink adds one link from the body of the page, internal or
// external, and reports whether it was new.
func (b *builder) contentLink() bool {
	w, rng, hh := b.w, b.rng, b.hh
	th := b.pg.host
	if rng.Float64() >= float64(hh.internal) || b.internalFails > 64 {
		th = w.pool[pick(rng, w.poolCum)]
	}
	if th == b.pg.host {
		id := zipf(rng, hh.universe, 1.05)
		l := &lgv1.OutLink{Url: w.url(th, id), Type: typeA, AnchorText: b.internalAnchor(id)}
		if rng.Float64() < 0.11 {
			l.Type, l.AnchorText = typeImg, b.altText(th, id)
		}
		switch r := rng.IntN(100); {
		case r < 2:
			l.Rel = relNofollow
		case r < 3:
			l.Rel = relNoopener
		}
		if !b.add(l, roleContent) {
			b.internalFails++
			return false
		}
		return true
	}
	// External pages are mostly linked at their home page.
	id := zipf(rng, w.hosts[th].universe, 1.2)
	l := &lgv1.OutLink{Url: w.url(th, id), Type: typeA, AnchorText: b.externalAnchor(th, id)}
	if rng.Float64() < 0.07 {
		l.Type, l.AnchorText = typeImg, b.altText(th, id)
	}
	l.Rel = b.externalRel()
	return b.add(l, roleContent)
}

func (b *builder) internalAnchor(id int32) string {
	w, rng, hh := b.w, b.rng, b.hh
	switch r := rng.IntN(100); {
	case r < 45:
		return w.headline(b.pg.host, id)
	case r < 60: // the slug's words
		a, x, c := slugWords(hh, id)
		return a + " " + x + " " + c
	case r < 72:
		rm := readMore[hh.lang]
		return rm[rng.IntN(len(rm))]
	case r < 77:
		return clickHere[rng.IntN(len(clickHere))]
	case r < 82:
		return pager[rng.IntN(len(pager))]
	case r < 86:
		return w.url(b.pg.host, id)
	case r < 95: // a topic: the first words of the title
		h := w.headline(b.pg.host, id)
		return truncateAnchor(h, 12+rng.IntN(20))
	}
	return w.headline(b.pg.host, id) + " »"
}

func (b *builder) externalAnchor(th, id int32) string {
	w, rng := b.w, b.rng
	d := &w.domains[w.hosts[th].domain]
	switch r := rng.IntN(100); {
	case r < 25:
		return d.brand
	case r < 33:
		return d.name
	case r < 41:
		u := w.url(th, id)
		if rng.IntN(2) == 0 {
			return u
		}
		return w.hosts[th].name + w.path(&w.hosts[th], th, id) // as printed, without scheme
	case r < 66:
		return w.headline(th, id)
	case r < 78:
		return clickHere[rng.IntN(len(clickHere))]
	case r < 90: // a sentence around the title
		return "According to " + d.brand + ", " + w.headline(th, id) + " " + w.phrase(b.hh, rng.Uint64(), 3+rng.IntN(10))
	}
	return w.phrase(b.hh, rng.Uint64(), 1+rng.IntN(5))
}

func (b *builder) altText(th, id int32) string {
	w, rng := b.w, b.rng
	switch r := rng.IntN(100); {
	case r < 25:
		return ""
	case r < 65:
		return w.headline(th, id)
	case r < 80:
		return w.domains[w.hosts[th].domain].brand + " logo"
	case r < 90:
		return "IMG_" + strconv.Itoa(1000+rng.IntN(9000)) + ".jpg"
	}
	return w.phrase(b.hh, rng.Uint64(), 2+rng.IntN(4))
}

// externalRel is the rel of an outgoing link: forums mark user content ugc,
// wikis nofollow everything, others a mix.
func (b *builder) externalRel() []string {
	r := b.rng.IntN(100)
	switch b.hh.style {
	case styleForum:
		if r < 50 {
			return relUGC
		}
	case styleWiki:
		if r < 85 {
			return relNofollowNo
		}
	}
	switch {
	case r < 55:
		return nil
	case r < 67:
		return relNoreferrer
	case r < 71:
		return relNoopener
	case r < 89:
		return relNofollow
	case r < 92:
		return relNofollowNo
	case r < 96:
		return relUGC
	case r < 98:
		return relSponsored
	case r < 99:
		return relSponsoredNF
	}
	return relExternalNF
}

// recrawl builds a page's second fetch from its first: a twentieth of the
// content links (at least one) is gone, as many new ones appear, and a few
// change their rel. It returns the links and how many were lost.
func (w *Web) recrawl(pg *page) (*builder, int, error) {
	b, err := w.firstFetch(pg)
	if err != nil {
		return nil, 0, err
	}
	rng := rand.New(rand.NewPCG(w.cfg.Seed^saltRecrawl, uint64(uint32(pg.host))<<32|uint64(uint32(pg.id))))
	var content []int
	for i, r := range b.roles {
		if r == roleContent {
			content = append(content, i)
		}
	}
	k := 0
	if len(content) > 0 {
		k = max(1, len(content)/20)
	}
	rng.Shuffle(len(content), func(i, j int) { content[i], content[j] = content[j], content[i] })
	drop := make(map[int]bool, k)
	for _, i := range content[:k] {
		drop[i] = true
	}
	for _, i := range content[k:] {
		if rng.Float64() < 0.02 {
			l := b.links[i]
			c := &lgv1.OutLink{Url: l.Url, AnchorText: l.AnchorText, Type: l.Type, RedirectStatus: l.RedirectStatus, Rel: relNofollow}
			if len(l.Rel) > 0 {
				c.Rel = nil // and some lose it
			}
			b.links[i] = c
		}
	}
	kept, keptRoles := b.links[:0], b.roles[:0]
	for i, l := range b.links {
		if !drop[i] {
			kept, keptRoles = append(kept, l), append(keptRoles, b.roles[i])
		}
	}
	b.links, b.roles = kept, keptRoles
	// New links must be new to the page: seen still holds the dropped ones.
	b.rng = rng
	target := len(b.seen) + k
	if err := b.content(target); err != nil {
		return nil, 0, err
	}
	return b, k, nil
}
