package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// Rule is one check of a current catchment against its baseline. Exactly
// one of the check fields is set; Name labels it in reports.
//
// A rules file lists them under "rules":
//
//	rules:
//	  - max_moved_share: 0.05            # at most 5% of probes change site
//	  - site_share: {site: ams, min: 0.30, max: 0.50}
//	  - region: {country: DE, served_by: [ams, fra], fraction: 0.95}
//	  - region: {near: {lat: 52.37, lon: 4.90, km: 300}, served_by: [ams]}
//	  - region: {cells: [831f8dfffffffff], served_by: [ams, fra]}
//	  - p50_rise: {max_ms: 10, max_pct: 20}
//	  - min_probes: 50
//	  - max_error_share: 0.05
//	    name: few errors                 # optional label
//
// Limits are inclusive: a measured value equal to a max passes.
type Rule struct {
	Name          string     `yaml:"name,omitempty" json:"name,omitempty"`
	MaxMovedShare *float64   `yaml:"max_moved_share,omitempty" json:"max_moved_share,omitempty"`
	SiteShare     *SiteShare `yaml:"site_share,omitempty" json:"site_share,omitempty"`
	Region        *Region    `yaml:"region,omitempty" json:"region,omitempty"`
	P50Rise       *P50Rise   `yaml:"p50_rise,omitempty" json:"p50_rise,omitempty"`
	MinProbes     *int       `yaml:"min_probes,omitempty" json:"min_probes,omitempty"`
	MaxErrorShare *float64   `yaml:"max_error_share,omitempty" json:"max_error_share,omitempty"`
}

// SiteShare keeps a site's share of served probes within [Min, Max]; either
// bound may be left out.
type SiteShare struct {
	Site string   `yaml:"site" json:"site"`
	Min  *float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max  *float64 `yaml:"max,omitempty" json:"max,omitempty"`
}

// Region requires that at least Fraction (default 1) of the served probes
// in a region be served by one of ServedBy. The region is one of: a country
// (ISO code, as records carry it), a circle (Near), or a list of H3 cells
// of any resolution up to maps.MaxRes.
type Region struct {
	Country  string   `yaml:"country,omitempty" json:"country,omitempty"`
	Near     *Near    `yaml:"near,omitempty" json:"near,omitempty"`
	Cells    []string `yaml:"cells,omitempty" json:"cells,omitempty"`
	ServedBy []string `yaml:"served_by" json:"served_by"`
	Fraction *float64 `yaml:"fraction,omitempty" json:"fraction,omitempty"`
}

// Near is the circle of radius Km around Lat, Lon.
type Near struct {
	Lat *float64 `yaml:"lat" json:"lat"`
	Lon *float64 `yaml:"lon" json:"lon"`
	Km  float64  `yaml:"km" json:"km"`
}

// P50Rise bounds how much the median RTT may rise, in milliseconds and/or
// in percent of the baseline's.
type P50Rise struct {
	MaxMs  *float64 `yaml:"max_ms,omitempty" json:"max_ms,omitempty"`
	MaxPct *float64 `yaml:"max_pct,omitempty" json:"max_pct,omitempty"`
}

// Rule kinds, as Kind returns them.
const (
	KindMaxMovedShare = "max_moved_share"
	KindSiteShare     = "site_share"
	KindRegion        = "region"
	KindP50Rise       = "p50_rise"
	KindMinProbes     = "min_probes"
	KindMaxErrorShare = "max_error_share"
)

var kinds = []string{KindMaxMovedShare, KindSiteShare, KindRegion, KindP50Rise, KindMinProbes, KindMaxErrorShare}

// set lists the checks given in r, in kinds order.
func (r *Rule) set() []string {
	var ks []string
	for _, k := range []struct {
		kind string
		set  bool
	}{
		{KindMaxMovedShare, r.MaxMovedShare != nil}, {KindSiteShare, r.SiteShare != nil}, {KindRegion, r.Region != nil},
		{KindP50Rise, r.P50Rise != nil}, {KindMinProbes, r.MinProbes != nil}, {KindMaxErrorShare, r.MaxErrorShare != nil},
	} {
		if k.set {
			ks = append(ks, k.kind)
		}
	}
	return ks
}

