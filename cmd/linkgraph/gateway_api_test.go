package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a strings.Builder that a command may write while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A gateway that cannot reach NATS answers /v1/ with a 503 JSON error that
// says what it waits for, not a plain 404, and logs that it waits.
func TestGatewayWithoutNATSSaysWhy(t *testing.T) {
	httpAddr := freeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var errOut lockedBuffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, []string{"gateway", "--nats", "nats://secret@127.0.0.1:1", "--grpc-addr", freeAddr(t), "--http-addr", httpAddr}, io.Discard, &errOut)
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	var res *http.Response
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, err := http.Get("http://" + httpAddr + "/v1/backlinks?target=x.example")
		if err == nil {
			body, err = io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			res = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTP answer after 10s: %v; stderr: %s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil || res.StatusCode != http.StatusServiceUnavailable ||
		e.Message != "not ready: waiting for the cluster (NATS at nats://127.0.0.1:1)" {
		t.Errorf("HTTP %d %s; want 503 with a JSON error saying it waits for NATS at nats://127.0.0.1:1", res.StatusCode, body)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errOut.String(), `msg="waiting for the cluster"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no info line saying it waits; stderr:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := errOut.String(); strings.Contains(s, "secret") {
		t.Errorf("the NATS user info is logged:\n%s", s)
	}
}
