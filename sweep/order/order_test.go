package order

import (
	"slices"
	"testing"
)

func seed(b byte) Seed { return Seed{b} }

func TestPermCoversAll(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 3, 10, 255, 256, 1000, 65536, 100003} {
		pm, err := NewPerm(n, seed(byte(n)))
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, n)
		count := uint64(0)
		for x := range pm.All {
			if x >= n || seen[x] {
				t.Fatalf("n=%d: %d out of range or twice", n, x)
			}
			seen[x] = true
			count++
		}
		if count != n || pm.Len() != n {
			t.Fatalf("n=%d: %d values", n, count)
		}
	}
	if _, err := NewPerm(1<<32, seed(1)); err == nil {
		t.Error("2^32 targets accepted")
	}
}

func collect(pm *Perm) []uint64 {
	var xs []uint64
	for x := range pm.All {
		xs = append(xs, x)
	}
	return xs
}

// TestPermRandom: the seed decides the order, and the order scatters
// neighbours, so that a hitlist sorted by address reaches no network in a
// burst.
func TestPermRandom(t *testing.T) {
	const n = 65536
	a, _ := NewPerm(n, seed(1))
	b, _ := NewPerm(n, seed(1))
	c, _ := NewPerm(n, seed(2))
	xa, xb, xc := collect(a), collect(b), collect(c)
	if !slices.Equal(xa, xb) {
		t.Error("one seed gave two orders")
	}
	if slices.Equal(xa, xc) {
		t.Error("two seeds gave one order")
	}
	// Targets in one /16 of a sorted /8 are 256 apart in the list; count
	// how often consecutive probes fall that close.
	near := 0
	for i := 1; i < len(xa); i++ {
		d := int64(xa[i]) - int64(xa[i-1])
		if d < 256 && d > -256 {
			near++
		}
	}
	if near > n/50 {
		t.Errorf("%d of %d consecutive probes are within 256 places of each other", near, n)
	}
	// Nor does it stay in one half for long.
	run, longest := 0, 0
	for i := 1; i < len(xa); i++ {
		if (xa[i] < n/2) == (xa[i-1] < n/2) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 30 {
		t.Errorf("%d consecutive probes in one half of the list", longest)
	}
}

func TestSplit(t *testing.T) {
	targets := make([]uint32, 10007)
	for i := range targets {
		targets[i] = uint32(i) << 8
	}
	shares, err := Split(targets, 3, seed(7))
	if err != nil {
		t.Fatal(err)
	}
	var all []uint32
	for _, s := range shares {
		if len(s) < len(targets)/3 || len(s) > len(targets)/3+1 {
			t.Errorf("share of %d", len(s))
		}
		if slices.IsSorted(s) {
			t.Error("a share is in the list's order, not random")
		}
		all = append(all, s...)
	}
	slices.Sort(all)
	if !slices.Equal(all, targets) {
		t.Error("the shares are not the targets, each once")
	}
	if _, err := Split(targets, 0, seed(1)); err == nil {
		t.Error("zero senders accepted")
	}
}
