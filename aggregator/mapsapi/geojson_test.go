package mapsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/paulmach/orb/geojson"
	"github.com/uber/h3-go/v4"

	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// TestCatchmentGeoJSONMember checks that the GeoJSON carries, as a foreign
// member, exactly the JSON answer for the same query without its cells,
// and stays a FeatureCollection that GeoJSON readers accept.
func TestCatchmentGeoJSONMember(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	const q = "/api/v1/catchment?target=k-root&res=4&from=2026-03-01T10:10:00Z&to=2026-03-01T10:25:00Z"
	_, gj := getOK(t, srv, q+"&format=geojson", contentGeoJSON)
	_, js := getOK(t, srv, q+"&format=json", contentJSON)

	fc, err := geojson.UnmarshalFeatureCollection(gj)
	if err != nil {
		t.Fatalf("not GeoJSON: %v", err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) == 0 {
		t.Fatalf("type %q with %d features", fc.Type, len(fc.Features))
	}
	var want map[string]any
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	if cells, _ := want["cells"].([]any); len(cells) == 0 {
		t.Fatalf("the JSON answer has no cells: %s", js)
	}
	delete(want, "cells")
	got, ok := fc.ExtraMembers[CatchmentMember].(map[string]any)
	if !ok {
		t.Fatalf("foreign members %v: no %q object", fc.ExtraMembers, CatchmentMember)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("member %q:\n%v\nwant the JSON answer without cells:\n%v", CatchmentMember, got, want)
	}
	if sites, _ := got["sites"].([]any); len(sites) == 0 {
		t.Errorf("member %q lists no sites: %v", CatchmentMember, got)
	}
}

// TestWriteGeoJSONAsMaps checks that, but for the foreign member, the
// handler's GeoJSON is maps' own, for every binning.
func TestWriteGeoJSONAsMaps(t *testing.T) {
	for _, by := range []string{maps.ByH3, maps.ByCountry, maps.ByASN} {
		b, err := maps.NewBuilder(maps.Options{Target: "k-root", From: t0, To: now, Res: 4, By: by}, Sites(sites.Default()))
		if err != nil {
			t.Fatal(err)
		}
		recs := fixture()
		for i := range recs {
			b.Add(&recs[i])
		}
		c := b.Build()
		var ours, theirs bytes.Buffer
		if err := writeGeoJSON(&ours, c); err != nil {
			t.Fatal(err)
		}
		if err := maps.WriteGeoJSON(&theirs, c); err != nil {
			t.Fatal(err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(ours.Bytes(), &got); err != nil {
			t.Fatalf("by %s: not JSON: %v", by, err)
		}
		if err := json.Unmarshal(theirs.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if _, ok := got[CatchmentMember]; !ok {
			t.Errorf("by %s: no member %q", by, CatchmentMember)
		}
		delete(got, CatchmentMember)
		if features, _ := want["features"].([]any); len(features) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("by %s: without its member the GeoJSON differs from maps.WriteGeoJSON's:\n%s\nwant\n%s", by, ours.Bytes(), theirs.Bytes())
		}
	}
}

// BenchmarkGeoJSON10k renders a catchment of 10,000 H3 cells (and as many
// probes) as the web UI asks for it, beside maps.WriteGeoJSON alone.
func BenchmarkGeoJSON10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	bl, err := maps.NewBuilder(maps.Options{Target: "wide", From: t0, To: now, Res: 3}, Sites(sites.Default()))
	if err != nil {
		b.Fatal(err)
	}
	seen := map[h3.Cell]bool{}
	for i := 0; len(seen) < 10_000 && i < 500_000; i++ {
		lat, lon := rng.Float64()*150-70, rng.Float64()*360-180
		c, err := maps.Cell(lat, lon, 3)
		if err != nil || seen[c] {
			continue
		}
		seen[c] = true
		bl.Add(&result.Record{ID: fmt.Sprint(i), Time: t0.Add(time.Minute), Probe: fmt.Sprintf("w%05d", len(seen)), Target: "wide",
			Method: result.MethodDNS, Site: benchSites[rng.IntN(len(benchSites))], RTTMs: 5 + rng.Float64()*200, Lat: &lat, Lon: &lon})
	}
	c := bl.Build()
	if len(c.Cells) != 10_000 {
		b.Fatalf("%d cells", len(c.Cells))
	}
	for _, bc := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"maps", func(buf *bytes.Buffer) error { return maps.WriteGeoJSON(buf, c) }},
		{"mapsapi", func(buf *bytes.Buffer) error { return writeGeoJSON(buf, c) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var buf bytes.Buffer
			start := cpuTime()
			for b.Loop() {
				buf.Reset()
				if err := bc.write(&buf); err != nil {
					b.Fatal(err)
				}
			}
			cpuPerOp(b, start)
			b.ReportMetric(float64(buf.Len())/1e6, "MB")
		})
	}
}
