// Package maps computes anycast catchment maps from result records: which
// site serves each cell (an H3 hexagon, a country or an AS), how fast, and how
// that changes between windows and over time. It is pure computation: no
// store, no HTTP. It is the only catchmap package that uses cgo (h3-go).
//
// Counting rules, shared by Catchment, Compare and Timeline:
//   - A probe counts once per window: its site is the one it reached most
//     often among successful results (ties: the one reached most recently,
//     then the lower code). A chatty probe therefore cannot outvote a region.
//   - Results that failed, carry no site, or are marked Suspect (a middlebox
//     answered) count as results but never as a visit to a site.
//   - A probe's place, country and ASN are those of its most recent record
//     that has them.
//   - Shares are weighted (see Weights); probe counts are plain counts.
//   - RTT percentiles are taken over the probes' median RTTs, not over raw
//     results, for the same reason as the first rule.
package maps

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/uber/h3-go/v4"
)

// Binnings for Options.By.
const ()

// Defaults for Options.
const (
	DefaultMinProbes = 3
	DefaultDominance = 0.8
)

// ResBase asks Options.Res for H3 resolution 0, since Res 0 means DefaultRes.
const ResBase = -1

// Confidence values of a cell.
const (
	ConfidenceHigh = "high"
	ConfidenceLow  = "low"
)

// Site is what maps needs to know about a site code.
type Site struct {
	Code string
	Name string
	Lat  float64
	Lon  float64
}

// SiteLocator finds a site by its code. Wrap the site table with
// SiteLocatorFunc; a nil SiteLocator locates nothing.
type SiteLocator interface {
	Lookup(code string) (Site, bool)
}

// SiteLocatorFunc adapts a function to SiteLocator.
type SiteLocatorFunc func(code string) (Site, bool)

// Lookup calls f.
func (f SiteLocatorFunc) Lookup(code string) (Site, bool) { return f(code) }

// Weights weigh probes in every share, e.g. to stop a country with many
// probes from dominating. A probe's weight is ByProbe[id] if set, else
// ByASN[its ASN] if set, else 1. Weighting by address prefix is not offered:
// records carry the target's address, not the probe's.
type Weights struct {
	ByASN   map[uint32]float64
	ByProbe map[string]float64
}

func (w Weights) validate() error {
	for asn, v := range w.ByASN {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("weight %v for AS%d: weights must be finite and > 0", v, asn)
		}
	}
	for p, v := range w.ByProbe {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("weight %v for probe %q: weights must be finite and > 0", v, p)
		}
	}
	return nil
}

func (w Weights) of(probe string, asn uint32) float64 {
	if v, ok := w.ByProbe[probe]; ok {
		return v
	}
	if v, ok := w.ByASN[asn]; ok {
		return v
	}
	return 1
}

// Options select and bin the records of a catchment. Zero values mean the
// defaults.
type Options struct {
	// Target keeps only records of this target; empty keeps all.
	Target string
	// From (inclusive) and To (exclusive) bound the window; zero leaves
	// that side open, and the output then shows the first/last record time.
	From, To time.Time
	// By is one of Groupings: ByH3 (default), ByCountry, ByASN...
	By string
	// Res is the H3 resolution, 1..7; 0 means DefaultRes and ResBase means 0.
	Res int
	// MinProbes and Dominance: a cell with fewer probes, or whose site
	// serves a smaller share of them, has confidence "low".
	MinProbes int
	Dominance float64
	Weights   Weights
}