// Kind names the rule's check; "" when it has none or several.
func (r *Rule) Kind() string {
	if ks := r.set(); len(ks) == 1 {
		return ks[0]
	}
	return ""
}

// Label is how reports name the rule: its Name, else a short description.
func (r *Rule) Label() string {
	if r.Name != "" {
		return r.Name
	}
	switch r.Kind() {
	case KindSiteShare:
		return "site_share " + r.SiteShare.Site
	case KindRegion:
		return "region " + r.Region.describe()
	}
	return r.Kind()
}

func (g *Region) describe() string {
	switch {
	case g.Country != "":
		return "country " + g.Country
	case g.Near != nil && g.Near.Lat != nil && g.Near.Lon != nil:
		return fmt.Sprintf("within %s km of %s,%s", num(g.Near.Km), num(*g.Near.Lat), num(*g.Near.Lon))
	case len(g.Cells) == 1:
		return "cell " + g.Cells[0]
	case len(g.Cells) > 1:
		return fmt.Sprintf("cells %s +%d", g.Cells[0], len(g.Cells)-1)
	}
	return "?"
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func ptr[T any](v T) *T { return &v }

// DefaultRules are what check uses without a rules file: at most 5% of
// probes move, the median RTT rises by at most 10 ms, and at most 5% of
// results fail. No minimum probe count.
func DefaultRules() []Rule {
	return []Rule{
		{MaxMovedShare: ptr(0.05)},
		{P50Rise: &P50Rise{MaxMs: ptr(10.0)}},
		{MaxErrorShare: ptr(0.05)},
	}
}

// ReadRules reads and validates a rules file.
func ReadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	rs, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", path, err)
	}
	return rs, nil
}

type rulesFile struct {
	Rules []Rule `yaml:"rules"`
}

var errNoRules = errors.New(`no rules: list at least one under "rules", or leave out --rules to use the defaults`)

// ParseRules parses a rules file strictly: unknown keys, wrong types and
// out-of-range values are errors naming the rule (1-based, with its line)
// and the field.
func ParseRules(data []byte) ([]Rule, error) {
	// The node tree gives each rule's line and the path of a bad field;
	// the strict decode below gives the values.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, cleanYAMLError(err)
	}
	if len(doc.Content) == 0 {
		return nil, errNoRules
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a rules file is a mapping with a \"rules\" list", root.Line)
	}
	var ruleNodes []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "rules" && root.Content[i+1].Kind == yaml.SequenceNode {
			ruleNodes = root.Content[i+1].Content
		}
	}

	var f rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return nil, explain(te.Errors[0], root, ruleNodes)
		}
		return nil, cleanYAMLError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: put every rule in the first one")
	}
	if len(f.Rules) == 0 {
		return nil, errNoRules
	}
	// yaml truncates 2.5 into an int without a word; a count must be whole.
	for i, rn := range ruleNodes {
		for j := 0; rn.Kind == yaml.MappingNode && j+1 < len(rn.Content); j += 2 {
			if k, v := rn.Content[j], rn.Content[j+1]; k.Value == KindMinProbes && v.Tag != "!!int" {
				return nil, fmt.Errorf("%s: min_probes: %q is not a whole number", ruleAt(i, ruleNodes), v.Value)
			}
		}
	}
	for i := range f.Rules {
		if err := f.Rules[i].validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", ruleAt(i, ruleNodes), err)
		}
	}
	return f.Rules, nil
}

func ruleAt(i int, nodes []*yaml.Node) string {
	if i < len(nodes) {
		return fmt.Sprintf("rule %d (line %d)", i+1, nodes[i].Line)
	}
	return fmt.Sprintf("rule %d", i+1)
}

