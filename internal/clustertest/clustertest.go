// Package clustertest runs a linkgraph cluster of real processes on
// loopback, for the multi-process tests and the cluster benchmark: an
// external nats-server built from the nats-server module version in go.mod,
// and shard, worker and gateway processes of a linkgraph binary.
package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// BuildNATSServer builds the nats-server command of the module version the
// project depends on into dir and returns its path. It needs the go command
// and runs in the module's directory (or any directory inside it).
func BuildNATSServer(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("clustertest: cannot build nats-server: %w\n%s", err, b)
	}
	return out, nil
}

// BuildLinkgraph builds the linkgraph command into dir.
func BuildLinkgraph(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "linkgraph")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/linkgraph/linkgraph/cmd/linkgraph")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("clustertest: cannot build linkgraph: %w\n%s", err, b)
	}
	return out, nil
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Proc is one child process and its combined output.
type Proc struct {
	Name string
	Args []string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
}

// Start starts bin with args; env is added to the environment.
func Start(name, bin string, env []string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, Args: args, out: &tailBuffer{max: 256 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("clustertest: cannot start %s: %w", name, err)
	}
	go func() {
		// Owned by p: ends when the process does; Wait and Kill wait on done.
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output returns the last 256 KiB of the process's output.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig; a process that has ended is not an error.
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Kill kills the process with SIGKILL and waits for it.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to timeout for the process to end and returns its exit
// error (nil for exit status 0); after the timeout it kills it.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("clustertest: %s did not exit within %v; killed", p.Name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// NATS is an external nats-server with JetStream.
type NATS struct {
	*Proc
	URL        string
	MonitorURL string
}

// StartNATS starts natsServer with JetStream storing under dir, listening
// on loopback, with the max_payload linkgraph needs, and waits until it
// accepts connections.
func StartNATS(natsServer, dir string) (*NATS, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	mon, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	_, mport, _ := net.SplitHostPort(mon)
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("host: %s\nport: %s\nhttp_port: %s\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n}\n", host, port, mport, filepath.Join(dir, "jetstream"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	p, err := Start("nats-server", natsServer, nil, "-c", conf)
	if err != nil {
		return nil, err
	}
	n := &NATS{Proc: p, URL: "nats://" + addr, MonitorURL: "http://" + mon}
	if err := waitHTTP(n.MonitorURL+"/healthz?js-enabled-only=true", p, 30*time.Second); err != nil {
		p.Kill()
		return nil, err
	}
	return n, nil
}

// WaitReady waits until GET http://addr/readyz answers 200.
func WaitReady(addr string, p *Proc, timeout time.Duration) error {
	return waitHTTP("http://"+addr+"/readyz", p, timeout)
}

func waitHTTP(url string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("clustertest: %s exited before %s answered: %v\n%s", p.Name, url, p.err, p.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clustertest: %s not ready at %s after %v\n%s", p.Name, url, timeout, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Metrics scrapes http://addr/metrics and returns every sample, by metric
// name and then by its labels rendered as `k="v",...` ("" for none).
func Metrics(addr string) (map[string]map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("clustertest: /metrics of %s: %s", addr, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bufio.NewReader(resp.Body))
	if err != nil {
		return nil, fmt.Errorf("clustertest: /metrics of %s: %w", addr, err)
	}
	out := make(map[string]map[string]float64, len(families))
	for name, f := range families {
		out[name] = make(map[string]float64)
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			out[name][strings.Join(labels, ",")] = value(m)
		}
	}
	return out, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// Sum returns the sum of a metric's samples over all its labels.
func Sum(metrics map[string]map[string]float64, name string) float64 {
	var s float64
	for _, v := range metrics[name] {
		s += v
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
