// Package urlnorm is the one URL normalization used everywhere in linkgraph:
// the crawler, the frontier, the index and the query path all compare URLs
// in the form produced here, so two spellings of the same http(s) URL must
// normalize to the same string and the normal form must never change once
// produced (Normalize is idempotent).
//
// # Rules
//
// Normalize accepts only absolute http and https URLs and applies, in order:
//
//   - Leading and trailing C0 controls and spaces are trimmed; tab, CR and LF
//     are removed everywhere (as the WHATWG URL parser does).
//   - Backslashes before the query are read as '/', as browsers do for http(s).
//   - The scheme and host are lowercased; the host goes through IDNA
//     (UTS #46, non-transitional, hyphens and '_' allowed as in browsers)
//     to its ASCII form; one trailing dot is removed. The result may contain
//     only a-z, 0-9, '-', '_' and '.', with no empty label.
//   - Hosts ending in a number are IPv4 addresses and are written in dotted
//     decimal ("http://0x7f.1/" -> "http://127.0.0.1/"); IPv6 literals are
//     written in their RFC 5952 form.
//   - Userinfo is dropped (credentials are never kept), the default port
//     (80 for http, 443 for https) is dropped, other ports are kept.
//   - The fragment is dropped.
//   - In the path, %XX escapes of unreserved characters (ALPHA DIGIT - . _ ~)
//     are decoded, the hex digits of the remaining escapes are uppercased,
//     bytes that may not appear raw (space, controls, non-ASCII, '"', '<',
//     '>', '`', '{', '}', '|', '^') are percent-encoded, and a '%' that does
//     not start an escape becomes "%25".
//   - Dot segments are removed (RFC 3986 section 5.2.4), after the decoding
//     above so that "%2e%2e" counts as "..". An empty path becomes "/".
//   - The query is kept as it is, except that space, controls and non-ASCII
//     bytes are percent-encoded; an empty query ("?" alone) is dropped.
//   - The result is at most MaxLength bytes.
//
// Examples:
//
//	input                                   normalized
//	HTTP://WWW.Example.COM                  http://www.example.com/
//	http://user:pw@example.com:80/a#frag    http://example.com/a
//	https://example.com:8443/               https://example.com:8443/
//	http://Bücher.example/                  http://xn--bcher-kva.example/
//	http://example.com./a/./b/../c          http://example.com/a/c
//	http://example.com/../a                 http://example.com/a
//	http://example.com/%7euser/%2f%zz       http://example.com/~user/%2F%25zz
//	http://example.com/a b/é?q=a b&r=é      http://example.com/a%20b/%C3%A9?q=a%20b&r=%C3%A9
//	http://example.com\a\b?x\y              http://example.com/a/b?x\y
//	http://example.com/a?                   http://example.com/a
//
// # SURT
//
// SURT rewrites a normalized URL so that byte-wise sorting groups URLs by
// host and by registrable domain:
//
//	http://www.example.com/a?b         com,example,www)/a?b
//	https://www.example.com/a?b        com,example,www)s/a?b
//	http://www.example.com:8080/       com,example,www:8080)/
//	http://127.0.0.2:8080/             127.0.0.2:8080)/
//
// All URLs of one host (both schemes) share the prefix HostSURT(host)+")".
// The URLs of a registrable domain d are under HostSURT(d)+")" (d itself),
// HostSURT(d)+"," (its subdomains, any port) and HostSURT(d)+":" (d itself
// on a non-default port).
package urlnorm

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// MaxLength is the maximum length in bytes of a normalized URL.
const MaxLength = 2048

// Every error returned by this package wraps exactly one of these.
var (
	// ErrInvalidURL: the input does not parse, is empty, has no host, a bad
	// port or a host that IDNA rejects.
	ErrInvalidURL = errors.New("urlnorm: invalid URL")
	// ErrNotAbsolute: a relative reference was given where an absolute URL
	// is required (Normalize, Parse).
	ErrNotAbsolute = errors.New("urlnorm: not an absolute URL")
	// ErrUnsupportedScheme: the scheme is anything but http or https
	// (mailto:, javascript:, ftp:, data:, ...).
	ErrUnsupportedScheme = errors.New("urlnorm: unsupported scheme")
	// ErrTooLong: the normalized URL would be longer than MaxLength.
	ErrTooLong = errors.New("urlnorm: URL too long")
)

// idnaProfile is UTS #46 lookup processing as browsers do it: non-transitional
// ("ß" stays "ß"), and without the STD3 and hyphen checks, because hosts such
// as "foo_bar.example.com" and "r3---sn-abc.example.com" are in real use.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Normalize parses an absolute http or https URL and returns its normalized
// form (see the package documentation for the rules).
//
// On success the result is valid for net/url, has scheme http or https and a
// non-empty host, is at most MaxLength bytes, and Normalize(result) == result.
// Every error wraps ErrInvalidURL, ErrNotAbsolute, ErrUnsupportedScheme or
// ErrTooLong and quotes (a prefix of) raw.
func Normalize(raw string) (string, error) {
	s := clean(raw)
	if s == "" {
		return "", newError(ErrInvalidURL, raw, "empty")
	}
	scheme, rest, hasScheme, err := splitScheme(raw, s)
	if err != nil {
		return "", err
	}
	if !hasScheme {
		return "", newError(ErrNotAbsolute, raw, "no scheme")
	}
	return normalizeAbsolute(raw, scheme, rest)
}

