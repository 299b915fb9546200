package frontier

import (
	"strings"

	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// Skip reasons, counted under "skipped/<reason>" (see CounterSkipped).
const (
	SkipDepth            = "max_depth"
	SkipHostBudget       = "max_pages_per_host"
	SkipURLLength        = "url_too_long"
	SkipRepeatedSegments = "repeated_path_segments"
	SkipQueryParams      = "too_many_query_params"
	SkipRobotsDisallowed = "robots_disallowed"
	SkipHostGivenUp      = "host_given_up"
	SkipPrivateAddress   = "private_address"
	// SkipAbandoned counts revisits the workers reported abandoned
	// (lgv1.ErrorReasonAbandoned): not fetched, kept for the next one.
	SkipAbandoned         = "abandoned"
	counterSkippedPrefix  = "skipped/"
	counterRetries        = "fetch/retries"
	counterRobotsFetched  = "robots/fetched"
	counterSitemapsQueued = "sitemaps/queued"
)

// SkipReasons lists every skip reason, for exporting zeros too.
var SkipReasons = []string{SkipDepth, SkipHostBudget, SkipURLLength, SkipRepeatedSegments, SkipQueryParams,
	SkipRobotsDisallowed, SkipHostGivenUp, SkipPrivateAddress, SkipAbandoned}

// CounterRobotsError names the counter of robots.txt fetches that failed
// for reason (a network error reason, or "5xx").
func CounterRobotsError(reason string) string { return "robots/error/" + reason }

// CounterSkipped names the counter of URLs skipped for reason.
func CounterSkipped(reason string) string { return counterSkippedPrefix + reason }

// Counter names the frontier keeps besides skips.
const (
	CounterRetries       = counterRetries
	CounterRobotsFetched = counterRobotsFetched
)

// trapReason returns why url looks like a crawler trap under cfg, or "".
// Calendars, session ids and link farms make URLs that are long, repeat
// path segments or pile up query parameters.
func trapReason(cfg *Config, url string) string {
	if len(url) > cfg.MaxURLLength {
		return SkipURLLength
	}
	path, query := pathAndQuery(url)
	if query != "" && strings.Count(query, "&")+1 > cfg.MaxQueryParams {
		return SkipQueryParams
	}
	if maxRepeats(path) > cfg.MaxRepeatedSegments {
		return SkipRepeatedSegments
	}
	return ""
}

func pathAndQuery(url string) (path, query string) {
	h := urlnorm.Host(url)
	i := strings.Index(url, h)
	rest := url[i+len(h):]
	path, query, _ = strings.Cut(rest, "?")
	return path, query
}

// maxRepeats returns how often the most repeated non-empty segment occurs.
func maxRepeats(path string) int {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 2 {
		return len(segs)
	}
	best := 0
	counts := make(map[string]int, len(segs))
	for _, s := range segs {
		if s == "" {
			continue
		}
		counts[s]++
		best = max(best, counts[s])
	}
	return best
}
