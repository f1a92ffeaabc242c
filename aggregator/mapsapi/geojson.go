package mapsapi

import (
	"bytes"
	"encoding/json"
	"fmt"

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

// writeGeoJSON writes maps.GeoJSON(c) with c's summary as the foreign
// member CatchmentMember. The member is added here, not in maps, so that
// maps' GeoJSON (the CLI's output and its golden files) stays as it is.
//
// The collection is written feature by feature rather than by one
// json.Marshal: encoding/json re-validates and compacts the output of
// every MarshalJSON it calls, and orb's collection nests two of them over
// each feature, which took most of the time of a 10,000-cell answer.
func writeGeoJSON(buf *bytes.Buffer, c *maps.Catchment) error {
	fc, err := maps.GeoJSON(c)
	if err != nil {
		return err
	}
	sum, err := json.Marshal(catchmentSummary{Catchment: c})
	if err != nil {
		return fmt.Errorf("encoding the catchment member: %w", err)
	}
	buf.WriteString(`{"type":"FeatureCollection","` + CatchmentMember + `":`)
	buf.Write(sum)
	buf.WriteString(`,"features":[`)
	for i, f := range fc.Features {
		b, err := f.MarshalJSON()
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
