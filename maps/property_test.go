package maps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// randomRecords makes n records from probes scattered over a few regions,
// with failures, suspects, unlocated probes and flips.
func randomRecords(rng *rand.Rand, n, probes int) []result.Record {
	sites := []string{"ams", "fra", "lhr", "sin", "iad", "syd", "akl", "nrt"}
	type pr struct {
		lat, lon float64
		located  bool
		asn      uint32
		country  string
		home     string
	}
	ps := make([]pr, probes)
	for i := range ps {
		ps[i] = pr{lat: rng.Float64()*160 - 80, lon: rng.Float64()*360 - 180, located: rng.IntN(10) > 0,
			asn: uint32(rng.IntN(20)), country: []string{"", "NL", "DE", "US", "JP"}[rng.IntN(5)],
			home: sites[rng.IntN(len(sites))]}
		// Cluster half the probes so cells hold several of them.
		if i%2 == 0 {
			ps[i].lat, ps[i].lon = 52+rng.Float64(), 4+rng.Float64()
		}
	}
	recs := make([]result.Record, n)
	for i := range recs {
		j := rng.IntN(probes)
		p := ps[j]
		r := result.Record{
			ID: fmt.Sprint(i), Probe: fmt.Sprintf("p%04d", j), Target: "t",
			Time:  t0.Add(time.Duration(rng.IntN(3600)) * time.Second),
			RTTMs: 1 + rng.Float64()*100, ASN: p.asn, Country: p.country, Site: p.home,
		}
		if p.located {
			r.Lat, r.Lon = ptr(p.lat), ptr(p.lon)
		}
		switch k := rng.IntN(20); {
		case k == 0:
			r.Site, r.Error, r.ErrorKind = "", "timeout", result.KindTimeout
		case k == 1:
			r.Suspect = true
		case k < 5:
			r.Site = sites[rng.IntN(len(sites))]
		}
		recs[i] = r
	}
	return recs
}

func TestSharesSumToOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20 {
		o := Options{Res: 1 + i%7, By: []string{ByH3, ByCountry, ByASN}[i%3],
			Weights: Weights{ByASN: map[uint32]float64{1: 0.1, 2: 3.7, 3: 1e-3}}}
		c, err := Compute(randomRecords(rng, 2000, 200), o, testSites)
		if err != nil {
			t.Fatal(err)
		}
		var siteSum float64
		for _, s := range c.Sites {
			siteSum += s.Share
		}
		if math.Abs(siteSum-1) > 1e-9 {
			t.Errorf("site shares sum to %v", siteSum)
		}
		for _, cs := range c.Cells {
			if cs.Probes == 0 {
				continue
			}
			var sum float64
			n := 0
			for s, v := range cs.Shares {
				sum += v
				n += cs.Sites[s]
				if v > cs.Share {
					t.Errorf("cell %s: site %s has share %v above the dominant %v", cs.Cell, s, v, cs.Share)
				}
			}
			if math.Abs(sum-1) > 1e-9 || n != cs.Probes {
				t.Errorf("cell %s: shares sum to %v, probes %d of %d", cs.Cell, sum, n, cs.Probes)
			}
		}
	}
}

func TestDiffWithItselfIsEmpty(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c, err := Compute(randomRecords(rng, 5000, 300), Options{}, testSites)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Compare(c, c)
	if err != nil {
		t.Fatal(err)
	}
	if d.MovedProbes != 0 || d.MovedShare != 0 || len(d.Flows) != 0 || len(d.CellsChanged) != 0 || d.Probes == 0 {
		t.Errorf("diff with itself: moved %d (%v) flows %v cells %v of %d probes", d.MovedProbes, d.MovedShare, d.Flows, d.CellsChanged, d.Probes)
	}
	for _, s := range d.Sites {
		if s.ShareA != s.ShareB {
			t.Errorf("site %+v changed share", s)
		}
	}
	for _, cc := range d.Cells {
		if cc.RTTChange != nil && *cc.RTTChange != 0 {
			t.Errorf("cell %+v changed RTT", cc)
		}
	}
}

// TestOrderInvariant: the same records in any order, fed in one batch or
// streamed, give the same catchment and timeline.
func TestOrderInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	recs := randomRecords(rng, 3000, 150)
	// Same-time records with different sites and places exercise the ties.
	for i := 0; i+1 < len(recs); i += 50 {
		recs[i+1].Time, recs[i+1].Probe = recs[i].Time, recs[i].Probe
	}
	o := Options{Weights: Weights{ByASN: map[uint32]float64{4: 0.3, 5: 2.9}}}
	to := TimelineOptions{From: t0, To: t0.Add(time.Hour), Step: 5 * time.Minute, Weights: o.Weights}
	want := encodeAll(t, recs, o, to)
	for range 5 {
		rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		if got := encodeAll(t, recs, o, to); got != want {
			t.Fatal("a shuffled copy of the records gives another catchment or timeline")
		}
	}
}

