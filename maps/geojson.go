package maps

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/catchmap/catchmap/internal/jsonx"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/uber/h3-go/v4"
)

// Feature kinds, in the "kind" property of every GeoJSON feature.
const (
	KindCell  = "cell"
	KindSite  = "site"
	KindProbe = "probe"
)

// GeoJSON renders a catchment as RFC 7946 GeoJSON: H3 cells as Polygons (a
// MultiPolygon for a cell that crosses 180°, split there) with every
// CellStat field as a property; country and ASN cells, which have no shape,
// as Points at their centre (none when no probe there has a place); located
// sites and probes as Points. Probe properties: probe, site, cell, country,
// asn, rtt_ms (median), weight.
func GeoJSON(c *Catchment) (*geojson.FeatureCollection, error) {
	fc := geojson.NewFeatureCollection()
	for _, cs := range c.Cells {
		g, err := cellShape(c.By, &cs)
		if err != nil {
			return nil, err
		}
		if g == nil {
			continue
		}
		f, err := featureOf(g, KindCell, cs)
		if err != nil {
			return nil, err
		}
		fc.Append(f)
	}
	for _, s := range c.Sites {
		if s.Lat == nil {
			continue
		}
		f, err := featureOf(orb.Point{*s.Lon, *s.Lat}, KindSite, s)
		if err != nil {
			return nil, err
		}
		fc.Append(f)
	}
	for _, p := range c.ProbeList {
		if p.Lat == nil {
			continue
		}
		f := geojson.NewFeature(orb.Point{*p.Lon, *p.Lat})
		f.Properties["kind"] = KindProbe
		f.Properties["probe"] = p.ID
		f.Properties["site"] = p.Site
		f.Properties["cell"] = p.Cell
		f.Properties["country"] = p.Country
		f.Properties["asn"] = p.ASN
		f.Properties["rtt_ms"] = p.RTTMedian
		f.Properties["weight"] = p.Weight
		fc.Append(f)
	}
	return fc, nil
}

