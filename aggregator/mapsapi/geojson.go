package mapsapi

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/catchmap/catchmap/maps"
)

// CatchmentMember names the foreign member (RFC 7946 section 6.1) of a
// catchment's GeoJSON FeatureCollection that holds the rest of the
// catchment's JSON answer: its window, totals, sites, flips and location
// suspects, everything but the cells, which are the features. With it a
// map is drawn from one request: computing a large window twice (once for
// the shapes, once for the rest) doubled what the web UI waited for.
const CatchmentMember = "catchment"

// writeCatchmentJSON writes c's JSON and a newline, the bytes
// json.NewEncoder(buf).Encode(c) writes, in a fraction of its time (see
// maps.Catchment.AppendJSON).
func writeCatchmentJSON(buf *bytes.Buffer, c *maps.Catchment) error {
	b, err := c.AppendJSON(buf.AvailableBuffer())
	if err != nil {
		return fmt.Errorf("encoding the catchment: %w", err)
	}
	buf.Write(append(b, '\n'))
	return nil
}

// writeGeoJSON writes maps.GeoJSON(c) with c's summary as the foreign
// member CatchmentMember. The member is added here, not in maps, so that
// maps' GeoJSON (the CLI's output and its golden files) stays as it is.
//
// A cell's properties are written from its CellStat, in the struct's
// order, rather than as maps.GeoJSON has them (decoded from its JSON, so
// sorted): it spared work that took most of a 10,000-cell answer, and the
// web UI reads them either way. TestWriteGeoJSONAsMaps holds the result to
// maps' own. The cell a feature shows is found as it always was, by the id
// that feature's decoded properties carry, so that ids which JSON does not
// keep as they are (not UTF-8) still find the cell they used to.
func writeGeoJSON(buf *bytes.Buffer, c *maps.Catchment) error {
	stats := make(map[string]*maps.CellStat, len(c.Cells))
	for i := range c.Cells {
		stats[c.Cells[i].Cell] = &c.Cells[i]
	}
	b := append(buf.AvailableBuffer(), `{"type":"FeatureCollection","`+CatchmentMember+`":`...)
	b, err := c.AppendJSONWithoutCells(b)
	if err != nil {
		return fmt.Errorf("encoding the catchment member: %w", err)
	}
	b = append(b, `,"features":[`...)
	b, err = c.AppendGeoJSONFeatures(b, func(b []byte, cs *maps.CellStat) ([]byte, bool, error) {
		cs, ok := stats[decodedString(cs.Cell)]
		if !ok {
			return b, false, nil
		}
		b = append(b, `{"kind":"`+maps.KindCell+`",`...)
		b, err := cs.AppendJSONFields(b)
		if err != nil {
			return nil, false, fmt.Errorf("encoding the properties of cell %q: %w", cs.Cell, err)
		}
		return append(b, '}'), true, nil
	})
	if err != nil {
		return err
	}
	buf.Write(append(b, "]}\n"...))
	return nil
}

// decodedString is s after a trip through JSON: each byte that is not
// UTF-8 comes back as U+FFFD.
func decodedString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError is U+FFFD
		i += size
	}
	return b.String()
}
