package sim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/spec"
)

// Phase is one step of a scenario: a routing change, then a while of it.
type Phase struct {
	Text     string // the annotation posted when the phase starts
	Apply    func(*Model) error
	Duration time.Duration
}

// Sites the default scenario changes; both are in DefaultSites.
const (
	WithdrawSite = "fra"
	PrependSite  = "iad"
	prependTimes = 3
)

// DefaultScenario is the demo's loop, each phase lasting phase: steady
// state; fra withdrawn; iad prepended as well; then everything restored,
// and again.
func DefaultScenario(phase time.Duration) []Phase {
	return []Phase{
		{Text: "simulated: every site announced again (restore)", Duration: phase,
			Apply: func(m *Model) error { m.Restore(); return nil }},
		{Text: "simulated: " + WithdrawSite + " withdrawn: its networks move to their next choice", Duration: phase,
			Apply: func(m *Model) error { return m.Withdraw(WithdrawSite) }},
		{Text: fmt.Sprintf("simulated: %s prepended x%d: most networks whose best was %s move away", PrependSite, prependTimes, PrependSite),
			Duration: phase, Apply: func(m *Model) error { return m.Prepend(PrependSite, prependTimes) }},
	}
}

// PlanTarget is the plan entry that describes the simulated service, so
// that GET /api/v1/targets lists it. Only the simulated probes (label
// sim=true) are selected: a real probe would try to reach 192.0.2.53.
func PlanTarget(name string) api.Target {
	return api.Target{
		Spec: spec.Spec{Target: Addr, Method: "dns", AF: 4, QName: QName, QClass: "CH", QType: "TXT",
			SiteRegex: `^ns1\.[a-z]{2}-([a-z]{3})\.example$`},
		Name:     name,
		Interval: spec.Duration(20 * time.Second),
		Probes:   []string{Label + "=true"},
	}
}

// DefaultPhase is how long each phase of the default scenario lasts: a
// loop takes 15 minutes, the live window of the web UI.
const DefaultPhase = 5 * time.Minute

// DefaultBackfill is how much history the demo uploads at start: the web
// UI's live window, so that the map is full at once.
const DefaultBackfill = 15 * time.Minute

// DemoOptions drive RunDemo. Zero values take defaults.
type DemoOptions struct {
	// Tick is how often the fleet measures and uploads: 5 s.
	Tick     time.Duration
	Backfill time.Duration // DefaultBackfill
	// Interval, when set, replaces every probe's own interval (10 to 30 s):
	// tests use it to run fast.
	Interval time.Duration
	Scenario []Phase // DefaultScenario(DefaultPhase)
	Workers  int     // parallel uploads: 4
	Now      func() time.Time
	// Ready, when set, is called once the backfill is stored.
	Ready func()
}

func (o *DemoOptions) defaults() {
	if o.Tick == 0 {
		o.Tick = 5 * time.Second
	}
	if o.Backfill == 0 {
		o.Backfill = DefaultBackfill
	}
	if o.Scenario == nil {
		o.Scenario = DefaultScenario(DefaultPhase)
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// due returns probe i's measurements in (from, to], on its schedule of one
// every interval since the Unix epoch plus its offset.
func (f *Fleet) due(i int, from, to time.Time, every time.Duration) []time.Time {
	p := &f.m.probes[i]
	iv, off := p.Interval, p.Offset
	if every > 0 {
		iv, off = every, time.Duration(int64(off)%int64(every))
	}
	k := (from.UnixNano() - int64(off)) / int64(iv)
	var ts []time.Time
	for ; ; k++ {
		t := time.Unix(0, k*int64(iv)+int64(off))
		if t.After(to) {
			return ts
		}
		if t.After(from) {
			ts = append(ts, t)
		}
	}
}

// measure returns each probe's measurements in (from, to], as batches.
func (f *Fleet) measure(from, to time.Time, every time.Duration) []Batch {
	var bs []Batch
	for i := range f.m.probes {
		ts := f.due(i, from, to, every)
		if len(ts) == 0 {
			continue
		}
		b := Batch{Probe: i}
		for _, t := range ts {
			b.Records = append(b.Records, f.m.Measure(i, t))
		}
		bs = append(bs, b)
	}
	return bs
}

// RunDemo backfills the last o.Backfill, then, every o.Tick, measures what
// is due and uploads it, playing the scenario on a loop and annotating each
// change at the aggregator, until ctx ends. It returns nil then; an error
// only when the backfill could not be stored at all.
func RunDemo(ctx context.Context, log *slog.Logger, f *Fleet, o DemoOptions) error {
	o.defaults()
	now := o.Now()
	var st Stats
	start := time.Now()
	f.Upload(ctx, f.measure(now.Add(-o.Backfill), now, o.Interval), o.Workers, &st)
	if ctx.Err() != nil {
		return nil
	}
	if st.Stored == 0 && st.Failed > 0 {
		return fmt.Errorf("backfilling the demo: %w", st.FirstErr)
	}
	log.Info("demo backfilled", "window", o.Backfill, "results", st.Results, "stored", st.Stored,
		"failed_batches", st.Failed, "took", time.Since(start).Round(time.Millisecond))
	if o.Ready != nil {
		o.Ready()
	}

	phase, phaseEnd := 0, now
	if len(o.Scenario) > 0 {
		if err := o.Scenario[0].Apply(f.m); err != nil {
			return fmt.Errorf("demo scenario: %w", err)
		}
		phaseEnd = now.Add(o.Scenario[0].Duration)
	}
	last := now
	tick := time.NewTicker(o.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := o.Now()
		// What was measured before now saw the routing before a change.
		var us Stats
		f.Upload(ctx, f.measure(last, now, o.Interval), o.Workers, &us)
		last = now
		if us.Failed > 0 {
			log.Warn("demo upload failed", "failed_batches", us.Failed, "err", us.FirstErr)
		}
		log.Debug("demo tick", "results", us.Results, "stored", us.Stored)
		if len(o.Scenario) == 0 || now.Before(phaseEnd) {
			continue
		}
		phase = (phase + 1) % len(o.Scenario)
		p := o.Scenario[phase]
		phaseEnd = now.Add(p.Duration)
		if err := p.Apply(f.m); err != nil {
			return fmt.Errorf("demo scenario: %w", err)
		}
		if _, err := f.c.Annotate(ctx, api.Annotation{Time: now.UTC(), Target: f.m.target, Text: p.Text}); err != nil && ctx.Err() == nil {
			log.Warn("annotating a demo change", "err", err)
		}
		log.Info("demo change", "change", p.Text, "next_in", p.Duration)
	}
}
