package maps

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkCatchment1M: 1,000,000 records from 5,000 probes at resolution 4,
// streamed through a Builder as a store's Scan would.
func BenchmarkCatchment1M(b *testing.B) {
	recs := randomRecords(rand.New(rand.NewPCG(9, 10)), 1_000_000, 5_000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		bld, err := NewBuilder(Options{Res: 4}, testSites)
		if err != nil {
			b.Fatal(err)
		}
		for i := range recs {
			bld.Add(&recs[i])
		}
		if c := bld.Build(); c.Results != len(recs) {
			b.Fatalf("%d results, want %d", c.Results, len(recs))
		}
		n++
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(n), "ms/op")
}

// BenchmarkTimeline1M: the same records, one day sliced by minute.
func BenchmarkTimeline1M(b *testing.B) {
	recs := randomRecords(rand.New(rand.NewPCG(9, 10)), 1_000_000, 5_000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := ComputeTimeline(recs, TimelineOptions{From: t0, To: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(n), "ms/op")
}