func cleanYAMLError(err error) error {
	return fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	mismatchRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// typeByName finds a type a rules file holds by the name yaml's errors
// give it, for the "use ..." hint of an unknown key.
func typeByName(name string) (reflect.Type, bool) {
	for _, v := range []any{rulesFile{}, Rule{}, SiteShare{}, Region{}, Near{}, P50Rise{}} {
		if t := reflect.TypeOf(v); t.String() == name {
			return t, true
		}
	}
	return nil, false
}

func yamlKeys(t reflect.Type) string {
	var ks []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		ks = append(ks, name)
	}
	if len(ks) == 1 {
		return ks[0]
	}
	return strings.Join(ks[:len(ks)-1], ", ") + " or " + ks[len(ks)-1]
}

// explain turns one of yaml's "line N: ..." messages into one naming the
// rule and the field path.
func explain(msg string, root *yaml.Node, rules []*yaml.Node) error {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s", msg)
	}
	line, _ := strconv.Atoi(m[1])
	what := m[2]
	var match func(k, v *yaml.Node) bool
	if u := unknownRE.FindStringSubmatch(what); u != nil {
		key := u[1]
		match = func(k, _ *yaml.Node) bool { return k.Value == key }
		what = "unknown field"
		if t, ok := typeByName(u[2]); ok {
			what += ": use " + yamlKeys(t)
		}
	} else if u := mismatchRE.FindStringSubmatch(what); u != nil {
		val := u[2]
		match = func(_, v *yaml.Node) bool { return v.Kind == yaml.ScalarNode && v.Value == val }
		switch u[3] {
		case "float64":
			what = fmt.Sprintf("%q is not a number", val)
		case "int":
			what = fmt.Sprintf("%q is not a whole number", val)
		case "string":
			what = fmt.Sprintf("a %s where text was expected", u[1])
		default:
			what = fmt.Sprintf("%q is not %s", val, typeWord(u[3]))
		}
	} else {
		match = func(k, v *yaml.Node) bool { return true }
	}
	for i, rn := range rules {
		end := 1 << 30
		if i+1 < len(rules) {
			end = rules[i+1].Line
		}
		if line >= rn.Line && line < end {
			if p := pathAt(rn, line, match, ""); p != "" {
				return fmt.Errorf("%s: %s: %s", ruleAt(i, rules), p, what)
			}
			return fmt.Errorf("%s: %s", ruleAt(i, rules), what)
		}
	}
	if p := pathAt(root, line, match, ""); p != "" {
		return fmt.Errorf("line %d: %s: %s", line, p, what)
	}
	return fmt.Errorf("line %d: %s", line, what)
}

func typeWord(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "gate.") || strings.HasPrefix(goType, "*gate."):
		return "a mapping"
	}
	return "a " + goType
}

// pathAt finds the dotted key path of the first key/value pair at line
// that match accepts.
func pathAt(n *yaml.Node, line int, match func(k, v *yaml.Node) bool, prefix string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if (k.Line == line || v.Line == line) && match(k, v) {
				return p
			}
			if q := pathAt(v, line, match, p); q != "" {
				return q
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if v.Line == line && match(n, v) {
				return p
			}
			if q := pathAt(v, line, match, p); q != "" {
				return q
			}
		}
	}
	return ""
}

var (
	siteCodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	countryRE  = regexp.MustCompile(`^[A-Z]{2}$`)
)

func (r *Rule) validate() error {
	switch ks := r.set(); len(ks) {
	case 0:
		return fmt.Errorf("no check given: use one of %s", strings.Join(kinds, ", "))
	case 1:
	default:
		return fmt.Errorf("%s in one rule: give one check per rule", strings.Join(ks, " and "))
	}
	switch {
	case r.MaxMovedShare != nil:
		return shareIn("max_moved_share", *r.MaxMovedShare)
	case r.MaxErrorShare != nil:
		return shareIn("max_error_share", *r.MaxErrorShare)
	case r.MinProbes != nil:
		if *r.MinProbes < 1 {
			return fmt.Errorf("min_probes: %d: use 1 or more", *r.MinProbes)
		}
	case r.SiteShare != nil:
		return r.SiteShare.validate()
	case r.Region != nil:
		return r.Region.validate()
	case r.P50Rise != nil:
		return r.P50Rise.validate()
	}
	return nil
}

