package maps

import (
	"fmt"
	"slices"

	"github.com/uber/h3-go/v4"
)

// Helpers for code that asks geographic questions about probes (the
// regression gate's region rules) without importing h3 itself: cgo stays
// in this package.

// DistanceKm is the great-circle distance between two places in degrees.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 { return distanceKm(lat1, lon1, lat2, lon2) }

// ParseCell checks that s is an H3 cell index in canonical form (lower-case
// hex, as catchments write cells) at a resolution Cell accepts, and returns
// its resolution.
func ParseCell(s string) (int, error) {
	var c h3.Cell
	if err := c.UnmarshalText([]byte(s)); err != nil || c.String() != s {
		return 0, fmt.Errorf("%q is not an H3 cell index: give one in lower-case hex, such as 831f8dfffffffff", s)
	}
	res := c.Resolution()
	if err := validRes(res); err != nil {
		return 0, fmt.Errorf("H3 cell %s: %w", s, err)
	}
	return res, nil
}

// InCell reports whether lat, lon lies inside the H3 cell index cell, at
// whatever resolution cell has.
func InCell(lat, lon float64, cell string) (bool, error) {
	res, err := ParseCell(cell)
	if err != nil {
		return false, err
	}
	c, err := Cell(lat, lon, res)
	if err != nil {
		return false, err
	}
	return c.String() == cell, nil
}

// Quantile is the q-quantile (0..1) of xs as catchments compute it (R-7
// interpolation, rounded to µs); ok is false for no values. xs is sorted in
// place.
func Quantile(xs []float64, q float64) (v float64, ok bool) {
	slices.Sort(xs)
	v, ok = quantile(xs, q)
	return roundTo(v, 3), ok
}
