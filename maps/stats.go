package maps

import (
	"math"
	"math/bits"
	"slices"
)

// quantile returns the q-quantile (0..1) of xs by linear interpolation
// between the closest ranks (R-7, what spreadsheets do), so p50 of an even
// count is the mean of the middle two. xs is reordered in place: it finds
// the two ranks by selection rather than a sort, the same values in a
// third of the time (a catchment takes a median per probe).
func quantile(xs []float64, q float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return slices.Max(xs), true
	}
	lo := selectRank(xs, i)
	// Everything after rank i is no smaller: rank i+1 is their minimum.
	hi := slices.Min(xs[i+1:])
	f := pos - float64(i)
	return lo + f*(hi-lo), true
}

// selectRank reorders xs so that xs[k] is what it would be sorted, with
// nothing greater before it and nothing smaller after, and returns it.
// xs holds no NaN. Quickselect with a median-of-three pivot and a
// branch-free partition (a catchment takes a median per probe, and
// mispredicted branches were most of that time); ranges that fail to
// shrink fast enough are sorted instead, so the worst case stays
// O(n log n).
func selectRank(xs []float64, k int) float64 {
	lo, hi := 0, len(xs) // the rank lies in xs[lo:hi]
	for budget := 2 * bits.Len(uint(len(xs))); hi-lo > 16; budget-- {
		if budget == 0 {
			slices.Sort(xs[lo:hi])
			return xs[k]
		}
		m := lo + (hi-lo)/2
		a, b, c := xs[lo], xs[m], xs[hi-1]
		pivot := max(min(a, b), min(max(a, b), c))
		lt := partition(xs[lo:hi], pivot, false) + lo // xs[lo:lt] < pivot
		if k < lt {
			hi = lt
			continue
		}
		if lt > lo {
			lo = lt
			continue
		}
		// The pivot is the range's least value: set its copies aside, so
		// that the range shrinks whatever the ties.
		le := partition(xs[lo:hi], pivot, true) + lo // xs[lo:le] == pivot
		if k < le {
			return pivot
		}
		lo = le
	}
	slices.Sort(xs[lo:hi])
	return xs[k]
}

// partition moves the values of xs below pivot (orEqual: not above it) to
// its front, keeping the rest behind, and returns how many there are. Every
// value is swapped whether it moves or not, so no branch depends on the
// data.
func partition(xs []float64, pivot float64, orEqual bool) int {
	n := 0
	if orEqual {
		for i, x := range xs {
			xs[i], xs[n] = xs[n], x
			d := 0
			if x <= pivot {
				d = 1
			}
			n += d
		}
		return n
	}
	for i, x := range xs {
		xs[i], xs[n] = xs[n], x
		d := 0
		if x < pivot {
			d = 1
		}
		n += d
	}
	return n
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
	var p float64
	if d >= 0 && d < len(pow10) {
		p = pow10[d] // math.Pow took a tenth of Build
	} else {
		p = math.Pow(10, float64(d))
	}
	return math.Round(v*p) / p
}

// pow10 are the powers of ten roundTo uses: exact, as math.Pow gives them
// (TestPow10IsMathPow).
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}