func encodeAll(t *testing.T, recs []result.Record, o Options, to TimelineOptions) string {
	t.Helper()
	c, err := Compute(recs, o, testSites)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := ComputeTimeline(recs, to)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode([]any{c, tl}); err != nil {
		t.Fatal(err)
	}
	if err := WriteGeoJSON(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestChattyProbeCannotOutvoteRegion(t *testing.T) {
	var recs []result.Record
	add := func(probe, site string, n int) {
		for i := range n {
			recs = append(recs, result.Record{Probe: probe, Target: "t", Site: site, RTTMs: 5,
				Time: t0.Add(time.Duration(i) * time.Second), Lat: ptr(48.85), Lon: ptr(2.35)})
		}
	}
	add("quiet1", "cdg", 1)
	add("quiet2", "cdg", 1)
	add("quiet3", "cdg", 2)
	add("chatty", "lhr", 1000)
	c, err := Compute(recs, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cells) != 1 || c.Cells[0].Site != "cdg" || c.Cells[0].Share != 0.75 || c.Cells[0].Results != 1004 {
		t.Errorf("cells = %+v, want one cell on cdg with 3 of 4 probes", c.Cells)
	}
	if c.Cells[0].Confidence != ConfidenceLow {
		t.Error("a 75% cell must have low confidence at the default dominance 0.8")
	}
	// Weighting the chatty probe's AS lets it count for more, on purpose.
	recs[len(recs)-1].ASN = 64500
	c, err = Compute(recs, Options{Weights: Weights{ByASN: map[uint32]float64{64500: 4}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cells[0].Site != "lhr" || c.Cells[0].Share != 4.0/7 || c.Cells[0].Sites["lhr"] != 1 {
		t.Errorf("weighted cell = %+v, want lhr with share 4/7 and 1 probe", c.Cells[0])
	}
}

func TestProbeTieGoesToMostRecent(t *testing.T) {
	recs := []result.Record{
		{Probe: "p", Site: "b", Time: t0.Add(2 * time.Minute)},
		{Probe: "p", Site: "a", Time: t0},
		{Probe: "p", Site: "a", Time: t0.Add(time.Minute)},
		{Probe: "p", Site: "b", Time: t0.Add(3 * time.Minute)},
	}
	c, err := Compute(recs, Options{By: ByCountry}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProbeList[0].Site != "b" || len(c.Flips) != 1 || c.Cells[0].Cell != UnknownCountry {
		t.Errorf("probe = %+v, flips %v, cells %v: want site b (latest of a 2-2 tie), one flip, cell ??", c.ProbeList[0], c.Flips, c.Cells)
	}
}

func TestBadInput(t *testing.T) {
	for _, in := range []struct {
		lat, lon float64
		res      int
	}{
		{91, 0, 3}, {-90.0001, 0, 3}, {0, 180.5, 3}, {0, -181, 3}, {math.NaN(), 0, 3}, {0, math.Inf(1), 3},
		{0, 0, -1}, {0, 0, 8},
	} {
		if _, err := Cell(in.lat, in.lon, in.res); err == nil {
			t.Errorf("Cell(%v, %v, %d): no error", in.lat, in.lon, in.res)
		}
	}
	for _, edge := range [][2]float64{{90, 180}, {-90, -180}, {0, 0}} {
		if _, err := Cell(edge[0], edge[1], 0); err != nil {
			t.Errorf("Cell(%v): %v", edge, err)
		}
	}
	for _, o := range []Options{
		{Res: 8}, {Res: -2}, {By: "city"}, {MinProbes: -1}, {Dominance: 1.5}, {Dominance: -0.1},
		{From: t0, To: t0},
		{Weights: Weights{ByASN: map[uint32]float64{1: 0}}},
		{Weights: Weights{ByProbe: map[string]float64{"p": math.NaN()}}},
		{Weights: Weights{ByProbe: map[string]float64{"p": math.Inf(1)}}},
	} {
		if _, err := NewBuilder(o, nil); err == nil {
			t.Errorf("NewBuilder(%+v): no error", o)
		}
	}
	for _, o := range []TimelineOptions{
		{}, {From: t0}, {From: t0, To: t0}, {From: t0, To: t0.Add(time.Hour), Step: time.Millisecond},
		{From: t0, To: t0.Add(time.Hour), Threshold: 2},
		{From: t0, To: t0.Add(365 * 24 * time.Hour), Step: time.Minute},
	} {
		if _, err := NewTimelineBuilder(o); err == nil {
			t.Errorf("NewTimelineBuilder(%+v): no error", o)
		}
	}
	// Records with impossible places count as unlocated, not as errors.
	c, err := Compute([]result.Record{{Probe: "p", Site: "a", Lat: ptr(100.0), Lon: ptr(0.0)}}, Options{Res: ResBase}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Unlocated != 1 || len(c.Cells) != 0 || c.Resolution != 0 {
		t.Errorf("bad place: unlocated %d, cells %v, res %d", c.Unlocated, c.Cells, c.Resolution)
	}
}

func TestGeoJSONRejectsNonH3Cells(t *testing.T) {
	c := &Catchment{By: ByH3, Cells: []CellStat{{Cell: "NL"}}}
	var buf strings.Builder
	if err := WriteGeoJSON(&buf, c); err == nil {
		t.Error("no error for a non-H3 cell in an H3 catchment")
	}
}

// TestBuilderKeepsNoRecord feeds every record through one reused variable,
// as a store's Scan does, and expects what Compute gives.
func TestBuilderKeepsNoRecord(t *testing.T) {
	recs := fixture()
	b, err := NewBuilder(windowA(), testSites)
	if err != nil {
		t.Fatal(err)
	}
	var r result.Record
	var lat, lon float64
	for _, x := range recs {
		r = x
		if x.Lat != nil {
			lat, lon = *x.Lat, *x.Lon
			r.Lat, r.Lon = &lat, &lon
		}
		b.Add(&r)
	}
	r = result.Record{}
	lat, lon = 0, 0
	got, err := json.Marshal(b.Build())
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(compute(t, windowA()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("streamed catchment differs:\n%s\nwant\n%s", got, want)
	}
}
