package maps

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// Timeline defaults and limits.
const (
	DefaultStep      = time.Minute
	DefaultThreshold = 0.05
	// MaxSteps bounds the per-step state a timeline keeps.
	MaxSteps = 100_000
)

// TimelineOptions select the records of a timeline and how it is sliced.
type TimelineOptions struct {
	Target string // empty keeps every record
	// From (inclusive) and To (exclusive) are required.
	From, To time.Time
	Step     time.Duration // default DefaultStep
	// Threshold marks a step as a shift when at least this weighted share
	// of the probes seen in it and in the previous step with data changed
	// site; default DefaultThreshold.
	Threshold float64
	Weights   Weights
}

// Timeline is a target's site shares step by step, with the steps where
// the catchment shifted.
type Timeline struct {
	Target    string    `json:"target"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Step      float64   `json:"step"` // seconds
	Threshold float64   `json:"threshold"`
	Steps     []Step    `json:"steps"`
	Shifts    []Shift   `json:"shifts"`
}

// Step is one slice [Time, Time+step) of a timeline. Each probe counts once.
type Step struct {
	Time   time.Time          `json:"time"`
	Probes int                `json:"probes"` // served probes
	Shares map[string]float64 `json:"shares"` // weighted; sums to 1 when Probes > 0
}

// Shift is a step whose catchment moved compared with the previous step
// that had data. Only probes in both count for MovedShare, so probes coming
// and going do not look like routing changes; ShareChange (half the L1
// distance between the two share vectors) is reported beside it.
type Shift struct {
	Time        time.Time `json:"time"`
	Probes      int       `json:"probes"` // probes in both steps
	MovedShare  float64   `json:"moved_share"`
	ShareChange float64   `json:"share_change"`
	Flows       []Flow    `json:"flows"`
	// Cause is what most likely moved the catchment, when LinkCauses
	// found one.
	Cause *Cause `json:"cause,omitempty"`
}

// Cause is a BGP event or an operator's annotation that may explain a
// shift.
type Cause struct {
	Kind string    `json:"kind"` // CauseBGP or CauseAnnotation
	Time time.Time `json:"time"`
	Text string    `json:"text"`
	ID   string    `json:"id,omitempty"`
}

// Cause kinds.
const (
	CauseBGP        = "bgp"
	CauseAnnotation = "annotation"
)

// LinkCauses gives every shift the latest of causes that comes before the
// end of the shift's step and at most lookback before the shift. causes
// must be in time order; at equal times the later one wins, so a caller
// puts what it trusts more (an operator's own words) last.
func (tl *Timeline) LinkCauses(causes []Cause, lookback time.Duration) {
	step := time.Duration(tl.Step * float64(time.Second))
	for i := range tl.Shifts {
		sh := &tl.Shifts[i]
		// The move happened in the shift's step at the latest.
		end := sh.Time.Add(step)
		j, _ := slices.BinarySearchFunc(causes, end, func(c Cause, t time.Time) int { return c.Time.Compare(t) })
		if j == 0 || causes[j-1].Time.Before(sh.Time.Add(-lookback)) {
			continue
		}
		c := causes[j-1]
		sh.Cause = &c
	}
}

// TimelineBuilder builds a timeline from records added one at a time,
// keeping per step and probe only site counts.
type TimelineBuilder struct {
	opts TimelineOptions
	// Probes are numbered as they come, so a record costs one string lookup.
	index map[string]int
	ids   []string
	asn   []latest[uint32]
	sites interner
	steps []map[int][]siteTally // nil until a step gets a record
}

// StepCount is how many steps of step cover window, in integers: a step
// near the largest duration must not overflow into zero steps.
func StepCount(window, step time.Duration) int64 {
	n := int64(window / step)
	if window%step != 0 {
		n++
	}
	return n
}

// NewTimelineBuilder checks opts and returns an empty builder.
func NewTimelineBuilder(opts TimelineOptions) (*TimelineBuilder, error) {
	if opts.Step == 0 {
		opts.Step = DefaultStep
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.From.IsZero() || opts.To.IsZero() || !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("timeline window from %s to %s: give both ends, from before to",
			opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	if opts.Step < time.Second {
		return nil, fmt.Errorf("timeline step %s is too short: use 1s or more", opts.Step)
	}
	if !(opts.Threshold > 0 && opts.Threshold <= 1) {
		return nil, fmt.Errorf("shift threshold %v is out of range: use a share in (0, 1]", opts.Threshold)
	}
	n := StepCount(opts.To.Sub(opts.From), opts.Step)
	if n > MaxSteps {
		return nil, fmt.Errorf("timeline of %d steps is too long (max %d): use a longer step or a shorter window", n, MaxSteps)
	}
	if err := opts.Weights.validate(); err != nil {
		return nil, err
	}
	return &TimelineBuilder{opts: opts, index: map[string]int{}, sites: interner{}, steps: make([]map[int][]siteTally, n)}, nil
}

// Add counts r if it is in the builder's target and window.
func (b *TimelineBuilder) Add(r *result.Record) {
	o := b.opts
	if !inWindow(r, o.Target, o.From, o.To) {
		return
	}
	p := b.probe(r.Probe)
	t := r.Time.UnixNano()
	if r.ASN != 0 && b.asn[p].newer(r.ASN, t) {
		b.asn[p] = latest[uint32]{r.ASN, t, true}
	}
	if !r.OK() || r.Site == "" || r.Suspect {
		return
	}
	i := int(r.Time.Sub(o.From) / o.Step)
	if b.steps[i] == nil {
		b.steps[i] = map[int][]siteTally{}
	}
	b.steps[i][p] = tally(b.steps[i][p], b.sites.get(r.Site), t, 0, false)
}

// probe is the number of probe id, given one on first sight.
func (b *TimelineBuilder) probe(id string) int {
	p, ok := b.index[id]
	if !ok {
		p = len(b.ids)
		b.ids = append(b.ids, strings.Clone(id))
		b.asn = append(b.asn, latest[uint32]{})
		b.index[b.ids[p]] = p
	}
	return p
}

// AddSummary counts the records s summarizes, as Add would count each of
// them. s must lie wholly in the builder's target and window and inside
// one step [From+k*Step, From+(k+1)*Step): a store rolls records up per
// step (store.StepSummarizer), and a summary crossing a step's edge
// would have to be counted in both steps or in neither, both wrong, so it
// is refused. Site RTTs are not used. s is not kept.
func (b *TimelineBuilder) AddSummary(s *summary.Summary) error {
	if s.Results == 0 {
		return nil
	}
	o := b.opts
	if o.Target != "" && s.Target != o.Target {
		return fmt.Errorf("summary of target %q added to a timeline of %q: the store returned another target's rows", s.Target, o.Target)
	}
	first, last := time.Unix(0, s.First).UTC(), time.Unix(0, s.Last).UTC()
	span := func() string {
		return first.Format(time.RFC3339Nano) + " to " + last.Format(time.RFC3339Nano)
	}
	if first.Before(o.From) || !last.Before(o.To) || last.Before(first) {
		return fmt.Errorf("summary of probe %q spans %s, outside the window %s to %s: the store must split summaries at the window's edges",
			s.Probe, span(), o.From.Format(time.RFC3339Nano), o.To.Format(time.RFC3339Nano))
	}
	i := int(first.Sub(o.From) / o.Step)
	if end := o.From.Add(time.Duration(i+1) * o.Step); !last.Before(end) {
		return fmt.Errorf("summary of probe %q spans %s, across the step edge at %s: the store must split summaries at every step (from + k*%s)",
			s.Probe, span(), end.Format(time.RFC3339Nano), o.Step)
	}
	p := b.probe(s.Probe)
	if s.ASN != 0 && b.asn[p].newer(s.ASN, s.ASNAt) {
		b.asn[p] = latest[uint32]{s.ASN, s.ASNAt, true}
	}
	for _, ss := range s.Sites {
		if ss.N <= 0 {
			continue
		}
		if b.steps[i] == nil {
			b.steps[i] = map[int][]siteTally{}
		}
		ts := b.steps[i][p]
		// Compare codes before interning: the tally is there most times.
		j := slices.IndexFunc(ts, func(x siteTally) bool { return x.site == ss.Site })
		if j < 0 {
			ts = append(ts, siteTally{site: b.sites.get(ss.Site), last: ss.Last})
			j = len(ts) - 1
		}
		ts[j].n += ss.N
		ts[j].last = max(ts[j].last, ss.Last)
		b.steps[i][p] = ts
	}
	return nil
}

// ComputeTimeline builds the timeline of recs.
func ComputeTimeline(recs []result.Record, opts TimelineOptions) (*Timeline, error) {
	b, err := NewTimelineBuilder(opts)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		b.Add(&recs[i])
	}
	return b.Build(), nil
}

// Build computes the timeline of everything added so far.
func (b *TimelineBuilder) Build() *Timeline {
	o := b.opts
	tl := &Timeline{Target: o.Target, From: o.From, To: o.To, Step: o.Step.Seconds(), Threshold: o.Threshold,
		Steps: make([]Step, 0, len(b.steps)), Shifts: []Shift{}}
	weights := make([]float64, len(b.ids))
	for p, id := range b.ids {
		weights[p] = o.Weights.of(id, b.asn[p].v)
	}
	var prev map[int]string // probe -> site of the previous step with data
	var prevShares map[string]float64
	for i, m := range b.steps {
		st := Step{Time: o.From.Add(time.Duration(i) * o.Step), Shares: map[string]float64{}}
		cur := make(map[int]string, len(m))
		var total float64
		// A fixed order (by probe id), so float sums do not vary.
		probes := slices.SortedFunc(maps.Keys(m), func(x, y int) int { return strings.Compare(b.ids[x], b.ids[y]) })
		for _, probe := range probes {
			ts := m[probe]
			site := ts[dominant(ts)].site
			cur[probe] = site
			w := weights[probe]
			st.Shares[site] += w
			total += w
		}
		st.Probes = len(cur)
		for s := range st.Shares {
			st.Shares[s] /= total
		}
		tl.Steps = append(tl.Steps, st)
		if len(cur) == 0 {
			continue
		}
		if prev != nil {
			if sh, ok := shift(st, probes, prev, cur, prevShares, weights, o.Threshold); ok {
				tl.Shifts = append(tl.Shifts, sh)
			}
		}
		prev, prevShares = cur, st.Shares
	}
	return tl
}

// shift compares a step with the previous step that had data.
func shift(st Step, probes []int, prev, cur map[int]string, prevShares map[string]float64, weights []float64, threshold float64) (Shift, bool) {
	sh := Shift{Time: st.Time, Flows: []Flow{}}
	var common, moved float64
	flows := map[[2]string]int{}
	for _, probe := range probes {
		site := cur[probe]
		was, ok := prev[probe]
		if !ok {
			continue
		}
		w := weights[probe]
		sh.Probes++
		common += w
		if was != site {
			moved += w
			flows[[2]string{was, site}]++
		}
	}
	if common > 0 {
		sh.MovedShare = moved / common
	}
	var l1 float64
	for _, s := range sortedKeys(st.Shares) {
		l1 += math.Abs(st.Shares[s] - prevShares[s])
	}
	for _, s := range sortedKeys(prevShares) {
		if _, ok := st.Shares[s]; !ok {
			l1 += prevShares[s]
		}
	}
	sh.ShareChange = l1 / 2
	for k, n := range flows {
		sh.Flows = append(sh.Flows, Flow{From: k[0], To: k[1], Probes: n})
	}
	sortFlows(sh.Flows)
	return sh, sh.MovedShare >= threshold
}
