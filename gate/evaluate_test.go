package gate

import (
	"fmt"
	stdmaps "maps"
	"slices"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/maps"
)

// probe makes a located probe; loc is "country lat lon".
func probe(id, site string, rtt float64, country string, lat, lon float64) SnapshotProbe {
	p := SnapshotProbe{ID: id, Site: site, Country: country, Lat: ptr(lat), Lon: ptr(lon), Results: 10}
	if site != "" {
		p.RTTMs = ptr(rtt)
	}
	return p
}

// snap builds a snapshot from its probes as FromCatchment would count them.
func snap(errorShare float64, ps ...SnapshotProbe) *Snapshot {
	s := &Snapshot{Version: SnapshotVersion, Target: "ns.example", Resolution: 3, ProbeCount: len(ps), Probes: ps, ErrorShare: errorShare}
	n := map[string]int{}
	for _, p := range ps {
		s.Results += p.Results
		if p.Site != "" {
			s.Served++
			n[p.Site]++
		}
	}
	for _, code := range slices.Sorted(stdmaps.Keys(n)) {
		s.Sites = append(s.Sites, SnapshotSite{Site: code, Probes: n[code], Share: round6(float64(n[code]) / float64(s.Served))})
	}
	s.sort()
	return s
}

// crowd makes n probes near Amsterdam, the first k on site a, the rest on b.
func crowd(n, k int, a, b string, rtt float64) []SnapshotProbe {
	var ps []SnapshotProbe
	for i := range n {
		site := b
		if i < k {
			site = a
		}
		ps = append(ps, probe(fmt.Sprintf("p%03d", i), site, rtt, "NL", 52.37, 4.90))
	}
	return ps
}

func one(t *testing.T, base, cur *Snapshot, r Rule) Outcome {
	t.Helper()
	if err := r.validate(); err != nil {
		t.Fatalf("bad rule in test: %v", err)
	}
	rep := Evaluate(base, cur, []Rule{r})
	if len(rep.Outcomes) != 1 {
		t.Fatalf("%d outcomes for one rule", len(rep.Outcomes))
	}
	if rep.Status != rep.Outcomes[0].Status {
		t.Errorf("report status %s, rule status %s: one rule decides", rep.Status, rep.Outcomes[0].Status)
	}
	return rep.Outcomes[0]
}

func check(t *testing.T, o Outcome, want Status, measured string) {
	t.Helper()
	if o.Status != want || !strings.Contains(o.Measured, measured) {
		t.Errorf("%s: status %s measured %q (detail %q); want %s, measured containing %q", o.Rule, o.Status, o.Measured, o.Detail, want, measured)
	}
	if o.Status != Pass && o.Detail == "" {
		t.Errorf("%s: %s without a detail saying why", o.Rule, o.Status)
	}
}

func TestMaxMovedShare(t *testing.T) {
	base := snap(0, crowd(100, 100, "ams", "fra", 5)...)
	rule := Rule{MaxMovedShare: ptr(0.05)}
	for _, tc := range []struct {
		moved int
		want  Status
		say   string
	}{
		{0, Pass, "0.0% (0 of 100 probes)"},
		{4, Pass, "4.0% (4 of 100 probes)"},
		{5, Pass, "5.0% (5 of 100 probes)"}, // the limit is inclusive
		{6, Fail, "6.0% (6 of 100 probes)"},
	} {
		o := one(t, base, snap(0, crowd(100, 100-tc.moved, "ams", "fra", 5)...), rule)
		check(t, o, tc.want, tc.say)
		if tc.want == Fail && !strings.Contains(o.Detail, fmt.Sprintf("ams->fra %d", tc.moved)) {
			t.Errorf("detail %q does not say what moved where", o.Detail)
		}
	}
	// Probes in only one window cannot move: no probe in both is no verdict.
	other := snap(0, probe("elsewhere", "ams", 5, "NL", 52, 4))
	check(t, one(t, base, other, rule), Error, "no probe in both")
}

func TestSiteShare(t *testing.T) {
	base := snap(0, crowd(100, 40, "ams", "fra", 5)...)
	rule := Rule{SiteShare: &SiteShare{Site: "ams", Min: ptr(0.30), Max: ptr(0.50)}}
	for _, tc := range []struct {
		ams  int
		want Status
		say  string
	}{
		{30, Pass, "30.0% (30 probes)"},
		{50, Pass, "50.0%"},
		{29, Fail, "29.0%"},
		{51, Fail, "51.0%"},
		{0, Fail, "0.0% (0 probes)"}, // gone entirely
	} {
		o := one(t, base, snap(0, crowd(100, tc.ams, "ams", "fra", 5)...), rule)
		check(t, o, tc.want, tc.say)
		if tc.want == Fail && !strings.Contains(o.Detail, "40.0% in the baseline") {
			t.Errorf("detail %q does not give the baseline share", o.Detail)
		}
	}
	onlyMax := Rule{SiteShare: &SiteShare{Site: "fra", Max: ptr(0.5)}}
	check(t, one(t, base, base, onlyMax), Fail, "60.0%")
	check(t, one(t, base, snap(0, probe("x", "", 0, "NL", 52, 4)), onlyMax), Error, "no served probe")
}