func shareIn(field string, v float64) error {
	if !(v >= 0 && v <= 1) {
		return fmt.Errorf("%s: %v is out of range: use a share in [0, 1], such as 0.05 for 5%%", field, v)
	}
	return nil
}

func siteCode(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: missing: name a site code, such as ams", field)
	case !siteCodeRE.MatchString(s):
		return fmt.Errorf("%s: %q is not a site code: use lower-case letters and digits, such as ams", field, s)
	}
	return nil
}

func (s *SiteShare) validate() error {
	if err := siteCode("site_share.site", s.Site); err != nil {
		return err
	}
	if s.Min == nil && s.Max == nil {
		return errors.New("site_share: no bound: give min, max or both")
	}
	if s.Min != nil {
		if err := shareIn("site_share.min", *s.Min); err != nil {
			return err
		}
	}
	if s.Max != nil {
		if err := shareIn("site_share.max", *s.Max); err != nil {
			return err
		}
	}
	if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
		return fmt.Errorf("site_share: min %v is above max %v", *s.Min, *s.Max)
	}
	return nil
}

func (g *Region) validate() error {
	var given []string
	if g.Country != "" {
		given = append(given, "country")
	}
	if g.Near != nil {
		given = append(given, "near")
	}
	if g.Cells != nil {
		given = append(given, "cells")
	}
	switch len(given) {
	case 0:
		return errors.New("region: no area: give one of country, near or cells")
	case 1:
	default:
		return fmt.Errorf("region: %s together: give one of country, near or cells", strings.Join(given, " and "))
	}
	switch {
	case g.Country != "":
		if !countryRE.MatchString(g.Country) {
			return fmt.Errorf("region.country: %q is not a two-letter country code such as DE", g.Country)
		}
	case g.Near != nil:
		n := g.Near
		if n.Lat == nil || n.Lon == nil {
			return errors.New("region.near: give lat, lon and km")
		}
		if err := result.ValidLatLon(*n.Lat, *n.Lon); err != nil {
			return fmt.Errorf("region.near: %w", err)
		}
		if !(n.Km > 0) || n.Km > 20100 {
			return fmt.Errorf("region.near.km: %v: use a radius in km, more than 0 (half the Earth's circumference at most)", n.Km)
		}
	default:
		if len(g.Cells) == 0 {
			return errors.New("region.cells: empty: list H3 cells, such as [831f8dfffffffff]")
		}
		for i, c := range g.Cells {
			if _, err := maps.ParseCell(c); err != nil {
				return fmt.Errorf("region.cells[%d]: %w", i, err)
			}
		}
	}
	if len(g.ServedBy) == 0 {
		return errors.New("region.served_by: missing: list the sites that must serve the region, such as [ams, fra]")
	}
	for i, s := range g.ServedBy {
		if err := siteCode(fmt.Sprintf("region.served_by[%d]", i), s); err != nil {
			return err
		}
	}
	if g.Fraction != nil && !(*g.Fraction > 0 && *g.Fraction <= 1) {
		return fmt.Errorf("region.fraction: %v is out of range: use a share in (0, 1], such as 0.95", *g.Fraction)
	}
	return nil
}

func (p *P50Rise) validate() error {
	if p.MaxMs == nil && p.MaxPct == nil {
		return errors.New("p50_rise: no bound: give max_ms, max_pct or both")
	}
	for _, b := range []struct {
		field string
		v     *float64
	}{{"p50_rise.max_ms", p.MaxMs}, {"p50_rise.max_pct", p.MaxPct}} {
		if b.v != nil && !(*b.v >= 0) || b.v != nil && *b.v > 1e9 {
			return fmt.Errorf("%s: %v: use a number, 0 or more", b.field, *b.v)
		}
	}
	return nil
}
