package gate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/maps"
)

// Status is the outcome of a rule or of a whole check.
type Status string

// Statuses. Error means the rule could not be judged (too little data).
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Error Status = "error"
)

// Word is the status in capitals, as reports print it.
func (s Status) Word() string { return strings.ToUpper(string(s)) }

// Outcome is one rule's verdict.
type Outcome struct {
	Rule     string `json:"rule"` // the rule's Label
	Kind     string `json:"kind"`
	Status   Status `json:"status"`
	Measured string `json:"measured"` // in words, such as "3.2% (4 of 125 probes)"
	Limit    string `json:"limit"`    // in words, such as "<= 5.0%"
	// Value is the measured number (a share, ms, or a count); null when
	// the rule could not be measured.
	Value *float64 `json:"value"`
	// Detail says why a rule failed or could not be judged.
	Detail string `json:"detail,omitempty"`
}

// Side describes one of the two catchments compared.
type Side struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Probes int       `json:"probes"`
	Served int       `json:"served"`
}

// Report is the verdict of a check.
type Report struct {
	Target   string    `json:"target"`
	Status   Status    `json:"status"`
	Baseline Side      `json:"baseline"`
	Current  Side      `json:"current"`
	Outcomes []Outcome `json:"rules"`
	// Common counts probes served in both; Moved those whose site changed,
	// and Flows says from where to where.
	Common int         `json:"common_probes"`
	Moved  int         `json:"moved_probes"`
	Flows  []maps.Flow `json:"flows"`
}

// Failed lists the outcomes with status s.
func (r *Report) Failed(s Status) []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if o.Status == s {
			out = append(out, o)
		}
	}
	return out
}

// Evaluate judges current against base with rules.
//
// The check's status is Error when a min_probes rule is not met (the data
// cannot support any verdict), else Fail when any rule failed, else Error
// when any rule could not be judged, else Pass.
func Evaluate(base, cur *Snapshot, rules []Rule) *Report {
	r := &Report{Target: cur.Target, Status: Pass,
		Baseline: Side{From: base.From, To: base.To, Probes: base.ProbeCount, Served: base.Served},
		Current:  Side{From: cur.From, To: cur.To, Probes: cur.ProbeCount, Served: cur.Served},
		Flows:    []maps.Flow{}, Outcomes: []Outcome{}}
	mv := compareProbes(base, cur)
	r.Common, r.Moved, r.Flows = mv.common, mv.moved, mv.flows

	tooFew := false
	for i := range rules {
		rule := &rules[i]
		o := Outcome{Rule: rule.Label(), Kind: rule.Kind()}
		switch o.Kind {
		case KindMaxMovedShare:
			evalMoved(&o, *rule.MaxMovedShare, mv)
		case KindSiteShare:
			evalSiteShare(&o, rule.SiteShare, base, cur)
		case KindRegion:
			evalRegion(&o, rule.Region, cur)
		case KindP50Rise:
			evalP50(&o, rule.P50Rise, mv)
		case KindMinProbes:
			evalMinProbes(&o, *rule.MinProbes, base, cur)
			tooFew = tooFew || o.Status == Error
		case KindMaxErrorShare:
			evalErrors(&o, *rule.MaxErrorShare, cur)
		default:
			o.Status, o.Detail = Error, "rule has no single check: validate rules with ParseRules"
		}
		r.Outcomes = append(r.Outcomes, o)
	}
	switch {
	case tooFew:
		r.Status = Error
	case len(r.Failed(Fail)) > 0:
		r.Status = Fail
	case len(r.Failed(Error)) > 0:
		r.Status = Error
	}
	return r
}

// moves is what changed between the probes of two snapshots.
type moves struct {
	common, moved int
	flows         []maps.Flow
	// rttBase and rttCur are the median RTTs of probes served in both
	// with an RTT in both, pairwise.
	rttBase, rttCur []float64
}