// Europe in miniature: Amsterdam, Utrecht, Berlin, Munich, London.
func europe(ber, muc, ams string) *Snapshot {
	return snap(0,
		probe("ams1", ams, 3, "NL", 52.37, 4.90),
		probe("utr1", "ams", 4, "NL", 52.09, 5.12),
		probe("ber1", ber, 11, "DE", 52.52, 13.40),
		probe("muc1", muc, 9, "DE", 48.14, 11.58),
		probe("lon1", "lhr", 2, "GB", 51.51, -0.13),
	)
}

func TestRegionCountry(t *testing.T) {
	base := europe("fra", "fra", "ams")
	de := &Region{Country: "DE", ServedBy: []string{"ams", "fra"}}
	check(t, one(t, base, europe("ams", "fra", "ams"), Rule{Region: de}), Pass, "100.0% (2 of 2 probes)")
	o := one(t, base, europe("lhr", "fra", "ams"), Rule{Region: de})
	check(t, o, Fail, "50.0% (1 of 2 probes)")
	if !strings.Contains(o.Detail, "ber1 (lhr)") {
		t.Errorf("detail %q does not name the probe that left", o.Detail)
	}
	if o.Rule != "region country DE" || o.Limit != ">= 100.0% on ams, fra" {
		t.Errorf("label %q limit %q", o.Rule, o.Limit)
	}
	half := &Region{Country: "DE", ServedBy: []string{"ams", "fra"}, Fraction: ptr(0.5)}
	check(t, one(t, base, europe("lhr", "fra", "ams"), Rule{Region: half}), Pass, "50.0%")
	nobody := &Region{Country: "FR", ServedBy: []string{"cdg"}}
	check(t, one(t, base, base, Rule{Region: nobody}), Error, "no probe in region")
}

func TestRegionNear(t *testing.T) {
	base := europe("fra", "fra", "ams")
	// 100 km around Amsterdam holds ams1 and utr1, not Berlin.
	near := &Region{Near: &Near{Lat: ptr(52.37), Lon: ptr(4.90), Km: 100}, ServedBy: []string{"ams"}}
	check(t, one(t, base, europe("lhr", "lhr", "ams"), Rule{Region: near}), Pass, "2 of 2 probes")
	check(t, one(t, base, europe("fra", "fra", "lhr"), Rule{Region: near}), Fail, "1 of 2 probes")
	// 600 km reaches Berlin (about 575 km) and London (about 360 km) but
	// not Munich (about 660 km).
	wide := &Region{Near: &Near{Lat: ptr(52.37), Lon: ptr(4.90), Km: 600}, ServedBy: []string{"ams"}}
	check(t, one(t, base, europe("fra", "lhr", "ams"), Rule{Region: wide}), Fail, "2 of 4 probes")
	// Unlocated probes are in no circle.
	cur := europe("fra", "fra", "ams")
	cur.Probes[0].Lat, cur.Probes[0].Lon = nil, nil
	check(t, one(t, base, cur, Rule{Region: near}), Pass, "1 of 1 probes")
}

func TestRegionCells(t *testing.T) {
	base := europe("fra", "fra", "ams")
	// 831f8dfffffffff is Munich's cell at resolution 3 (see the snapshot
	// golden file).
	munich := &Region{Cells: []string{"831f8dfffffffff"}, ServedBy: []string{"fra"}}
	check(t, one(t, base, base, Rule{Region: munich}), Pass, "1 of 1 probes")
	check(t, one(t, base, europe("fra", "lhr", "ams"), Rule{Region: munich}), Fail, "0 of 1 probes")
	coarse, err := maps.Cell(48.14, 11.58, 1)
	if err != nil {
		t.Fatal(err)
	}
	wide := &Region{Cells: []string{coarse.String()}, ServedBy: []string{"fra"}}
	check(t, one(t, base, europe("fra", "lhr", "ams"), Rule{Region: wide}), Fail, "0 of 1 probes")
	both := &Region{Cells: []string{"831f8dfffffffff", "831f1dfffffffff"}, ServedBy: []string{"fra"}}
	check(t, one(t, base, europe("ams", "fra", "ams"), Rule{Region: both}), Fail, "1 of 2 probes")
}

