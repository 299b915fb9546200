package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

type statsCmd struct{}

func (*statsCmd) name() string { return "stats" }
func (*statsCmd) synopsis() string {
	return "print the backlink profile of a target: counts, follow/nofollow, types, TLDs"
}

// metric is one line of stats outside JSON.
type metric struct{ name, value string }

var metricColumns = []column[metric]{
	{name: "metric", value: func(m metric) string { return m.name }, table: func(m metric) string { return m.name }},
	{name: "value", value: func(m metric) string { return m.value }, table: func(m metric) string { return m.value }},
}

// summaryMetrics flattens a Summary into metric lines: the counts, the
// time range, then type.<name> and tld.<suffix>, most links first.
func summaryMetrics(s *lgv1.Summary) []metric {
	n := func(v int64) string { return fmt.Sprint(v) }
	out := []metric{
		{"backlinks", n(s.Backlinks)},
		{"referring_pages", n(s.ReferringPages)},
		{"referring_hosts", n(s.ReferringHosts)},
		{"referring_domains", n(s.ReferringDomains)},
		{"follow", n(s.Follow)},
		{"nofollow", n(s.Nofollow)},
		{"ugc", n(s.Ugc)},
		{"sponsored", n(s.Sponsored)},
		{"first_seen", timeString(s.FirstSeen)},
		{"last_seen", timeString(s.LastSeen)},
	}
	if r := s.GetRank(); r != nil {
		out = append(out, metric{"rank.score", fmt.Sprint(r.Score)},
			metric{"rank.harmonic_pos", n(r.HarmonicPos)}, metric{"rank.pagerank_pos", n(r.PagerankPos)})
	}
	// Referring domains by authority, strongest first, as analysts read it.
	for i := len(s.ReferringDomainsByAuthority) - 1; i >= 0; i-- {
		hi := 10*i + 9
		if i == len(s.ReferringDomainsByAuthority)-1 {
			hi = 100
		}
		out = append(out, metric{fmt.Sprintf("authority.%d-%d", 10*i, hi), n(s.ReferringDomainsByAuthority[i])})
	}
	for _, group := range []struct {
		prefix string
		counts map[string]int64
	}{{"type.", s.ByType}, {"tld.", s.ByTld}} {
		keys := slices.SortedFunc(maps.Keys(group.counts), func(a, b string) int {
			return cmp.Or(cmp.Compare(group.counts[b], group.counts[a]), cmp.Compare(a, b))
		})
		for _, k := range keys {
			out = append(out, metric{group.prefix + k, n(group.counts[k])})
		}
	}
	return out
}

func (c *statsCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stats", "stats [--data DIR | --server ADDR] [flags] TARGET", stderr)
	var f queryFlags
	f.register(fs, true, false)
	target, scope, filter, err := f.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	api, closeAPI, err := f.open()
	if err != nil {
		return err
	}
	defer closeAPI()

	res, err := api.Summary(ctx, &lgv1.SummaryRequest{Target: target, Scope: scope, Filter: filter})
	if err != nil {
		return callError(err)
	}
	sum := res.GetSummary()
	if sum == nil {
		sum = &lgv1.Summary{}
	}
	if f.format == "json" {
		return writeJSON(stdout, sum)
	}
	out := newRowWriter(f.format, stdout, "", metricColumns)
	for _, m := range summaryMetrics(sum) {
		if err := out.Write(m); err != nil {
			return err
		}
	}
	return out.Flush()
}
