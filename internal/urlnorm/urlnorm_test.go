package urlnorm

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	long := "http://example.com/" + strings.Repeat("a", MaxLength-len("http://example.com/"))
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		// Case.
		{"lowercase scheme and host", "HTTP://WWW.Example.COM/Path", "http://www.example.com/Path", nil},
		{"path case kept", "http://example.com/A/b", "http://example.com/A/b", nil},
		{"https", "HTTPS://example.com/", "https://example.com/", nil},

		// Host.
		{"IDNA", "http://Bücher.example/", "http://xn--bcher-kva.example/", nil},
		{"IDNA uppercase", "http://BÜCHER.example/", "http://xn--bcher-kva.example/", nil},
		{"IDNA non-transitional", "http://faß.de/", "http://xn--fa-hia.de/", nil},
		{"punycode kept", "http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/", nil},
		{"punycode uppercase", "http://XN--BCHER-KVA.example/", "http://xn--bcher-kva.example/", nil},
		{"ideographic full stop", "http://example。com/", "http://example.com/", nil},
		{"trailing dot", "http://example.com./", "http://example.com/", nil},
		{"underscore and hyphens allowed", "http://a_b.r3---sn.example.com/", "http://a_b.r3---sn.example.com/", nil},
		{"percent-encoded host", "http://ex%41mple.com/", "http://example.com/", nil},
		{"IPv4", "http://127.0.0.1/", "http://127.0.0.1/", nil},
		{"IPv4 hex and short", "http://0x7f.1/", "http://127.0.0.1/", nil},
		{"IPv4 single number", "http://2130706433/", "http://127.0.0.1/", nil},
		{"IPv4 trailing dot", "http://10.0.0.1./", "http://10.0.0.1/", nil},
		{"IPv6", "http://[0:0:0:0:0:0:0:1]:8080/", "http://[::1]:8080/", nil},
		{"IPv6 uppercase", "http://[2001:DB8::A]/", "http://[2001:db8::a]/", nil},

		// Ports.
		{"default http port", "http://example.com:80/", "http://example.com/", nil},
		{"default https port", "https://example.com:443/", "https://example.com/", nil},
		{"443 on http kept", "http://example.com:443/", "http://example.com:443/", nil},
		{"non-default port kept", "http://example.com:8080/", "http://example.com:8080/", nil},
		{"port leading zeros", "http://example.com:0080/", "http://example.com/", nil},
		{"port leading zeros kept", "http://example.com:08080/", "http://example.com:8080/", nil},
		{"empty port", "http://example.com:/", "http://example.com/", nil},

		// Userinfo, fragment, empty path, query.
		{"userinfo dropped", "http://user:secret@example.com/a", "http://example.com/a", nil},
		{"last @ wins", "http://a@b@example.com/", "http://example.com/", nil},
		{"fragment dropped", "http://example.com/a#frag", "http://example.com/a", nil},
		{"fragment with query", "http://example.com/a?q=1#frag?x", "http://example.com/a?q=1", nil},
		{"empty path", "http://example.com", "http://example.com/", nil},
		{"empty path with query", "http://example.com?q", "http://example.com/?q", nil},
		{"empty query dropped", "http://example.com/a?", "http://example.com/a", nil},
		{"empty query and fragment", "http://example.com/a?#x", "http://example.com/a", nil},
		{"query kept as is", "http://example.com/?b=2&a=1&a=%7e%zz/./..", "http://example.com/?b=2&a=1&a=%7e%zz/./..", nil},

		// Dot segments.
		{"dot segments", "http://example.com/a/./b/../c", "http://example.com/a/c", nil},
		{"above root", "http://example.com/../a", "http://example.com/a", nil},
		{"far above root", "http://example.com/a/../../../b", "http://example.com/b", nil},
		{"trailing dot-dot", "http://example.com/a/b/..", "http://example.com/a/", nil},
		{"trailing dot", "http://example.com/a/.", "http://example.com/a/", nil},
		{"only dot-dot", "http://example.com/..", "http://example.com/", nil},
		{"encoded dots", "http://example.com/a/%2e%2E/b/%2e/c", "http://example.com/b/c", nil},
		{"dots in names kept", "http://example.com/a./..b/.c", "http://example.com/a./..b/.c", nil},
		{"empty segments kept", "http://example.com//a//b", "http://example.com//a//b", nil},

		// Percent-encoding.
		{"decode unreserved", "http://example.com/%7Euser/%41%2d%5F", "http://example.com/~user/A-_", nil},
		{"uppercase hex", "http://example.com/%2f%3a%c3%a9", "http://example.com/%2F%3A%C3%A9", nil},
		{"bad escape", "http://example.com/100%/%zz/%4", "http://example.com/100%25/%25zz/%254", nil},
		{"space in path", "http://example.com/a b", "http://example.com/a%20b", nil},
		{"non-ASCII in path", "http://example.com/é", "http://example.com/%C3%A9", nil},
		{"special chars in path", "http://example.com/\"<>`{}|^", "http://example.com/%22%3C%3E%60%7B%7D%7C%5E", nil},
		{"sub-delims kept", "http://example.com/!$&'()*+,;=:@[]", "http://example.com/!$&'()*+,;=:@[]", nil},
		{"space in query", "http://example.com/?q=a b", "http://example.com/?q=a%20b", nil},
		{"non-ASCII in query", "http://example.com/?q=é", "http://example.com/?q=%C3%A9", nil},
		{"control in query", "http://example.com/?q=\x01\x7f", "http://example.com/?q=%01%7F", nil},

		// Whitespace and backslashes.
		{"surrounding whitespace", " \t\x00http://example.com/ \n", "http://example.com/", nil},
		{"inner tab CR LF removed", "http://exa\tmple.com/a\r\n/b", "http://example.com/a/b", nil},
		{"backslashes", "http:\\\\example.com\\a\\b?x\\y", "http://example.com/a/b?x\\y", nil},

		// Errors.
		{"empty", "", "", ErrInvalidURL},
		{"only spaces", "  \t ", "", ErrInvalidURL},
		{"relative path", "/relative", "", ErrNotAbsolute},
		{"relative name", "page.html", "", ErrNotAbsolute},
		{"scheme-relative", "//example.com/", "", ErrNotAbsolute},
		{"query only", "?q", "", ErrNotAbsolute},
		{"mailto", "mailto:a@example.com", "", ErrUnsupportedScheme},
		{"javascript", "javascript:void(0)", "", ErrUnsupportedScheme},
		{"ftp", "ftp://example.com/", "", ErrUnsupportedScheme},
		{"data", "data:text/html,hi", "", ErrUnsupportedScheme},
		{"invalid scheme", "ht!tp://x", "", ErrInvalidURL},
		{"scheme starts with digit", "1http://x", "", ErrInvalidURL},
		{"no slashes", "http:example.com", "", ErrInvalidURL},
		{"no host", "http:///a", "", ErrInvalidURL},
		{"empty host with port", "http://:80/", "", ErrInvalidURL},
		{"bad port", "http://example.com:8o/", "", ErrInvalidURL},
		{"port out of range", "http://example.com:65536/", "", ErrInvalidURL},
		{"space in host", "http://exa mple.com/", "", ErrInvalidURL},
		{"forbidden char in host", "http://exa<mple.com/", "", ErrInvalidURL},
		{"empty label", "http://a..b/", "", ErrInvalidURL},
		{"two trailing dots", "http://a.b../", "", ErrInvalidURL},
		{"leading dot", "http://.a.b/", "", ErrInvalidURL},
		{"bad punycode", "http://xn--a.example/", "", ErrInvalidURL},
		{"bad IDNA", "http://a\u200d.example/", "", ErrInvalidURL},
		{"number-like last label", "http://example.123/", "", ErrInvalidURL},
		{"too many IPv4 parts", "http://1.2.3.4.5/", "", ErrInvalidURL},
		{"IPv4 part too big", "http://1.2.256.4/", "", ErrInvalidURL},
		{"bad IPv6", "http://[::g]/", "", ErrInvalidURL},
		{"IPv4 in brackets", "http://[1.2.3.4]/", "", ErrInvalidURL},
		{"IPv6 zone", "http://[fe80::1%25eth0]/", "", ErrInvalidURL},
		{"unterminated IPv6", "http://[::1/", "", ErrInvalidURL},
		{"max length", long, long, nil},
		{"too long", long + "a", "", ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Normalize(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := Normalize(got); err != nil || again != got {
				t.Errorf("not idempotent: Normalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

// TestDocExamples keeps the table in the package documentation honest.
func TestDocExamples(t *testing.T) {
	examples := map[string]string{
		"HTTP://WWW.Example.COM":               "http://www.example.com/",
		"http://user:pw@example.com:80/a#frag": "http://example.com/a",
		"https://example.com:8443/":            "https://example.com:8443/",
		"http://Bücher.example/":               "http://xn--bcher-kva.example/",
		"http://example.com./a/./b/../c":       "http://example.com/a/c",
		"http://example.com/../a":              "http://example.com/a",
		"http://example.com/%7euser/%2f%zz":    "http://example.com/~user/%2F%25zz",
		"http://example.com/a b/é?q=a b&r=é":   "http://example.com/a%20b/%C3%A9?q=a%20b&r=%C3%A9",
		`http://example.com\a\b?x\y`:           `http://example.com/a/b?x\y`,
		"http://example.com/a?":                "http://example.com/a",
		"http://0x7f.1/":                       "http://127.0.0.1/",
	}
	for in, want := range examples {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestErrorQuotesInput(t *testing.T) {
	long := "mailto:" + strings.Repeat("x", 500)
	_, err := Normalize(long)
	if !errors.Is(err, ErrUnsupportedScheme) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"mailto:xxx`) || len(msg) > 200 {
		t.Errorf("error should quote a truncated input, got %q", msg)
	}
}

func TestParse(t *testing.T) {
	u, err := Parse("HTTP://Example.com:80/a%2fb/%7e?q=é#x")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.String(), "http://example.com/a%2Fb/~?q=%C3%A9"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := Parse("/relative"); !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("Parse(relative) error = %v", err)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		ref     string
		want    string
		wantErr error
	}{
		// RFC 3986 section 5.4 examples (fragments dropped, "g:h" unsupported).
		{"rfc g:h", "http://a/b/c/d;p?q", "g:h", "", ErrUnsupportedScheme},
		{"rfc g", "http://a/b/c/d;p?q", "g", "http://a/b/c/g", nil},
		{"rfc ./g", "http://a/b/c/d;p?q", "./g", "http://a/b/c/g", nil},
		{"rfc g/", "http://a/b/c/d;p?q", "g/", "http://a/b/c/g/", nil},
		{"rfc /g", "http://a/b/c/d;p?q", "/g", "http://a/g", nil},
		{"rfc //g", "http://a/b/c/d;p?q", "//g", "http://g/", nil},
		{"rfc ?y", "http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y", nil},
		{"rfc g?y", "http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y", nil},
		{"rfc #s", "http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q", nil},
		{"rfc g#s", "http://a/b/c/d;p?q", "g#s", "http://a/b/c/g", nil},
		{"rfc ;x", "http://a/b/c/d;p?q", ";x", "http://a/b/c/;x", nil},
		{"rfc g;x?y#s", "http://a/b/c/d;p?q", "g;x?y#s", "http://a/b/c/g;x?y", nil},
		{"rfc empty", "http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q", nil},
		{"rfc .", "http://a/b/c/d;p?q", ".", "http://a/b/c/", nil},
		{"rfc ..", "http://a/b/c/d;p?q", "..", "http://a/b/", nil},
		{"rfc ../g", "http://a/b/c/d;p?q", "../g", "http://a/b/g", nil},
		{"rfc ../..", "http://a/b/c/d;p?q", "../..", "http://a/", nil},
		{"rfc ../../g", "http://a/b/c/d;p?q", "../../g", "http://a/g", nil},
		{"rfc ../../../g", "http://a/b/c/d;p?q", "../../../g", "http://a/g", nil},
		{"rfc /./g", "http://a/b/c/d;p?q", "/./g", "http://a/g", nil},
		{"rfc /../g", "http://a/b/c/d;p?q", "/../g", "http://a/g", nil},
		{"rfc g.", "http://a/b/c/d;p?q", "g.", "http://a/b/c/g.", nil},
		{"rfc ..g", "http://a/b/c/d;p?q", "..g", "http://a/b/c/..g", nil},
		{"rfc ./g/.", "http://a/b/c/d;p?q", "./g/.", "http://a/b/c/g/", nil},
		{"rfc g;x=1/../y", "http://a/b/c/d;p?q", "g;x=1/../y", "http://a/b/c/y", nil},
		{"rfc g?y/../x", "http://a/b/c/d;p?q", "g?y/../x", "http://a/b/c/g?y/../x", nil},
		{"rfc http:g (strict)", "http://a/b/c/d;p?q", "http:g", "", ErrInvalidURL},

		// Base with and without trailing slash.
		{"base dir", "http://example.com/dir/", "page.html", "http://example.com/dir/page.html", nil},
		{"base file", "http://example.com/dir", "page.html", "http://example.com/page.html", nil},
		{"base root no path", "http://example.com", "page.html", "http://example.com/page.html", nil},
		{"query only", "http://example.com/a/b?x=1", "?q", "http://example.com/a/b?q", nil},
		{"empty query ref", "http://example.com/a/b?x=1", "?", "http://example.com/a/b", nil},
		{"fragment only", "http://example.com/a/b?x=1", "#frag", "http://example.com/a/b?x=1", nil},
		{"scheme-relative", "https://example.com/a", "//other.host/x", "https://other.host/x", nil},
		{"scheme-relative backslashes", "https://example.com/a", "\\\\other.host\\x", "https://other.host/x", nil},
		{"absolute", "http://example.com/a", "HTTPS://Other.COM:443/x#y", "https://other.com/x", nil},
		{"absolute path above root", "http://example.com/a/", "/../x", "http://example.com/x", nil},
		{"relative with whitespace", "http://example.com/a/", "\n  b\tc.html  ", "http://example.com/a/bc.html", nil},
		{"relative needs encoding", "http://example.com/a/", "b c/é?q=x y", "http://example.com/a/b%20c/%C3%A9?q=x%20y", nil},
		{"relative backslash", "http://example.com/a/", "b\\c", "http://example.com/a/b/c", nil},
		{"relative colon after slash", "http://example.com/a/", "./b:c", "http://example.com/a/b:c", nil},
		{"encoded base path", "http://example.com/a%20b/c", "d", "http://example.com/a%20b/d", nil},

		// Errors.
		{"mailto", "http://example.com/", "mailto:a@example.com", "", ErrUnsupportedScheme},
		{"javascript", "http://example.com/", "javascript:void(0)", "", ErrUnsupportedScheme},
		{"tel", "http://example.com/", "tel:+123", "", ErrUnsupportedScheme},
		{"data", "http://example.com/", "data:,x", "", ErrUnsupportedScheme},
		{"invalid scheme", "http://example.com/", "ht!tp://x", "", ErrInvalidURL},
		{"bad host", "http://example.com/", "//exa mple.com/", "", ErrInvalidURL},
		{"too long", "http://example.com/", strings.Repeat("a", MaxLength), "", ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, err := Parse(tt.base)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.base, err)
			}
			got, err := Resolve(base, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve(%q, %q) = %q, %v; want error %v", tt.base, tt.ref, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q, %q) = %q, %v; want %q", tt.base, tt.ref, got, err, tt.want)
			}
			if n, err := Normalize(got); err != nil || n != got {
				t.Errorf("result not normalized: Normalize(%q) = %q, %v", got, n, err)
			}
		})
	}
}

