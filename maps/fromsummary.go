package maps

import (
	"fmt"
	"strings"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// AddSummary counts the records s summarizes, as Add would count each of
// them. s must lie wholly in the builder's target and window: a store hands
// out summaries of whole stretches of time and must split a window's edges
// itself; a summary that crosses the window is refused, since counting it
// or dropping it would both be wrong. s is not kept.
func (b *Builder) AddSummary(s *summary.Summary) error {
	if s.Results == 0 {
		return nil
	}
	o := b.opts
	if o.Target != "" && s.Target != o.Target {
		return fmt.Errorf("summary of target %q added to a catchment of %q: the store returned another target's rows", s.Target, o.Target)
	}
	if !o.From.IsZero() && s.First < o.From.UnixNano() || !o.To.IsZero() && s.Last >= o.To.UnixNano() {
		return fmt.Errorf("summary of probe %q spans %s to %s, outside the window %s to %s: the store must split summaries at the window's edges",
			s.Probe, time.Unix(0, s.First).UTC().Format(time.RFC3339Nano), time.Unix(0, s.Last).UTC().Format(time.RFC3339Nano),
			o.From.Format(time.RFC3339Nano), o.To.Format(time.RFC3339Nano))
	}
	first, last := time.Unix(0, s.First).UTC(), time.Unix(0, s.Last).UTC()
	if b.results == 0 {
		b.target, b.first, b.last = strings.Clone(s.Target), first, last
	} else {
		// With a target set, every summary has it (checked above).
		b.mixed = b.mixed || o.Target == "" && s.Target != b.target
		if first.Before(b.first) {
			b.first = first
		}
		if last.After(b.last) {
			b.last = last
		}
	}
	b.results += s.Results
	p := b.probe(s.Probe)
	p.results += s.Results
	p.errors += s.Errors
	for i := range s.Sites {
		ss := &s.Sites[i]
		if ss.N <= 0 {
			continue
		}
		// Compare codes before interning: the tally is there most times.
		var x *siteTally
		for j := range p.tallies {
			if p.tallies[j].site == ss.Site {
				x = &p.tallies[j]
				break
			}
		}
		if x == nil {
			if p.tallies == nil {
				// Most probes reach a few sites: skip the first growths.
				p.tallies = make([]siteTally, 0, 4)
			}
			p.tallies = append(p.tallies, siteTally{site: b.sites.get(ss.Site), last: ss.Last})
			x = &p.tallies[len(p.tallies)-1]
		}
		x.n += ss.N
		x.last = max(x.last, ss.Last)
		b.rtts.add(x, ss.RTTs)
	}
	if s.HasPlace && result.ValidLatLon(s.Lat, s.Lon) == nil &&
		summary.NewerPlace(p.lat.set, p.lat.t, p.lat.v, p.lon.v, s.PlaceAt, s.Lat, s.Lon) {
		p.lat = latest[float64]{s.Lat, s.PlaceAt, true}
		p.lon = latest[float64]{s.Lon, s.PlaceAt, true}
	}
	if s.Country != "" && p.country.newer(s.Country, s.CountryAt) {
		v := p.country.v
		if v != s.Country {
			v = strings.Clone(s.Country)
		}
		p.country = latest[string]{v, s.CountryAt, true}
	}
	if s.ASN != 0 && p.asn.newer(s.ASN, s.ASNAt) {
		p.asn = latest[uint32]{s.ASN, s.ASNAt, true}
	}
	return nil
}
