package maps

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// TestTimelineSummariesEqualRecords: a timeline built from per-step
// summaries of the records, cut into random pieces and fed in random order,
// is the timeline built from the records.
func TestTimelineSummariesEqualRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	recs := randomRecords(rng, 4000, 60)
	for i := range recs {
		// Sub-second times, so that steps' edges cut between records.
		recs[i].Time = recs[i].Time.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		if i%50 == 1 { // ties on time between sites and ASNs
			recs[i].Time, recs[i].Probe, recs[i].ASN, recs[i].Site = recs[i-1].Time, recs[i-1].Probe, 77, "zzz"
		}
		if i%3 == 0 {
			recs[i].Target = "u"
		}
	}
	for trial := range 20 {
		o := TimelineOptions{Target: "t", From: t0.Add(time.Duration(rng.IntN(600)) * time.Second),
			Step: time.Duration(1+rng.IntN(300)) * time.Second, Weights: Weights{ByASN: map[uint32]float64{4: 0.3, 77: 2}}}
		o.To = o.From.Add(time.Duration(600+rng.IntN(3000)) * time.Second)
		if trial%4 == 1 {
			o.Target = "" // every target
		}
		if trial%5 == 2 {
			o.Threshold = 0.01
		}
		want, err := ComputeTimeline(recs, o)
		if err != nil {
			t.Fatal(err)
		}

		// Summaries of random runs of each probe's records in each step.
		type key struct {
			target, probe string
			step          time.Duration
		}
		groups := map[key][]*result.Record{}
		for i := range recs {
			r := &recs[i]
			if inWindow(r, o.Target, o.From, o.To) {
				k := key{r.Target, r.Probe, r.Time.Sub(o.From) / o.Step}
				groups[k] = append(groups[k], r)
			}
		}
		var sums []*summary.Summary
		for _, rs := range groups {
			s := &summary.Summary{}
			for _, r := range rs {
				s.Add(r)
				if rng.IntN(5) == 0 {
					sums, s = append(sums, s), &summary.Summary{}
				}
			}
			sums = append(sums, s)
		}
		rng.Shuffle(len(sums), func(i, j int) { sums[i], sums[j] = sums[j], sums[i] })
		b, err := NewTimelineBuilder(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sums {
			if err := b.AddSummary(s); err != nil {
				t.Fatal(err)
			}
		}
		got := b.Build()
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if !reflect.DeepEqual(got, want) || string(gj) != string(wj) {
			t.Fatalf("trial %d (%+v): timeline from summaries differs:\n got  %s\n want %s", trial, o, gj, wj)
		}
		if trial == 0 && (len(want.Shifts) == 0 || len(sums) < 100) {
			t.Fatalf("%d shifts from %d summaries: the test checks little", len(want.Shifts), len(sums))
		}
	}
}

// TestTimelineAddSummaryRefuses summaries that are not wholly inside the
// timeline's target, window and one step.
func TestTimelineAddSummaryRefuses(t *testing.T) {
	b, err := NewTimelineBuilder(TimelineOptions{Target: "t", From: t0, To: t0.Add(time.Hour), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	for _, c := range []struct {
		name string
		s    summary.Summary
		want string
	}{
		{"other target", summary.Summary{Target: "u", Probe: "p", Results: 1, First: at(0), Last: at(0)}, "another target"},
		{"before the window", summary.Summary{Target: "t", Probe: "p", Results: 1, First: at(-time.Second), Last: at(time.Second)}, "outside the window"},
		{"at the window's end", summary.Summary{Target: "t", Probe: "p", Results: 1, First: at(time.Hour), Last: at(time.Hour)}, "outside the window"},
		{"across a step", summary.Summary{Target: "t", Probe: "p", Results: 2, First: at(59 * time.Second), Last: at(time.Minute)}, "across the step edge"},
		{"last before first", summary.Summary{Target: "t", Probe: "p", Results: 2, First: at(2 * time.Second), Last: at(time.Second)}, "outside the window"},
	} {
		if err := b.AddSummary(&c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	ok := summary.Summary{Target: "t", Probe: "p", Results: 2, First: at(time.Minute), Last: at(2*time.Minute - 1),
		Sites: []summary.SiteSummary{{Site: "ams", N: 2, Last: at(2*time.Minute - 1)}}}
	if err := b.AddSummary(&ok); err != nil {
		t.Errorf("summary inside one step: %v", err)
	}
	if err := b.AddSummary(&summary.Summary{}); err != nil {
		t.Errorf("empty summary: %v", err)
	}
	if tl := b.Build(); tl.Steps[1].Probes != 1 || tl.Steps[1].Shares["ams"] != 1 {
		t.Errorf("step 1 after the summary: %+v, want one probe at ams", tl.Steps[1])
	}
}

// TestStepNearMaxDuration: a step near the longest time.Duration makes one
// step, not zero (the ceiling once overflowed int64 and AddSummary
// panicked).
func TestStepNearMaxDuration(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, step := range []time.Duration{math.MaxInt64, math.MaxInt64 - 1, 2562047*time.Hour + 47*time.Minute + 16*time.Second} {
		if n := StepCount(time.Hour, step); n != 1 {
			t.Errorf("StepCount(1h, %v) = %d, want 1", step, n)
		}
		b, err := NewTimelineBuilder(TimelineOptions{Target: "t", From: from, To: from.Add(time.Hour), Step: step})
		if err != nil {
			t.Fatal(err)
		}
		var s summary.Summary
		s.Add(&result.Record{ID: "a", Time: from.Add(time.Minute), Probe: "p", Target: "t", Method: result.MethodDNS, Site: "ams", RTTMs: 3})
		if err := b.AddSummary(&s); err != nil {
			t.Fatal(err)
		}
		if tl := b.Build(); len(tl.Steps) != 1 || tl.Steps[0].Probes != 1 {
			t.Errorf("step %v: steps %+v", step, tl.Steps)
		}
	}
	for w, want := range map[time.Duration]int64{time.Minute: 1, 61 * time.Second: 2, 2 * time.Minute: 2} {
		if n := StepCount(w, time.Minute); n != want {
			t.Errorf("StepCount(%v, 1m) = %d, want %d", w, n, want)
		}
	}
}
