package urlnorm

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
)

var fuzzSeeds = []string{
	"http://example.com/",
	"HTTP://User:Pw@WWW.Example.COM:80/a/./b/../c?q=1#f",
	"https://Bücher.example:443/ä ö/%7e%2f%zz?x=é y",
	"http://0x7f.1:8080/..",
	"http://[0:0::1]/a\\b",
	"http://a..b/",
	"mailto:x@example.com",
	"//example.com/x",
	"../a/b?c",
	" \thttp://ex\nample.com./ ",
	"ht!tp://x",
	"http://example.com/%2e%2E/",
}

// checkNormalized asserts the guarantees of a successful Normalize/Resolve.
func checkNormalized(t *testing.T, input, n string) {
	t.Helper()
	if again, err := Normalize(n); err != nil || again != n {
		t.Fatalf("not idempotent: %q -> %q -> %q, %v", input, n, again, err)
	}
	if len(n) > MaxLength {
		t.Fatalf("%q -> %d bytes, over MaxLength", input, len(n))
	}
	u, err := url.Parse(n)
	if err != nil {
		t.Fatalf("%q -> %q, which net/url rejects: %v", input, n, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("%q -> %q has scheme %q", input, n, u.Scheme)
	}
	if u.Host == "" {
		t.Fatalf("%q -> %q has no host", input, n)
	}
	if u.String() != n {
		t.Fatalf("%q -> %q, but net/url prints it as %q", input, n, u.String())
	}
	if h := Host(n); h != u.Host {
		t.Fatalf("Host(%q) = %q, net/url says %q", n, h, u.Host)
	}
	if back, err := FromSURT(SURT(n)); err != nil || back != n {
		t.Fatalf("FromSURT(SURT(%q)) = %q, %v (SURT %q)", n, back, err, SURT(n))
	}
	if back, err := UnSURT(SURT(n)); err != nil || back != n {
		t.Fatalf("UnSURT(SURT(%q)) = %q, %v (SURT %q)", n, back, err, SURT(n))
	}
	if h := HostOfSURT(HostSURT(Host(n))); h != Host(n) {
		t.Fatalf("HostOfSURT(HostSURT(%q)) = %q", Host(n), h)
	}
}

func checkErr(t *testing.T, input string, err error) {
	t.Helper()
	for _, sentinel := range []error{ErrInvalidURL, ErrNotAbsolute, ErrUnsupportedScheme, ErrTooLong} {
		if errors.Is(err, sentinel) {
			return
		}
	}
	t.Fatalf("%q: error %v wraps no sentinel", input, err)
}

func FuzzNormalize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := Normalize(raw)
		if err != nil {
			checkErr(t, raw, err)
			return
		}
		checkNormalized(t, raw, n)
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add("http://example.com/a/b?q", s)
		f.Add(s, "../x y/./z?é#f")
	}
	f.Fuzz(func(t *testing.T, rawBase, ref string) {
		base, err := Parse(rawBase)
		if err != nil {
			return
		}
		n, err := Resolve(base, ref)
		if err != nil {
			checkErr(t, ref, err)
			return
		}
		checkNormalized(t, ref, n)
	})
}

// FuzzResolver checks that Resolver.Resolve is Resolve: the same result or
// the same error, for bases from Parse and from net/url alone, over a
// sequence of references so that the remembered host is exercised.
func FuzzResolver(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add("http://example.com/a/b?q", s, "//Example.COM:80/x#f")
		f.Add(s, "../x y/./z?é#f", s)
	}
	f.Add("https://www.example.com/news/2024/05/a.html", "../../2023/05/story-1.html?utm_source=article", "https://partner1.example.org/?ref=example")
	f.Add("HTTP://Ex%41mple.com:0080/a%2fb/c", "HTTPS://EXAMPLE.com:443/", "https://example.com:443/y")
	f.Add("ftp://example.com/a", "x", "http://example.com/")
	f.Add("http://[::1]:8080", "?q", "")
	f.Fuzz(func(t *testing.T, rawBase, ref1, ref2 string) {
		bases := []*url.URL{nil}
		if b, err := Parse(rawBase); err == nil {
			bases = append(bases, b)
		}
		if b, err := url.Parse(rawBase); err == nil {
			bases = append(bases, b)
		}
		for _, base := range bases {
			r := NewResolver(base)
			for _, ref := range []string{ref1, ref2, ref1, ref2} {
				want, wantErr := Resolve(base, ref)
				got, gotErr := r.Resolve(ref)
				if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("base %q, ref %q: Resolver gives %q, %v; Resolve gives %q, %v", rawBase, ref, got, gotErr, want, wantErr)
				}
				for _, sentinel := range []error{ErrInvalidURL, ErrNotAbsolute, ErrUnsupportedScheme, ErrTooLong} {
					if errors.Is(gotErr, sentinel) != errors.Is(wantErr, sentinel) {
						t.Fatalf("base %q, ref %q: errors %v and %v wrap different sentinels", rawBase, ref, gotErr, wantErr)
					}
				}
			}
		}
	})
}
