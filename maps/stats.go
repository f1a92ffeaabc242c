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
// xs holds no NaN. Quickselect with a median-of-three pivot; ranges that
// fail to shrink fast enough are sorted instead, so the worst case stays
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
		// Three-way partition: < pivot, == pivot, > pivot.
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch x := xs[i]; {
			case x < pivot:
				xs[lt], xs[i] = x, xs[lt]
				lt++
				i++
			case x > pivot:
				gt--
				xs[gt], xs[i] = x, xs[gt]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return pivot
		}
	}
	slices.Sort(xs[lo:hi])
	return xs[k]
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
