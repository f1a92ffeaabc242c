package maps

import (
	"math"
	"slices"
)

// quantile returns the q-quantile (0..1) of xs by linear interpolation
// between the closest ranks (R-7, what spreadsheets do), so p50 of an even
// count is the mean of the middle two. xs is sorted in place.
func quantile(xs []float64, q float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1], true
	}
	f := pos - float64(i)
	return xs[i] + f*(xs[i+1]-xs[i]), true
}

// quantilePtr is quantile rounded to µs, nil for no values (JSON null).
func quantilePtr(xs []float64, q float64) *float64 {
	v, ok := quantile(xs, q)
	if !ok {
		return nil
	}
	return ptr(roundTo(v, 3))
}

func ptr[T any](v T) *T { return &v }

// roundTo rounds to d decimals: outputs carry no more precision than the
// measurements, which also keeps golden files stable across platforms.
func roundTo(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}
