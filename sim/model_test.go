package sim

import (
	"math"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"
)

// t0 is a fixed clock for deterministic records.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newModel(t *testing.T, cfg Config) *Model {
	t.Helper()
	m, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func catchment(m *Model) []string {
	out := make([]string, len(m.probes))
	for i := range m.probes {
		out[i] = m.SiteOf(i)
	}
	return out
}

func TestModelShape(t *testing.T) {
	m := newModel(t, Config{Seed: 1})
	if got := len(m.Probes()); got != DefaultProbes {
		t.Fatalf("probes = %d, want %d", got, DefaultProbes)
	}
	if n := m.ASNs(); n < 100 || n > 400 {
		t.Errorf("networks = %d, want a few hundred", n)
	}
	continents := map[string]bool{}
	for _, s := range m.Sites() {
		continents[continent(s.Lat, s.Lon)] = true
	}
	if len(m.Sites()) < 8 || len(continents) < 5 {
		t.Errorf("%d sites on %d continents, want >= 8 on >= 5", len(m.Sites()), len(continents))
	}
	names := map[string]bool{}
	byASN := map[uint32][]Probe{}
	for _, p := range m.Probes() {
		if names[p.Name] {
			t.Errorf("duplicate probe name %s", p.Name)
		}
		names[p.Name] = true
		if !(p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180) || p.Country == "" {
			t.Errorf("probe %s: bad place %v,%v %q", p.Name, p.Lat, p.Lon, p.Country)
		}
		if p.Interval < 10*time.Second || p.Interval > 30*time.Second || p.Offset < 0 || p.Offset >= p.Interval {
			t.Errorf("probe %s: interval %s offset %s", p.Name, p.Interval, p.Offset)
		}
		byASN[p.ASN] = append(byASN[p.ASN], p)
	}
	// Probes of one network are near each other: most pairs within a few
	// thousand km (networks in sparse regions reach further).
	var near, pairs int
	for _, ps := range byASN {
		for i := 1; i < len(ps); i++ {
			pairs++
			if DistanceKm(ps[0].Lat, ps[0].Lon, ps[i].Lat, ps[i].Lon) < 3000 {
				near++
			}
		}
	}
	if float64(near) < 0.8*float64(pairs) {
		t.Errorf("only %d of %d same-network probe pairs are within 3000 km", near, pairs)
	}
	served := map[string]int{}
	for _, s := range catchment(m) {
		served[s]++
	}
	if len(served) != len(m.Sites()) {
		t.Errorf("sites serving probes: %v, want all %d", served, len(m.Sites()))
	}
}

// continent is a rough box test, enough to tell the default sites apart.
func continent(lat, lon float64) string {
	switch {
	case lon < -30 && lat > 12:
		return "north america"
	case lon < -30:
		return "south america"
	case lon < 60 && lat > 35:
		return "europe"
	case lon < 60:
		return "africa"
	case lat < -10:
		return "oceania"
	}
	return "asia"
}

func TestDeterministic(t *testing.T) {
	a, b := newModel(t, Config{Seed: 7, Probes: 300}), newModel(t, Config{Seed: 7, Probes: 300})
	if !reflect.DeepEqual(a.Probes(), b.Probes()) {
		t.Fatal("same seed, different fleets")
	}
	for i := range a.probes {
		ra, rb := a.Measure(i, t0.Add(time.Duration(i)*time.Second)), b.Measure(i, t0.Add(time.Duration(i)*time.Second))
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("probe %d: same seed and time, different records:\n%+v\n%+v", i, ra, rb)
		}
	}
	c := newModel(t, Config{Seed: 8, Probes: 300})
	if reflect.DeepEqual(a.Probes(), c.Probes()) {
		t.Error("different seeds, same fleet")
	}
	if r1, r2 := a.Measure(0, t0), a.Measure(0, t0.Add(time.Second)); r1.ID == r2.ID {
		t.Error("two measurements share an id")
	}
}

func TestWithdrawMovesExactlyItsProbes(t *testing.T) {
	m := newModel(t, Config{Seed: 3})
	before := catchment(m)
	if !slices.Contains(before, "fra") {
		t.Fatal("no probe on fra before the withdrawal")
	}
	if err := m.Withdraw("fra"); err != nil {
		t.Fatal(err)
	}
	after := catchment(m)
	for i := range before {
		switch {
		case before[i] == "fra" && after[i] == "fra":
			t.Errorf("probe %d still on fra after its withdrawal", i)
		case before[i] != "fra" && after[i] != before[i]:
			t.Errorf("probe %d moved from %s to %s, but only fra was withdrawn", i, before[i], after[i])
		}
	}
	for i := range 50 {
		if r := m.Measure(i, t0); r.Site == "fra" {
			t.Errorf("probe %d measured fra after its withdrawal", i)
		}
	}
	m.Restore()
	if !reflect.DeepEqual(catchment(m), before) {
		t.Error("restore did not bring back the catchment")
	}
}

