package node

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/indexer"
)

// indexCollector exports the index's persistent counters and the
// frontier's state at scrape time. The counters live in Pebble and change
// only on state transitions, so they are exact across restarts and
// redeliveries, unlike in-process counters.
type indexCollector struct {
	ix *indexer.Index
	fr *frontier.Frontier

	fetches, errors, skipped, retries, robots, pages, sitemaps, edges, targets, queued, inflight, hosts, ready *prometheus.Desc
}

var _ prometheus.Collector = (*indexCollector)(nil)

func newIndexCollector(ix *indexer.Index, fr *frontier.Frontier) *indexCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("linkgraph_"+name, help, labels, nil)
	}
	return &indexCollector{
		ix: ix, fr: fr,
		fetches:  d("pages_by_status_total", "Distinct pages fetched, by HTTP status class of their first recorded fetch.", "class"),
		errors:   d("fetch_errors_total", "Distinct pages whose fetch failed without a response, by reason.", "reason"),
		skipped:  d("skipped_urls_total", "URLs not fetched, by reason (robots_disallowed, max_depth, traps, budgets, given-up hosts).", "reason"),
		retries:  d("fetch_retries_total", "Fetches queued again after 429, 503 or a network error."),
		robots:   d("robots_fetches_total", "robots.txt fetches."),
		pages:    d("pages_total", "Distinct pages with a recorded fetch."),
		sitemaps: d("sitemaps_total", "Distinct sitemaps with a recorded fetch."),
		edges:    d("edges", "Live edges in the reverse index."),
		targets:  d("targets", "Distinct link targets in the reverse index."),
		queued:   d("frontier_queued_urls", "URLs waiting in the frontier's host queues."),
		inflight: d("frontier_inflight_urls", "URLs released to workers without a result yet."),
		hosts:    d("frontier_hosts", "Hosts known to the frontier."),
		ready:    d("frontier_ready_hosts", "Hosts that may be fetched from now."),
	}
}

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.fetches, c.errors, c.skipped, c.retries, c.robots, c.pages, c.sitemaps, c.edges, c.targets, c.queued, c.inflight, c.hosts, c.ready} {
		ch <- d
	}
}

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	counters, err := c.ix.Counters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pages, err)
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	for _, reason := range frontier.SkipReasons {
		counter(c.skipped, counters[frontier.CounterSkipped(reason)], reason)
	}
	for name, v := range counters {
		if class, ok := strings.CutPrefix(name, indexer.StatusCounter("")); ok {
			counter(c.fetches, v, class)
		}
		if reason, ok := strings.CutPrefix(name, indexer.ErrorCounter("")); ok {
			counter(c.errors, v, reason)
		}
	}
	counter(c.retries, counters[frontier.CounterRetries])
	counter(c.robots, counters[frontier.CounterRobotsFetched])
	counter(c.pages, counters[indexer.CounterPages])
	counter(c.sitemaps, counters[indexer.CounterSitemaps])
	gauge(c.edges, float64(counters[indexer.CounterEdges]))
	gauge(c.targets, float64(counters[indexer.CounterTargets]))
	s := c.fr.Stats()
	gauge(c.queued, float64(s.Queued))
	gauge(c.inflight, float64(s.InFlight))
	gauge(c.hosts, float64(s.Hosts))
	gauge(c.ready, float64(s.ReadyHosts))
}

// Register adds the node's metrics to reg: the index and frontier state,
// and the workers' fetch latency.
func (n *AllInOne) Register(reg prometheus.Registerer) error {
	if err := reg.Register(newIndexCollector(n.shard.ix, n.shard.fr)); err != nil {
		return err
	}
	return reg.Register(n.fetchSeconds)
}