func (o Options) withDefaults() (Options, error) {
	if o.By == "" {
		o.By = ByH3
	}
	if groupingOf(o.By) == nil {
		return o, fmt.Errorf("unknown binning %q: use one of %s", o.By, strings.Join(Groupings(), ", "))
	}
	switch o.Res {
	case 0:
		o.Res = DefaultRes
	case ResBase:
		o.Res = 0
	}
	if err := validRes(o.Res); err != nil {
		return o, err
	}
	if o.MinProbes == 0 {
		o.MinProbes = DefaultMinProbes
	}
	if o.MinProbes < 0 {
		return o, fmt.Errorf("min probes %d is negative: use 1 or more", o.MinProbes)
	}
	if o.Dominance == 0 {
		o.Dominance = DefaultDominance
	}
	if !(o.Dominance > 0 && o.Dominance <= 1) {
		return o, fmt.Errorf("dominance %v is out of range: use a share in (0, 1]", o.Dominance)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return o, fmt.Errorf("window from %s to %s is empty: from must be before to", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	return o, o.Weights.validate()
}

// Catchment is the catchment of one target in one window. Its JSON is served
// by the API as is.
type Catchment struct {
	Target     string    `json:"target"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Resolution int       `json:"resolution"` // the H3 resolution; meaningful for by "h3" only
	By         string    `json:"by"`
	Probes     int       `json:"probes"`    // probes with a record in the window
	Results    int       `json:"results"`   // records in the window
	Unlocated  int       `json:"unlocated"` // probes with no valid place: in no H3 cell
	Unserved   int       `json:"unserved"`  // probes with no successful result naming a site
	// RTTP50 is the median of the served probes' median RTTs.
	RTTP50           *float64          `json:"rtt_p50_ms"`
	Cells            []CellStat        `json:"cells"`
	Sites            []SiteStat        `json:"sites"`
	Flips            []Flip            `json:"flips"`
	LocationSuspects []LocationSuspect `json:"location_suspects"`
	// NotNearestShare is the weighted share of probes not served by the
	// site nearest to them, among probes whose place and site are known.
	NotNearestShare *float64 `json:"not_nearest_share"`

	// ProbeList is every probe of the window, by id; not part of the JSON.
	ProbeList []Probe `json:"-"`
}

// CellStat is one cell of a catchment. Pointers are null in JSON when
// unknown: no RTT, no place for the cell, or a site the locator lacks.
type CellStat struct {
	Cell    string         `json:"cell"`  // H3 index, country code, or "AS<n>"
	Site    string         `json:"site"`  // dominant site; "" when no probe was served
	Share   float64        `json:"share"` // weighted share of the cell's served probes on Site
	Probes  int            `json:"probes"`
	Results int            `json:"results"`
	Sites   map[string]int `json:"sites"` // site -> probes it serves here
	// Shares is every site's weighted share; they sum to 1.
	Shares     map[string]float64 `json:"shares"`
	RTTP50     *float64           `json:"rtt_p50_ms"`
	RTTP90     *float64           `json:"rtt_p90_ms"`
	ErrorShare float64            `json:"error_share"` // failed results / results
	Confidence string             `json:"confidence"`
	// Lat, Lon: the H3 cell centre, or for countries and ASes the mean
	// place of their located probes.
	Lat               *float64 `json:"lat"`
	Lon               *float64 `json:"lon"`
	SiteDistanceKm    *float64 `json:"site_distance_km"`
	NearestSite       string   `json:"nearest_site"`
	NearestDistanceKm *float64 `json:"nearest_distance_km"`
	// Inflation is RTTP50 minus the fibre bound (2/3 c, round trip) over
	// SiteDistanceKm. It can be negative: the centre is not where every
	// probe is.
	Inflation       *float64 `json:"inflation_ms"`
	NotNearestShare *float64 `json:"not_nearest_share"`
}

// SiteStat is one site of a catchment: every site named by a successful
// result, with 0 probes when it was never a probe's main site.
type SiteStat struct {
	Site   string   `json:"site"`
	Probes int      `json:"probes"` // probes it serves, located or not
	Share  float64  `json:"share"`  // weighted share of all served probes
	Cells  int      `json:"cells"`  // cells where it is the dominant site
	RTTP50 *float64 `json:"rtt_p50_ms"`
	Lat    *float64 `json:"lat"`
	Lon    *float64 `json:"lon"`
	Name   string   `json:"name"`
}

// Flip is a probe that reached more than one site in the window.
type Flip struct {
	Probe string         `json:"probe"`
	Site  string         `json:"site"`  // the site it counts for
	Sites map[string]int `json:"sites"` // site -> successful results
}

// LocationSuspect is a probe whose fastest answer from its site came back
// sooner than light in fibre could cover the distance from its claimed place:
// the place is wrong (or the site code is).
type LocationSuspect struct {
	Probe      string  `json:"probe"`
	Site       string  `json:"site"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	MinRTT     float64 `json:"min_rtt_ms"`
	DistanceKm float64 `json:"distance_km"`
	BoundMs    float64 `json:"bound_ms"`
}

// Probe is one probe's summary in a window.
type Probe struct {
	ID      string
	Site    string // "" when unserved
	Cell    string // "" when in no cell (unlocated, binning by H3)
	Lat     *float64
	Lon     *float64
	Country string
	ASN     uint32
	Weight  float64
	Results int
	Errors  int
	// RTTMedian and RTTMin are over successful results from Site.
	RTTMedian *float64
	RTTMin    *float64
	Sites     map[string]int // site -> successful results
}

// siteTally counts one probe's successful results from one site.
type siteTally struct {
	site string
	n    int
	last int64 // UnixNano of the latest
	rtts []float64
	// head and tail chain the RTTs from summaries in Builder.rtts.
	head, tail int32
}

// dominant picks the probe's site: most results, then most recent, then
// lowest code, so the choice does not depend on record order.
func dominant(ts []siteTally) int {
	best := -1
	for i, t := range ts {
		if best < 0 {
			best = i
			continue
		}
		b := ts[best]
		if t.n > b.n || t.n == b.n && (t.last > b.last || t.last == b.last && t.site < b.site) {
			best = i
		}
	}
	return best
}

// tally counts a successful result from site (interned) at t, keeping rtt
// if wanted.
func tally(ts []siteTally, site string, t int64, rtt float64, keepRTT bool) []siteTally {
	i := slices.IndexFunc(ts, func(x siteTally) bool { return x.site == site })
	if i < 0 {
		ts = append(ts, siteTally{site: site, last: t})
		i = len(ts) - 1
	}
	x := &ts[i]
	x.n++
	x.last = max(x.last, t)
	if keepRTT && rtt > 0 && !math.IsInf(rtt, 0) {
		x.rtts = append(x.rtts, rtt)
	}
	return ts
}

// latest keeps the attribute of a probe's most recent record; equal times
// fall back to comparing values so the outcome is order independent.
type latest[T cmp.Ordered] struct {
	v   T
	t   int64
	set bool
}

func (l *latest[T]) newer(v T, t int64) bool {
	return !l.set || t > l.t || t == l.t && v > l.v
}

type probeState struct {
	id              string
	tallies         []siteTally
	results, errors int
	lat, lon        latest[float64] // lon follows lat's record
	country         latest[string]
	asn             latest[uint32]
}

// Builder computes a catchment from records added one at a time, so a
// window never has to be held in memory: it keeps per probe only counts and
// the RTTs of successful results (8 bytes each).
type Builder struct {
	opts Options
	loc  SiteLocator
	// Probes are numbered as they come: a record costs one string lookup,
	// none when it is of the same probe as the one before.
	index   map[string]int
	probes  []probeState
	lastID  string
	lastP   int
	rtts    rttArena
	sites   interner
	results int
	target  string
	mixed   bool
	first   time.Time
	last    time.Time
}

// NewBuilder checks opts and returns an empty builder. loc may be nil.
func NewBuilder(opts Options, loc SiteLocator) (*Builder, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Builder{opts: o, loc: loc, index: map[string]int{}, lastP: -1, sites: interner{}}, nil
}

// probe is the state of probe id, made on first sight.
func (b *Builder) probe(id string) *probeState {
	if b.lastP >= 0 && id == b.lastID {
		return &b.probes[b.lastP]
	}
	i, ok := b.index[id]
	if !ok {
		i = len(b.probes)
		b.probes = append(b.probes, probeState{id: strings.Clone(id)})
		b.index[b.probes[i].id] = i
	}
	b.lastID, b.lastP = b.probes[i].id, i
	return &b.probes[i]
}

// inWindow reports whether r belongs to target and [from, to).
func inWindow(r *result.Record, target string, from, to time.Time) bool {
	if target != "" && r.Target != target {
		return false
	}
	if !from.IsZero() && r.Time.Before(from) {
		return false
	}
	return to.IsZero() || r.Time.Before(to)
}

// Add counts r if it is in the builder's target and window. r is not kept,
// so a store's Scan may reuse it.
func (b *Builder) Add(r *result.Record) {
	if !inWindow(r, b.opts.Target, b.opts.From, b.opts.To) {
		return
	}
	if b.results == 0 {
		b.target, b.first, b.last = strings.Clone(r.Target), r.Time, r.Time
	} else {
		b.mixed = b.mixed || r.Target != b.target
		if r.Time.Before(b.first) {
			b.first = r.Time
		}
		if r.Time.After(b.last) {
			b.last = r.Time
		}
	}
	b.results++
	p := b.probe(r.Probe)
	p.results++
	t := r.Time.UnixNano()
	switch {
	case !r.OK():
		p.errors++
	case r.Site != "" && !r.Suspect:
		p.tallies = tally(p.tallies, b.sites.get(r.Site), t, r.RTTMs, true)
	}
	if r.Lat != nil && r.Lon != nil && result.ValidLatLon(*r.Lat, *r.Lon) == nil {
		// Place is one value: lat and lon move together.
		if p.lat.newer(*r.Lat, t) || t == p.lat.t && *r.Lat == p.lat.v && *r.Lon > p.lon.v {
			p.lat = latest[float64]{*r.Lat, t, true}
			p.lon = latest[float64]{*r.Lon, t, true}
		}
	}
	if r.Country != "" && p.country.newer(r.Country, t) {
		v := p.country.v
		if v != r.Country {
			v = strings.Clone(r.Country) // Scan's strings may share its buffers
		}
		p.country = latest[string]{v, t, true}
	}
	if r.ASN != 0 && p.asn.newer(r.ASN, t) {
		p.asn = latest[uint32]{r.ASN, t, true}
	}
}

// Compute builds the catchment of recs.
func Compute(recs []result.Record, opts Options, loc SiteLocator) (*Catchment, error) {
	b, err := NewBuilder(opts, loc)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		b.Add(&recs[i])
	}
	return b.Build(), nil
}

// interner keeps one copy of each site code: a store's Scan may reuse the
// bytes behind a record's strings, and a window has few sites but many
// results.
type interner map[string]string

func (in interner) get(s string) string {
	v, ok := in[s]
	if !ok {
		v = strings.Clone(s)
		in[v] = v
	}
	return v
}

// Build computes the catchment of everything added so far.
func (b *Builder) Build() *Catchment {
	o := b.opts
	c := &Catchment{
		Target: o.Target, From: o.From, To: o.To, Resolution: o.Res, By: o.By,
		Probes: len(b.probes), Results: b.results,
		Cells: []CellStat{}, Sites: []SiteStat{}, Flips: []Flip{}, LocationSuspects: []LocationSuspect{},
	}
	if c.Target == "" && !b.mixed {
		c.Target = b.target
	}
	if c.From.IsZero() {
		c.From = b.first
	}
	if c.To.IsZero() {
		c.To = b.last
	}

	order := make([]int, len(b.probes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(b.probes[x].id, b.probes[y].id) })
	// Every interned code is a tally's site, and every tally's site is
	// interned.
	codes := sortedKeys(b.sites)
	ix := newSiteIndex(b.loc, codes)

	// Probes, with their cell and what is known of their nearest site.
	w := &catchmentWork{b: b, c: c, ix: ix, facts: make([]probeFacts, len(order))}
	c.ProbeList = make([]Probe, len(order))
	workers := w.run(len(order), func(bw *buildWorker, lo, hi int) {
		bw.floats = make(floatSlab, 0, 4*(hi-lo))
		for i := lo; i < hi; i++ {
			bw.probe(i, &b.probes[order[i]])
		}
	})
	var members []cellMember
	for i := range c.ProbeList {
		if c.ProbeList[i].Cell != "" {
			members = append(members, cellMember{c.ProbeList[i].Cell, i})
		}
	}
	for _, bw := range workers {
		c.Unlocated += bw.unlocated
		c.Unserved += bw.unserved
	}

	// Cells: the probes of one cell are a run of members, in probe order.
	slices.SortFunc(members, func(x, y cellMember) int {
		return cmp.Or(strings.Compare(x.cell, y.cell), cmp.Compare(x.probe, y.probe))
	})
	var runs []int // where each cell's run starts, and where the last ends
	for i := range members {
		if i == 0 || members[i].cell != members[i-1].cell {
			runs = append(runs, i)
		}
	}
	runs = append(runs, len(members))
	c.Cells = make([]CellStat, len(runs)-1)
	cellSite := make([]int, len(c.Cells))
	w.run(len(c.Cells), func(bw *buildWorker, lo, hi int) {
		bw.floats = make(floatSlab, 0, 8*(hi-lo))
		bw.siteN, bw.siteW = make([]int, len(codes)), make([]float64, len(codes))
		var run []int
		for r := lo; r < hi; r++ {
			run = run[:0]
			for _, m := range members[runs[r]:runs[r+1]] {
				run = append(run, m.probe)
			}
			c.Cells[r], cellSite[r] = bw.cell(members[runs[r]].cell, run)
		}
	})
	cellsOf := make([]int, len(codes))
	for _, k := range cellSite {
		if k >= 0 {
			cellsOf[k]++
		}
	}

	// Sites, flips, location check, overall figures.
	var total, nnW, nnTotal float64
	siteW := make([]float64, len(codes))
	siteN := make([]int, len(codes))
	siteRTT := make([][]float64, len(codes))
	var all []float64
	for i := range c.ProbeList {
		pr, f := &c.ProbeList[i], &w.facts[i]
		if pr.Site == "" {
			continue
		}
		total += pr.Weight
		siteW[f.site] += pr.Weight
		siteN[f.site]++
		if pr.RTTMedian != nil {
			siteRTT[f.site] = append(siteRTT[f.site], *pr.RTTMedian)
			all = append(all, *pr.RTTMedian)
		}
		if len(pr.Sites) > 1 {
			c.Flips = append(c.Flips, Flip{Probe: pr.ID, Site: pr.Site, Sites: pr.Sites})
		}
		if !f.nnOK {
			continue
		}
		nnTotal += pr.Weight
		if f.nn {
			nnW += pr.Weight
		}
		if pr.RTTMin != nil {
			if bound := fibreBoundMs(f.siteKm); *pr.RTTMin < bound {
				c.LocationSuspects = append(c.LocationSuspects, LocationSuspect{Probe: pr.ID, Site: pr.Site,
					Lat: *pr.Lat, Lon: *pr.Lon, MinRTT: roundTo(*pr.RTTMin, 3), DistanceKm: roundTo(f.siteKm, 1), BoundMs: roundTo(bound, 3)})
			}
		}
	}
	c.RTTP50 = quantilePtr(all, 0.5)
	if nnTotal > 0 {
		c.NotNearestShare = ptr(nnW / nnTotal)
	}
	c.Sites = make([]SiteStat, 0, len(codes))
	floats := make(floatSlab, 0, 2*len(codes))
	for k, code := range codes {
		ss := SiteStat{Site: code, Probes: siteN[k], Cells: cellsOf[k], RTTP50: quantilePtr(siteRTT[k], 0.5)}
		if total > 0 {
			ss.Share = siteW[k] / total
		}
		if ix.located[k] {
			s := ix.sites[k]
			ss.Lat, ss.Lon, ss.Name = floats.ptr(s.Lat), floats.ptr(s.Lon), s.Name
		}
		c.Sites = append(c.Sites, ss)
	}
	slices.SortStableFunc(c.Sites, func(a, b SiteStat) int { return cmp.Compare(b.Share, a.Share) })
	return c
}

// cellMember is a probe (index into the probe list) in a cell.
type cellMember struct {
	cell  string
	probe int
}

// probeFacts is what Build works out once per probe and uses again for its
// cell and for the totals.
type probeFacts struct {
	site   int     // index of the probe's site in the codes, -1 if unserved
	h3     h3.Cell // its cell when binning by H3
	nnOK   bool    // place and site known: nn and siteKm hold
	nn     bool    // a located site is strictly nearer than its own
	siteKm float64 // distance to its site
}

// catchmentWork is the state of one Build that its workers share.
type catchmentWork struct {
	b     *Builder
	c     *Catchment
	ix    *siteIndex
	facts []probeFacts
}

// buildWorker is a worker's own state.
type buildWorker struct {
	*catchmentWork
	floats floatSlab
	rtts   []float64 // scratch
	pts    [][2]float64
	// Per cell, by site index; zero between cells.
	siteN     []int
	siteW     []float64
	touched   []int
	unlocated int
	unserved  int
}

// minPerWorker keeps small catchments on one goroutine, where starting
// others would cost more than it saves.
const minPerWorker = 1024

// run calls f on [0, n) split in ranges, one per CPU, on as many
// goroutines, and returns when they are done: a probe's or a cell's figures
// depend on nothing but its own, so a large catchment is computed in a
// fraction of the time. Every result goes to its own index, so the output
// does not depend on the split.
func (w *catchmentWork) run(n int, f func(bw *buildWorker, lo, hi int)) []*buildWorker {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/minPerWorker))
	bws := make([]*buildWorker, workers)
	var wg sync.WaitGroup
	for i := range bws {
		bws[i] = &buildWorker{catchmentWork: w}
		lo, hi := i*n/workers, (i+1)*n/workers
		if workers == 1 {
			f(bws[i], lo, hi)
			break
		}
		wg.Go(func() { f(bws[i], lo, hi) })
	}
	wg.Wait()
	return bws
}