func TestResolveBaseNotFromParse(t *testing.T) {
	base := &url.URL{Scheme: "HTTP", Host: "Example.COM:80", Path: "/a b/c"}
	got, err := Resolve(base, "d")
	if want := "http://example.com/a%20b/d"; err != nil || got != want {
		t.Errorf("Resolve = %q, %v; want %q", got, err, want)
	}
	if _, err := Resolve(nil, "d"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("Resolve(nil) error = %v", err)
	}
	if _, err := Resolve(&url.URL{Scheme: "ftp", Host: "x"}, "d"); !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("Resolve(ftp base) error = %v", err)
	}
}

func TestSURT(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"http://www.example.com/a?b", "com,example,www)/a?b"},
		{"https://www.example.com/a?b", "com,example,www)s/a?b"},
		{"http://www.example.com:8080/", "com,example,www:8080)/"},
		{"https://example.com/", "com,example)s/"},
		{"http://localhost/", "localhost)/"},
		{"http://127.0.0.2:8080/x", "127.0.0.2:8080)/x"},
		{"http://[::1]:81/", "[::1]:81)/"},
		{"https://[2001:db8::1]/", "[2001:db8::1])s/"},
		{"http://example.com//a", "com,example)//a"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if n, err := Normalize(tt.url); err != nil || n != tt.url {
				t.Fatalf("test URL not normalized: %q, %v", n, err)
			}
			got := SURT(tt.url)
			if got != tt.want {
				t.Errorf("SURT(%q) = %q, want %q", tt.url, got, tt.want)
			}
			if back, err := UnSURT(got); err != nil || back != tt.url {
				t.Errorf("UnSURT(%q) = %q, %v; want %q", got, back, err, tt.url)
			}
			back, err := FromSURT(got)
			if err != nil || back != tt.url {
				t.Errorf("FromSURT(%q) = %q, %v; want %q", got, back, err, tt.url)
			}
		})
	}
}

