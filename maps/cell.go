package maps

import (
	"fmt"
	"math"
	"strconv"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/uber/h3-go/v4"
)

// Resolutions Cell accepts. Beyond 7 (cells of ~5 km²) probe locations, which
// are usually city- or GeoIP-grade, claim more precision than they have.
const (
	MinRes     = 0
	MaxRes     = 7
	DefaultRes = 3
)

// UnknownCountry is the cell of records with no country.
const UnknownCountry = "??"

func validRes(res int) error {
	if res < MinRes || res > MaxRes {
		return fmt.Errorf("H3 resolution %d is out of range: use %d to %d", res, MinRes, MaxRes)
	}
	return nil
}

// Cell returns the H3 cell of lat, lon at resolution res. Inputs are checked
// first because h3's LatLngToCell silently returns an invalid cell for them.
func Cell(lat, lon float64, res int) (h3.Cell, error) {
	if err := result.ValidLatLon(lat, lon); err != nil {
		return 0, err
	}
	if err := validRes(res); err != nil {
		return 0, err
	}
	c := h3.LatLngToCell(h3.NewLatLng(lat, lon), res)
	if !c.IsValid() {
		return 0, fmt.Errorf("h3 gave no valid cell for %v,%v at resolution %d", lat, lon, res)
	}
	return c, nil
}

// CountryCell is the cell id of a country code when binning by country.
func CountryCell(country string) string {
	if country == "" {
		return UnknownCountry
	}
	return country
}

// ASNCell is the cell id of an AS number when binning by ASN. ASN 0 (unknown)
// becomes "AS0": AS0 is reserved (RFC 7607), so it cannot clash with a real
// network.
func ASNCell(asn uint32) string { return "AS" + strconv.FormatUint(uint64(asn), 10) }

// earthRadiusKm is the IUGG mean radius.
const earthRadiusKm = 6371.0088

// fibreKmPerMs is how far light goes in fibre (2/3 c) in a millisecond.
const fibreKmPerMs = 299792.458 * 2 / 3 / 1000

// rad is a degree in radians.
const rad = math.Pi / 180

// distanceKm is the great-circle (haversine) distance.
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	return haversineKm(lat1, lon1, math.Cos(lat1*rad), lat2, lon2, math.Cos(lat2*rad))
}

// haversineKm is distanceKm given the cosines of both latitudes, which
// callers that measure from one place to many compute once.
func haversineKm(lat1, lon1, cos1, lat2, lon2, cos2 float64) float64 {
	dlat := (lat2 - lat1) * rad
	dlon := (lon2 - lon1) * rad
	sinLat, sinLon := math.Sin(dlat/2), math.Sin(dlon/2)
	a := sinLat*sinLat + cos1*cos2*sinLon*sinLon
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// fibreBoundMs is the least round-trip time over distanceKm of fibre laid
// on the great circle: no real path is faster.
func fibreBoundMs(km float64) float64 { return 2 * km / fibreKmPerMs }

// centroid is the spherical mean of points (lat, lon pairs): the mean of
// their unit vectors, so that points on both sides of 180° average to 180°,
// not to 0°. ok is false for no points or for points that cancel out.
func centroid(pts [][2]float64) (lat, lon float64, ok bool) {
	var x, y, z float64
	for _, p := range pts {
		la, lo := p[0]*rad, p[1]*rad
		x += math.Cos(la) * math.Cos(lo)
		y += math.Cos(la) * math.Sin(lo)
		z += math.Sin(la)
	}
	h := math.Hypot(x, y)
	if len(pts) == 0 || h+math.Abs(z) < 1e-12 {
		return 0, 0, false
	}
	return math.Atan2(z, h) / rad, math.Atan2(y, x) / rad, true
}