// probe fills c.ProbeList[i] and w.facts[i] from p.
func (w *buildWorker) probe(i int, p *probeState) {
	o := w.b.opts
	pr, f := &w.c.ProbeList[i], &w.facts[i]
	*pr = Probe{ID: p.id, Country: p.country.v, ASN: p.asn.v, Results: p.results, Errors: p.errors,
		Weight: o.Weights.of(p.id, p.asn.v)}
	f.site = -1
	if p.lat.set {
		pr.Lat, pr.Lon = w.floats.ptr(p.lat.v), w.floats.ptr(p.lon.v)
	} else {
		w.unlocated++
	}
	if d := dominant(p.tallies); d >= 0 {
		t := &p.tallies[d]
		pr.Site = t.site
		f.site = w.ix.at[t.site]
		w.rtts = w.b.rtts.appendRTTs(w.rtts[:0], t)
		if v, ok := quantile(w.rtts, 0.5); ok {
			pr.RTTMedian = w.floats.ptr(roundTo(v, 3))
			pr.RTTMin = w.floats.ptr(slices.Min(w.rtts))
		}
		pr.Sites = make(map[string]int, len(p.tallies))
		for _, t := range p.tallies {
			pr.Sites[t.site] = t.n
		}
	} else {
		w.unserved++
	}
	pr.Cell, f.h3 = groupingOf(o.By).cell(p, o.Res)
	if p.lat.set && f.site >= 0 && w.ix.located[f.site] {
		cosLat := math.Cos(p.lat.v * rad)
		_, nd, _ := w.ix.nearest(p.lat.v, p.lon.v, cosLat)
		f.siteKm = w.ix.distanceKm(f.site, p.lat.v, p.lon.v, cosLat)
		f.nnOK, f.nn = true, f.siteKm > nd+1e-9
	}
}

