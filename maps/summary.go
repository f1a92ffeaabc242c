package maps

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// Summary condenses the records of one probe and one target into what a
// Builder keeps of them, so that a store can roll records up as they arrive
// and serve a window as a few summaries instead of every record. Feeding a
// Builder the summaries of a set of records (AddSummary) gives exactly the
// catchment of feeding it the records (Add): every field merges by a sum,
// a maximum or a concatenation, none of which depends on order.
//
// Times are UnixNano, as Builder compares them.
type Summary struct {
	Target string
	Probe  string
	// First and Last are the times of the earliest and latest record.
	First, Last int64
	Results     int
	Errors      int
	// Sites are the successful results per site, in no particular order.
	Sites []SiteSummary
	// The place, country and ASN of the most recent record that has them
	// (ties as Builder.Add breaks them). HasPlace false: no valid place;
	// Country "" and ASN 0: none.
	HasPlace  bool
	PlaceAt   int64
	Lat, Lon  float64
	CountryAt int64
	Country   string
	ASNAt     int64
	ASN       uint32
}

// SiteSummary is a probe's successful results from one site.
type SiteSummary struct {
	Site string
	N    int
	Last int64 // UnixNano of the latest
	// RTTs are those Builder keeps for medians: positive and finite.
	RTTs []float64
}

// Reset empties s for reuse, keeping its slices' memory.
func (s *Summary) Reset() {
	sites := s.Sites[:0]
	*s = Summary{Sites: sites}
}

// keptRTT reports whether a result's RTT counts for medians.
func keptRTT(rtt float64) bool { return rtt > 0 && !math.IsInf(rtt, 0) }

// visitSite is the site a record visits: "" for a failure, no site, or a
// suspect answer, which count as results only.
func visitSite(r *result.Record) string {
	if !r.OK() || r.Suspect {
		return ""
	}
	return r.Site
}

// newerPlace reports whether a place at t replaces one at at: the most
// recent wins, equal times the greater latitude, then longitude.
func newerPlace(set bool, at int64, lat, lon float64, t int64, nlat, nlon float64) bool {
	return !set || t > at || t == at && (nlat > lat || nlat == lat && nlon > lon)
}

// newerValue is latest.newer for a summary's fields.
func newerValue[T string | uint32](set bool, at int64, v T, t int64, nv T) bool {
	return !set || t > at || t == at && nv > v
}

// Add folds r into s. The caller keeps to one probe and target: Add sets
// them from the first record and does not check later ones. s keeps no
// reference to r's strings beyond Target, Probe, Country and site codes,
// which it copies.
func (s *Summary) Add(r *result.Record) {
	t := r.Time.UnixNano()
	if s.Results == 0 {
		s.Target, s.Probe, s.First, s.Last = strings.Clone(r.Target), strings.Clone(r.Probe), t, t
	}
	s.First, s.Last = min(s.First, t), max(s.Last, t)
	s.Results++
	if !r.OK() {
		s.Errors++
	}
	if site := visitSite(r); site != "" {
		i := slices.IndexFunc(s.Sites, func(x SiteSummary) bool { return x.Site == site })
		if i < 0 {
			s.Sites = append(s.Sites, SiteSummary{Site: strings.Clone(site), Last: t})
			i = len(s.Sites) - 1
		}
		x := &s.Sites[i]
		x.N++
		x.Last = max(x.Last, t)
		if keptRTT(r.RTTMs) {
			x.RTTs = append(x.RTTs, r.RTTMs)
		}
	}
	if r.Lat != nil && r.Lon != nil && ValidLatLon(*r.Lat, *r.Lon) == nil &&
		newerPlace(s.HasPlace, s.PlaceAt, s.Lat, s.Lon, t, *r.Lat, *r.Lon) {
		s.HasPlace, s.PlaceAt, s.Lat, s.Lon = true, t, *r.Lat, *r.Lon
	}
	if r.Country != "" && newerValue(s.Country != "", s.CountryAt, s.Country, t, r.Country) {
		s.Country, s.CountryAt = strings.Clone(r.Country), t
	}
	if r.ASN != 0 && newerValue(s.ASN != 0, s.ASNAt, s.ASN, t, r.ASN) {
		s.ASN, s.ASNAt = r.ASN, t
	}
}

// Merge folds o, a summary of other records of the same probe and target,
// into s. o is not kept.
func (s *Summary) Merge(o *Summary) {
	if o.Results == 0 {
		return
	}
	if s.Results == 0 {
		s.Target, s.Probe, s.First, s.Last = o.Target, o.Probe, o.First, o.Last
	}
	s.First, s.Last = min(s.First, o.First), max(s.Last, o.Last)
	s.Results += o.Results
	s.Errors += o.Errors
	for _, os := range o.Sites {
		i := slices.IndexFunc(s.Sites, func(x SiteSummary) bool { return x.Site == os.Site })
		if i < 0 {
			s.Sites = append(s.Sites, SiteSummary{Site: os.Site, Last: os.Last})
			i = len(s.Sites) - 1
		}
		x := &s.Sites[i]
		x.N += os.N
		x.Last = max(x.Last, os.Last)
		x.RTTs = append(x.RTTs, os.RTTs...)
	}
	if o.HasPlace && newerPlace(s.HasPlace, s.PlaceAt, s.Lat, s.Lon, o.PlaceAt, o.Lat, o.Lon) {
		s.HasPlace, s.PlaceAt, s.Lat, s.Lon = true, o.PlaceAt, o.Lat, o.Lon
	}
	if o.Country != "" && newerValue(s.Country != "", s.CountryAt, s.Country, o.CountryAt, o.Country) {
		s.Country, s.CountryAt = o.Country, o.CountryAt
	}
	if o.ASN != 0 && newerValue(s.ASN != 0, s.ASNAt, s.ASN, o.ASNAt, o.ASN) {
		s.ASN, s.ASNAt = o.ASN, o.ASNAt
	}
}

// AddSummary counts the records s summarizes, as Add would count each of
// them. s must lie wholly in the builder's target and window: a store hands
// out summaries of whole stretches of time and must split a window's edges
// itself; a summary that crosses the window is refused, since counting it
// or dropping it would both be wrong. s is not kept.
func (b *Builder) AddSummary(s *Summary) error {
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
	if s.HasPlace && ValidLatLon(s.Lat, s.Lon) == nil &&
		newerPlace(p.lat.set, p.lat.t, p.lat.v, p.lon.v, s.PlaceAt, s.Lat, s.Lon) {
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
