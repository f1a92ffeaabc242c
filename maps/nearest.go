package maps

import (
	"math"
	"sort"

	"github.com/catchmap/catchmap/probe/result"
)

// siteIndex locates the sites seen in a window and finds the nearest of
// them to a place. Sites are numbered by their code's rank, so comparing
// numbers compares codes.
type siteIndex struct {
	codes   []string       // every code seen, sorted
	at      map[string]int // code -> its number
	sites   []Site         // by number; meaningful where located
	cos     []float64      // cosine of the site's latitude, by number
	located []bool
	// The located sites by latitude, for the nearest-site search.
	byLat []int
	lats  []float64
}

func newSiteIndex(loc SiteLocator, codes []string) *siteIndex {
	ix := &siteIndex{codes: codes, at: make(map[string]int, len(codes)),
		sites: make([]Site, len(codes)), cos: make([]float64, len(codes)), located: make([]bool, len(codes))}
	for k, c := range codes {
		ix.at[c] = k
		if loc == nil {
			continue
		}
		if s, ok := loc.Lookup(c); ok && result.ValidLatLon(s.Lat, s.Lon) == nil {
			ix.sites[k], ix.cos[k], ix.located[k] = s, math.Cos(s.Lat*rad), true
			ix.byLat = append(ix.byLat, k)
		}
	}
	sort.SliceStable(ix.byLat, func(i, j int) bool { return ix.sites[ix.byLat[i]].Lat < ix.sites[ix.byLat[j]].Lat })
	ix.lats = make([]float64, len(ix.byLat))
	for i, k := range ix.byLat {
		ix.lats[i] = ix.sites[k].Lat
	}
	return ix
}

// distanceKm is the distance from lat, lon (cosLat the cosine of its
// latitude) to located site k, as distanceKm computes it.
func (ix *siteIndex) distanceKm(k int, lat, lon, cosLat float64) float64 {
	s := &ix.sites[k]
	return haversineKm(lat, lon, cosLat, s.Lat, s.Lon, ix.cos[k])
}

// nearestSlackKm covers the rounding of a computed distance against the
// latitude bound, which is exact: a few metres at worst near antipodes.
const nearestSlackKm = 1.0

// nearest is the located site closest to lat, lon (ties: lower code), with
// its distance. It visits sites by their gap in latitude and stops when
// that gap alone exceeds the best distance: the great-circle distance is
// never shorter than the gap along a meridian.
func (ix *siteIndex) nearest(lat, lon, cosLat float64) (int, float64, bool) {
	best, bestD := -1, math.Inf(1)
	hi := sort.SearchFloat64s(ix.lats, lat)
	lo := hi - 1
	for lo >= 0 || hi < len(ix.lats) {
		var j int
		if hi >= len(ix.lats) || lo >= 0 && lat-ix.lats[lo] <= ix.lats[hi]-lat {
			j, lo = lo, lo-1
		} else {
			j, hi = hi, hi+1
		}
		if math.Abs(ix.lats[j]-lat)*rad*earthRadiusKm > bestD+nearestSlackKm {
			break
		}
		k := ix.byLat[j]
		if d := ix.distanceKm(k, lat, lon, cosLat); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best, bestD, best >= 0
}