// Parse is Normalize returning the normalized URL parsed by net/url, for use
// as the base of Resolve. The returned URL's String() is the normalized form.
func Parse(raw string) (*url.URL, error) {
	n, err := Normalize(raw)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(n)
	if err != nil {
		// Normalize promises output that net/url accepts; reaching this is a bug.
		return nil, newError(ErrInvalidURL, raw, "net/url rejects normalized form: "+err.Error())
	}
	return u, nil
}

// Resolve resolves ref (an href as found in HTML, already entity-decoded)
// against base and normalizes the result, with the same guarantees and
// errors as Normalize. base should come from Parse; its scheme must be http
// or https. An empty ref or a ref that is only a fragment yields the base
// itself (without fragment).
//
// A ref that starts with a scheme is resolved on its own (RFC 3986), so
// "http:page.html" is rejected for lack of a host rather than treated as
// relative the way some browsers do; a ref whose first segment contains ':'
// without forming a valid scheme ("ht!tp://x") is ErrInvalidURL.
func Resolve(base *url.URL, ref string) (string, error) {
	if base == nil {
		return "", newError(ErrInvalidURL, ref, "nil base URL")
	}
	s := clean(ref)
	scheme, rest, hasScheme, err := splitScheme(ref, s)
	if err != nil {
		return "", err
	}
	if hasScheme {
		return normalizeAbsolute(ref, scheme, rest)
	}

	baseScheme := strings.ToLower(base.Scheme)
	if baseScheme != "http" && baseScheme != "https" {
		return "", newError(ErrUnsupportedScheme, ref, "base URL scheme is "+strconv.Quote(base.Scheme))
	}
	if len(s) >= 2 && isSlash(s[0]) && isSlash(s[1]) {
		// Scheme-relative: "//other.host/x".
		return normalizeRest(ref, baseScheme, s[2:])
	}

	// The base host is normalized again so that a base not made by Parse
	// still gives a normalized result; for a normalized host this is a
	// cheap scan.
	host, err := normalizeAuthority(ref, baseScheme, base.Host)
	if err != nil {
		return "", err
	}
	refPath, query, hasQuery := splitQuery(cutFragment(s))

	// Reading RawPath directly avoids EscapedPath's re-validation (which
	// allocates) on every link; for a base from Parse it is the exact path.
	basePath := base.RawPath
	if basePath == "" {
		basePath = base.EscapedPath()
	}
	if !strings.HasPrefix(basePath, "/") {
		basePath = "/" + basePath
	}

	var dir string
	switch {
	case refPath == "":
		refPath = basePath
		if !hasQuery {
			query, hasQuery = base.RawQuery, true
		}
	case isSlash(refPath[0]):
		// Absolute path: replaces the base path.
	default:
		// Relative path: merged with the base path's directory (RFC 3986 5.2.3).
		dir = basePath[:strings.LastIndexByte(basePath, '/')+1]
	}
	return assemble(ref, baseScheme, host, dir, refPath, query, hasQuery)
}

// A Resolver resolves references against one base URL, for pages with many
// links: r.Resolve(ref) returns exactly what Resolve(base, ref) returns,
// result and error, but what depends only on the base (its normalized host
// and escaped path) is computed once, and the normalized host of the last
// absolute reference is remembered for the next one. Unlike Resolve, it
// returns ref itself when ref is already in normal form. base must not be
// modified while the Resolver is in use; a Resolver is not safe for
// concurrent use.
type Resolver struct {
	base     *url.URL
	scheme   string // the base's lowercased scheme if http or https, else ""
	host     string // the base's normalized host, if hostOK
	hostOK   bool
	basePath string
	// For the fast path: "scheme://host", and appendPath of the base path
	// and of its directory, as assemble would write them.
	prefix, basePathNorm, baseDirNorm string

	// The last authority of an absolute or scheme-relative reference that
	// normalized without error, with its scheme and normalized host.
	lastScheme, lastAuthority, lastHost string
}

// NewResolver returns a Resolver for base (see Resolve for what base
// should be).
func NewResolver(base *url.URL) *Resolver {
	r := &Resolver{base: base}
	if base == nil {
		return r
	}
	if scheme := strings.ToLower(base.Scheme); scheme == "http" || scheme == "https" {
		r.scheme = scheme
		if host, err := normalizeAuthority("", scheme, base.Host); err == nil {
			r.host, r.hostOK = host, true
		}
	}
	r.basePath = base.RawPath
	if r.basePath == "" {
		r.basePath = base.EscapedPath()
	}
	if !strings.HasPrefix(r.basePath, "/") {
		r.basePath = "/" + r.basePath
	}
	if r.hostOK {
		r.prefix = r.scheme + "://" + r.host
		r.basePathNorm = string(appendPath(nil, r.basePath))
		r.baseDirNorm = string(appendPath(nil, r.basePath[:strings.LastIndexByte(r.basePath, '/')+1]))
	}
	return r
}