func TestWithdrawLastSiteRefused(t *testing.T) {
	m := newModel(t, Config{Seed: 1, Probes: 10, Sites: []string{"ams", "sin"}})
	if err := m.Withdraw("ams"); err != nil {
		t.Fatal(err)
	}
	if err := m.Withdraw("sin"); err == nil {
		t.Error("withdrawing the last site succeeded")
	}
	if err := m.Withdraw("xyz"); err == nil {
		t.Error("withdrawing an unknown site succeeded")
	}
}

func TestPrependMovesAShareOfItsProbes(t *testing.T) {
	m := newModel(t, Config{Seed: 5})
	before := catchment(m)
	if err := m.Prepend("iad", 3); err != nil {
		t.Fatal(err)
	}
	after := catchment(m)
	var had, stayed int
	for i := range before {
		if before[i] != "iad" {
			if after[i] != before[i] {
				t.Errorf("probe %d moved from %s, but only iad was prepended", i, before[i])
			}
			continue
		}
		had++
		if after[i] == "iad" {
			stayed++
		}
	}
	if moved := had - stayed; had == 0 || moved == 0 || moved < had/2 {
		t.Errorf("prepend x3: %d of %d iad probes stayed; want most, not all, to move", stayed, had)
	}
	if !reflect.DeepEqual(after, catchment(m)) {
		t.Error("the same prepend moved different probes")
	}
	if err := m.Prepend("iad", 11); err == nil {
		t.Error("prepend x11 accepted")
	}
}

func TestNearestMostly(t *testing.T) {
	m := newModel(t, Config{Seed: 1})
	var nearest int
	for i, p := range m.probes {
		if m.sites[m.byDistance(p.Lat, p.Lon)[0]].Code == m.SiteOf(i) {
			nearest++
		}
	}
	if share := float64(nearest) / float64(len(m.probes)); share < 0.5 || share > 0.9 {
		t.Errorf("%.2f of probes reach their nearest site; the model wants most, not all", share)
	}
}

// TestRTTAboveFibreBound checks every successful measurement against light
// in fibre (computed here independently of the model's helper).
func TestRTTAboveFibreBound(t *testing.T) {
	m := newModel(t, Config{Seed: 2})
	sites := map[string]Site{}
	for _, s := range m.Sites() {
		sites[s.Code] = s
	}
	var ok, failed int
	for i := range m.probes {
		for k := range 5 {
			r := m.Measure(i, t0.Add(time.Duration(k)*17*time.Second))
			if !r.OK() {
				failed++
				if r.Site != "" || r.ErrorKind == "" {
					t.Errorf("failed record with site %q kind %q", r.Site, r.ErrorKind)
				}
				continue
			}
			ok++
			s := sites[r.Site]
			km := DistanceKm(*r.Lat, *r.Lon, s.Lat, s.Lon)
			bound := 2 * km / (299792.458 * 2 / 3 / 1000)
			if r.RTTMs < bound || r.RTTMs > 3*bound+120 {
				t.Errorf("probe %d to %s (%.0f km): rtt %.3f ms, bound %.3f ms", i, r.Site, km, r.RTTMs, bound)
			}
			if r.Identity != s.Identity || r.Addr != Addr || r.Method != "dns" || r.AF != 4 || r.Target != DefaultTarget || r.ID == "" {
				t.Errorf("record fields: %+v", r)
			}
		}
	}
	if rate := float64(failed) / float64(ok+failed); rate == 0 || rate > 0.03 {
		t.Errorf("error rate %.4f, want about %.2f", rate, DefaultErrorRate)
	}
}

func TestIdentityForm(t *testing.T) {
	m := newModel(t, Config{Seed: 1, Probes: 1})
	re := regexp.MustCompile(PlanTarget("x").SiteRegex)
	for _, s := range m.Sites() {
		if got := re.FindStringSubmatch(s.Identity); got == nil || got[1] != s.Code {
			t.Errorf("identity %q of %s: the plan's site_regex gives %q", s.Identity, s.Code, got)
		}
	}
	if got := m.Sites()[0].Identity; got != "ns1.nl-ams.example" {
		t.Errorf("ams identity = %q, want ns1.nl-ams.example", got)
	}
}

func TestDueSchedule(t *testing.T) {
	m := newModel(t, Config{Seed: 1, Probes: 20})
	f := &Fleet{m: m}
	for i, p := range m.Probes() {
		ts := f.due(i, t0, t0.Add(time.Minute), 0)
		if n, want := len(ts), float64(time.Minute)/float64(p.Interval); math.Abs(float64(n)-want) > 1 {
			t.Errorf("probe %d: %d measurements a minute at interval %s", i, n, p.Interval)
		}
		for _, x := range ts {
			if !x.After(t0) || x.After(t0.Add(time.Minute)) {
				t.Errorf("probe %d: time %s outside the window", i, x)
			}
		}
		// Consecutive windows neither miss nor repeat a measurement.
		a := f.due(i, t0, t0.Add(30*time.Second), 0)
		b := f.due(i, t0.Add(30*time.Second), t0.Add(time.Minute), 0)
		if !slices.EqualFunc(append(a, b...), ts, time.Time.Equal) {
			t.Errorf("probe %d: split windows differ from the whole", i)
		}
	}
}
