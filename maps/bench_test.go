package maps

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
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

// BenchmarkCatchmentFromSummaries: the records of BenchmarkCatchment1M
// over a quarter hour, as a store's per-minute summaries (13 records of a
// probe each), fed to AddSummary; then Build alone on the same builder
// state, the part both paths share.
func BenchmarkCatchmentFromSummaries(b *testing.B) {
	recs := randomRecords(rand.New(rand.NewPCG(9, 10)), 1_000_000, 5_000)
	type key struct {
		probe  string
		minute int64
	}
	byKey := map[key]*summary.Summary{}
	for i := range recs {
		recs[i].Time = t0.Add(time.Duration(i) * 900 * time.Microsecond)
		k := key{recs[i].Probe, recs[i].Time.Unix() / 60}
		if byKey[k] == nil {
			byKey[k] = &summary.Summary{}
		}
		byKey[k].Add(&recs[i])
	}
	sums := make([]*summary.Summary, 0, len(byKey))
	for _, s := range byKey {
		sums = append(sums, s)
	}
	fill := func() *Builder {
		bld, err := NewBuilder(Options{Res: 4}, testSites)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sums {
			if err := bld.AddSummary(s); err != nil {
				b.Fatal(err)
			}
		}
		return bld
	}
	b.Run("add+build", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		defer cpuPerOp(b, cpu0)
		for b.Loop() {
			if c := fill().Build(); c.Results != len(recs) {
				b.Fatalf("%d results, want %d", c.Results, len(recs))
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			bld := fill()
			b.StartTimer()
			cpu0 := cpuTime()
			bld.Build()
			cpu += cpuTime() - cpu0
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	})
}

// cpuPerOp reports the process's CPU time per iteration beside ns/op: on
// a shared machine wall time swings with the load, CPU time much less.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
