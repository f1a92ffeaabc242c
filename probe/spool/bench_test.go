package spool

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/probe/result"
)

// BenchmarkPut puts results of a real DNS measurement's size into a spool
// on the test's temporary directory, as many a Put as the agent's
// measurements make, and reports the disk the filesystem allocated per byte
// of record.
func BenchmarkPut(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(quiet(), prometheus.NewRegistry(), dir, Options{Subsystem: "bench", MaxBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			rs := Results(s)
			defer rs.Close()
			recs := make([]result.Record, n)
			i := 0
			for b.Loop() {
				for j := range recs {
					recs[j] = realistic(i)
					i++
				}
				if err := rs.Put(recs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(allocated(b, dir))/float64(rs.Bytes()), "disk/record")
			b.ReportMetric(float64(rs.Bytes())/float64(rs.Len()), "B/record")
			b.ReportMetric(float64(rs.Len())/b.Elapsed().Seconds(), "records/s")
		})
	}
}
