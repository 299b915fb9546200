package frontier

import (
	"testing"
	"time"
)

// rfcExample is the robots.txt of RFC 9309 section 5.1.
const rfcExample = `User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF`

func TestRobotsRFC9309(t *testing.T) {
	for _, c := range []struct {
		name, robots, agent, path string
		allowed                   bool
	}{
		// RFC 9309 5.1: groups by product token.
		{"5.1 * disallows gif", rfcExample, "linkgraph", "/a/b.gif", false},
		{"5.1 * disallows /example/", rfcExample, "linkgraph", "/example/x", false},
		{"5.1 * allows /publications/", rfcExample, "linkgraph", "/publications/x", true},
		{"5.1 * allows the rest", rfcExample, "linkgraph", "/other", true},
		{"5.1 foobot disallowed", rfcExample, "foobot", "/other", false},
		{"5.1 foobot allowed page", rfcExample, "foobot", "/example/page.html", true},
		{"5.1 foobot allowed gif", rfcExample, "foobot", "/example/allowed.gif", true},
		{"5.1 barbot disallowed page", rfcExample, "barbot", "/example/page.html", false},
		{"5.1 bazbot shares barbot's group", rfcExample, "bazbot", "/example/page.html", false},
		{"5.1 bazbot allowed elsewhere", rfcExample, "bazbot", "/example/other.gif", true},
		// RFC: quxbot's group is empty, so it may fetch anything;
		// temoto/robotstxt drops the empty group and falls back to *.
		{"5.1 quxbot empty group (RFC: allow; temoto: * applies)", rfcExample, "quxbot", "/example/x.gif", false},
		{"product token is case-insensitive", "User-agent: LinkGraph\nDisallow: /x\n", "linkgraph", "/x", false},

		// RFC 9309 2.2.2: the longest match wins.
		{"longest match: allow deeper", "User-agent: *\nDisallow: /example/\nAllow: /example/page/\n", "linkgraph", "/example/page/x", true},
		{"longest match: disallow deeper", "User-agent: *\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n", "linkgraph", "/example/page/disallowed.gif", false},
		{"empty disallow allows", "User-agent: *\nDisallow:\n", "linkgraph", "/x", true},
		{"no group allows", "User-agent: otherbot\nDisallow: /\n", "linkgraph", "/x", true},

		// RFC 9309 2.2.3: * and $.
		{"* in the middle", "User-agent: *\nDisallow: /a/*/c\n", "linkgraph", "/a/b/c", false},
		{"$ anchors the end", "User-agent: *\nDisallow: /*.php$\n", "linkgraph", "/index.php", false},
		{"$ does not match a longer path", "User-agent: *\nDisallow: /*.php$\n", "linkgraph", "/index.php?x=1", true},
		{"query strings are matched", "User-agent: *\nDisallow: /search?q=\n", "linkgraph", "/search?q=x", false},

		// RFC 9309 2.2.2 says an equivalent allow wins over a disallow;
		// temoto/robotstxt keeps the first equal-length rule instead, so
		// with the disallow first it disallows. Recorded here so that a
		// library change shows up.
		{"tie, allow first (RFC: allow)", "User-agent: *\nAllow: /page\nDisallow: /page\n", "linkgraph", "/page", true},
		{"tie, disallow first (RFC: allow; temoto: disallow)", "User-agent: *\nDisallow: /page\nAllow: /page\n", "linkgraph", "/page", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := parseRobotsFor(c.agent, 200, "", []byte(c.robots), time.Now(), time.Hour, time.Minute)
			if got := r.allowed("http://example.com" + c.path); got != c.allowed {
				t.Errorf("allowed(%s) for %s = %v, want %v", c.path, c.agent, got, c.allowed)
			}
		})
	}
}

func TestRobotsCrawlDelayAndSitemaps(t *testing.T) {
	body := []byte("User-agent: *\nCrawl-delay: 120\nSitemap: https://example.com/s1.xml\nSitemap: /relative.xml\n")
	r := parseRobots(200, "", body, time.Now(), time.Hour, 30*time.Second)
	if r.crawlDelay != 30*time.Second {
		t.Errorf("crawl delay %v, want the 30s cap", r.crawlDelay)
	}
	if got := Sitemaps(body); len(got) != 2 {
		t.Errorf("sitemaps %q, want 2", got)
	}
}
