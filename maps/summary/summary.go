// Package summary condenses result records per probe and target into what
// a catchment needs of them, so that stores can roll records up as they
// arrive and hand maps a few summaries instead of every record. It is a
// leaf with no cgo: the stores use it without linking H3.
package summary

import (
	"math"
	"slices"
	"strings"

	"github.com/catchmap/catchmap/probe/result"
)

// Summary condenses the records of one probe and one target into what a
// catchment (maps.Builder) keeps of them, so that a store can roll records up as they arrive
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

// KeptRTT reports whether a result's RTT counts for medians.
func KeptRTT(rtt float64) bool { return rtt > 0 && !math.IsInf(rtt, 0) }

// VisitSite is the site a record visits: "" for a failure, no site, or a
// suspect answer, which count as results only.
func VisitSite(r *result.Record) string {
	if !r.OK() || r.Suspect {
		return ""
	}
	return r.Site
}

// NewerPlace reports whether a place at t replaces one at at: the most
// recent wins, equal times the greater latitude, then longitude.
func NewerPlace(set bool, at int64, lat, lon float64, t int64, nlat, nlon float64) bool {
	return !set || t > at || t == at && (nlat > lat || nlat == lat && nlon > lon)
}

// newerValue is NewerPlace for a summary's other fields.
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
	if site := VisitSite(r); site != "" {
		i := slices.IndexFunc(s.Sites, func(x SiteSummary) bool { return x.Site == site })
		if i < 0 {
			s.Sites = append(s.Sites, SiteSummary{Site: strings.Clone(site), Last: t})
			i = len(s.Sites) - 1
		}
		x := &s.Sites[i]
		x.N++
		x.Last = max(x.Last, t)
		if KeptRTT(r.RTTMs) {
			x.RTTs = append(x.RTTs, r.RTTMs)
		}
	}
	if r.Lat != nil && r.Lon != nil && result.ValidLatLon(*r.Lat, *r.Lon) == nil &&
		NewerPlace(s.HasPlace, s.PlaceAt, s.Lat, s.Lon, t, *r.Lat, *r.Lon) {
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
	if o.HasPlace && NewerPlace(s.HasPlace, s.PlaceAt, s.Lat, s.Lon, o.PlaceAt, o.Lat, o.Lon) {
		s.HasPlace, s.PlaceAt, s.Lat, s.Lon = true, o.PlaceAt, o.Lat, o.Lon
	}
	if o.Country != "" && newerValue(s.Country != "", s.CountryAt, s.Country, o.CountryAt, o.Country) {
		s.Country, s.CountryAt = o.Country, o.CountryAt
	}
	if o.ASN != 0 && newerValue(s.ASN != 0, s.ASNAt, s.ASN, o.ASNAt, o.ASN) {
		s.ASN, s.ASNAt = o.ASN, o.ASNAt
	}
}
