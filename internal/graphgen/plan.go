package graphgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// style is the URL and title shape of a site.
type style uint8

const (
	styleBlog style = iota
	styleNews
	styleShop
	styleForum
	styleWiki
	styleDocs
	styleCorp
)

// pageKind is what a fetch of a page found.
type pageKind uint8

const (
	kindNormal   pageKind = iota
	kindRedirect          // 3xx with one redirect link
	kindNotFound          // 404 with the site's navigation
	kindError             // 5xx without links
)

type domain struct {
	name  string // registrable domain, normalized
	brand string // display name
	hosts []int32
}

type host struct {
	name      string // normalized host name
	origin    string // scheme "://" name: the prefix of its URLs
	domain    int32
	style     style
	lang      lang
	navN      int32   // page ids 0..navN-1 are the home and navigation pages
	navOff    int32   // rotates navSlots so sites differ in navigation
	crawled   int32   // page ids 0..crawled-1 are fetched
	universe  int32   // page ids 0..universe-1 may be linked to
	internal  float32 // share of content links that stay on the host
	affinity  [2]float32
	titleSep  string
	navSuffix string
	logoAlt   string
	perm      uint32 // offset of the page id permutation of slugWords
	nofollow  bool   // login, register and cart links carry rel=nofollow
}

type page struct {
	host   int32
	id     int32
	at     int64 // first fetch, Unix ns
	reat   int64 // second fetch, Unix ns; 0 if none
	degree int16 // distinct links on each fetch
	hub    uint8 // of them to HubURL
	dom    uint8 // of them into HubDomain
	kind   pageKind
}

// Web is a planned graph: its domains, hosts and fetched pages, from which
// every fetch result is derived on demand (links are not kept in memory).
// Create it with New. It is immutable and safe for concurrent use.
type Web struct {
	cfg     Config
	domains []domain
	hosts   []host
	pages   []page // in fetch order
	// pool holds the hosts external links go to, with cumulative
	// popularity for sampling.
	pool    []int32
	poolCum []float64
	// hubHosts are HubDomain's hosts with cumulative link shares.
	hubHosts  []int32
	hubCum    []float64
	hubURL    string
	hubHost   int32 // host of hubURL; -1 when none
	hubDomain int32 // -1 when none
	video     int32 // host of embedded players (iframes)
	recrawls  int
}

// Edges returns the number of live links after every fetch (Config.Edges).
func (w *Web) Edges() int64 { return w.cfg.Edges }

// Pages returns the number of distinct pages fetched.
func (w *Web) Pages() int { return len(w.pages) }

// Recrawls returns how many pages are fetched a second time.
func (w *Web) Recrawls() int { return w.recrawls }

// Fetches returns the number of fetch results Each yields.
func (w *Web) Fetches() int { return len(w.pages) + w.recrawls }

// Hosts returns the number of hosts (fetched or only linked to) and of
// registrable domains.
func (w *Web) Hosts() (hosts, domains int) { return len(w.hosts), len(w.domains) }

// HubURL returns the planted URL with Config.HubBacklinks backlinks, or ""
// if none was planted.
func (w *Web) HubURL() string { return w.hubURL }

// HubDomain returns the planted registrable domain with
// Config.DomainBacklinks backlinks from other domains, or "" if none was
// planted.
func (w *Web) HubDomain() string {
	if w.hubDomain < 0 {
		return ""
	}
	return w.domains[w.hubDomain].name
}

// Salts of the independent random streams derived from the seed.
const (
	saltPlan    = 0x706c616e
	saltPage    = 0x70616765
	saltRecrawl = 0x72637277
	saltSample  = 0x73616d70
	saltHash    = 0x68617368
)

// planner holds the state of New.
type planner struct {
	w        *Web
	rng      *rand.Rand
	names    map[string]bool // registrable domains and brands in use
	estPages int
	maxHost  int
	sum      int64 // planned distinct links so far
	done     bool
}