// Resolve is Resolve(base, ref) for the Resolver's base.
func (r *Resolver) Resolve(ref string) (string, error) {
	// The steps and checks of Resolve, in the same order.
	if r.base == nil {
		return "", newError(ErrInvalidURL, ref, "nil base URL")
	}
	if u, ok := r.resolveFast(ref); ok {
		return u, nil
	}
	s := clean(ref)
	scheme, rest, hasScheme, err := splitScheme(ref, s)
	if err != nil {
		return "", err
	}
	if hasScheme {
		if len(rest) < 2 || !isSlash(rest[0]) || !isSlash(rest[1]) {
			return "", newError(ErrInvalidURL, ref, "missing \"//\" and host after scheme")
		}
		return r.normalizeRest(ref, scheme, rest[2:])
	}
	if r.scheme == "" {
		return "", newError(ErrUnsupportedScheme, ref, "base URL scheme is "+strconv.Quote(r.base.Scheme))
	}
	if len(s) >= 2 && isSlash(s[0]) && isSlash(s[1]) {
		return r.normalizeRest(ref, r.scheme, s[2:])
	}
	if !r.hostOK {
		// The same error as Resolve's, which quotes ref.
		_, err := normalizeAuthority(ref, r.scheme, r.base.Host)
		return "", err
	}
	refPath, query, hasQuery := splitQuery(cutFragment(s))
	var dir string
	switch {
	case refPath == "":
		refPath = r.basePath
		if !hasQuery {
			query, hasQuery = r.base.RawQuery, true
		}
	case isSlash(refPath[0]):
	default:
		dir = r.basePath[:strings.LastIndexByte(r.basePath, '/')+1]
	}
	return r.assemble(ref, r.scheme, r.host, dir, refPath, query, hasQuery)
}

// fastPathByte marks the bytes that the fast path accepts in a path: those
// that clean and appendPath leave alone and that end no part of the URL.
// ':' is left out: resolveFast accepts it after a '/' only, where it cannot
// end a scheme.
var fastPathByte = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !pathSpecial[c]
	}
	t['?'], t['#'], t[':'] = false, false, false
	return t
}()

// resolveFast resolves the common references in one pass: a relative
// reference whose path needs no cleaning or escaping ("../a/b.html?x=1",
// "/a", "?q", "#f", ""), or such a path after "http://" or "https://" and
// an authority. ok is false for anything else, left to the general code.
// The result is what that code would return; FuzzResolver checks it.
func (r *Resolver) resolveFast(ref string) (u string, ok bool) {
	var scheme, host string
	i := 0 // ref[i:] is the path, query and fragment
	switch {
	case strings.HasPrefix(ref, "https://"):
		scheme, i = "https", len("https://")
	case strings.HasPrefix(ref, "http://"):
		scheme, i = "http", len("http://")
	default:
		if !r.hostOK {
			return "", false
		}
		if len(ref) >= 2 && ref[0] == '/' && ref[1] == '/' {
			return "", false // scheme-relative
		}
	}
	if scheme != "" {
		// The authority ends at the path, query or fragment. It is checked
		// by normalizeAuthority, but it must not need clean (no byte <= ' '
		// or tab, CR, LF) and must not end at a backslash.
		start := i
		for ; i < len(ref) && ref[i] != '/' && ref[i] != '?' && ref[i] != '#'; i++ {
			if c := ref[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				return "", false
			}
		}
		authority := ref[start:i]
		if scheme == r.lastScheme && authority == r.lastAuthority {
			host = r.lastHost
		} else {
			h, err := normalizeAuthority(ref, scheme, authority)
			if err != nil {
				return "", false // the general code returns the error
			}
			r.lastScheme, r.lastAuthority, r.lastHost = scheme, authority, h
			host = h
		}
	}

	// The path: no byte that clean or appendPath would change, no scheme
	// (a ':' before the first '/' of a relative reference).
	pathStart, slash := i, scheme != ""
	for ; i < len(ref) && ref[i] != '?' && ref[i] != '#'; i++ {
		c := ref[i]
		if c == '/' {
			slash = true
		} else if !fastPathByte[c] && (c != ':' || !slash) {
			return "", false
		}
	}
	path := ref[pathStart:i]
	// The query: no byte that clean or appendQuery would change. The
	// fragment is dropped: what clean would remove in it does not matter,
	// nor does it end the reference with spaces the path or query had.
	var query string
	hasQuery := false
	if i < len(ref) && ref[i] == '?' {
		qStart := i + 1
		for i = qStart; i < len(ref) && ref[i] != '#'; i++ {
			if c := ref[i]; c <= ' ' || c >= 0x7f {
				return "", false
			}
		}
		query, hasQuery = ref[qStart:i], true
	}

	buf := make([]byte, 0, 256)
	if scheme != "" {
		buf = append(buf, scheme...)
		buf = append(buf, "://"...)
		buf = append(buf, host...)
	} else {
		buf = append(buf, r.prefix...)
	}
	pStart := len(buf)
	switch {
	case scheme != "" || (path != "" && path[0] == '/'):
		buf = append(buf, path...)
	case path == "":
		buf = append(buf, r.basePathNorm...)
		if !hasQuery {
			query, hasQuery = r.base.RawQuery, true
		}
	default:
		buf = append(buf, r.baseDirNorm...)
		buf = append(buf, path...)
	}
	if len(buf) == pStart {
		buf = append(buf, '/')
	}
	buf = buf[:pStart+removeDotSegments(buf[pStart:])]
	if hasQuery && query != "" {
		buf = append(buf, '?')
		buf = appendQuery(buf, query)
	}
	if len(buf) > MaxLength {
		return "", false
	}
	if string(buf) == ref {
		return ref, true
	}
	return string(buf), true
}