func TestSURTContiguity(t *testing.T) {
	host := HostSURT("www.example.com")
	domain := HostSURT("example.com")
	for _, u := range []string{"http://www.example.com/", "https://www.example.com/z"} {
		if !strings.HasPrefix(SURT(u), host+")") {
			t.Errorf("SURT(%q) = %q, not under host prefix %q", u, SURT(u), host+")")
		}
	}
	for _, u := range []string{"http://example.com/", "https://www.example.com/", "http://a.b.example.com:81/"} {
		s := SURT(u)
		if !strings.HasPrefix(s, domain+")") && !strings.HasPrefix(s, domain+",") {
			t.Errorf("SURT(%q) = %q, not under domain prefixes of %q", u, s, domain)
		}
	}
	for _, u := range []string{"http://example.community/", "http://notexample.com/", "http://example-x.com/"} {
		s := SURT(u)
		if strings.HasPrefix(s, domain+")") || strings.HasPrefix(s, domain+",") {
			t.Errorf("SURT(%q) = %q wrongly under domain %q", u, s, domain)
		}
	}
}

func TestFromSURTErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"com,example",
		"com,example)",
		"com,example)x/",
		"com,example)S/",
		"com,EXAMPLE)/",
		"com,example:80)/",
		"com,example)/a/../b",
		"4,3,2,1)/",
		"com,,example)/",
	} {
		if got, err := FromSURT(s); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("FromSURT(%q) = %q, %v; want ErrInvalidURL", s, got, err)
		}
	}
}

