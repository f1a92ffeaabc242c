package agent

import (
	"fmt"
	"net/netip"
	"strings"
)

// Allowlist says what a probe agrees to measure, whatever its plan asks, so
// that a compromised aggregator cannot turn a fleet of probes into scanners.
//
// Entries are prefixes (192.0.2.0/24, 2001:db8::/32), addresses (a /32 or
// /128), host names (dns.example.net) and host suffixes (*.example.net, which
// matches names under example.net but not example.net itself).
//
// A plan entry is checked by the host it dials (connect_to when set, else the
// target's host):
//   - an address literal must lie in a prefix;
//   - a host name that matches a name entry is allowed as is: the operator
//     trusts the name, wherever it points;
//   - any other host name is resolved by the agent, each address is checked
//     against the prefixes, and the measurement is pinned to the addresses
//     that passed, so a DNS answer cannot swap in another address between
//     the check and the measurement.
//
// An empty allowlist allows everything; the agent warns about it at start.
type Allowlist struct {
	prefixes []netip.Prefix
	names    map[string]bool
	suffixes []string // ".example.net"
}

// ParseAllowlist reads allowlist entries; a comma-separated entry counts as
// several.
func ParseAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{names: map[string]bool{}}
	for _, entry := range entries {
		for e := range strings.SplitSeq(entry, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if err := a.add(e); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

func (a *Allowlist) add(e string) error {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("entry %q is not a prefix such as 192.0.2.0/24 or 2001:db8::/32: %v", e, err)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	name := normName(e)
	if ip, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		ip = ip.Unmap().WithZone("")
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		if !validName(rest) {
			return fmt.Errorf("entry %q is not a host suffix such as *.example.net", e)
		}
		a.suffixes = append(a.suffixes, "."+rest)
		return nil
	}
	if !validName(name) {
		return fmt.Errorf("entry %q is not a prefix, an address or a host name", e)
	}
	a.names[name] = true
	return nil
}

func normName(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }

// validName accepts letters, digits, '-', '_' and dots between non-empty labels.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Empty reports whether the allowlist allows everything.
func (a *Allowlist) Empty() bool {
	return len(a.prefixes) == 0 && len(a.names) == 0 && len(a.suffixes) == 0
}

// AllowsName reports whether a host name is allowed by name.
func (a *Allowlist) AllowsName(host string) bool {
	if a.Empty() {
		return true
	}
	n := normName(host)
	if a.names[n] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// AllowsAddr reports whether an address lies in an allowed prefix.
func (a *Allowlist) AllowsAddr(ip netip.Addr) bool {
	if a.Empty() {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// String lists the entries, for logs.
func (a *Allowlist) String() string {
	var parts []string
	for _, p := range a.prefixes {
		parts = append(parts, p.String())
	}
	for n := range a.names {
		parts = append(parts, n)
	}
	for _, s := range a.suffixes {
		parts = append(parts, "*"+s)
	}
	return strings.Join(parts, ",")
}