// normalizeRest is normalizeRest with the host of the last call remembered.
func (r *Resolver) normalizeRest(raw, scheme, rest string) (string, error) {
	rest = cutFragment(rest)
	end := 0
	for end < len(rest) && rest[end] != '/' && rest[end] != '\\' && rest[end] != '?' {
		end++
	}
	authority := rest[:end]
	host := r.lastHost
	if scheme != r.lastScheme || authority != r.lastAuthority {
		var err error
		if host, err = normalizeAuthority(raw, scheme, authority); err != nil {
			return "", err
		}
		r.lastScheme, r.lastAuthority, r.lastHost = scheme, authority, host
	}
	path, query, hasQuery := splitQuery(rest[end:])
	return r.assemble(raw, scheme, host, "", path, query, hasQuery)
}

// assemble is assemble, returning raw itself when that is the result.
func (r *Resolver) assemble(raw, scheme, host, dir, path, query string, hasQuery bool) (string, error) {
	buf, err := appendAssembled(make([]byte, 0, 256), raw, scheme, host, dir, path, query, hasQuery)
	if err != nil {
		return "", err
	}
	if string(buf) == raw {
		return raw, nil
	}
	return string(buf), nil
}

// SURT returns the sort-friendly form of a normalized URL:
//
//	SURT("http://www.example.com/a?b")  == "com,example,www)/a?b"
//	SURT("https://www.example.com/a?b") == "com,example,www)s/a?b"
//
// that is HostSURT(host) + ")" + ("s" for https) + path + ["?" query].
// normalized must be a result of Normalize or Resolve; for other input the
// result is unspecified (but SURT does not panic). FromSURT inverts it.
func SURT(normalized string) string {
	rest, https, ok := cutHTTPScheme(normalized)
	if !ok {
		return normalized
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		i = len(rest)
	}
	hs := HostSURT(rest[:i])
	var b strings.Builder
	b.Grow(len(hs) + 2 + len(rest) - i)
	b.WriteString(hs)
	b.WriteByte(')')
	if https {
		b.WriteByte('s')
	}
	b.WriteString(rest[i:])
	return b.String()
}

// FromSURT inverts SURT: FromSURT(SURT(n)) == n for every normalized n.
// It returns an error wrapping ErrInvalidURL for any s that is not exactly
// the SURT of a normalized URL.
func FromSURT(s string) (string, error) {
	u, err := UnSURT(s)
	if err != nil {
		return "", err
	}
	// Normalizing and comparing both ways makes FromSURT accept only exact
	// SURTs of normalized URLs, so that it never returns a non-normal URL.
	n, err := Normalize(u)
	if err != nil {
		return "", fmt.Errorf("%w: from SURT %q", err, truncate(s))
	}
	if n != u || SURT(n) != s {
		return "", newError(ErrInvalidURL, s, "not the SURT of a normalized URL")
	}
	return n, nil
}

// UnSURT reverses the form of a SURT without checking that the result is a
// normalized URL: UnSURT(SURT(n)) == n for every normalized n. It is for
// SURTs read back from the index, which only stores SURTs of normalized
// URLs, where FromSURT's check would cost more than the rest of a query
// row; input from anywhere else goes through FromSURT.
func UnSURT(s string) (string, error) {
	i := strings.IndexByte(s, ')')
	if i < 0 {
		return "", newError(ErrInvalidURL, s, "SURT without ')'")
	}
	hostPart, rest := s[:i], s[i+1:]
	scheme := "http://"
	if r, ok := strings.CutPrefix(rest, "s"); ok {
		scheme, rest = "https://", r
	}
	if !strings.HasPrefix(rest, "/") {
		return "", newError(ErrInvalidURL, s, "SURT path does not start with '/'")
	}
	hostname, port := splitHostPortLoose(hostPart)
	if !isIPLiteral(hostname) {
		hostname = reverseLabels(hostname, ',', '.')
	}
	var b strings.Builder
	b.Grow(len(scheme) + len(s) + 1)
	b.WriteString(scheme)
	b.WriteString(hostname)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(rest)
	return b.String(), nil
}

