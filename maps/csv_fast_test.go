package maps

import (
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestCSVIsEncodingCSV: the CSV writers write what encoding/csv writes of
// the rows as they were made before, on random catchments and diffs whose
// strings need quoting (commas, quotes, line breaks, leading white space,
// \.) or not.
func TestCSVIsEncodingCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	str := func() string {
		parts := []string{"", "ams", ",", "\"", "\n", "\r", " ", "\t", "\u00a0", "\u3000", `\.`, "\\", ".", "é", "\xff", "a b", "x"}
		if rng.IntN(8) == 0 {
			return `\.`
		}
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return num(*v)
	}
	pairs := func(ks []string, f func(string) string) string {
		for i, k := range ks {
			ks[i] = k + ":" + f(k)
		}
		return strings.Join(ks, " ")
	}
	encode := func(header []string, rows [][]string) []byte {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.Write(header); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for i := range 300 {
		c := randomCatchment(rng)
		for j := range c.Cells {
			cs := &c.Cells[j]
			cs.Cell, cs.Site, cs.Confidence, cs.NearestSite = str(), str(), str(), str()
			if cs.Sites != nil {
				cs.Sites[str()] = rng.IntN(9)
			}
			if cs.Shares != nil {
				cs.Shares[str()] = randomFloat(rng)
			}
		}
		var rows [][]string
		for _, cs := range c.Cells {
			rows = append(rows, []string{cs.Cell, cs.Site, num(cs.Share), strconv.Itoa(cs.Probes), strconv.Itoa(cs.Results),
				pairs(sortedKeys(cs.Sites), func(k string) string { return strconv.Itoa(cs.Sites[k]) }),
				pairs(sortedKeys(cs.Shares), func(k string) string { return num(cs.Shares[k]) }),
				opt(cs.RTTP50), opt(cs.RTTP90), num(cs.ErrorShare), cs.Confidence, opt(cs.Lat), opt(cs.Lon),
				opt(cs.SiteDistanceKm), cs.NearestSite, opt(cs.NearestDistanceKm), opt(cs.Inflation), opt(cs.NotNearestShare)})
		}
		var got bytes.Buffer
		if err := WriteCellsCSV(&got, c); err != nil {
			t.Fatal(err)
		}
		if want := encode(CellsCSVHeader, rows); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("catchment %d:\n got %q\nwant %q", i, got.Bytes(), want)
		}

		d := &Diff{}
		for range rng.IntN(5) {
			d.Cells = append(d.Cells, CellCompare{Cell: str(), SiteA: str(), SiteB: str(), ProbesA: rng.IntN(9) - 2, ProbesB: rng.IntN(9),
				RTTP50A: randomOpt(rng), RTTP50B: randomOpt(rng), RTTChange: randomOpt(rng)})
			d.Flows = append(d.Flows, Flow{From: str(), To: str(), Probes: rng.IntN(100)})
		}
		rows = nil
		for _, c := range d.Cells {
			changed := c.SiteA != "" && c.SiteB != "" && c.SiteA != c.SiteB
			rows = append(rows, []string{c.Cell, c.SiteA, c.SiteB, strconv.FormatBool(changed),
				strconv.Itoa(c.ProbesA), strconv.Itoa(c.ProbesB), opt(c.RTTP50A), opt(c.RTTP50B), opt(c.RTTChange)})
		}
		got.Reset()
		if err := WriteDiffCSV(&got, d); err != nil {
			t.Fatal(err)
		}
		if want := encode(DiffCSVHeader, rows); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("diff %d:\n got %q\nwant %q", i, got.Bytes(), want)
		}
		rows = nil
		for _, f := range d.Flows {
			rows = append(rows, []string{f.From, f.To, strconv.Itoa(f.Probes)})
		}
		got.Reset()
		if err := WriteFlowsCSV(&got, d); err != nil {
			t.Fatal(err)
		}
		if want := encode(FlowsCSVHeader, rows); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("flows %d:\n got %q\nwant %q", i, got.Bytes(), want)
		}
	}
}
