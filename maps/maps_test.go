package maps

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (run go test ./maps -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./maps -update\ngot:\n%s", name, got)
	}
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func windowA() Options {
	return Options{Target: "k-root", From: t0, To: t0.Add(10 * time.Minute)}
}

func windowB() Options {
	return Options{Target: "k-root", From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute)}
}

func compute(t *testing.T, o Options) *Catchment {
	t.Helper()
	c, err := Compute(fixture(), o, testSites)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGolden(t *testing.T) {
	a := compute(t, windowA())
	golden(t, "catchment.json", jsonOf(t, a))

	var buf bytes.Buffer
	if err := WriteCellsCSV(&buf, a); err != nil {
		t.Fatal(err)
	}
	golden(t, "catchment.csv", buf.Bytes())

	buf.Reset()
	if err := WriteGeoJSON(&buf, a); err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, buf.Bytes(), "", " "); err != nil {
		t.Fatal(err)
	}
	golden(t, "catchment.geojson", append(pretty.Bytes(), '\n'))

	d, err := Compare(a, compute(t, windowB()))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.json", jsonOf(t, d))
	buf.Reset()
	if err := WriteDiffCSV(&buf, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.csv", buf.Bytes())
	buf.Reset()
	if err := WriteFlowsCSV(&buf, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "flows.csv", buf.Bytes())

	tl, err := ComputeTimeline(fixture(), TimelineOptions{Target: "k-root", From: t0, To: t0.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "timeline.json", jsonOf(t, tl))

	for _, by := range []string{ByCountry, ByASN} {
		o := windowA()
		o.By = by
		golden(t, "catchment-"+by+".json", jsonOf(t, compute(t, o)))
	}
}

// TestCatchmentFacts checks the fixture's story, so the golden files are
// not merely whatever the code printed.
func TestCatchmentFacts(t *testing.T) {
	a := compute(t, windowA())
	if a.Probes != len(fixtureProbes) || a.Unlocated != 1 || a.Unserved != 1 {
		t.Errorf("probes %d unlocated %d unserved %d; want %d 1 1", a.Probes, a.Unlocated, a.Unserved, len(fixtureProbes))
	}
	if want := 10 * (len(fixtureProbes) + 4); a.Results != want {
		t.Errorf("results = %d, want %d", a.Results, want)
	}
	berlin := cellOf(t, a, 52.52, 13.40)
	if berlin.Site != "fra" || berlin.Probes != 3 || berlin.Sites["ams"] != 1 || berlin.Confidence != ConfidenceLow {
		t.Errorf("Berlin cell: the chatty probe must not outvote the two fra probes: %+v", berlin)
	}
	ams := cellOf(t, a, 52.37, 4.90)
	if ams.Site != "ams" || ams.Probes != 4 || ams.Confidence != ConfidenceHigh || ams.Results != 50 || ams.ErrorShare != 11.0/50 {
		t.Errorf("Amsterdam cell: %+v", ams)
	}
	if len(a.Flips) != 1 || a.Flips[0].Probe != "p-par1" || a.Flips[0].Site != "lhr" || a.Flips[0].Sites["ams"] != 2 {
		t.Errorf("flips = %+v, want p-par1 on lhr with 2 results from ams", a.Flips)
	}
	if len(a.LocationSuspects) != 1 || a.LocationSuspects[0].Probe != "p-liar" {
		t.Errorf("location suspects = %+v, want p-liar", a.LocationSuspects)
	}
	for _, s := range a.Sites {
		if s.Site == "nrt" && (s.Lat != nil || s.Probes != 1) {
			t.Errorf("nrt is unknown to the locator: %+v", s)
		}
	}
	if a.Sites[0].Site != "ams" {
		t.Errorf("largest site = %s, want ams", a.Sites[0].Site)
	}
}

func cellOf(t *testing.T, c *Catchment, lat, lon float64) CellStat {
	t.Helper()
	h, err := Cell(lat, lon, c.Resolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range c.Cells {
		if cs.Cell == h.String() {
			return cs
		}
	}
	t.Fatalf("no cell %s for %v,%v", h, lat, lon)
	return CellStat{}
}

func TestDiffFacts(t *testing.T) {
	d, err := Compare(compute(t, windowA()), compute(t, windowB()))
	if err != nil {
		t.Fatal(err)
	}
	// p-ams3, p-ams4 went to fra; p-ber2 to ams; p-par1 stayed on lhr.
	if d.MovedProbes != 3 || d.Probes != 16 || math.Abs(d.MovedShare-3.0/16) > 1e-12 {
		t.Errorf("moved %d of %d (%v), want 3 of 16", d.MovedProbes, d.Probes, d.MovedShare)
	}
	want := []Flow{{From: "ams", To: "fra", Probes: 2}, {From: "fra", To: "ams", Probes: 1}}
	if len(d.Flows) != 2 || d.Flows[0] != want[0] || d.Flows[1] != want[1] {
		t.Errorf("flows = %+v, want %+v", d.Flows, want)
	}
	// Berlin: p-ber2 joins the chatty p-ber3 on ams, which now has 2 of 3.
	berlin, _ := Cell(52.52, 13.40, DefaultRes)
	if len(d.CellsChanged) != 1 || d.CellsChanged[0] != (CellChange{Cell: berlin.String(), From: "fra", To: "ams"}) {
		t.Errorf("cells changed = %+v, want Berlin fra -> ams", d.CellsChanged)
	}
	o := windowA()
	o.By = ByCountry
	a := compute(t, o)
	o.By = ByASN
	if _, err := Compare(a, compute(t, o)); err == nil {
		t.Error("comparing a country map with an ASN map: no error")
	}
}

func TestTimelineFacts(t *testing.T) {
	tl, err := ComputeTimeline(fixture(), TimelineOptions{Target: "k-root", From: t0, To: t0.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Steps) != 20 {
		t.Fatalf("%d steps, want 20", len(tl.Steps))
	}
	// p-par1's ams minutes (3, 6) and their returns are shifts of 1/16 (1/15
	// at 10:04, as p-ams1 failed at 10:04) >= 5%,
	// and at 10:10 three probes moved.
	var times []string
	for _, s := range tl.Shifts {
		times = append(times, s.Time.Format("15:04"))
	}
	if got := len(times); got != 5 || times[4] != "10:10" || tl.Shifts[4].MovedShare != 3.0/16 {
		t.Errorf("shifts at %v (%+v), want 10:03 10:04 10:06 10:07 10:10", times, tl.Shifts)
	}
}
