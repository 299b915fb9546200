// Command frontiermem measures the frontier's memory as its queue grows: it
// offers N URLs (over -hosts hosts) to a real frontier on a temporary Pebble
// directory, committing in batches as the link applier does, and prints the
// Go heap in use at each step, after a GC. Queued URLs live on disk, so the
// heap should stay flat while the queue grows.
//
//	go run ./bench/frontiermem -urls 10000000 -hosts 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/linkgraph/linkgraph/frontier"
	"github.com/linkgraph/linkgraph/internal/store"
)

type nopPublisher struct{}

func (nopPublisher) PublishTask(context.Context, string, string, []byte) (func() error, error) {
	return func() error { return nil }, nil
}

func main() {
	urls := flag.Int("urls", 10_000_000, "URLs to queue")
	hosts := flag.Int("hosts", 1000, "hosts they spread over")
	batch := flag.Int("batch", 5000, "URLs per committed batch")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		out, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(out) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	dir, err := os.MkdirTemp("", "frontiermem-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	f, err := frontier.Open(db, frontier.Config{Scope: frontier.ScopeAll, Shards: 64}, nopPublisher{}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapInuse) / (1 << 20)
	}
	fmt.Printf("%12s %10s %10s %12s %10s\n", "queued", "heap MiB", "RSS MiB", "URLs/s", "disk MiB")
	fmt.Printf("%12d %10.1f %10.1f %12s %10s\n", 0, heap(), rss(), "-", "-")
	start, last := time.Now(), time.Now()
	step := *urls / 10
	for i := 0; i < *urls; {
		b := db.NewWriteBatch()
		p := frontier.NewPending()
		for j := 0; j < *batch && i < *urls; j, i = j+1, i+1 {
			u := fmt.Sprintf("http://host-%d.example.com/section/%d/article-%d.html?ref=%d", i%*hosts, i%97, i, i%13)
			if err := f.Offer(b, p, u, 1, false); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		if err := b.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b.Close()
		f.Committed(p)
		if i%step == 0 {
			m := db.Metrics()
			disk := float64(m.DiskSpaceUsage()) / (1 << 20)
			fmt.Printf("%12d %10.1f %10.1f %12.0f %10.0f\n", f.Stats().Queued, heap(), rss(), float64(step)/time.Since(last).Seconds(), disk)
			last = time.Now()
		}
	}
	fmt.Printf("queued %d URLs over %d hosts in %s\n", f.Stats().Queued, *hosts, time.Since(start).Round(time.Second))
}

// rss is the process's resident memory (Go heap plus Pebble's block cache
// and memtables, which live outside the Go heap), from /proc.
func rss() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}
