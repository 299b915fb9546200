// Command site serves the synthetic static site used by the benchmarks and
// the demo (internal/testweb.NewSite) until it is interrupted.
//
//	go run ./bench/site -addr 127.0.0.1:8089 -pages 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkgraph/linkgraph/internal/testweb"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address")
	pages := flag.Int("pages", 1000, "pages on the site")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "site:", err)
		os.Exit(1)
	}
	site := testweb.NewSite(testweb.SiteOptions{Pages: *pages, BaseURL: "http://" + l.Addr().String(), Seed: 1})
	fmt.Fprintf(os.Stderr, "site: %d pages, %d links on http://%s/\n", site.Pages(), site.Links(), l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: site.Handler()}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "site:", err)
		os.Exit(1)
	}
}
