package gate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseRulesGood(t *testing.T) {
	rs, err := ReadRules("testdata/rules/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{MaxMovedShare: ptr(0.10)},
		{SiteShare: &SiteShare{Site: "ams", Min: ptr(0.30), Max: ptr(0.50)}},
		{Name: "Germany stays in Europe", Region: &Region{Country: "DE", ServedBy: []string{"ams", "fra"}, Fraction: ptr(0.9)}},
		{Region: &Region{Near: &Near{Lat: ptr(52.37), Lon: ptr(4.90), Km: 300}, ServedBy: []string{"ams"}}},
		{Region: &Region{Cells: []string{"831f8dfffffffff"}, ServedBy: []string{"ams", "fra"}}},
		{P50Rise: &P50Rise{MaxMs: ptr(10.0), MaxPct: ptr(20.0)}},
		{MinProbes: ptr(5)},
		{MaxErrorShare: ptr(0.05)},
	}
	if !reflect.DeepEqual(rs, want) {
		t.Errorf("rules:\n got %+v\nwant %+v", rs, want)
	}
	labels := []string{"max_moved_share", "site_share ams", "Germany stays in Europe", "region within 300 km of 52.37,4.9",
		"region cell 831f8dfffffffff", "p50_rise", "min_probes", "max_error_share"}
	for i, r := range rs {
		if got := r.Label(); got != labels[i] {
			t.Errorf("rule %d label = %q, want %q", i+1, got, labels[i])
		}
	}
}

// Each invalid case is one file, and each file's message is pinned here:
// the message is the interface (it must name the rule and the field).
func TestParseRulesBad(t *testing.T) {
	want := map[string]string{
		"bad-yaml":               "not valid YAML: line 1: did not find expected ',' or ']'",
		"empty":                  `no rules: list at least one under "rules", or leave out --rules to use the defaults`,
		"error-share-range":      "rule 1 (line 2): max_error_share: -0.1 is out of range: use a share in [0, 1], such as 0.05 for 5%",
		"min-probes-zero":        "rule 1 (line 2): min_probes: 0: use 1 or more",
		"no-check":               "rule 1 (line 2): no check given: use one of max_moved_share, site_share, region, p50_rise, min_probes, max_error_share",
		"no-rules":               `no rules: list at least one under "rules", or leave out --rules to use the defaults`,
		"not-a-number":           `rule 1 (line 2): max_moved_share: "lots" is not a number`,
		"not-mapping":            `line 1: a rules file is a mapping with a "rules" list`,
		"not-whole":              `rule 1 (line 2): min_probes: "2.5" is not a whole number`,
		"p50-negative":           "rule 1 (line 2): p50_rise.max_ms: -1: use a number, 0 or more",
		"p50-no-bound":           "rule 1 (line 2): p50_rise: no bound: give max_ms, max_pct or both",
		"region-bad-cell":        `rule 1 (line 2): region.cells[1]: "nothex" is not an H3 cell index: give one in lower-case hex, such as 831f8dfffffffff`,
		"region-country":         `rule 1 (line 2): region.country: "Germany" is not a two-letter country code such as DE`,
		"region-empty-cells":     "rule 1 (line 2): region.cells: empty: list H3 cells, such as [831f8dfffffffff]",
		"region-fraction":        "rule 1 (line 2): region.fraction: 0 is out of range: use a share in (0, 1], such as 0.95",
		"region-near-incomplete": "rule 1 (line 2): region.near: give lat, lon and km",
		"region-near-km":         "rule 1 (line 2): region.near.km: 0: use a radius in km, more than 0 (half the Earth's circumference at most)",
		"region-near-lat":        "rule 1 (line 2): region.near: latitude 95 is not a number in [-90, 90]: fix the probe's location",
		"region-no-area":         "rule 1 (line 2): region: no area: give one of country, near or cells",
		"region-no-sites":        "rule 1 (line 2): region.served_by: missing: list the sites that must serve the region, such as [ams, fra]",
		"region-two-areas":       "rule 1 (line 2): region: country and cells together: give one of country, near or cells",
		"rules-not-list":         `line 1: rules: "5" is not a list`,
		"share-range":            "rule 1 (line 2): max_moved_share: 5 is out of range: use a share in [0, 1], such as 0.05 for 5%",
		"site-min-above-max":     "rule 1 (line 2): site_share: min 0.6 is above max 0.5",
		"site-missing":           "rule 1 (line 2): site_share.site: missing: name a site code, such as ams",
		"site-no-bound":          "rule 1 (line 2): site_share: no bound: give min, max or both",
		"site-upper":             `rule 1 (line 2): site_share.site: "AMS" is not a site code: use lower-case letters and digits, such as ams`,
		"two-checks":             "rule 1 (line 2): max_moved_share and min_probes in one rule: give one check per rule",
		"two-docs":               "more than one YAML document: put every rule in the first one",
		"unknown-nested-field":   "rule 1 (line 2): site_share.minimum: unknown field: use site, min or max",
		"unknown-rule-field":     "rule 2 (line 3): colour: unknown field: use name, max_moved_share, site_share, region, p50_rise, min_probes or max_error_share",
		"unknown-top":            "line 1: rulez: unknown field: use rules",
	}
	files, err := filepath.Glob("testdata/rules/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			msg, ok := want[name]
			if !ok {
				t.Fatalf("%s has no expected message in this table: add one", f)
			}
			_, err := ReadRules(f)
			if err == nil {
				t.Fatalf("%s parsed, want error %q", f, msg)
			}
			if got := strings.TrimPrefix(err.Error(), "rules "+f+": "); got != msg {
				t.Errorf("error:\n got %q\nwant %q", got, msg)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("testdata/rules/%s.bad.yaml is missing", name)
		}
	}
}

func TestReadRulesMissingFile(t *testing.T) {
	_, err := ReadRules(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

func TestDefaultRulesValid(t *testing.T) {
	rs := DefaultRules()
	var kinds []string
	for i := range rs {
		if err := rs[i].validate(); err != nil {
			t.Errorf("default rule %d: %v", i+1, err)
		}
		kinds = append(kinds, rs[i].Kind())
	}
	if got := strings.Join(kinds, ","); got != "max_moved_share,p50_rise,max_error_share" {
		t.Errorf("default kinds = %s", got)
	}
	// The documented defaults, so a change to them is a deliberate one.
	if *rs[0].MaxMovedShare != 0.05 || *rs[1].P50Rise.MaxMs != 10 || rs[1].P50Rise.MaxPct != nil || *rs[2].MaxErrorShare != 0.05 {
		t.Errorf("defaults changed: %+v", rs)
	}
}

func FuzzParseRules(f *testing.F) {
	for _, p := range []string{"testdata/rules/good.yaml", "testdata/rules/unknown-rule-field.bad.yaml", "testdata/rules/region-bad-cell.bad.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data)
		if err != nil {
			if len(rs) != 0 {
				t.Fatalf("rules returned with error %v", err)
			}
			return
		}
		for i := range rs {
			if err := rs[i].validate(); err != nil || rs[i].Kind() == "" {
				t.Fatalf("accepted rule %d does not validate: %v", i+1, err)
			}
		}
	})
}