// WriteGeoJSON writes GeoJSON(c) to w, as json.Marshal encodes it, and a
// newline.
func WriteGeoJSON(w io.Writer, c *Catchment) error {
	b, err := c.AppendGeoJSON(nil)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// featureOf makes a feature whose properties are v's JSON fields, so the
// GeoJSON and the JSON API can never name a field differently.
func featureOf(g orb.Geometry, kind string, v any) (*geojson.Feature, error) {
	b, err := jsonx.AppendHTML(nil, v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s properties: %w", kind, err)
	}
	f := geojson.NewFeature(g)
	if err := json.Unmarshal(b, &f.Properties); err != nil {
		return nil, fmt.Errorf("decoding %s properties: %w", kind, err)
	}
	f.Properties["kind"] = kind
	return f, nil
}

// cellShape is a cell's geometry: its H3 polygon, else the point of its
// probes' centroid; nil for a cell with no place.
func cellShape(by string, cs *CellStat) (orb.Geometry, error) {
	switch {
	case by == ByH3:
		var h h3.Cell
		if err := h.UnmarshalText([]byte(cs.Cell)); err != nil || !h.IsValid() {
			return nil, fmt.Errorf("cell %q is not an H3 index: was the catchment built by h3?", cs.Cell)
		}
		return cellGeometry(h.Boundary()), nil
	case cs.Lat != nil:
		return orb.Point{*cs.Lon, *cs.Lat}, nil
	}
	return nil, nil
}

// cellGeometry turns an H3 boundary into a valid RFC 7946 geometry: a
// counter-clockwise Polygon, split at 180° into a MultiPolygon when the cell
// crosses it, and closed over the pole for the cells that contain one.
func cellGeometry(b h3.CellBoundary) orb.Geometry {
	// Unwrap longitudes so consecutive vertices never jump by more than 180°.
	ring := make(orb.Ring, 0, len(b)+1)
	for i, v := range b {
		lon := v.Lng
		if i > 0 {
			lon = ring[i-1][0] + wrap180(v.Lng-b[i-1].Lng)
		}
		ring = append(ring, orb.Point{lon, v.Lat})
	}
	winding := ring[len(ring)-1][0] + wrap180(b[0].Lng-b[len(b)-1].Lng) - ring[0][0]
	if math.Abs(winding) > 180 {
		return poleCell(ring, winding)
	}
	ring = append(ring, ring[0])
	lo, hi := ring.Bound().Min[0], ring.Bound().Max[0]
	switch {
	case lo < -180:
		return splitAt(ring, -180)
	case hi > 180:
		return splitAt(ring, 180)
	}
	return ccwPolygon(ring)
}

// wrap180 brings a longitude difference into [-180, 180).
func wrap180(d float64) float64 { return math.Mod(math.Mod(d+180, 360)+360, 360) - 180 }

// splitAt cuts a closed ring that crosses meridian m (±180) in unwrapped
// longitudes into the part on the map and the part beyond, shifted back.
func splitAt(ring orb.Ring, m float64) orb.Geometry {
	shift := -math.Copysign(360, m)
	inside := clip(ring, m, m > 0)
	outside := clip(ring, m, m < 0)
	for i := range outside {
		outside[i][0] += shift
	}
	return orb.MultiPolygon{ccwPolygon(inside), ccwPolygon(outside)}
}

// clip keeps the part of a closed convex ring west of m (keepWest) or east
// of it (Sutherland-Hodgman against one line), and closes the result.
func clip(ring orb.Ring, m float64, keepWest bool) orb.Ring {
	in := func(p orb.Point) bool {
		if keepWest {
			return p[0] <= m
		}
		return p[0] >= m
	}
	var out orb.Ring
	for i := 0; i+1 < len(ring); i++ {
		a, b := ring[i], ring[i+1]
		if in(a) {
			out = append(out, a)
		}
		if in(a) != in(b) {
			t := (m - a[0]) / (b[0] - a[0])
			out = append(out, orb.Point{m, a[1] + t*(b[1]-a[1])})
		}
	}
	return append(out, out[0])
}

// poleCell closes the ring of a cell around a pole: along its boundary from
// -180° to 180°, then along the antimeridian up to the pole and back.
func poleCell(ring orb.Ring, winding float64) orb.Geometry {
	pole := 90.0
	if ring[0][1] < 0 {
		pole = -90
	}
	if winding < 0 { // walk east, so the boundary runs from -180 to 180
		for i, j := 0, len(ring)-1; i < j; i, j = i+1, j-1 {
			ring[i], ring[j] = ring[j], ring[i]
		}
	}
	// Shift the unwrapped walk so it starts within [-180, 180), then cut it
	// where it leaves that range.
	for ring[0][0] >= 180 {
		for i := range ring {
			ring[i][0] -= 360
		}
	}
	for ring[0][0] < -180 {
		for i := range ring {
			ring[i][0] += 360
		}
	}
	walk := append(ring.Clone(), orb.Point{ring[0][0] + 360, ring[0][1]})
	var east, west orb.Ring
	for i := 0; i+1 < len(walk); i++ {
		a, b := walk[i], walk[i+1]
		switch {
		case b[0] <= 180:
			east = append(east, a)
		case a[0] <= 180:
			t := (180 - a[0]) / (b[0] - a[0])
			lat := a[1] + t*(b[1]-a[1])
			east = append(east, a, orb.Point{180, lat})
			west = append(west, orb.Point{-180, lat})
		default:
			west = append(west, orb.Point{a[0] - 360, a[1]})
		}
	}
	r := append(west, east...)
	r = append(r, orb.Point{180, pole}, orb.Point{-180, pole}, r[0])
	return ccwPolygon(r)
}

// ccwPolygon makes a polygon of a closed ring, counter-clockwise as RFC
// 7946 asks of exterior rings.
func ccwPolygon(r orb.Ring) orb.Polygon {
	if r.Orientation() == orb.CW {
		r.Reverse()
	}
	return orb.Polygon{r}
}
