// Package bgp turns BGP updates about catchmap's anycast prefixes into
// api.Event records for the timeline: from MRT files (RIS, RouteViews, a
// router's dump) with ReadMRT, and live from a BGP session with Listener.
// Parsing and the BGP session are gobgp's; this package only selects the
// updates that concern the anycast prefixes and flattens them into events.
package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/catchmap/catchmap/api"
)

// Prefixes is the set of anycast prefixes whose updates become events.
// An update matches a prefix when it is that prefix or a more specific one.
type Prefixes struct {
	ps    []netip.Prefix
	names []string // canonical (netip) text, as the plan stores prefixes: the store matches them as strings
}

// ParsePrefixes checks every entry (CIDR, v4 or v6, host bits zero).
func ParsePrefixes(ss []string) (*Prefixes, error) {
	s := &Prefixes{}
	for _, v := range ss {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("anycast prefix %q: not a CIDR prefix such as 192.0.2.0/24 or 2001:db8::/32", v)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("anycast prefix %q has host bits set: use %s", v, p.Masked())
		}
		if slices.Contains(s.ps, p) {
			continue
		}
		s.ps = append(s.ps, p)
		s.names = append(s.names, p.String())
	}
	return s, nil
}

// Len is the number of prefixes.
func (s *Prefixes) Len() int { return len(s.ps) }

// Match returns the anycast prefixes that p equals or is more specific
// than, in canonical form.
func (s *Prefixes) Match(p netip.Prefix) []string {
	var out []string
	for i, q := range s.ps {
		if p.Bits() >= q.Bits() && q.Contains(p.Addr()) && p.Addr().Is4() == q.Addr().Is4() {
			out = append(out, s.names[i])
		}
	}
	return out
}

// update is one route in an update message, before matching.
type update struct {
	time   time.Time
	peer   string
	prefix netip.Prefix
	kind   string
	path   []uint32
	source string
}

// events matches u against s: one event per anycast prefix covering the
// route. The event's Prefix is the covering anycast prefix, because the
// store and GET /api/v1/events select events by the plan's prefixes exactly;
// the route itself (when more specific) is only part of the ID.
func (s *Prefixes) events(u update, fn func(api.Event) error) (int, error) {
	n := 0
	for _, name := range s.Match(u.prefix) {
		e := api.Event{Time: u.time.UTC(), Prefix: name, Kind: u.kind, ASPath: u.path, Peer: u.peer, Source: u.source}
		e.ID = e.DerivedID(u.prefix)
		if err := fn(e); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
