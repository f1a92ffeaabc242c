package maps

import (
	"bytes"
	"math"
	"runtime"
	"testing"
)

// TestBuildSameOnAnyCPUs: Build splits a large catchment's probes and
// cells between goroutines; the catchment must not depend on how many.
func TestBuildSameOnAnyCPUs(t *testing.T) {
	b := issue4Builder(t, airportSites())
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var want []byte
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		c := b.Build()
		got, err := c.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err = c.AppendGeoJSON(got)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = got
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("on %d CPUs the catchment differs from that on 1", procs)
		}
	}
}

// TestPow10IsMathPow: roundTo's table holds what math.Pow computed before
// it, bit for bit, so no rounded figure changes.
func TestPow10IsMathPow(t *testing.T) {
	for d, p := range pow10 {
		if want := math.Pow(10, float64(d)); p != want {
			t.Errorf("pow10[%d] = %v, math.Pow gives %v", d, p, want)
		}
	}
}
