package mapsapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/paulmach/orb/geojson"

	"github.com/catchmap/catchmap/maps"
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
// handler's GeoJSON is maps' own.
func TestWriteGeoJSONAsMaps(t *testing.T) {
	b, err := maps.NewBuilder(maps.Options{Target: "k-root", From: t0, To: now, Res: 4}, Sites(sites.Default()))
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
		t.Fatalf("not JSON: %v", err)
	}
	if err := json.Unmarshal(theirs.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if _, ok := got[CatchmentMember]; !ok {
		t.Errorf("no member %q", CatchmentMember)
	}
	delete(got, CatchmentMember)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("without its member the GeoJSON differs from maps.WriteGeoJSON's:\n%s\nwant\n%s", ours.Bytes(), theirs.Bytes())
	}
}
