package maps

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQuantileBySelectionEqualsSorting: selection finds the same ranks, bit
// for bit, as interpolating in a sorted copy, on sizes around the cut-off
// to sorting, with many ties and in adversarial orders.
func TestQuantileBySelectionEqualsSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sorted := func(xs []float64, q float64) float64 {
		ys := slices.Clone(xs)
		slices.Sort(ys)
		pos := q * float64(len(ys)-1)
		i := int(pos)
		if i >= len(ys)-1 {
			return ys[len(ys)-1]
		}
		return ys[i] + (pos-float64(i))*(ys[i+1]-ys[i])
	}
	for trial := range 3000 {
		n := 1 + rng.IntN(40)
		if trial%10 == 0 {
			n = 1 + rng.IntN(3000)
		}
		xs := make([]float64, n)
		for i := range xs {
			switch trial % 4 {
			case 0:
				xs[i] = rng.Float64() * 300
			case 1:
				xs[i] = float64(rng.IntN(5)) // ties
			case 2:
				xs[i] = float64(i) // sorted
			case 3:
				xs[i] = float64(n - i) // reversed
			}
		}
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
			want := sorted(xs, q)
			got, ok := quantile(slices.Clone(xs), q)
			if !ok || got != want {
				t.Fatalf("trial %d, n %d, q %v: quantile %v, sorting gives %v", trial, n, q, got, want)
			}
		}
	}
}

func TestSelectRankPartitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(rng.IntN(50))
	}
	for _, k := range []int{0, 1, 499, 500, 998, 999} {
		ys := slices.Clone(xs)
		v := selectRank(ys, k)
		if slices.ContainsFunc(ys[:k], func(x float64) bool { return x > v }) || slices.ContainsFunc(ys[k+1:], func(x float64) bool { return x < v }) || ys[k] != v {
			t.Fatalf("rank %d: %v is not in place", k, v)
		}
	}
}
