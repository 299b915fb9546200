package crawler

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrPrivateAddress is returned (wrapped) by fetches whose host resolves to
// an address the crawler must not connect to: loopback, private, CGNAT,
// link-local, multicast or unspecified. It is checked at dial time, after
// DNS, so redirects and DNS answers pointing there are refused too.
var ErrPrivateAddress = errors.New("crawler: refusing to connect to a private or loopback address")

var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/96"),          // unspecified, loopback, IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),       // ULA
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// IPv6 prefixes whose addresses embed an IPv4 address that a translator or
// relay connects to on the crawler's behalf.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // IPv4 in the last 32 bits
	sixToFour    = netip.MustParsePrefix("2002::/16")    // IPv4 in bits 16-47
	teredoPrefix = netip.MustParsePrefix("2001::/32")    // client IPv4, inverted, in the last 32 bits
)

// IsPublicAddr reports whether the crawler may connect to addr by default.
// Invalid addresses are not public; IPv6 zones are ignored; IPv4-mapped,
// NAT64, 6to4 and Teredo addresses are judged by the IPv4 address they
// embed.
func IsPublicAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	// Prefix.Contains is false for any address with a zone, which would
	// let fe80::1%eth0 through.
	addr = addr.WithZone("").Unmap()
	if blocked(addr) {
		return false
	}
	if addr.Is6() {
		b := addr.As16()
		var v4 [4]byte
		switch {
		case nat64Prefix.Contains(addr):
			copy(v4[:], b[12:])
		case sixToFour.Contains(addr):
			copy(v4[:], b[2:6])
		case teredoPrefix.Contains(addr):
			for i := range v4 {
				v4[i] = ^b[12+i]
			}
		default:
			return true
		}
		return !blocked(netip.AddrFrom4(v4))
	}
	return true
}

func blocked(addr netip.Addr) bool {
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// guardControl is a net.Dialer Control function that refuses non-public
// addresses; it sees the address actually being dialed.
func guardControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !IsPublicAddr(ip) {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, host)
	}
	return nil
}
