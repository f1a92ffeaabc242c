package maps

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// AppendGeoJSON appends json.Marshal(GeoJSON(c)) to b, written directly:
// GeoJSON gives each cell and site the properties of its JSON by encoding
// and decoding it, and encoding the collection then sorts every feature's
// properties by reflection, which made the GeoJSON of a large catchment
// several times slower than computing it. TestAppendGeoJSONIsMarshal
// holds the two together.
func (c *Catchment) AppendGeoJSON(b []byte) ([]byte, error) {
	b = append(b, `{"features":[`...)
	b, err := c.AppendGeoJSONFeatures(b, nil)
	if err != nil {
		return nil, err
	}
	return append(b, `],"type":"FeatureCollection"}`...), nil
}

// CellPropertiesFunc may append a cell feature's properties object for
// AppendGeoJSONFeatures; ok false leaves them as GeoJSON has them.
type CellPropertiesFunc func(b []byte, cs *CellStat) (_ []byte, ok bool, err error)

// AppendGeoJSONFeatures appends the features of GeoJSON(c) to b as
// json.Marshal writes each, separated by commas, for writers that add to
// the collection. cellProps, if not nil, writes cells' properties.
func (c *Catchment) AppendGeoJSONFeatures(b []byte, cellProps CellPropertiesFunc) ([]byte, error) {
	e := jsonWriter{b: b}
	first := true
	sep := func() {
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
	}
	for i := range c.Cells {
		cs := &c.Cells[i]
		g, err := cellShape(c.By, cs)
		if err != nil {
			return nil, err
		}
		if g == nil {
			continue
		}
		sep()
		mark := len(e.b)
		e.b = append(e.b, `{"type":"Feature","geometry":`...)
		e.geometry(g)
		e.b = append(e.b, `,"properties":`...)
		if cellProps != nil {
			b, ok, err := cellProps(e.b, cs)
			if err != nil {
				return nil, err
			}
			if ok {
				e.b = append(b, '}')
				continue
			}
		}
		if !cellDecodesAsIs(cs) {
			e.b = e.b[:mark]
			e.slowFeature(g, KindCell, cs)
			continue
		}
		e.cellProperties(cs)
		e.b = append(e.b, '}')
	}
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.Lat == nil {
			continue
		}
		sep()
		g := orb.Point{*s.Lon, *s.Lat}
		if !utf8.ValidString(s.Site) || !utf8.ValidString(s.Name) {
			e.slowFeature(g, KindSite, s)
			continue
		}
		e.b = append(e.b, `{"type":"Feature","geometry":`...)
		e.geometry(g)
		// SiteStat's JSON members, sorted by name as a decoded map is.
		e.decodedInt(`,"properties":{"cells":`, s.Cells)
		e.str(`,"kind":`, KindSite)
		e.optNum(`,"lat":`, s.Lat)
		e.optNum(`,"lon":`, s.Lon)
		e.str(`,"name":`, s.Name)
		e.decodedInt(`,"probes":`, s.Probes)
		e.optNum(`,"rtt_p50_ms":`, s.RTTP50)
		e.num(`,"share":`, s.Share)
		e.str(`,"site":`, s.Site)
		e.b = append(e.b, "}}"...)
	}
	for i := range c.ProbeList {
		p := &c.ProbeList[i]
		if p.Lat == nil {
			continue
		}
		sep()
		e.b = append(e.b, `{"type":"Feature","geometry":`...)
		e.geometry(orb.Point{*p.Lon, *p.Lat})
		// GeoJSON's probe properties, sorted by name.
		e.b = append(e.b, `,"properties":{"asn":`...)
		e.b = strconv.AppendUint(e.b, uint64(p.ASN), 10)
		e.str(`,"cell":`, p.Cell)
		e.str(`,"country":`, p.Country)
		e.str(`,"kind":`, KindProbe)
		e.str(`,"probe":`, p.ID)
		e.optNum(`,"rtt_ms":`, p.RTTMedian)
		e.str(`,"site":`, p.Site)
		e.num(`,"weight":`, p.Weight)
		e.b = append(e.b, "}}"...)
	}
	if e.err != nil {
		return nil, fmt.Errorf("encoding GeoJSON: %w", e.err)
	}
	return e.b, nil
}