// HostSURT returns the SURT form of a normalized host[:port]: the labels
// reversed and joined by ',' ("www.example.com:8080" -> "com,example,www:8080").
// IP addresses are not reversed ("127.0.0.2:8080" and "[::1]:80" are
// returned as they are). host must be normalized (as returned by Host).
func HostSURT(host string) string {
	hostname, port := splitHostPortLoose(host)
	if isIPLiteral(hostname) {
		return host
	}
	r := reverseLabels(hostname, '.', ',')
	if port != "" {
		r += ":" + port
	}
	return r
}

// RegistrableDomain returns the registrable domain (eTLD+1, per
// golang.org/x/net/publicsuffix.EffectiveTLDPlusOne, private suffixes
// included) of a normalized host[:port], without the port:
// "a.b.example.co.uk" -> "example.co.uk". For IP literals, single-label hosts
// such as "localhost", public suffixes themselves and anything
// publicsuffix rejects it returns the hostname itself, without the port
// (IPv6 keeps its brackets).
func RegistrableDomain(host string) string {
	hostname, _ := splitHostPortLoose(host)
	if isIPLiteral(hostname) || !strings.Contains(hostname, ".") {
		return hostname
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(hostname)
	if err != nil {
		return hostname
	}
	return d
}

// IsPublicSuffix reports whether host (with or without a port) is itself
// a public suffix: a top-level domain such as com, or a listed shared one
// such as co.uk or github.io, under which every name is a registrable
// domain of its own. A single label the list does not know (localhost, an
// intranet name) is not one.
func IsPublicSuffix(host string) bool {
	hostname, _ := splitHostPortLoose(host)
	if hostname == "" || isIPLiteral(hostname) {
		return false
	}
	ps, icann := publicsuffix.PublicSuffix(hostname)
	return ps == hostname && (icann || strings.Contains(hostname, "."))
}

// Shard maps a host[:port] to a shard in [0, shards): the FNV-1a 64-bit hash
// of RegistrableDomain(host), modulo shards. All hosts of one registrable
// domain land on the same shard, and the mapping is the same on every run
// and machine. Shard returns 0 when shards <= 1.
func Shard(host string, shards int) int {
	if shards <= 1 {
		return 0
	}
	// FNV-1a written out: hash/fnv would allocate its hasher on every call.
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	d := RegistrableDomain(host)
	for i := 0; i < len(d); i++ {
		h ^= uint64(d[i])
		h *= prime64
	}
	return int(h % uint64(shards))
}

// Host returns the host[:port] part of a normalized URL without parsing it
// fully: Host("https://example.com:8443/a") == "example.com:8443". It returns
// "" if normalized does not start with "http://" or "https://".
func Host(normalized string) string {
	rest, _, ok := cutHTTPScheme(normalized)
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// ---------------------------------------------------------------------------
// Parsing.

// clean applies the WHATWG pre-processing: trim C0 controls and spaces at
// both ends, drop tab, CR and LF everywhere (they are common in hrefs split
// over several lines).
func clean(s string) string {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\t' || c == '\n' || c == '\r' {
			return strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// splitScheme splits "scheme:rest". hasScheme is false for relative
// references. A ':' before any '/', '\', '?' or '#' must end a valid scheme
// (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), else the input is
// invalid, since a relative path's first segment may not contain ':'.
// scheme is returned lowercased only if it is http or https; any other
// scheme is an ErrUnsupportedScheme error.
func splitScheme(raw, s string) (scheme, rest string, hasScheme bool, err error) {
	i := indexScheme(s)
	if i < 0 {
		return "", s, false, nil
	}
	name := s[:i]
	if name == "" || !isAlpha(name[0]) {
		return "", "", false, newError(ErrInvalidURL, raw, "invalid scheme")
	}
	for j := 1; j < len(name); j++ {
		c := name[j]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return "", "", false, newError(ErrInvalidURL, raw, "invalid scheme")
		}
	}
	switch {
	case strings.EqualFold(name, "http"):
		scheme = "http"
	case strings.EqualFold(name, "https"):
		scheme = "https"
	default:
		return "", "", false, newError(ErrUnsupportedScheme, raw, "scheme "+strconv.Quote(name))
	}
	return scheme, s[i+1:], true, nil
}

// indexScheme returns the index of the ':' ending a scheme candidate: a
// ':' before any '/', '\\', '?' or '#'; -1 if there is none.
func indexScheme(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ':':
			return i
		case '/', '\\', '?', '#':
			return -1
		}
	}
	return -1
}

