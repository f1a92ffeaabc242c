package maps

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// CellsCSVHeader are the columns WriteCellsCSV writes, in order: the
// CellStat JSON fields, with "sites" as "code:probes" pairs joined by spaces
// and "shares" as "code:share" pairs. Empty values are unknowns (JSON null).
var CellsCSVHeader = []string{"cell", "site", "share", "probes", "results", "sites", "shares",
	"rtt_p50_ms", "rtt_p90_ms", "error_share", "confidence", "lat", "lon", "site_distance_km",
	"nearest_site", "nearest_distance_km", "inflation_ms", "not_nearest_share"}

// DiffCSVHeader are the columns WriteDiffCSV writes, in order: one row per
// cell of either window (Diff.Cells), "changed" being "true" when the cell
// is in both windows and its site changed.
var DiffCSVHeader = []string{"cell", "site_a", "site_b", "changed", "probes_a", "probes_b",
	"rtt_p50_a_ms", "rtt_p50_b_ms", "rtt_change_ms"}

// FlowsCSVHeader are the columns WriteFlowsCSV writes: one row per Diff.Flows.
var FlowsCSVHeader = []string{"from", "to", "probes"}

// WriteCellsCSV writes the catchment's cells, one row each, under
// CellsCSVHeader.
func WriteCellsCSV(w io.Writer, c *Catchment) error {
	cw := csvWriter{w: w, what: "catchment cells"}
	cw.header(CellsCSVHeader)
	for i := range c.Cells {
		cs := &c.Cells[i]
		cw.str(cs.Cell)
		cw.str(cs.Site)
		cw.num(cs.Share)
		cw.int(cs.Probes)
		cw.int(cs.Results)
		cw.pairs = cw.pairs[:0]
		cw.ints = sortedEntries(cw.ints[:0], cs.Sites)
		for j, x := range cw.ints {
			if j > 0 {
				cw.pairs = append(cw.pairs, ' ')
			}
			cw.pairs = strconv.AppendInt(append(append(cw.pairs, x.k...), ':'), int64(x.v), 10)
		}
		cw.bytes(cw.pairs)
		cw.pairs = cw.pairs[:0]
		cw.floats = sortedEntries(cw.floats[:0], cs.Shares)
		for j, x := range cw.floats {
			if j > 0 {
				cw.pairs = append(cw.pairs, ' ')
			}
			cw.pairs = appendNum(append(append(cw.pairs, x.k...), ':'), x.v)
		}
		cw.bytes(cw.pairs)
		cw.opt(cs.RTTP50)
		cw.opt(cs.RTTP90)
		cw.num(cs.ErrorShare)
		cw.str(cs.Confidence)
		cw.opt(cs.Lat)
		cw.opt(cs.Lon)
		cw.opt(cs.SiteDistanceKm)
		cw.str(cs.NearestSite)
		cw.opt(cs.NearestDistanceKm)
		cw.opt(cs.Inflation)
		cw.opt(cs.NotNearestShare)
		cw.end()
	}
	return cw.close()
}

// WriteDiffCSV writes the diff's cells, one row each, under DiffCSVHeader.
func WriteDiffCSV(w io.Writer, d *Diff) error {
	cw := csvWriter{w: w, what: "diff cells"}
	cw.header(DiffCSVHeader)
	for _, c := range d.Cells {
		changed := c.SiteA != "" && c.SiteB != "" && c.SiteA != c.SiteB
		cw.str(c.Cell)
		cw.str(c.SiteA)
		cw.str(c.SiteB)
		cw.str(strconv.FormatBool(changed))
		cw.int(c.ProbesA)
		cw.int(c.ProbesB)
		cw.opt(c.RTTP50A)
		cw.opt(c.RTTP50B)
		cw.opt(c.RTTChange)
		cw.end()
	}
	return cw.close()
}

// WriteFlowsCSV writes the diff's flows under FlowsCSVHeader.
func WriteFlowsCSV(w io.Writer, d *Diff) error {
	cw := csvWriter{w: w, what: "diff flows"}
	cw.header(FlowsCSVHeader)
	for _, f := range d.Flows {
		cw.str(f.From)
		cw.str(f.To)
		cw.int(f.Probes)
		cw.end()
	}
	return cw.close()
}

// csvWriter writes records as encoding/csv's Writer does with its defaults
// (comma, LF, quotes only where needed), straight from the values: a
// string per field, and a []string per row, were most of the time of a
// large catchment's CSV. TestCSVIsEncodingCSV holds the two together.
type csvWriter struct {
	w        io.Writer
	what     string
	b        []byte
	inRecord bool // a field of the record is written
	err      error
	// Scratch for a field of pairs.
	pairs  []byte
	ints   []kv[int]
	floats []kv[float64]
}

// csvFlushAt bounds the bytes held before they go to w.
const csvFlushAt = 64 << 10

func (cw *csvWriter) header(names []string) {
	for _, n := range names {
		cw.str(n)
	}
	cw.end()
}

func (cw *csvWriter) sep() {
	if cw.inRecord {
		cw.b = append(cw.b, ',')
	}
	cw.inRecord = true
}

func (cw *csvWriter) str(s string) {
	cw.sep()
	cw.b = appendCSVField(cw.b, s)
}

func (cw *csvWriter) bytes(s []byte) {
	cw.sep()
	cw.b = appendCSVField(cw.b, s)
}

// Numbers never need quotes.
func (cw *csvWriter) int(v int) {
	cw.sep()
	cw.b = strconv.AppendInt(cw.b, int64(v), 10)
}

func (cw *csvWriter) num(v float64) {
	cw.sep()
	cw.b = appendNum(cw.b, v)
}

// opt writes nil, an unknown, as an empty field.
func (cw *csvWriter) opt(v *float64) {
	cw.sep()
	if v != nil {
		cw.b = appendNum(cw.b, *v)
	}
}

func (cw *csvWriter) end() {
	cw.b = append(cw.b, '\n')
	cw.inRecord = false
	if len(cw.b) >= csvFlushAt {
		cw.flush()
	}
}

func (cw *csvWriter) flush() {
	if cw.err == nil && len(cw.b) > 0 {
		_, cw.err = cw.w.Write(cw.b)
	}
	cw.b = cw.b[:0]
}

func (cw *csvWriter) close() error {
	cw.flush()
	if cw.err != nil {
		return fmt.Errorf("writing %s CSV: %w", cw.what, cw.err)
	}
	return nil
}

// appendCSVField appends a field as encoding/csv writes it: quoted, with
// quotes doubled, when it holds a comma, quote or line break, starts with
// white space, or is \. (which would end a PostgreSQL COPY).
func appendCSVField[S string | []byte](b []byte, s S) []byte {
	quote := string(s) == `\.`
	for i := 0; i < len(s) && !quote; i++ {
		c := s[i]
		quote = c == '\n' || c == '\r' || c == '"' || c == ','
	}
	if !quote && len(s) > 0 {
		r, _ := utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
		quote = unicode.IsSpace(r)
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendNum appends v as strconv.FormatFloat(v, 'f', -1, 64) does, and
// nothing for NaN and infinities: an empty cell, as for an unknown.
func appendNum(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b
	}
	if r, ok := appendShortDecimal(b, v); ok {
		return r
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