// cellDecodesAsIs reports whether cs's strings survive the JSON round trip
// that GeoJSON puts properties through. Invalid UTF-8 does not: each bad
// byte comes back as U+FFFD, which may merge map keys. Such cells take
// GeoJSON's own path.
func cellDecodesAsIs(cs *CellStat) bool {
	for _, s := range [...]string{cs.Cell, cs.Site, cs.Confidence, cs.NearestSite} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for k := range cs.Sites {
		if !utf8.ValidString(k) {
			return false
		}
	}
	for k := range cs.Shares {
		if !utf8.ValidString(k) {
			return false
		}
	}
	return true
}

// cellProperties writes a cell's properties as GeoJSON has them: its JSON
// decoded into a map, so sorted by name, with every number a float64.
func (e *jsonWriter) cellProperties(cs *CellStat) {
	e.str(`{"cell":`, cs.Cell)
	e.str(`,"confidence":`, cs.Confidence)
	e.num(`,"error_share":`, cs.ErrorShare)
	e.optNum(`,"inflation_ms":`, cs.Inflation)
	e.str(`,"kind":`, KindCell)
	e.optNum(`,"lat":`, cs.Lat)
	e.optNum(`,"lon":`, cs.Lon)
	e.optNum(`,"nearest_distance_km":`, cs.NearestDistanceKm)
	e.str(`,"nearest_site":`, cs.NearestSite)
	e.optNum(`,"not_nearest_share":`, cs.NotNearestShare)
	e.decodedInt(`,"probes":`, cs.Probes)
	e.decodedInt(`,"results":`, cs.Results)
	e.optNum(`,"rtt_p50_ms":`, cs.RTTP50)
	e.optNum(`,"rtt_p90_ms":`, cs.RTTP90)
	e.num(`,"share":`, cs.Share)
	e.b = append(e.b, `,"shares":`...)
	e.floatMap(cs.Shares)
	e.str(`,"site":`, cs.Site)
	e.optNum(`,"site_distance_km":`, cs.SiteDistanceKm)
	e.b = append(e.b, `,"sites":`...)
	if cs.Sites == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '{')
		e.ints = sortedEntries(e.ints[:0], cs.Sites)
		for i, x := range e.ints {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(appendJSONString(e.b, x.k), ':')
			e.float(float64(x.v))
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
}

// decodedInt writes an int as it reads back from JSON into an any: a
// float64, which rounds beyond 2^53.
func (e *jsonWriter) decodedInt(key string, v int) { e.num(key, float64(v)) }

// geometry writes g as orb's geojson.Geometry marshals it.
func (e *jsonWriter) geometry(g orb.Geometry) {
	switch g := g.(type) {
	case orb.Point:
		e.b = append(e.b, `{"type":"Point","coordinates":`...)
		e.point(g)
	case orb.Polygon:
		e.b = append(e.b, `{"type":"Polygon","coordinates":`...)
		e.polygon(g)
	case orb.MultiPolygon:
		e.b = append(e.b, `{"type":"MultiPolygon","coordinates":`...)
		if g == nil {
			e.b = append(e.b, "null"...)
		} else {
			e.b = append(e.b, '[')
			for i, p := range g {
				if i > 0 {
					e.b = append(e.b, ',')
				}
				e.polygon(p)
			}
			e.b = append(e.b, ']')
		}
	default: // cellGeometry makes none of these
		j, err := json.Marshal(geojson.NewGeometry(g))
		if err != nil && e.err == nil {
			e.err = err
		}
		e.b = append(e.b, j...)
		return
	}
	e.b = append(e.b, '}')
}

func (e *jsonWriter) point(p orb.Point) {
	e.b = append(e.b, '[')
	e.float(p[0])
	e.b = append(e.b, ',')
	e.float(p[1])
	e.b = append(e.b, ']')
}

func (e *jsonWriter) polygon(p orb.Polygon) {
	if p == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, r := range p {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if r == nil {
			e.b = append(e.b, "null"...)
			continue
		}
		e.b = append(e.b, '[')
		for j, pt := range r {
			if j > 0 {
				e.b = append(e.b, ',')
			}
			e.point(pt)
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, ']')
}

// slowFeature writes a feature the way GeoJSON and json.Marshal make it,
// for the rare properties that the direct path cannot reproduce.
func (e *jsonWriter) slowFeature(g orb.Geometry, kind string, v any) {
	f, err := featureOf(g, kind, v)
	if err == nil {
		var j []byte
		if j, err = f.MarshalJSON(); err == nil {
			e.b = append(e.b, j...)
			return
		}
	}
	if e.err == nil {
		e.err = err
	}
}