// New plans the graph of cfg. It does no I/O; memory is about 40 bytes per
// page and 150 per host.
func New(cfg Config) (*Web, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Web{cfg: cfg, hubHost: -1, hubDomain: -1}
	p := &planner{
		w:     w,
		rng:   rand.New(rand.NewPCG(cfg.Seed, saltPlan)),
		names: make(map[string]bool),
	}
	// The mean out-degree of ordinary pages is about 60.
	p.estPages = int(cfg.Edges/58) + 1
	p.maxHost = max(50, p.estPages/6)

	// Planted targets first, so that their names are taken and no regular
	// domain can collide with them.
	w.video = p.addUncrawledDomain("tube", 1).hosts[0]
	if cfg.HubBacklinks > 0 {
		d := p.newDomain("com", langEN, "")
		h := p.addHost(d, "www."+w.domains[d].name, styleCorp, langEN)
		w.hosts[h].universe = 1
		w.hosts[h].navN = 1
		w.hubHost, w.hubURL = h, w.url(h, 0)
	}
	if cfg.DomainBacklinks > 0 {
		p.planHubDomain()
	}
	for !p.done {
		p.addRegularDomain()
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return w, nil
}

// planHubDomain creates HubDomain: a multilingual wiki with many
// subdomains, two of which are partly crawled (their internal links count
// as internal, not as the planted backlinks).
func (p *planner) planHubDomain() {
	w := p.w
	d := p.newDomain("org", langEN, "")
	w.hubDomain = d
	subs := []struct {
		name  string
		lang  lang
		share float64
	}{
		{"en", langEN, 35}, {"de", langDE, 10}, {"fr", langFR, 8}, {"es", langES, 7},
		{"ja", langJA, 7}, {"ru", langRU, 6}, {"it", langEN, 4}, {"nl", langEN, 3},
		{"pl", langEN, 3}, {"pt", langES, 3}, {"sv", langEN, 2}, {"zh", langJA, 3},
		{"commons", langEN, 3}, {"en.m", langEN, 2}, {"de.m", langDE, 1}, {"www", langEN, 1},
		{"meta", langEN, 0.5}, {"species", langEN, 0.5},
	}
	total := 0.0
	for _, s := range subs {
		total += s.share
	}
	cum := 0.0
	for _, s := range subs {
		h := p.addHost(d, s.name+"."+w.domains[d].name, styleWiki, s.lang)
		hh := &w.hosts[h]
		hh.universe = int32(min(maxUniverse, max(500, float64(w.cfg.DomainBacklinks)*s.share/total/3)))
		if s.name == "en" || s.name == "de" {
			p.crawl(h, min(int(hh.universe), max(2, min(400, p.estPages/400))))
		}
		cum += s.share
		w.hubHosts = append(w.hubHosts, h)
		w.hubCum = append(w.hubCum, cum)
	}
}

// addRegularDomain adds one crawled domain and, around it, some domains
// that are only linked to, as a crawl sees many more sites than it fetches.
func (p *planner) addRegularDomain() {
	t := p.pickTLD()
	d := p.newDomain(t.suffix, t.lang, "")
	w := p.w
	name := w.domains[d].name
	var hosts []int32
	platform := false
	switch r := p.rng.Float64(); {
	case r < 0.02: // a platform: user subdomains, each a small blog
		platform = true
		hosts = append(hosts, p.addHost(d, "www."+name, styleCorp, t.lang))
		n := min(400, int(10/math.Pow(1-p.rng.Float64(), 1/1.2)))
		for i := range n {
			user := words[p.rng.IntN(len(words))] + words[p.rng.IntN(len(words))] + fmt.Sprint(i)
			h := p.addHost(d, user+"."+name, styleBlog, t.lang)
			hosts = append(hosts, h)
		}
	case r < 0.25: // a company with a few subdomains
		hosts = append(hosts, p.addHost(d, "www."+name, p.pickStyle(), t.lang))
		subs := slices.Clone(subdomainNames)
		p.rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
		for _, s := range subs[:1+p.rng.IntN(5)] {
			hosts = append(hosts, p.addHost(d, s+"."+name, styleFor(s, p.pickStyle()), t.lang))
		}
	default:
		hn := name
		if p.rng.Float64() < 0.6 {
			hn = "www." + name
		}
		hosts = append(hosts, p.addHost(d, hn, p.pickStyle(), t.lang))
	}
	for _, h := range hosts {
		if p.done {
			break
		}
		limit := p.maxHost
		if platform && h != hosts[0] {
			limit = 30 // platform users write little
		}
		p.crawl(h, min(limit, int(2/math.Pow(1-p.rng.Float64(), 1/1.05))))
	}
	// Sites that are linked to but not crawled: about 1.5 per crawled one.
	for range p.rng.IntN(4) {
		p.addUncrawledDomain("", 0)
	}
}

// addUncrawledDomain adds a one-host domain that is only linked to. With a
// suffix, its brand ends in it ("...tube"); universe 0 draws the size.
func (p *planner) addUncrawledDomain(suffix string, universe int) *domain {
	t := p.pickTLD()
	if suffix != "" {
		t = tlds[0]
	}
	d := p.newDomain(t.suffix, t.lang, suffix)
	name := p.w.domains[d].name
	if p.rng.Float64() < 0.7 {
		name = "www." + name
	}
	h := p.addHost(d, name, p.pickStyle(), t.lang)
	hh := &p.w.hosts[h]
	if universe == 0 {
		universe = min(1000000, int(20/math.Pow(1-p.rng.Float64(), 1/1.0)))
	}
	hh.universe = int32(max(universe, 1))
	hh.navN = min(hh.navN, hh.universe)
	return &p.w.domains[d]
}

// newDomain adds a registrable domain with a fresh brand.
func (p *planner) newDomain(suffix string, l lang, brandSuffix string) int32 {
	w := p.w
	for {
		n := 2 + p.rng.IntN(2)
		var b strings.Builder
		for range n {
			b.WriteString(brandSyllables[p.rng.IntN(len(brandSyllables))])
		}
		b.WriteString(brandSuffix)
		label := b.String()
		brand := capitalize(label)
		// A few non-English domains are internationalized: their host goes
		// through IDNA like any crawled URL.
		if l != langEN && len(nativeWords[l]) > 0 && p.rng.Float64() < 0.04 {
			native := strings.ToLower(nativeWords[l][p.rng.IntN(len(nativeWords[l]))])
			if u, err := urlnorm.Normalize("http://" + native + label + "." + suffix + "/"); err == nil {
				label = strings.TrimSuffix(urlnorm.Host(u), "."+suffix)
				brand = capitalize(native) + brand
			}
		}
		name := label + "." + suffix
		if p.names[name] || p.names[brand] || urlnorm.RegistrableDomain(name) != name {
			continue
		}
		p.names[name], p.names[brand] = true, true
		w.domains = append(w.domains, domain{name: name, brand: brand})
		return int32(len(w.domains) - 1)
	}
}

// addHost adds a host to domain d, not crawled, with a universe of its
// navigation only (crawl raises it).
func (p *planner) addHost(d int32, name string, st style, l lang) int32 {
	w := p.w
	scheme := "https://"
	if p.rng.Float64() < 0.15 {
		scheme = "http://"
	}
	brand := w.domains[d].brand
	h := host{
		name:      name,
		origin:    scheme + name,
		domain:    d,
		style:     st,
		lang:      l,
		navN:      int32(6 + p.rng.IntN(len(navSlots)-5)),
		navOff:    int32(p.rng.IntN(len(navSlots))),
		internal:  float32(0.55 + 0.35*p.rng.Float64()),
		titleSep:  []string{" | ", " - ", " – ", " :: ", " · "}[p.rng.IntN(5)],
		navSuffix: []string{"/", "/", "", ".html", ".php"}[p.rng.IntN(5)],
		logoAlt:   []string{brand, brand, brand + " logo", "", "Logo"}[p.rng.IntN(5)],
		perm:      p.rng.Uint32(),
		nofollow:  p.rng.Float64() < 0.5,
	}
	if h.navN > int32(len(navSlots))+1 {
		h.navN = int32(len(navSlots)) + 1
	}
	for i := range h.affinity {
		if p.rng.Float64() >= 0.2 {
			h.affinity[i] = float32(0.3 + 0.7*p.rng.Float64())
		}
	}
	h.universe = h.navN
	w.hosts = append(w.hosts, h)
	w.domains[d].hosts = append(w.domains[d].hosts, int32(len(w.hosts)-1))
	return int32(len(w.hosts) - 1)
}

// crawl plans fetches of the first n pages of host h, stopping when the
// graph has Config.Edges links.
func (p *planner) crawl(h int32, n int) {
	w := p.w
	hh := &w.hosts[h]
	n = max(1, min(n, maxUniverse/2))
	for id := int32(0); id < int32(n) && !p.done; id++ {
		pg := page{host: h, id: id, kind: kindNormal}
		if id > 0 {
			switch r := p.rng.Float64(); {
			case r < 0.02:
				pg.kind = kindRedirect
			case r < 0.03:
				pg.kind = kindNotFound
			case r < 0.035:
				pg.kind = kindError
			}
		}
		deg := int64(0)
		switch pg.kind {
		case kindNormal:
			deg = MinOutDegree + int64((MaxOutDegree-MinOutDegree)*math.Pow(p.rng.Float64(), 2.2))
		case kindRedirect:
			deg = 1
		case kindNotFound:
			deg = int64(hh.navN) + 1
			if id < hh.navN {
				deg-- // no link to itself
			}
		}
		if rest := w.cfg.Edges - p.sum; deg >= rest {
			// The last page takes exactly what is left.
			pg.kind, deg, p.done = kindNormal, rest, true
		}
		pg.degree = int16(deg)
		p.sum += deg
		w.pages = append(w.pages, pg)
		hh.crawled = id + 1
	}
	// Most URLs of a site are linked to but not fetched (deep pages, the
	// crawl's budget), so there are several times more targets than pages.
	hh.universe = max(hh.universe, min(maxUniverse, 8*hh.crawled+20))
}

// finish shuffles the pages into a crawl order, spreads the fetch times,
// plants the hub links and builds the link-target tables.
func (p *planner) finish() error {
	w, rng, cfg := p.w, p.rng, p.w.cfg
	// A crawl interleaves hosts.
	rng.Shuffle(len(w.pages), func(i, j int) { w.pages[i], w.pages[j] = w.pages[j], w.pages[i] })
	start, span := cfg.Start.UnixNano(), int64(cfg.Span)
	end := start + span
	for i := range w.pages {
		pg := &w.pages[i]
		pg.at = start + int64(rng.Float64()*0.75*float64(span))
		if pg.kind == kindNormal && pg.degree >= MinOutDegree && rng.Float64() < RecrawlShare {
			pg.reat = pg.at + int64((0.1+0.9*rng.Float64())*float64(end-pg.at))
			pg.reat = max(pg.reat, pg.at+int64(time.Millisecond)) // distinct in ms, as the index keeps them
			w.recrawls++
		}
	}
	hubDomain := w.hubDomain
	if err := p.allocate(cfg.HubBacklinks, len(hubVariants), 0, "hub backlinks",
		func(pg *page) bool { return true },
		func(pg *page, n int) { pg.hub = uint8(n) }); err != nil {
		return err
	}
	if err := p.allocate(cfg.DomainBacklinks, 16, 1, "domain backlinks",
		func(pg *page) bool { return w.hosts[pg.host].domain != hubDomain },
		func(pg *page, n int) { pg.dom = uint8(n) }); err != nil {
		return err
	}
	// External links go to any host but the planted ones, weighted by a
	// power-law popularity and the size of the site.
	cum := 0.0
	for i, h := range w.hosts {
		if h.domain == hubDomain || int32(i) == w.hubHost {
			continue
		}
		pop := min(1e5, 1/math.Pow(1-rng.Float64(), 1/1.1))
		cum += pop * math.Sqrt(float64(h.universe))
		w.pool = append(w.pool, int32(i))
		w.poolCum = append(w.poolCum, cum)
	}
	return nil
}

// allocate spreads total planted links over the ordinary pages that ok
// accepts, proportionally to a capacity of min(perPage, degree/4) times the
// host's affinity (or 1 if affinities leave too little room), so the sum
// is exact and no page carries more than its capacity.
func (p *planner) allocate(total int64, perPage, aff int, what string, ok func(*page) bool, set func(*page, int)) error {
	if total == 0 {
		return nil
	}
	w := p.w
	caps := make([]int64, len(w.pages))
	capacity := func(useAffinity bool) int64 {
		var sum int64
		for i := range w.pages {
			pg := &w.pages[i]
			caps[i] = 0
			if pg.kind != kindNormal || !ok(pg) {
				continue
			}
			c := float64(min(perPage, int(pg.degree)/4))
			if useAffinity {
				c *= float64(w.hosts[pg.host].affinity[aff])
			}
			caps[i] = int64(c)
			sum += caps[i]
		}
		return sum
	}
	c := capacity(true)
	if c < total {
		c = capacity(false)
	}
	if c < total {
		return fmt.Errorf("%w: %s %d: the %d pages of %d edges can carry at most %d; raise edges or plant fewer",
			ErrConfig, what, total, len(w.pages), w.cfg.Edges, c)
	}
	var cum int64
	for i := range w.pages {
		lo := cum * total / c
		cum += caps[i]
		set(&w.pages[i], int(cum*total/c-lo))
	}
	return nil
}

func (p *planner) pickTLD() tld {
	sum := 0
	for _, t := range tlds {
		sum += t.weight
	}
	r := p.rng.IntN(sum)
	for _, t := range tlds {
		if r < t.weight {
			return t
		}
		r -= t.weight
	}
	return tlds[0]
}

func (p *planner) pickStyle() style {
	r := p.rng.IntN(100)
	for _, s := range []struct {
		st style
		w  int
	}{{styleBlog, 25}, {styleNews, 10}, {styleShop, 20}, {styleForum, 10}, {styleWiki, 5}, {styleDocs, 5}, {styleCorp, 25}} {
		if r < s.w {
			return s.st
		}
		r -= s.w
	}
	return styleCorp
}

// styleFor is the style a subdomain's name suggests.
func styleFor(sub string, def style) style {
	switch sub {
	case "blog":
		return styleBlog
	case "shop", "store":
		return styleShop
	case "news":
		return styleNews
	case "docs", "developer", "support", "help":
		return styleDocs
	case "forum", "community":
		return styleForum
	}
	return def
}
