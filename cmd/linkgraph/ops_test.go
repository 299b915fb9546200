package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestOpsShutdownCutsOffStalledRequests stops an ops server while a
// request that never ends is in flight (a download whose client stopped
// reading): run returns nil once the grace is over, not the deadline's
// error (serve exited 1 for it).
func TestOpsShutdownCutsOffStalledRequests(t *testing.T) {
	o, err := listenOps("--http-addr", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	o.grace = 200 * time.Millisecond
	started := make(chan struct{})
	o.Mux.HandleFunc("GET /stall", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // only the cut-off ends it
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.run(ctx) }()
	go http.Get("http://" + o.Addr().String() + "/stall")
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v, want nil after cutting off the stalled request", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}

// TestOpsClosesIdleConnections: a keep-alive connection left idle is
// closed by the server, so idle clients cannot pile up.
func TestOpsClosesIdleConnections(t *testing.T) {
	o, err := listenOps("--http-addr", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.srv.IdleTimeout != opsIdle {
		t.Errorf("idle timeout %v, want %v", o.srv.IdleTimeout, opsIdle)
	}
	o.srv.IdleTimeout = 200 * time.Millisecond // opsIdle, shortened for the test
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.run(ctx) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", o.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF (closed by the server)", err)
	}
}
