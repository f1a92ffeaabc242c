package maps

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/uber/h3-go/v4"
)

// TestGeoJSONDecodes reads the golden GeoJSON back with orb and checks it
// is what RFC 7946 asks and what the map needs.
func TestGeoJSONDecodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "catchment.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := geojson.UnmarshalFeatureCollection(b)
	if err != nil {
		t.Fatalf("orb cannot read our GeoJSON: %v", err)
	}
	kinds := map[string]int{}
	multi := 0
	for _, f := range fc.Features {
		kind, _ := f.Properties["kind"].(string)
		kinds[kind]++
		switch g := f.Geometry.(type) {
		case orb.Polygon:
			checkPolygon(t, g)
		case orb.MultiPolygon:
			multi++
			for _, p := range g {
				checkPolygon(t, p)
			}
		case orb.Point:
			checkPoint(t, g)
		default:
			t.Errorf("unexpected geometry %T", g)
		}
		if kind == KindCell {
			for _, k := range []string{"cell", "site", "share", "probes", "results", "sites", "rtt_p50_ms", "rtt_p90_ms",
				"error_share", "confidence", "lat", "lon", "site_distance_km", "nearest_site", "nearest_distance_km", "inflation_ms"} {
				if _, ok := f.Properties[k]; !ok {
					t.Errorf("cell %v has no property %q", f.Properties["cell"], k)
				}
			}
		}
	}
	if kinds[KindCell] != 10 || kinds[KindSite] != 7 || kinds[KindProbe] != 16 {
		t.Errorf("features by kind = %v, want 10 cells, 7 located sites, 16 located probes", kinds)
	}
	if multi != 1 {
		t.Errorf("%d MultiPolygons, want 1 (the Fiji cell split at 180°)", multi)
	}
}

func checkPoint(t *testing.T, p orb.Point) {
	t.Helper()
	if result.ValidLatLon(p[1], p[0]) != nil {
		t.Errorf("point %v is off the map", p)
	}
}

func checkPolygon(t *testing.T, p orb.Polygon) {
	t.Helper()
	if len(p) != 1 {
		t.Fatalf("polygon with %d rings, want 1", len(p))
	}
	r := p[0]
	if len(r) < 4 || !r.Closed() {
		t.Errorf("ring %v is not closed", r)
	}
	if r.Orientation() != orb.CCW {
		t.Errorf("ring %v is not counter-clockwise (RFC 7946 right-hand rule)", r)
	}
	for _, pt := range r {
		checkPoint(t, pt)
	}
}

// TestCellGeometryEverywhere checks the polygons of random cells, plus the
// ones at both poles and along 180°, at every resolution.
func TestCellGeometryEverywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	places := [][2]float64{{90, 0}, {-90, 0}, {89.99, 180}, {-89.99, -180}, {0, 180}, {0, -180}, {-16.5, 179.99}, {65, -179.9}}
	for range 2000 {
		places = append(places, [2]float64{rng.Float64()*180 - 90, rng.Float64()*360 - 180})
	}
	for res := MinRes; res <= MaxRes; res++ {
		for _, pl := range places {
			c, err := Cell(pl[0], pl[1], res)
			if err != nil {
				t.Fatal(err)
			}
			var area float64
			switch g := cellGeometry(c.Boundary()).(type) {
			case orb.Polygon:
				checkPolygon(t, g)
				area = ringArea(g[0])
			case orb.MultiPolygon:
				for _, p := range g {
					checkPolygon(t, p)
					area += ringArea(p[0])
				}
			}
			// A cell's area in degrees² must not blow up: a ring that wraps
			// the wrong way round the globe would span ~360°.
			if area <= 0 || area > h3.CellAreaKm2(c)*1e-4*50 && area > 5000 {
				t.Errorf("cell %s (res %d at %v): polygon area %v deg² looks wrong", c, res, pl, area)
			}
		}
	}
}

// ringArea is the planar (lon, lat) area of a closed ring.
func ringArea(r orb.Ring) float64 {
	var a float64
	for i := 0; i+1 < len(r); i++ {
		a += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return a / 2
}

func TestGeoJSONCountryCellsArePoints(t *testing.T) {
	o := windowA()
	o.By = ByCountry
	c := compute(t, o)
	var buf bytes.Buffer
	if err := WriteGeoJSON(&buf, c); err != nil {
		t.Fatal(err)
	}
	fc, err := geojson.UnmarshalFeatureCollection(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cells := 0
	for _, f := range fc.Features {
		if f.Properties["kind"] == KindCell {
			cells++
			if _, ok := f.Geometry.(orb.Point); !ok {
				t.Errorf("country cell %v is a %T, want a Point", f.Properties["cell"], f.Geometry)
			}
		}
	}
	// "??" (p-noloc) has no located probe, hence no place.
	if cells != len(c.Cells)-1 {
		t.Errorf("%d country cells in GeoJSON, want %d", cells, len(c.Cells)-1)
	}
}