// normalizeAbsolute handles what follows "http:" or "https:", which must
// start with "//" (or backslashes, read as slashes).
func normalizeAbsolute(raw, scheme, rest string) (string, error) {
	if len(rest) < 2 || !isSlash(rest[0]) || !isSlash(rest[1]) {
		return "", newError(ErrInvalidURL, raw, "missing \"//\" and host after scheme")
	}
	return normalizeRest(raw, scheme, rest[2:])
}

// normalizeRest handles "authority[path][?query][#fragment]" (what follows
// "scheme://").
func normalizeRest(raw, scheme, rest string) (string, error) {
	rest = cutFragment(rest)
	end := 0
	for end < len(rest) && rest[end] != '/' && rest[end] != '\\' && rest[end] != '?' {
		end++
	}
	host, err := normalizeAuthority(raw, scheme, rest[:end])
	if err != nil {
		return "", err
	}
	path, query, hasQuery := splitQuery(rest[end:])
	return assemble(raw, scheme, host, "", path, query, hasQuery)
}

func cutFragment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

func splitQuery(s string) (path, query string, hasQuery bool) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// normalizeAuthority turns "[userinfo@]host[:port]" into the normalized
// "host[:port]".
func normalizeAuthority(raw, scheme, authority string) (string, error) {
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	var hostname, port string
	if strings.HasPrefix(authority, "[") {
		j := strings.IndexByte(authority, ']')
		if j < 0 {
			return "", newError(ErrInvalidURL, raw, "unterminated IPv6 literal")
		}
		hostname, port = authority[:j+1], authority[j+1:]
		if port != "" {
			if port[0] != ':' {
				return "", newError(ErrInvalidURL, raw, "junk after IPv6 literal")
			}
			port = port[1:]
		}
	} else {
		hostname = authority
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			hostname, port = authority[:i], authority[i+1:]
		}
	}

	hostname, err := normalizeHostname(raw, hostname)
	if err != nil {
		return "", err
	}
	port, err = normalizePort(raw, scheme, port)
	if err != nil {
		return "", err
	}
	if port == "" {
		return hostname, nil
	}
	return hostname + ":" + port, nil
}

// normalizePort returns the port in canonical decimal, or "" for an empty
// or default port.
func normalizePort(raw, scheme, port string) (string, error) {
	if port == "" {
		return "", nil
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return "", newError(ErrInvalidURL, raw, "bad port")
		}
		n = n*10 + int(port[i]-'0')
		if n > 65535 {
			return "", newError(ErrInvalidURL, raw, "port out of range")
		}
	}
	if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
		return "", nil
	}
	if len(port) > 1 && port[0] == '0' {
		return strconv.Itoa(n), nil
	}
	return port, nil
}

// normalizeHostname returns the lowercase ASCII form of a host name, a
// dotted-decimal IPv4 address or a bracketed RFC 5952 IPv6 address.
func normalizeHostname(raw, h string) (string, error) {
	if h == "" {
		return "", newError(ErrInvalidURL, raw, "empty host")
	}
	if h[0] == '[' {
		return normalizeIPv6(raw, h)
	}
	if strings.IndexByte(h, '%') >= 0 {
		// Browsers percent-decode the host before IDNA ("ex%41mple.com").
		h = percentDecode(h)
		if !utf8.ValidString(h) {
			return "", newError(ErrInvalidURL, raw, "host is not UTF-8")
		}
	}

	if !isSimpleHost(h) {
		// Only hosts with non-ASCII, uppercase, unusual characters or
		// punycode labels pay for IDNA.
		lower := strings.ToLower(h)
		if isSimpleHost(lower) {
			h = lower
		} else {
			a, err := idnaProfile.ToASCII(h)
			if err != nil {
				return "", newError(ErrInvalidURL, raw, "IDNA: "+err.Error())
			}
			// IDNA is not always a fixed point on its own output; insisting
			// on it keeps Normalize idempotent.
			if again, err := idnaProfile.ToASCII(a); err != nil || again != a {
				return "", newError(ErrInvalidURL, raw, "IDNA result is not stable")
			}
			h = a
		}
	}

	h = strings.TrimSuffix(h, ".")
	if h == "" || h[len(h)-1] == '.' {
		return "", newError(ErrInvalidURL, raw, "empty label in host")
	}
	// After IDNA, only these may remain: WHATWG forbids more characters in
	// hosts than IDNA without STD3 rules does, and anything else would need
	// escaping that the rest of the system should never see.
	prev := byte('.')
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c == '.' && prev == '.' {
			return "", newError(ErrInvalidURL, raw, "empty label in host")
		}
		if !isLowerAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_' {
			return "", newError(ErrInvalidURL, raw, "forbidden character in host")
		}
		prev = c
	}

	if endsInNumber(h) {
		// WHATWG: such a host must be an IPv4 address, in any of the
		// historical notations (octal, hex, fewer than four parts).
		ip, ok := parseIPv4(h)
		if !ok {
			return "", newError(ErrInvalidURL, raw, "bad IPv4 address")
		}
		return ip, nil
	}
	return h, nil
}

