package urlnorm

import "testing"

// Host names as Common Crawl's graphs and ranks spell them, and back.
func TestReversedHost(t *testing.T) {
	for _, c := range []struct{ host, surt, reversed, back string }{
		{"www.example.com", "com,example,www", "com.example.www", "www.example.com"},
		{"www.example.com:8080", "com,example,www:8080", "com.example.www", "www.example.com"},
		{"example.co.uk", "uk,co,example", "uk.co.example", "example.co.uk"},
		{"127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1", "127.0.0.1"},
		{"[::1]:8080", "[::1]:8080", "[::1]", "[::1]"},
		{"[::1]", "[::1]", "[::1]", "[::1]"},
		{"localhost", "localhost", "localhost", "localhost"},
	} {
		if got := HostSURT(c.host); got != c.surt {
			t.Errorf("HostSURT(%q) = %q, want %q", c.host, got, c.surt)
		}
		if got := ReversedHost(c.host); got != c.reversed {
			t.Errorf("ReversedHost(%q) = %q, want %q", c.host, got, c.reversed)
		}
		if got := ReversedHostOfSURT(c.surt); got != c.reversed {
			t.Errorf("ReversedHostOfSURT(%q) = %q, want %q", c.surt, got, c.reversed)
		}
		if got := HostOfReversed(c.reversed); got != c.back {
			t.Errorf("HostOfReversed(%q) = %q, want %q", c.reversed, got, c.back)
		}
	}
}

// HostOfSURT gives what the long way (UnSURT, then Host) gives.
func TestHostOfSURT(t *testing.T) {
	for _, raw := range []string{
		"http://www.example.com/", "http://example.com:8080/x", "https://a.b.c.example.co.uk/",
		"http://127.0.0.1:8080/", "http://127.0.0.9/", "http://[::1]:8080/", "http://[2001:db8::1]/",
		"http://localhost/", "http://xn--bcher-kva.example/", "http://EXAMPLE.org:80/",
	} {
		n, err := Normalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		surt := HostSURT(Host(n))
		u, err := UnSURT(surt + ")/")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := HostOfSURT(surt), Host(u); got != want {
			t.Errorf("HostOfSURT(%q) = %q, want %q", surt, got, want)
		}
	}
}
