// Command e2e measures end-to-end crawl throughput: the real `linkgraph
// crawl` (embedded JetStream, Pebble, Colly workers) against a static
// loopback site of realistic pages, side by side in the same run with a bare
// loop that only fetches with net/http and tokenizes links (no queue, no
// index). Both see the same site served by this process.
//
// Throughput on a shared VM moves by a fifth from run to run, so -rounds
// repeats both, and -against alternates the crawl of a second build with
// the first round by round, then prints each one's median and range.
//
//	go run ./bench/e2e                # 3000 pages of 20-50 KB, 50-150 links each
//	go run ./bench/e2e -pages 5000 -workers 16 -cpuprofile /tmp/crawl.prof
//	go run ./bench/e2e -pages 10000 -rounds 4 -against /tmp/linkgraph-old
//	go run ./bench/e2e -pages 10000 -rounds 3 -index-loop   # also the bare loop plus extraction, and plus index writes too (indexloop.go)
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/html"

	"github.com/linkgraph/linkgraph/internal/testweb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func run() error {
	pages := flag.Int("pages", 3000, "pages in all")
	hosts := flag.Int("hosts", 1, "spread the pages over this many sites on distinct loopback addresses (127.0.x.y), crawled with one request at a time per host")
	workers := flag.Int("workers", 16, "concurrent fetches, for both the crawl and the bare loop")
	bin := flag.String("bin", "", "linkgraph binary (default: build ./cmd/linkgraph)")
	cpuprofile := flag.String("cpuprofile", "", "pass --cpuprofile to the crawl (writes a CPU profile there)")
	extra := flag.String("crawl-flags", "", "more flags for the crawl, space-separated (e.g. \"--ignore-robots\")")
	rounds := flag.Int("rounds", 1, "run the bare loop and the crawl this many times")
	against := flag.String("against", "", "a second linkgraph binary, crawled after -bin in every round (A/B comparison of builds)")
	withIndex := flag.Bool("index-loop", false, "also run, each round, the bare loop plus the crawler's link extraction (the extract loop), and plus the index's write path too (the index loop), in this process (no Colly, no NATS, no frontier)")
	flag.Parse()
	if *rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}

	tmp, err := os.MkdirTemp("", "linkgraph-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *bin == "" {
		*bin = filepath.Join(tmp, "linkgraph")
		build := exec.Command("go", "build", "-o", *bin, "./cmd/linkgraph")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building linkgraph: %w", err)
		}
	}

	var sites []served
	var nPages, nLinks int
	var nBytes int64
	for h := range *hosts {
		addr := "127.0.0.1:0"
		if *hosts > 1 {
			addr = fmt.Sprintf("127.0.%d.%d:0", 1+h/250, 1+h%250)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer l.Close()
		base := "http://" + l.Addr().String()
		site := testweb.NewSite(testweb.SiteOptions{Pages: *pages / *hosts, BaseURL: base, Seed: int64(1 + h)})
		go site.Serve(l)
		sites = append(sites, served{base, site})
		nPages, nLinks, nBytes = nPages+site.Pages(), nLinks+site.Links(), nBytes+site.Bytes()
	}
	fmt.Printf("web: %d hosts, %d pages, %d links, %.1f MB (avg %.1f KB, %.0f links/page)\n", len(sites), nPages, nLinks,
		float64(nBytes)/1e6, float64(nBytes)/float64(nPages)/1e3, float64(nLinks)/float64(nPages))

	perHost := *workers
	if *hosts > 1 {
		perHost = 1
	}
	bins := []string{*bin}
	if *against != "" {
		bins = append(bins, *against)
	}
	common := []string{"--allow-private-networks", "--delay", "0",
		"--per-host-concurrency", strconv.Itoa(perHost), "--workers", strconv.Itoa(*workers)}
	common = append(common, strings.Fields(*extra)...)
	for _, s := range sites {
		common = append(common, s.base+"/")
	}
	var bareRates, extractRates, indexRates []float64
	rates, ratios := make([][]float64, len(bins)), make([][]float64, len(bins))
	indexRatios := make([][]float64, len(bins))
	for round := range *rounds {
		if *rounds > 1 {
			fmt.Printf("round %d\n", round+1)
		}
		n, links, d, err := bareLoop(sites, *workers)
		if err != nil {
			return err
		}
		bare := float64(n) / d.Seconds()
		bareRates = append(bareRates, bare)
		fmt.Printf("bare loop (net/http + x/net/html tokenizer): %d pages, %d links in %s: %.0f pages/s\n", n, links, d.Round(time.Millisecond), bare)
		var indexed float64
		if *withIndex {
			n, links, d, err := indexLoop(sites, *workers, "")
			if err != nil {
				return err
			}
			extracted := float64(n) / d.Seconds()
			extractRates = append(extractRates, extracted)
			fmt.Printf("extract loop (net/http + crawler.Extract): %d pages, %d links in %s: %.0f pages/s, %.2f of the bare loop\n",
				n, links, d.Round(time.Millisecond), extracted, extracted/bare)
			dir := filepath.Join(tmp, fmt.Sprintf("index-loop-%d", round))
			n, links, d, err = indexLoop(sites, *workers, dir)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			indexed = float64(n) / d.Seconds()
			indexRates = append(indexRates, indexed)
			fmt.Printf("index loop (net/http + crawler.Extract + index writes): %d pages, %d links in %s: %.0f pages/s, %.2f of the bare loop\n",
				n, links, d.Round(time.Millisecond), indexed, indexed/bare)
		}
		for i, b := range bins {
			data := filepath.Join(tmp, "data")
			args := []string{"crawl", "--data", data}
			if *cpuprofile != "" && round == 0 && i == 0 {
				args = append(args, "--cpuprofile", *cpuprofile)
			}
			rate, err := crawl(b, append(args, common...), len(bins) > 1 || *rounds > 1)
			if err != nil {
				return err
			}
			// Each crawl starts from an empty data directory, and rounds
			// do not pile up hundreds of MB of them.
			if err := os.RemoveAll(data); err != nil {
				return err
			}
			fmt.Printf("ratio crawl/bare: %.2f\n", rate/bare)
			rates[i], ratios[i] = append(rates[i], rate), append(ratios[i], rate/bare)
			if *withIndex {
				fmt.Printf("ratio crawl/index loop: %.2f\n", rate/indexed)
				indexRatios[i] = append(indexRatios[i], rate/indexed)
			}
		}
	}
	if *rounds > 1 || len(bins) > 1 {
		fmt.Printf("over %d rounds, median (min-max):\n", *rounds)
		fmt.Printf("  bare loop  %s pages/s\n", spread(bareRates))
		if *withIndex {
			fmt.Printf("  extract loop  %s pages/s\n", spread(extractRates))
			fmt.Printf("  index loop  %s pages/s\n", spread(indexRates))
		}
		for i, b := range bins {
			fmt.Printf("  %s  crawl %s pages/s, ratio crawl/bare %s\n", b, spread(rates[i]), spread(ratios[i]))
			if *withIndex {
				fmt.Printf("  %s  ratio crawl/index loop %s\n", b, spread(indexRatios[i]))
			}
		}
	}
	return nil
}