// isSimpleHost reports whether h is made only of lowercase ASCII letters,
// digits, '-', '_' and '.', without any punycode ("xn--") label: such a host
// is already its own IDNA ASCII form.
func isSimpleHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isLowerAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
		if c == 'x' && (i == 0 || h[i-1] == '.') && strings.HasPrefix(h[i:], "xn--") {
			return false
		}
	}
	return true
}

func normalizeIPv6(raw, h string) (string, error) {
	if len(h) < 2 || h[len(h)-1] != ']' {
		return "", newError(ErrInvalidURL, raw, "bad IPv6 literal")
	}
	addr, err := netip.ParseAddr(h[1 : len(h)-1])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", newError(ErrInvalidURL, raw, "bad IPv6 literal")
	}
	return "[" + addr.String() + "]", nil
}

// endsInNumber is the WHATWG "ends in a number" check on the last label.
func endsInNumber(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last == "" {
		return false
	}
	if allDigits(last) {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4 is the WHATWG IPv4 parser; it returns dotted decimal.
func parseIPv4(h string) (string, bool) {
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return "", false
	}
	var ip uint64
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return "", false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return "", false
			}
			ip |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return "", false
		}
		ip += n
	}
	a := netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
	return a.String(), true
}

// parseIPv4Number parses one part of an IPv4 address: decimal, octal with a
// leading 0, or hex with a leading 0x. Values above 2^32 fail.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d, ok := digitValue(s[i])
		if !ok || d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 1<<32 {
			return 0, false
		}
	}
	return n, true
}

// ---------------------------------------------------------------------------
// Building the result.

// assemble writes scheme://host + normalized(dir+path) + [?query] and checks
// the length. dir is a normalized directory prefix (or ""), path the raw
// path of the reference.
func assemble(raw, scheme, host, dir, path, query string, hasQuery bool) (string, error) {
	buf, err := appendAssembled(make([]byte, 0, 256), raw, scheme, host, dir, path, query, hasQuery)
	if err != nil {
		return "", err
	}
	return string(buf), nil
}

// appendAssembled is assemble appending to buf; the make in assemble stays
// on the stack for most URLs, leaving one allocation for the result.
func appendAssembled(buf []byte, raw, scheme, host, dir, path, query string, hasQuery bool) ([]byte, error) {
	buf = append(buf, scheme...)
	buf = append(buf, "://"...)
	buf = append(buf, host...)
	start := len(buf)
	buf = appendPath(buf, dir)
	buf = appendPath(buf, path)
	if len(buf) == start {
		buf = append(buf, '/')
	}
	buf = buf[:start+removeDotSegments(buf[start:])]
	if hasQuery && query != "" {
		buf = append(buf, '?')
		buf = appendQuery(buf, query)
	}
	if len(buf) > MaxLength {
		return nil, newError(ErrTooLong, raw, fmt.Sprintf("normalized URL is %d bytes, limit %d", len(buf), MaxLength))
	}
	return buf, nil
}

// appendPath appends p with backslashes read as '/' and percent-encoding
// normalized.
func appendPath(buf []byte, p string) []byte {
	for {
		// Copy the run of bytes that need no change in one go.
		i := 0
		for i < len(p) && !pathSpecial[p[i]] {
			i++
		}
		buf = append(buf, p[:i]...)
		if i == len(p) {
			return buf
		}
		c := p[i]
		p = p[i+1:]
		switch {
		case c == '\\':
			buf = append(buf, '/')
		case c == '%' && len(p) >= 2 && isHex(p[0]) && isHex(p[1]):
			v := unhex(p[0])<<4 | unhex(p[1])
			if isUnreserved(v) {
				buf = append(buf, v)
			} else {
				buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
			}
			p = p[2:]
		case c == '%':
			buf = append(buf, "%25"...)
		default:
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
}

// appendQuery appends q, percent-encoding only what would make the URL
// invalid (space, controls, non-ASCII): query strings are opaque to servers
// and any other change could alter their meaning.
func appendQuery(buf []byte, q string) []byte {
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			buf = append(buf, c)
		}
	}
	return buf
}

