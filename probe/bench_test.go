package probe

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/responder"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/spec"
)

// BenchmarkMeasureDNS runs the dns method through the whole Measure path
// (spec checks, identifier, a pooled UDP socket, the record) against a CHAOS
// responder on loopback, from GOMAXPROCS*16 goroutines like a probe with many
// targets. bench/dns.sh compares the same path against dnsperf.
func BenchmarkMeasureDNS(b *testing.B) {
	d := responder.NewDNS("bench1.ams.example")
	addr := testutil.Serve(b, d, "127.0.0.1:0")
	m := NewMeasurer(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { _ = m.Close() })
	sp := spec.Spec{Target: addr, Timeout: spec.Duration(2 * time.Second)}
	b.SetParallelism(16)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rs, err := m.Measure(context.Background(), sp)
			if err != nil {
				b.Error(err)
				return
			}
			if !rs[0].OK() || rs[0].Identity != "bench1.ams.example" {
				b.Errorf("measurement failed: %s: %s", rs[0].ErrorKind, rs[0].Error)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkSweep1000 sends one echo to each of 1,000 loopback addresses
// (127.0.0.1 to 127.0.3.232) with no pacing to speak of; bench/icmp.sh
// compares it with fping. It needs raw ICMP sockets: without them (not
// root, no CAP_NET_RAW) it is skipped, as nothing else can stand in for the
// kernel's ICMP.
func BenchmarkSweep1000(b *testing.B) {
	addrs := make([]netip.Addr, 0, 1000)
	for i := 1; len(addrs) < cap(addrs); i++ {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, byte(i / 256), byte(i % 256)}))
	}
	opts := SweepOptions{Privileged: true, Interval: time.Microsecond, Wait: 2 * time.Second}
	lost := 0
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rs, err := Sweep(ctx, addrs, opts)
		cancel()
		if errors.Is(err, ErrICMPPermission) {
			b.Skipf("raw ICMP sockets need root or CAP_NET_RAW: %v", err)
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil {
				b.Fatalf("echo to %s: %v", r.Addr, r.Err)
			}
			if !r.Replied {
				lost++
			}
		}
	}
	// The sweep's ICMP filter and receive buffer should lose none; a loss
	// is reported, not failed, as a slow reader on a loaded machine can
	// still fall behind a burst.
	b.ReportMetric(float64(lost)/float64(b.N*len(addrs)), "lost/echo")
}