// pagesFetched is the crawl summary's line of pages and pages/s.
var pagesFetched = regexp.MustCompile(`pages fetched\s+(\d+) \(([\d.]+) pages/s\)`)

// crawl runs a linkgraph crawl and returns its pages/s. Quiet, it prints
// the summary's last lines only, not the whole summary.
func crawl(bin string, args []string, quiet bool) (float64, error) {
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("crawl: %w\n%s", err, out.String())
	}
	wall := time.Since(start)
	if !quiet {
		fmt.Print(out.String())
	}
	m := pagesFetched.FindStringSubmatch(out.String())
	if m == nil {
		return 0, errors.New("no 'pages fetched' line in the crawl summary")
	}
	rate, _ := strconv.ParseFloat(m[2], 64)
	fetched, _ := strconv.Atoi(m[1])
	fmt.Printf("%s crawl: %d pages, %.0f pages/s in the crawl (%.0f pages/s including process start and shutdown, %s)\n",
		filepath.Base(bin), fetched, rate, float64(fetched)/wall.Seconds(), wall.Round(time.Millisecond))
	// CPU time varies less than wall time on a shared VM: it compares
	// builds where pages/s cannot tell them apart.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	fmt.Printf("crawl CPU: %.2f s user+system, %.2f ms a page\n", cpu.Seconds(), cpu.Seconds()*1e3/float64(max(fetched, 1)))
	return rate, nil
}

// spread formats the median and range of xs.
func spread(xs []float64) string {
	s := slices.Sorted(slices.Values(xs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + med) / 2
	}
	f := "%.0f (%.0f-%.0f)"
	if s[len(s)-1] < 10 {
		f = "%.2f (%.2f-%.2f)"
	}
	return fmt.Sprintf(f, med, s[0], s[len(s)-1])
}

// bareLoop fetches every page once with workers goroutines and extracts the
// href of every <a> with golang.org/x/net/html's tokenizer, resolving it
// against the page URL with net/url. (The crawler's own extraction, a port
// of that tokenizer without its per-byte reads and per-attribute
// allocations, is about twice as fast: see the extract loop.)
type served struct {
	base string
	site *testweb.Site
}

func bareLoop(sites []served, workers int) (pages, links int64, d time.Duration, err error) {
	client := newClient(workers)
	defer client.CloseIdleConnections() // keep file descriptors for the crawl
	urls := make(chan string)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	var nPages, nLinks atomic.Int64
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range urls {
				n, err := fetchAndTokenize(context.Background(), client, u)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				nPages.Add(1)
				nLinks.Add(int64(n))
			}
		}()
	}
	for _, s := range sites {
		for i := range s.site.Pages() {
			urls <- s.base + s.site.Path(i)
		}
	}
	close(urls)
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	return nPages.Load(), nLinks.Load(), time.Since(start), nil
}

// newClient is the HTTP client of a loop with workers fetchers. Idle
// connections are bounded in all, not only per host: over 1,000 hosts,
// workers of them per host would hold both ends of 32,000 connections open
// in this process and run it out of file descriptors.
func newClient(workers int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxIdleConns: 4 * workers}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// get fetches u and returns its response, whose body it has read.
func get(ctx context.Context, c *http.Client, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

func fetchAndTokenize(ctx context.Context, c *http.Client, u string) (int, error) {
	_, body, err := get(ctx, c, u)
	if err != nil {
		return 0, err
	}
	page, _ := url.Parse(u)
	z := html.NewTokenizer(bufio.NewReader(bytes.NewReader(body)))
	n := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return n, nil
		case html.StartTagToken:
			name, hasAttr := z.TagName()
			if string(name) != "a" {
				continue
			}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if string(k) == "href" {
					if ref, err := url.Parse(string(v)); err == nil {
						_ = page.ResolveReference(ref).String()
						n++
					}
				}
			}
		}
	}
}