// cell computes one cell from its probes (indexes into the probe list) and
// returns it with the index of its site, -1 for none.
func (w *buildWorker) cell(id string, members []int) (CellStat, int) {
	o := w.b.opts
	cs := CellStat{Cell: id, Confidence: ConfidenceLow}
	var errors int
	w.rtts, w.pts, w.touched = w.rtts[:0], w.pts[:0], w.touched[:0]
	var served, nnW, nnTotal float64
	for _, i := range members {
		pr, f := &w.c.ProbeList[i], &w.facts[i]
		cs.Results += pr.Results
		errors += pr.Errors
		if pr.Lat != nil && o.By != ByH3 {
			w.pts = append(w.pts, [2]float64{*pr.Lat, *pr.Lon})
		}
		if pr.Site == "" {
			continue
		}
		cs.Probes++
		if w.siteN[f.site] == 0 {
			w.touched = append(w.touched, f.site)
		}
		w.siteN[f.site]++
		w.siteW[f.site] += pr.Weight
		served += pr.Weight
		if pr.RTTMedian != nil {
			w.rtts = append(w.rtts, *pr.RTTMedian)
		}
		if f.nnOK {
			nnTotal += pr.Weight
			if f.nn {
				nnW += pr.Weight
			}
		}
	}
	if cs.Results > 0 {
		cs.ErrorShare = float64(errors) / float64(cs.Results)
	}
	// Site indexes follow the codes' order, so the dominant site's ties go
	// to the lower code.
	slices.Sort(w.touched)
	cs.Sites = make(map[string]int, len(w.touched))
	cs.Shares = make(map[string]float64, len(w.touched))
	site := -1
	for _, k := range w.touched {
		code, share := w.ix.codes[k], w.siteW[k]/served
		cs.Sites[code], cs.Shares[code] = w.siteN[k], share
		if site < 0 || share > cs.Share {
			site, cs.Site, cs.Share = k, code, share
		}
		w.siteN[k], w.siteW[k] = 0, 0
	}
	if cs.Probes >= o.MinProbes && cs.Share >= o.Dominance {
		cs.Confidence = ConfidenceHigh
	}
	if v, ok := quantile(w.rtts, 0.5); ok {
		cs.RTTP50 = w.floats.ptr(roundTo(v, 3))
	}
	if v, ok := quantile(w.rtts, 0.9); ok {
		cs.RTTP90 = w.floats.ptr(roundTo(v, 3))
	}
	if nnTotal > 0 {
		cs.NotNearestShare = w.floats.ptr(nnW / nnTotal)
	}

	var lat, lon float64
	ok := false
	if o.By == ByH3 {
		// Members' cells are valid (Cell checks) and all the same.
		ll := w.facts[members[0]].h3.LatLng()
		lat, lon, ok = ll.Lat, ll.Lng, true
	} else {
		lat, lon, ok = centroid(w.pts)
	}
	if !ok {
		return cs, site
	}
	cs.Lat, cs.Lon = w.floats.ptr(roundTo(lat, 6)), w.floats.ptr(roundTo(lon, 6))
	cosLat := math.Cos(lat * rad)
	if n, d, found := w.ix.nearest(lat, lon, cosLat); found {
		cs.NearestSite, cs.NearestDistanceKm = w.ix.codes[n], w.floats.ptr(roundTo(d, 1))
	}
	if site >= 0 && w.ix.located[site] {
		d := w.ix.distanceKm(site, lat, lon, cosLat)
		cs.SiteDistanceKm = w.floats.ptr(roundTo(d, 1))
		if cs.RTTP50 != nil {
			cs.Inflation = w.floats.ptr(roundTo(*cs.RTTP50-fibreBoundMs(d), 3))
		}
	}
	return cs, site
}

// floatSlab hands out pointers to floats from shared blocks: a catchment
// holds tens of thousands of *float64 (null in JSON when unknown), and one
// allocation each was much of Build's time. A full block is left to the
// pointers into it, never grown.
type floatSlab []float64

func (s *floatSlab) ptr(v float64) *float64 {
	if len(*s) == cap(*s) {
		*s = make(floatSlab, 0, 1024)
	}
	*s = append(*s, v)
	return &(*s)[len(*s)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
