package crawler

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

func TestIsPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		// loopback
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		// RFC 1918
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.0.1", false},
		{"192.168.255.255", false},
		// CGNAT
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		// link-local, cloud metadata
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fe80::a9fe:a9fe%1", false},
		// ULA, site-local
		{"fc00::1", false},
		{"fd00:ec2::254", false},
		{"fec0::1", false},
		// unspecified
		{"::", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		// multicast, broadcast, reserved
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"ff02::1", false},
		{"ff05::2", false},
		// IPv6 forms embedding a non-public IPv4
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::127.0.0.1", false},                          // IPv4-compatible
		{"64:ff9b::a9fe:a9fe", false},                   // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", false},                      // NAT64 of 127.0.0.1
		{"64:ff9b:1::808:808", false},                   // local-use NAT64
		{"2002:a00:1::1", false},                        // 6to4 of 10.0.0.1
		{"2002:7f00:1::", false},                        // 6to4 of 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false}, // Teredo, client 127.0.0.1
		// public
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"93.184.216.34", true},
		{"100.63.255.255", true},  // just below CGNAT
		{"100.128.0.0", true},     // just above CGNAT
		{"172.15.255.255", true},  // just below 172.16/12
		{"172.32.0.0", true},      // just above 172.16/12
		{"169.253.255.255", true}, // just below link-local
		{"2001:4860::8888", true},
		{"2001:4860:4860::8888", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true},                     // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},                      // 6to4 of 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true}, // Teredo, client 8.8.8.8
	} {
		a, err := netip.ParseAddr(tc.addr)
		if err != nil {
			t.Fatalf("bad test address %q: %v", tc.addr, err)
		}
		if got := IsPublicAddr(a); got != tc.public {
			t.Errorf("IsPublicAddr(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
	if IsPublicAddr(netip.Addr{}) {
		t.Error("IsPublicAddr(zero Addr) = true, want false")
	}
}

func TestGuardControl(t *testing.T) {
	for _, tc := range []struct {
		address string
		ok      bool
	}{
		{"8.8.8.8:80", true},
		{"[2001:4860::8888]:443", true},
		{"127.0.0.1:80", false},
		{"[::1]:80", false},
		{"[fe80::1%eth0]:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"localhost:80", false}, // only addresses are dialed; a name is refused
		{"garbage", false},
	} {
		err := guardControl("tcp", tc.address, nil)
		if (err == nil) != tc.ok {
			t.Errorf("guardControl(%q) = %v, want ok %v", tc.address, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("guardControl(%q) = %v, not ErrPrivateAddress", tc.address, err)
		}
	}
}

// dtCountingServer is an httptest server that counts the TCP connections it
// accepts and the requests it serves.
type dtCountingServer struct {
	*httptest.Server
	conns, requests atomic.Int32
}

func dtNewCountingServer(t *testing.T, h http.HandlerFunc) *dtCountingServer {
	s := &dtCountingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *dtCountingServer) port() string {
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	return port
}

func (s *dtCountingServer) wantUntouched(t *testing.T) {
	t.Helper()
	if c, r := s.conns.Load(), s.requests.Load(); c != 0 || r != 0 {
		t.Errorf("server saw %d connections and %d requests, want none", c, r)
	}
}

func dtOKPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, `<title>reached</title>`)
}

// TestFetchRefusesLoopback fetches a running loopback server by address,
// in several spellings, with the guard on: nothing may reach it.
func TestFetchRefusesLoopback(t *testing.T) {
	srv := dtNewCountingServer(t, dtOKPage)
	f := NewFetcher(context.Background(), FetcherConfig{Timeout: 5 * time.Second})
	defer f.CloseIdleConnections()
	port := srv.port()
	for _, host := range []string{
		"127.0.0.1",
		"localhost",
		"0.0.0.0", // Linux delivers this to loopback
		"[::ffff:127.0.0.1]",
		"[::1]",
		"127.1",
		"2130706433",
		"0x7f.0.0.1",
	} {
		u := "http://" + host + ":" + port + "/"
		res := f.Fetch(&lgv1.FetchTask{Url: u})
		t.Logf("%s: status %d, reason %q (%s)", u, res.Status, res.ErrorReason, res.ErrorDetail)
		if res.Status != 0 || res.ErrorReason != "private_address" {
			t.Errorf("%s: status %d, reason %q (%s); want refused as private_address",
				u, res.Status, res.ErrorReason, res.ErrorDetail)
		}
	}
	srv.wantUntouched(t)
}

// TestFetchRefusesPrivateDNSAnswer resolves a public-looking name through a
// test DNS server that answers 127.0.0.1: the guard must refuse the
// connection after DNS, and the same setup without the guard must reach the
// server (so the refusal is the guard's, not a resolver failure).
func TestFetchRefusesPrivateDNSAnswer(t *testing.T) {
	const name = "www.public-looking.test"
	dns := dtStartDNS(t, map[string]netip.Addr{name: netip.MustParseAddr("127.0.0.1")})
	srv := dtNewCountingServer(t, dtOKPage)
	u := "http://" + name + ":" + srv.port() + "/"

	guarded := NewFetcher(context.Background(), FetcherConfig{Timeout: 5 * time.Second, Resolver: dns.resolver()})
	defer guarded.CloseIdleConnections()
	res := guarded.Fetch(&lgv1.FetchTask{Url: u})
	t.Logf("guarded: status %d, reason %q (%s)", res.Status, res.ErrorReason, res.ErrorDetail)
	if res.Status != 0 || res.ErrorReason != "private_address" {
		t.Errorf("guarded fetch of %s: status %d, reason %q (%s); want private_address",
			u, res.Status, res.ErrorReason, res.ErrorDetail)
	}
	if dns.queries(name) == 0 {
		t.Errorf("the DNS server was not asked for %s: the refusal did not come after DNS", name)
	}
	srv.wantUntouched(t)

	open := NewFetcher(context.Background(), FetcherConfig{Timeout: 5 * time.Second, Resolver: dns.resolver(), AllowPrivateNetworks: true})
	defer open.CloseIdleConnections()
	res = open.Fetch(&lgv1.FetchTask{Url: u})
	if res.Status != 200 || res.Title != "reached" || srv.requests.Load() != 1 {
		t.Errorf("unguarded fetch of %s: status %d, reason %q (%s), title %q, %d requests; want the page",
			u, res.Status, res.ErrorReason, res.ErrorDetail, res.Title, srv.requests.Load())
	}

	// A name the DNS server does not know fails as "dns".
	res = open.Fetch(&lgv1.FetchTask{Url: "http://unknown.public-looking.test/"})
	if res.ErrorReason != "dns" {
		t.Errorf("unknown name: reason %q (%s), want dns", res.ErrorReason, res.ErrorDetail)
	}
}

// TestFetchDoesNotFollowRedirectToLoopback has a server redirect to a
// loopback target. Fetch must not follow it: it returns the redirect as a
// link, and the frontier's later fetch of that link is refused.
func TestFetchDoesNotFollowRedirectToLoopback(t *testing.T) {
	target := dtNewCountingServer(t, dtOKPage)
	targetURL := target.URL + "/internal"
	origin := dtNewCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, targetURL, http.StatusFound)
	})

	// The origin itself is on loopback too, so only an unguarded fetcher
	// can reach it; not following redirects is independent of the guard.
	open := NewFetcher(context.Background(), FetcherConfig{Timeout: 5 * time.Second, AllowPrivateNetworks: true})
	defer open.CloseIdleConnections()
	res := open.Fetch(&lgv1.FetchTask{Url: origin.URL + "/"})
	if res.Status != http.StatusFound || res.ErrorReason != "" {
		t.Fatalf("origin: status %d, reason %q (%s); want 302", res.Status, res.ErrorReason, res.ErrorDetail)
	}
	if len(res.Links) != 1 || res.Links[0].Url != targetURL || res.Links[0].Type != lgv1.LinkType_LINK_TYPE_REDIRECT ||
		res.Links[0].RedirectStatus != http.StatusFound {
		t.Errorf("origin links %v, want one REDIRECT (302) link to %s", res.Links, targetURL)
	}
	target.wantUntouched(t)

	guarded := NewFetcher(context.Background(), FetcherConfig{Timeout: 5 * time.Second})
	defer guarded.CloseIdleConnections()
	res = guarded.Fetch(&lgv1.FetchTask{Url: res.Links[0].Url})
	if res.ErrorReason != "private_address" {
		t.Errorf("redirect target: status %d, reason %q (%s); want private_address", res.Status, res.ErrorReason, res.ErrorDetail)
	}
	target.wantUntouched(t)
}

// dtDNS is a tiny DNS server on 127.0.0.1 UDP answering A queries from a
// fixed table (NXDOMAIN for other names, empty answers for other types).
type dtDNS struct {
	pc net.PacketConn
	mu sync.Mutex
	qs map[string]int
}

func dtStartDNS(t *testing.T, table map[string]netip.Addr) *dtDNS {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dtDNS{pc: pc, qs: map[string]int{}}
	done := make(chan struct{})
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if msg := d.answer(buf[:n], table); msg != nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return d
}

func (d *dtDNS) answer(req []byte, table map[string]netip.Addr) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	d.mu.Lock()
	d.qs[name]++
	d.mu.Unlock()
	addr, known := table[name]
	hdr := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		hdr.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, hdr)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	if known && q.Type == dnsmessage.TypeA && addr.Is4() {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if b.AResource(rh, dnsmessage.AResource{A: addr.As4()}) != nil {
			return nil
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}

func (d *dtDNS) queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.qs[name]
}

// resolver returns a pure-Go resolver that sends every query to d.
func (d *dtDNS) resolver() *net.Resolver {
	addr := d.pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}