func compareProbes(base, cur *Snapshot) moves {
	var mv moves
	inCur := make(map[string]*SnapshotProbe, len(cur.Probes))
	for i := range cur.Probes {
		if cur.Probes[i].Site != "" {
			inCur[cur.Probes[i].ID] = &cur.Probes[i]
		}
	}
	flows := map[[2]string]int{}
	for _, p := range base.Probes {
		c := inCur[p.ID]
		if p.Site == "" || c == nil {
			continue
		}
		mv.common++
		if c.Site != p.Site {
			mv.moved++
			flows[[2]string{p.Site, c.Site}]++
		}
		if p.RTTMs != nil && c.RTTMs != nil {
			mv.rttBase = append(mv.rttBase, *p.RTTMs)
			mv.rttCur = append(mv.rttCur, *c.RTTMs)
		}
	}
	mv.flows = []maps.Flow{}
	for k, n := range flows {
		mv.flows = append(mv.flows, maps.Flow{From: k[0], To: k[1], Probes: n})
	}
	slices.SortFunc(mv.flows, func(x, y maps.Flow) int {
		return cmp.Or(cmp.Compare(y.Probes, x.Probes), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return mv
}

// count says "1 probe" or "2 probes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// pct formats a share as a percentage with one decimal.
func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" }

func signed(s string, v float64) string {
	if v >= 0 {
		return "+" + s
	}
	return s
}

// flowWords lists the biggest flows, such as "ams->fra 3, lhr->ams 1".
func flowWords(fs []maps.Flow, limit int) string {
	var parts []string
	for i, f := range fs {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-limit))
			break
		}
		parts = append(parts, fmt.Sprintf("%s->%s %d", f.From, f.To, f.Probes))
	}
	return strings.Join(parts, ", ")
}

func evalMoved(o *Outcome, limit float64, mv moves) {
	o.Limit = "<= " + pct(limit)
	if mv.common == 0 {
		o.Status = Error
		o.Measured = "no probe in both"
		o.Detail = "no probe was served in both the baseline and the current window: nothing to compare"
		return
	}
	share := float64(mv.moved) / float64(mv.common)
	o.Value = ptr(round6(share))
	o.Measured = fmt.Sprintf("%s (%d of %d probes)", pct(share), mv.moved, mv.common)
	o.Status = Pass
	if share > limit {
		o.Status = Fail
		o.Detail = fmt.Sprintf("%s changed site: %s", count(mv.moved, "probe"), flowWords(mv.flows, 5))
	}
}

func evalSiteShare(o *Outcome, s *SiteShare, base, cur *Snapshot) {
	switch {
	case s.Min != nil && s.Max != nil:
		o.Limit = pct(*s.Min) + " to " + pct(*s.Max)
	case s.Min != nil:
		o.Limit = ">= " + pct(*s.Min)
	default:
		o.Limit = "<= " + pct(*s.Max)
	}
	if cur.Served == 0 {
		o.Status, o.Measured = Error, "no served probe"
		o.Detail = "no probe was served in the current window: no share to measure"
		return
	}
	got, _ := cur.Site(s.Site) // absent: share 0
	o.Value = ptr(got.Share)
	o.Measured = fmt.Sprintf("%s (%d probes)", pct(got.Share), got.Probes)
	o.Status = Pass
	if s.Min != nil && got.Share < *s.Min || s.Max != nil && got.Share > *s.Max {
		o.Status = Fail
		was, _ := base.Site(s.Site)
		o.Detail = fmt.Sprintf("site %s serves %s of probes, %s in the baseline", s.Site, pct(got.Share), pct(was.Share))
	}
}

// contains reports whether probe p is in the region; an error means the
// region cannot be tested (a bad cell, which ParseRules refuses).
func (g *Region) contains(p *SnapshotProbe) (bool, error) {
	switch {
	case g.Country != "":
		return strings.EqualFold(p.Country, g.Country), nil
	case p.Lat == nil || p.Lon == nil:
		return false, nil
	case g.Near != nil:
		return maps.DistanceKm(*p.Lat, *p.Lon, *g.Near.Lat, *g.Near.Lon) <= g.Near.Km, nil
	}
	for _, c := range g.Cells {
		in, err := maps.InCell(*p.Lat, *p.Lon, c)
		if in || err != nil {
			return in, err
		}
	}
	return false, nil
}