func TestHostSURT(t *testing.T) {
	tests := []struct{ in, want string }{
		{"www.example.com", "com,example,www"},
		{"www.example.com:8080", "com,example,www:8080"},
		{"localhost", "localhost"},
		{"127.0.0.2:8080", "127.0.0.2:8080"},
		{"127.0.0.2", "127.0.0.2"},
		{"[::1]:80", "[::1]:80"},
		{"[::1]", "[::1]"},
	}
	for _, tt := range tests {
		if got := HostSURT(tt.in); got != tt.want {
			t.Errorf("HostSURT(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRegistrableDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a.b.example.co.uk", "example.co.uk"},
		{"www.example.com", "example.com"},
		{"www.example.com:8080", "example.com"},
		{"example.com", "example.com"},
		{"co.uk", "co.uk"},
		{"localhost", "localhost"},
		{"localhost:8080", "localhost"},
		{"intranet", "intranet"},
		{"127.0.0.2:8080", "127.0.0.2"},
		{"[::1]:80", "[::1]"},
		{"a.b.unknowntld", "b.unknowntld"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		if got := RegistrableDomain(tt.in); got != tt.want {
			t.Errorf("RegistrableDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsPublicSuffix(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"com", true},
		{"co.uk", true},
		{"github.io", true}, // a listed private suffix
		{"com:8080", true},
		{"example.com", false},
		{"www.example.co.uk", false},
		{"alice.github.io", false},
		{"localhost", false}, // an unlisted single label
		{"intranet:8080", false},
		{"127.0.0.1", false},
		{"[::1]:80", false},
		{"", false},
	} {
		if got := IsPublicSuffix(tt.host); got != tt.want {
			t.Errorf("IsPublicSuffix(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestShard(t *testing.T) {
	// Pinned values: the shard of a host must never change across releases,
	// or data would be routed to the wrong shard.
	tests := []struct {
		host   string
		shards int
		want   int
	}{
		{"example.com", 0, 0},
		{"example.com", 1, 0},
		{"example.com", -3, 0},
		{"example.com", 16, fnvMod("example.com", 16)},
		{"www.example.com:8080", 16, fnvMod("example.com", 16)},
		{"a.b.example.co.uk", 7, fnvMod("example.co.uk", 7)},
		{"127.0.0.1:80", 5, fnvMod("127.0.0.1", 5)},
	}
	for _, tt := range tests {
		if got := Shard(tt.host, tt.shards); got != tt.want {
			t.Errorf("Shard(%q, %d) = %d, want %d", tt.host, tt.shards, got, tt.want)
		}
	}
	// A known FNV-1a 64 value, so the hash function itself is pinned.
	if got, want := fnvMod("a", 1<<62), int(0xaf63dc4c8601ec8c%(1<<62)); got != want {
		t.Errorf("fnvMod(a) = %x, want %x", got, want)
	}
	if got, want := Shard("a", 1<<62), int(0xaf63dc4c8601ec8c%(1<<62)); got != want {
		t.Errorf("Shard(a) = %x, want %x", got, want)
	}
}

// fnvMod is a reference FNV-1a 64 implementation for TestShard.
func fnvMod(s string, n int) int {
	h := uint64(14695981039346656037)
	for _, c := range []byte(s) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

func TestHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://example.com/a", "example.com"},
		{"https://example.com:8443/a?b", "example.com:8443"},
		{"http://[::1]:81/", "[::1]:81"},
		{"http://example.com", "example.com"},
		{"ftp://example.com/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Host(tt.in); got != tt.want {
			t.Errorf("Host(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	base, err := Parse("https://www.example.com/news/2024/05/some-article.html?ref=home")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(base, "../../2023/11/another-story.html?utm_source=x"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize("https://www.example.com/news/2024/05/some-article.html?ref=home"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolver resolves the links of a typical page with one Resolver.
func BenchmarkResolver(b *testing.B) {
	base, err := Parse("https://www.example.com/news/2024/05/some-article.html?ref=home")
	if err != nil {
		b.Fatal(err)
	}
	refs := []string{
		"../../2023/11/another-story.html?utm_source=x",
		"/section/3/",
		"https://partner3.example.org/?ref=example",
		"https://www.example.com/news/2024/05/other.html",
		"#top",
	}
	b.ReportAllocs()
	for b.Loop() {
		r := NewResolver(base)
		for _, ref := range refs {
			if _, err := r.Resolve(ref); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkResolveLinks is BenchmarkResolver with Resolve.
func BenchmarkResolveLinks(b *testing.B) {
	base, err := Parse("https://www.example.com/news/2024/05/some-article.html?ref=home")
	if err != nil {
		b.Fatal(err)
	}
	refs := []string{
		"../../2023/11/another-story.html?utm_source=x",
		"/section/3/",
		"https://partner3.example.org/?ref=example",
		"https://www.example.com/news/2024/05/other.html",
		"#top",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, ref := range refs {
			if _, err := Resolve(base, ref); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestIsIPLiteral(t *testing.T) {
	for _, c := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"10.1.2.3", true},
		{"[::1]", true},
		{"example.com", false},
		{"1.2.3.4.example", false},
		{"1.2.3", false}, // not a whole address once normalized
		{"1.2.3.256", false},
		{"123", false},
		{"", false},
	} {
		if got := isIPLiteral(c.host); got != c.want {
			t.Errorf("isIPLiteral(%q) = %v, want %v", c.host, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isIPLiteral("www.example.com") }); n != 0 {
		t.Errorf("isIPLiteral of a name allocates %v times", n)
	}
}