func TestP50Rise(t *testing.T) {
	base := snap(0, crowd(10, 10, "ams", "fra", 10)...)
	ms := Rule{P50Rise: &P50Rise{MaxMs: ptr(10.0)}}
	check(t, one(t, base, snap(0, crowd(10, 10, "ams", "fra", 20)...), ms), Pass, "+10.0 ms")
	check(t, one(t, base, snap(0, crowd(10, 10, "ams", "fra", 20.1)...), ms), Fail, "+10.1 ms")
	check(t, one(t, base, snap(0, crowd(10, 10, "ams", "fra", 4)...), ms), Pass, "-6.0 ms")
	pct := Rule{P50Rise: &P50Rise{MaxPct: ptr(20.0)}}
	check(t, one(t, base, snap(0, crowd(10, 10, "ams", "fra", 11.9)...), pct), Pass, "+1.9 ms, +19.0%")
	o := one(t, base, snap(0, crowd(10, 10, "ams", "fra", 12.1)...), pct)
	check(t, o, Fail, "+21.0%")
	if !strings.Contains(o.Detail, "rose 21.0%, more than 20%") {
		t.Errorf("detail %q", o.Detail)
	}
	bothLimits := Rule{P50Rise: &P50Rise{MaxMs: ptr(1.0), MaxPct: ptr(50.0)}}
	check(t, one(t, base, snap(0, crowd(10, 10, "ams", "fra", 12)...), bothLimits), Fail, "+2.0 ms")
	// Only probes in both windows count: a slow newcomer does not raise p50.
	cur := snap(0, append(crowd(10, 10, "ams", "fra", 10), probe("new", "ams", 500, "NL", 52, 4))...)
	check(t, one(t, base, cur, ms), Pass, "+0.0 ms (10.0 ms -> 10.0 ms, 10 probes)")
	check(t, one(t, base, snap(0, probe("x", "ams", 5, "NL", 52, 4)), ms), Error, "no RTT in both")
}

func TestMinProbesAndErrorShare(t *testing.T) {
	base := snap(0, crowd(10, 10, "ams", "fra", 10)...)
	check(t, one(t, base, base, Rule{MinProbes: ptr(10)}), Pass, "10 probes (baseline 10)")
	o := one(t, base, snap(0, crowd(9, 9, "ams", "fra", 10)...), Rule{MinProbes: ptr(10)})
	check(t, o, Error, "9 probes")
	if !strings.Contains(o.Detail, "too few probes to judge: the current window has 9 probes with results, fewer than 10") {
		t.Errorf("detail %q", o.Detail)
	}
	errs := Rule{MaxErrorShare: ptr(0.05)}
	check(t, one(t, base, snap(0.05, crowd(10, 10, "ams", "fra", 10)...), errs), Pass, "5.0% of 100 results")
	check(t, one(t, base, snap(0.06, crowd(10, 10, "ams", "fra", 10)...), errs), Fail, "6.0%")
	check(t, one(t, base, &Snapshot{}, errs), Error, "no results")
}

// Too few probes makes the whole check unjudgeable, even with a failure;
// otherwise a failure outranks a rule that could not be judged.
func TestReportStatus(t *testing.T) {
	base := snap(0, crowd(10, 10, "ams", "fra", 10)...)
	cur := snap(0, crowd(10, 0, "ams", "fra", 10)...)
	fail := Rule{MaxMovedShare: ptr(0.05)}
	unjudged := Rule{Region: &Region{Country: "FR", ServedBy: []string{"cdg"}}}
	for _, tc := range []struct {
		rules []Rule
		want  Status
	}{
		{[]Rule{{MaxErrorShare: ptr(0.05)}}, Pass},
		{[]Rule{fail, unjudged}, Fail},
		{[]Rule{unjudged, {MaxErrorShare: ptr(0.05)}}, Error},
		{[]Rule{fail, {MinProbes: ptr(11)}}, Error},
	} {
		rep := Evaluate(base, cur, tc.rules)
		if rep.Status != tc.want {
			t.Errorf("rules %+v: status %s, want %s", tc.rules, rep.Status, tc.want)
		}
	}
	rep := Evaluate(base, cur, DefaultRules())
	if rep.Common != 10 || rep.Moved != 10 || len(rep.Flows) != 1 || rep.Flows[0].From != "ams" || rep.Flows[0].To != "fra" {
		t.Errorf("moves: common %d moved %d flows %+v", rep.Common, rep.Moved, rep.Flows)
	}
}
