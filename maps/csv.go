package maps

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	rows := make([][]string, 0, len(c.Cells))
	for _, cs := range c.Cells {
		rows = append(rows, []string{cs.Cell, cs.Site, num(cs.Share), strconv.Itoa(cs.Probes),
			strconv.Itoa(cs.Results), pairs(cs.Sites, strconv.Itoa), pairs(cs.Shares, num),
			opt(cs.RTTP50), opt(cs.RTTP90), num(cs.ErrorShare), cs.Confidence, opt(cs.Lat), opt(cs.Lon),
			opt(cs.SiteDistanceKm), cs.NearestSite, opt(cs.NearestDistanceKm), opt(cs.Inflation),
			opt(cs.NotNearestShare)})
	}
	return writeCSV(w, "catchment cells", CellsCSVHeader, rows)
}

// WriteDiffCSV writes the diff's cells, one row each, under DiffCSVHeader.
func WriteDiffCSV(w io.Writer, d *Diff) error {
	rows := make([][]string, 0, len(d.Cells))
	for _, c := range d.Cells {
		changed := c.SiteA != "" && c.SiteB != "" && c.SiteA != c.SiteB
		rows = append(rows, []string{c.Cell, c.SiteA, c.SiteB, strconv.FormatBool(changed),
			strconv.Itoa(c.ProbesA), strconv.Itoa(c.ProbesB), opt(c.RTTP50A), opt(c.RTTP50B), opt(c.RTTChange)})
	}
	return writeCSV(w, "diff cells", DiffCSVHeader, rows)
}

// WriteFlowsCSV writes the diff's flows under FlowsCSVHeader.
func WriteFlowsCSV(w io.Writer, d *Diff) error {
	rows := make([][]string, 0, len(d.Flows))
	for _, f := range d.Flows {
		rows = append(rows, []string{f.From, f.To, strconv.Itoa(f.Probes)})
	}
	return writeCSV(w, "diff flows", FlowsCSVHeader, rows)
}

func writeCSV(w io.Writer, what string, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("writing %s CSV: %w", what, err)
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("writing %s CSV: %w", what, err)
	}
	return nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func opt(v *float64) string {
	if v == nil {
		return ""
	}
	return num(*v)
}

// pairs renders a map as "key:value" pairs, sorted by key.
func pairs[V any](m map[string]V, f func(V) string) string {
	ks := sortedKeys(m)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + ":" + f(m[k])
	}
	return strings.Join(parts, " ")
}
