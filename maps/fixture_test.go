package maps

import (
	"fmt"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// testSites is the tests' own site table (the real one lives in sites/,
// which maps does not import). nrt is left out on purpose: an unknown site.
var testSites = SiteLocatorFunc(func(code string) (Site, bool) {
	s, ok := map[string]Site{
		"ams": {Code: "ams", Name: "Amsterdam", Lat: 52.31, Lon: 4.76},
		"fra": {Code: "fra", Name: "Frankfurt", Lat: 50.03, Lon: 8.57},
		"lhr": {Code: "lhr", Name: "London", Lat: 51.47, Lon: -0.45},
		"sin": {Code: "sin", Name: "Singapore", Lat: 1.36, Lon: 103.99},
		"iad": {Code: "iad", Name: "Washington", Lat: 38.95, Lon: -77.45},
		"syd": {Code: "syd", Name: "Sydney", Lat: -33.94, Lon: 151.18},
		"akl": {Code: "akl", Name: "Auckland", Lat: -37.01, Lon: 174.79},
	}[code]
	return s, ok
})

// t0 is the start of the fixture: window A is [t0, t0+10m), B the next 10m.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type fixtureProbe struct {
	id       string
	lat, lon float64
	located  bool
	country  string
	asn      uint32
	siteA    string // "" for every result a timeout
	siteB    string
	rtt      float64
	perMin   int            // results per minute; 0 means 1
	override map[int]string // minute -> site, for flips
}

var fixtureProbes = []fixtureProbe{
	{id: "p-ams1", lat: 52.37, lon: 4.90, located: true, country: "NL", asn: 1136, siteA: "ams", siteB: "ams", rtt: 2},
	{id: "p-ams2", lat: 52.36, lon: 4.88, located: true, country: "NL", asn: 1136, siteA: "ams", siteB: "ams", rtt: 3},
	{id: "p-ams3", lat: 52.38, lon: 4.91, located: true, country: "NL", asn: 3265, siteA: "ams", siteB: "fra", rtt: 3},
	{id: "p-ams4", lat: 52.35, lon: 4.92, located: true, country: "NL", asn: 3265, siteA: "ams", siteB: "fra", rtt: 4},
	{id: "p-ber1", lat: 52.52, lon: 13.40, located: true, country: "DE", asn: 3320, siteA: "fra", siteB: "fra", rtt: 10},
	{id: "p-ber2", lat: 52.51, lon: 13.41, located: true, country: "DE", asn: 3320, siteA: "fra", siteB: "ams", rtt: 11},
	// Chatty: five results a minute, all from ams, in the Berlin cell.
	{id: "p-ber3", lat: 52.52, lon: 13.39, located: true, country: "DE", asn: 3320, siteA: "ams", siteB: "ams", rtt: 12, perMin: 5},
	{id: "p-par1", lat: 48.85, lon: 2.35, located: true, country: "FR", asn: 3215, siteA: "lhr", siteB: "lhr", rtt: 8,
		override: map[int]string{3: "ams", 6: "ams"}},
	{id: "p-lon1", lat: 51.51, lon: -0.13, located: true, country: "GB", asn: 2856, siteA: "lhr", siteB: "lhr", rtt: 1.5},
	{id: "p-sin1", lat: 1.29, lon: 103.85, located: true, country: "SG", asn: 4773, siteA: "sin", siteB: "sin", rtt: 2},
	{id: "p-was1", lat: 38.90, lon: -77.04, located: true, country: "US", asn: 7922, siteA: "iad", siteB: "iad", rtt: 3},
	// Its H3 cell crosses the antimeridian.
	{id: "p-fiji", lat: -16.5, lon: 179.99, located: true, country: "FJ", asn: 38442, siteA: "akl", siteB: "akl", rtt: 30},
	// Its H3 cell contains the south pole.
	{id: "p-pole", lat: -89.99, lon: 0, located: true, country: "AQ", asn: 0, siteA: "syd", siteB: "syd", rtt: 180},
	{id: "p-noloc", siteA: "ams", siteB: "ams", rtt: 20},
	// Claims Sydney, answers from Amsterdam in 2 ms: a location suspect.
	{id: "p-liar", lat: -33.87, lon: 151.21, located: true, country: "AU", asn: 1221, siteA: "ams", siteB: "ams", rtt: 2},
	{id: "p-err", lat: 52.37, lon: 4.89, located: true, country: "NL", asn: 1136, rtt: 5},
	{id: "p-tyo", lat: 35.68, lon: 139.69, located: true, country: "JP", asn: 2516, siteA: "nrt", siteB: "nrt", rtt: 4},
}

// fixture is twenty minutes of results of target k-root: one per probe and
// minute (p-ber3: five), site A in the first ten minutes and B after.
func fixture() []result.Record {
	var recs []result.Record
	for m := 0; m < 20; m++ {
		for _, p := range fixtureProbes {
			n := max(p.perMin, 1)
			for k := 0; k < n; k++ {
				r := result.Record{
					ID:     fmt.Sprintf("%s-%02d-%d", p.id, m, k),
					Time:   t0.Add(time.Duration(m)*time.Minute + time.Duration(k)*time.Second),
					Probe:  p.id,
					Target: "k-root",
					Method: result.MethodDNS,
					AF:     4,
					Addr:   "193.0.14.129",
					// RTTs vary a little so medians and p90 differ.
					RTTMs:   p.rtt + float64(m%3)*0.25,
					Country: p.country,
					ASN:     p.asn,
				}
				if p.located {
					r.Lat, r.Lon = ptr(p.lat), ptr(p.lon)
				}
				site := p.siteA
				if m >= 10 {
					site = p.siteB
				}
				if s, ok := p.override[m]; ok {
					site = s
				}
				switch {
				case site == "":
					r.RTTMs, r.Error, r.ErrorKind = 0, "i/o timeout", result.KindTimeout
				case m == 4 && p.id == "p-ams1":
					r.RTTMs, r.Error, r.ErrorKind = 0, "i/o timeout", result.KindTimeout
				default:
					r.Site, r.Identity = site, "ns1."+site+".example"
				}
				recs = append(recs, r)
			}
		}
	}
	return recs
}