func evalRegion(o *Outcome, g *Region, cur *Snapshot) {
	want := 1.0
	if g.Fraction != nil {
		want = *g.Fraction
	}
	sites := strings.Join(g.ServedBy, ", ")
	o.Limit = ">= " + pct(want) + " on " + sites
	var in int
	var off []string
	for i := range cur.Probes {
		p := &cur.Probes[i]
		if p.Site == "" {
			continue
		}
		ok, err := g.contains(p)
		if err != nil {
			o.Status, o.Measured, o.Detail = Error, "-", err.Error()
			return
		}
		if !ok {
			continue
		}
		in++
		if !slices.Contains(g.ServedBy, p.Site) {
			off = append(off, p.ID+" ("+p.Site+")")
		}
	}
	if in == 0 {
		o.Status, o.Measured = Error, "no probe in region"
		o.Detail = fmt.Sprintf("no served probe in the current window is in %s: the rule cannot be judged; add probes there or change the region", g.describe())
		return
	}
	share := float64(in-len(off)) / float64(in)
	o.Value = ptr(round6(share))
	o.Measured = fmt.Sprintf("%s (%d of %d probes)", pct(share), in-len(off), in)
	o.Status = Pass
	if share < want {
		o.Status = Fail
		if len(off) > 5 {
			off = append(off[:5], fmt.Sprintf("and %d more", len(off)-5))
		}
		o.Detail = fmt.Sprintf("served by other sites than %s: %s", sites, strings.Join(off, ", "))
	}
}

func evalP50(o *Outcome, p *P50Rise, mv moves) {
	var lims []string
	if p.MaxMs != nil {
		lims = append(lims, "<= +"+ms(*p.MaxMs))
	}
	if p.MaxPct != nil {
		lims = append(lims, "<= +"+strconv.FormatFloat(*p.MaxPct, 'f', -1, 64)+"%")
	}
	o.Limit = strings.Join(lims, " and ")
	a, okA := maps.Quantile(mv.rttBase, 0.5)
	b, okB := maps.Quantile(mv.rttCur, 0.5)
	if !okA || !okB {
		o.Status, o.Measured = Error, "no RTT in both"
		o.Detail = "no probe has an RTT in both the baseline and the current window: nothing to compare"
		return
	}
	rise := b - a
	o.Value = ptr(math.Round(rise*1000) / 1000)
	o.Measured = fmt.Sprintf("%s (%s -> %s, %d probes)", signed(ms(rise), rise), ms(a), ms(b), len(mv.rttBase))
	var over []string
	if p.MaxMs != nil && rise > *p.MaxMs {
		over = append(over, fmt.Sprintf("rose %s, more than %s", ms(rise), ms(*p.MaxMs)))
	}
	if p.MaxPct != nil {
		if a > 0 {
			rel := rise / a * 100
			o.Measured = fmt.Sprintf("%s, %s%% (%s -> %s, %d probes)", signed(ms(rise), rise),
				signed(strconv.FormatFloat(rel, 'f', 1, 64), rel), ms(a), ms(b), len(mv.rttBase))
			if rel > *p.MaxPct {
				over = append(over, fmt.Sprintf("rose %.1f%%, more than %v%%", rel, *p.MaxPct))
			}
		} else if rise > 0 {
			over = append(over, "rose from 0 ms, more than any percentage")
		}
	}
	o.Status = Pass
	if len(over) > 0 {
		o.Status = Fail
		o.Detail = "median RTT of the probes in both " + strings.Join(over, " and ")
	}
}

func evalMinProbes(o *Outcome, limit int, base, cur *Snapshot) {
	o.Limit = ">= " + strconv.Itoa(limit)
	o.Value = ptr(float64(cur.ProbeCount))
	o.Measured = fmt.Sprintf("%d probes (baseline %d)", cur.ProbeCount, base.ProbeCount)
	o.Status = Pass
	var short []string
	if cur.ProbeCount < limit {
		short = append(short, fmt.Sprintf("the current window has %d probes with results", cur.ProbeCount))
	}
	if base.ProbeCount < limit {
		short = append(short, fmt.Sprintf("the baseline has %d", base.ProbeCount))
	}
	if len(short) > 0 {
		o.Status = Error
		o.Detail = fmt.Sprintf("too few probes to judge: %s, fewer than %d; wait for probes or widen --window", strings.Join(short, " and "), limit)
	}
}

func evalErrors(o *Outcome, limit float64, cur *Snapshot) {
	o.Limit = "<= " + pct(limit)
	o.Value = ptr(cur.ErrorShare)
	o.Measured = fmt.Sprintf("%s of %d results", pct(cur.ErrorShare), cur.Results)
	o.Status = Pass
	if cur.Results == 0 {
		o.Status, o.Value, o.Measured = Error, nil, "no results"
		o.Detail = "the current window has no results"
		return
	}
	if cur.ErrorShare > limit {
		o.Status = Fail
		o.Detail = fmt.Sprintf("%s of results failed, more than %s", pct(cur.ErrorShare), pct(limit))
	}
}
