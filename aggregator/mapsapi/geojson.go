package mapsapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/paulmach/orb/geojson"

	"github.com/catchmap/catchmap/maps"
)

// CatchmentMember names the foreign member (RFC 7946 section 6.1) of a
// catchment's GeoJSON FeatureCollection that holds the rest of the
// catchment's JSON answer: its window, totals, sites, flips and location
// suspects, everything but the cells, which are the features. With it a
// map is drawn from one request: computing a large window twice (once for
// the shapes, once for the rest) doubled what the web UI waited for.
const CatchmentMember = "catchment"

// catchmentSummary is a catchment's JSON without its cells.
type catchmentSummary struct {
	*maps.Catchment
	// Cells shadows the embedded catchment's: nil, so left out.
	Cells []maps.CellStat `json:"cells,omitempty"`
}

// cellProperties are a cell feature's properties as maps.GeoJSON makes
// them: the kind and every CellStat field.
type cellProperties struct {
	Kind string `json:"kind"`
	maps.CellStat
}

// writeGeoJSON writes maps.GeoJSON(c) with c's summary as the foreign
// member CatchmentMember. The member is added here, not in maps, so that
// maps' GeoJSON (the CLI's output and its golden files) stays as it is.
//
// It is written feature by feature, and a cell's properties are encoded
// from its CellStat rather than from the feature's property map. Both
// spare work that took most of a 10,000-cell answer: encoding/json
// re-validates and compacts what every MarshalJSON returns, which orb's
// collection nests twice over each feature, and it sorts the keys of
// every map. TestWriteGeoJSONAsMaps holds the result to maps' own.
func writeGeoJSON(buf *bytes.Buffer, c *maps.Catchment) error {
	fc, err := maps.GeoJSON(c)
	if err != nil {
		return err
	}
	sum, err := json.Marshal(catchmentSummary{Catchment: c})
	if err != nil {
		return fmt.Errorf("encoding the catchment member: %w", err)
	}
	stats := make(map[string]*maps.CellStat, len(c.Cells))
	for i := range c.Cells {
		stats[c.Cells[i].Cell] = &c.Cells[i]
	}
	buf.WriteString(`{"type":"FeatureCollection","` + CatchmentMember + `":`)
	buf.Write(sum)
	buf.WriteString(`,"features":[`)
	for i, f := range fc.Features {
		var b []byte
		cell, _ := f.Properties["cell"].(string)
		if cs, ok := stats[cell]; ok && f.Properties["kind"] == maps.KindCell {
			cf := geojson.FeatureOf[cellProperties]{Type: f.Type, Geometry: f.Geometry,
				Properties: cellProperties{Kind: maps.KindCell, CellStat: *cs}}
			b, err = cf.MarshalJSON()
		} else {
			b, err = f.MarshalJSON()
		}
		if err != nil {
			return fmt.Errorf("encoding GeoJSON feature %d: %w", i, err)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString("]}\n")
	return nil
}
