package maps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// The shape of issue #4: 1,000,000 results of 5,000 probes over a quarter
// hour, as a store's per-minute summaries (75,000 of them, ~13 results
// each), mapped at resolution 4 with the aggregator's site table. It
// mirrors aggregator/mapsapi's benchmark store, without the store.
const (
	issue4Results = 1_000_000
	issue4Probes  = 5_000
	issue4Window  = 15 * time.Minute
)

var issue4Sites = []string{"ams", "fra", "lhr", "iad", "sin", "syd", "nrt", "gru"}

// airportSites locates codes as the aggregator does (mapsapi.Sites over
// sites.Default), which maps cannot import.
func airportSites() SiteLocator {
	t := sites.Default()
	return SiteLocatorFunc(func(code string) (Site, bool) {
		s, ok := t.Lookup(code)
		if !ok {
			return Site{}, false
		}
		return Site{Code: s.Code, Name: s.Name, Lat: s.Lat, Lon: s.Lon}, true
	})
}

// issue4Summaries are built once per test binary: they take longer than
// any iteration.
var issue4Summaries = sync.OnceValue(func() []*summary.Summary {
	rng := rand.New(rand.NewPCG(1, 2))
	type probe struct {
		lat, lon float64
		country  string
		asn      uint32
		site     string
	}
	probes := make([]probe, issue4Probes)
	for i := range probes {
		probes[i] = probe{lat: rng.Float64()*140 - 60, lon: rng.Float64()*360 - 180,
			country: fmt.Sprintf("C%d", i%150), asn: uint32(64500 + i%2000), site: issue4Sites[rng.IntN(len(issue4Sites))]}
	}
	ids := make([]string, issue4Probes)
	for i := range ids {
		ids[i] = fmt.Sprintf("probe-%04d", i)
	}
	type key struct {
		probe  int
		minute int64
	}
	byKey := map[key]*summary.Summary{}
	var order []*summary.Summary
	gap := issue4Window / issue4Results
	for n := range issue4Results {
		j := n % issue4Probes
		p := &probes[j]
		r := result.Record{Time: t0.Add(time.Duration(n) * gap), Probe: ids[j], Target: "k-root",
			Lat: &p.lat, Lon: &p.lon, Country: p.country, ASN: p.asn}
		switch x := rng.IntN(100); {
		case x < 2:
			r.Error, r.ErrorKind = "i/o timeout", result.KindTimeout
		case x < 7:
			r.Site = issue4Sites[rng.IntN(len(issue4Sites))]
		default:
			r.Site = p.site
		}
		if r.Site != "" {
			r.RTTMs = 5 + rng.Float64()*200
		}
		k := key{j, r.Time.Unix() / 60}
		s := byKey[k]
		if s == nil {
			s = &summary.Summary{}
			byKey[k] = s
			order = append(order, s)
		}
		s.Add(&r)
	}
	return order
})

func issue4Builder(tb testing.TB, loc SiteLocator) *Builder {
	b, err := NewBuilder(Options{Res: 4, Target: "k-root", From: t0, To: t0.Add(issue4Window)}, loc)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range issue4Summaries() {
		if err := b.AddSummary(s); err != nil {
			tb.Fatal(err)
		}
	}
	return b
}

// BenchmarkIssue4 times the stages of serving issue #4's catchment apart:
// AddSummary of every summary into a fresh builder, Build, and the JSON,
// GeoJSON and CSV encodings of the result.
func BenchmarkIssue4(b *testing.B) {
	loc := airportSites()
	sums := issue4Summaries()
	b.Run("add", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b, cpuTime())
		for b.Loop() {
			bld, err := NewBuilder(Options{Res: 4, Target: "k-root", From: t0, To: t0.Add(issue4Window)}, loc)
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range sums {
				if err := bld.AddSummary(s); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		// Build's CPU time beside its wall time: it spreads a large
		// catchment over the CPUs.
		var cpu time.Duration
		for b.Loop() {
			// A fresh builder each time: Build must not be timed on
			// RTTs that an earlier Build left partly ordered.
			b.StopTimer()
			bld := issue4Builder(b, loc)
			b.StartTimer()
			cpu0 := cpuTime()
			if c := bld.Build(); c.Results != issue4Results {
				b.Fatalf("%d results, want %d", c.Results, issue4Results)
			}
			cpu += cpuTime() - cpu0
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
	c := issue4Builder(b, loc).Build()
	var buf bytes.Buffer
	// json is encoding/json, what the API used before appendjson.
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b, cpuTime())
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(c); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("appendjson", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b, cpuTime())
		var out []byte
		for b.Loop() {
			var err error
			if out, err = c.AppendJSON(out[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(out)))
	})
	b.Run("geojson", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b, cpuTime())
		for b.Loop() {
			buf.Reset()
			if err := WriteGeoJSON(&buf, c); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("csv", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b, cpuTime())
		for b.Loop() {
			buf.Reset()
			if err := WriteCellsCSV(&buf, c); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}