// removeDotSegments applies RFC 3986 5.2.4 in place to p, which starts with
// '/', and returns the new length. It works in place because the output
// never gets ahead of the input.
func removeDotSegments(p []byte) int {
	if !containsDotSegment(p) {
		return len(p)
	}
	w := 0 // p[:w] is the output so far
	for r := 0; r < len(p); {
		// p[r] == '/': the segment is p[r+1:end].
		end := r + 1
		for end < len(p) && p[end] != '/' {
			end++
		}
		seg := p[r+1 : end]
		last := end == len(p)
		switch {
		case len(seg) == 1 && seg[0] == '.':
			if last {
				p[w] = '/'
				w++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			for w > 0 && p[w-1] != '/' {
				w--
			}
			if w > 0 {
				w-- // drop the '/' before the removed segment
			}
			if last {
				p[w] = '/'
				w++
			}
		default:
			w += copy(p[w:], p[r:end])
		}
		r = end
	}
	if w == 0 {
		p[0] = '/'
		w = 1
	}
	return w
}

func containsDotSegment(p []byte) bool {
	for i := 0; i+1 < len(p); i++ {
		if p[i] != '/' || p[i+1] != '.' {
			continue
		}
		j := i + 2
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Helpers.

const upperHex = "0123456789ABCDEF"

// pathSpecial marks the bytes that appendPath must change: '\\', '%' and
// those that must be percent-encoded in a path.
var pathSpecial = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c <= ' ' || c >= 0x7f
	}
	for _, c := range "\"<>`{}|^\\%" {
		t[c] = true
	}
	return t
}()

func isSlash(c byte) bool      { return c == '/' || c == '\\' }
func isAlpha(c byte) bool      { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isLowerAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isHex(c byte) bool        { _, ok := digitValue(c); return ok }

func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// digitValue returns the value of a hex digit.
func digitValue(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func unhex(c byte) byte {
	v, _ := digitValue(c)
	return byte(v)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// percentDecode decodes valid %XX escapes and leaves everything else.
func percentDecode(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// cutHTTPScheme strips "http://" or "https://".
func cutHTTPScheme(s string) (rest string, https, ok bool) {
	if r, ok := strings.CutPrefix(s, "http://"); ok {
		return r, false, true
	}
	if r, ok := strings.CutPrefix(s, "https://"); ok {
		return r, true, true
	}
	return "", false, false
}

// splitHostPortLoose splits "host:port", "[v6]:port", "host" or "[v6]"
// without validating anything.
func splitHostPortLoose(hostport string) (host, port string) {
	if strings.HasPrefix(hostport, "[") {
		if j := strings.IndexByte(hostport, ']'); j >= 0 {
			host, port = hostport[:j+1], hostport[j+1:]
			return host, strings.TrimPrefix(port, ":")
		}
		return hostport, ""
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		return hostport[:i], hostport[i+1:]
	}
	return hostport, ""
}

// isIPLiteral reports whether a (normalized) hostname is an IP address:
// bracketed IPv6 or dotted IPv4.
func isIPLiteral(hostname string) bool {
	if strings.HasPrefix(hostname, "[") {
		return true
	}
	// Nearly every host is a name: a letter rules out an IPv4 literal
	// without ParseAddr, which allocates its error.
	for i := 0; i < len(hostname); i++ {
		if c := hostname[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	a, err := netip.ParseAddr(hostname)
	return err == nil && a.Is4()
}

// reverseLabels splits s on sep and joins the parts in reverse order with join.
func reverseLabels(s string, sep, join byte) string {
	var b strings.Builder
	b.Grow(len(s))
	for end := len(s); ; {
		i := strings.LastIndexByte(s[:end], sep)
		b.WriteString(s[i+1 : end])
		if i < 0 {
			break
		}
		b.WriteByte(join)
		end = i
	}
	return b.String()
}

// newError wraps sentinel with the offending input (truncated) and a reason.
func newError(sentinel error, input, reason string) error {
	return fmt.Errorf("%w %q: %s", sentinel, truncate(input), reason)
}

// truncate shortens s to about 100 bytes for error messages, on a rune
// boundary.
func truncate(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// ReversedHost is the name of a host (or registrable domain) in Common
// Crawl's host graphs and ranks: its labels reversed, dot-separated,
// without the port ("www.example.com:8080" is "com.example.www"; IP
// addresses as they are).
func ReversedHost(hostPort string) string {
	return ReversedHostOfSURT(HostSURT(hostPort))
}

// ReversedHostOfSURT is ReversedHost of a host given as its HostSURT (the
// part of a URL's SURT before ')'), which saves the index turning its keys
// back into URLs.
func ReversedHostOfSURT(surt string) string {
	if i := strings.LastIndexByte(surt, ':'); i >= 0 && !strings.HasSuffix(surt, "]") {
		surt = surt[:i] // host[:port], and IPv6 literals keep their brackets
	}
	return strings.ReplaceAll(surt, ",", ".")
}

// HostOfSURT undoes HostSURT: "com,example,www:8080" is
// "www.example.com:8080". It is what Host of UnSURT(surt + ")/") gives, at
// a fraction of the cost, for a HostSURT of a normalized URL's host.
func HostOfSURT(surt string) string {
	host, port := surt, ""
	if i := strings.LastIndexByte(surt, ':'); i >= 0 && !strings.HasSuffix(surt, "]") {
		host, port = surt[:i], surt[i:]
	}
	if isIPLiteral(host) {
		return surt
	}
	return reverseLabels(host, ',', '.') + port
}

// HostOfReversed undoes ReversedHost, but for the port: "com.example.www"
// is "www.example.com".
func HostOfReversed(name string) string {
	if isIPLiteral(name) {
		return name
	}
	return reverseLabels(name, '.', '.')
}
