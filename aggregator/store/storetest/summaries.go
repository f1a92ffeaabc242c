package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// Summarizing is a store with summaries (store.Summarizer and
// store.StepSummarizer) and a compaction that rolls them up.
type Summarizing interface {
	store.Store
	store.Summarizer
	store.StepSummarizer
	// Compact rolls up what ended before now.
	Compact(ctx context.Context, now time.Time) error
}

// RunSummaries runs the summary suite: whatever windows, targets, probes
// and steps, before and after compaction, re-sent batches, retention and
// late records, the summaries a store hands out hold exactly the records
// its Scan gives. It compares them as summaries (merged per probe, and per
// step), not as maps, so that it needs no H3. open must return a new,
// empty store for each call; settle, when not nil, is called before each
// compaction (a store whose rollup waits for a margin moves its clock).
func RunSummaries(t *testing.T, open func(t *testing.T) Summarizing, settle func()) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Summarizing, func())
	}{
		{"EqualScan", testSummariesEqualScan},
		{"TieOnOneField", testSummariesTie},
		{"Refused", testSummariesRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			if settle == nil {
				settle = func() {}
			}
			tc.fn(t, s, settle)
		})
	}
}

// SumT0 starts the time the summary records spread over.
var SumT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// SumRecords makes n records over the ten minutes after SumT0 (see
// SumRecordsOver).
func SumRecords(rng *rand.Rand, prefix string, n int) []result.Record {
	return SumRecordsOver(rng, prefix, n, 10*time.Minute)
}

// SumRecordsOver makes n records of 3 targets and 12 probes over spread
// after SumT0, with every case the summaries must get right: failures (by error text or kind only), suspects,
// no site, several sites per probe, zero RTTs, places missing, half missing,
// NaN or out of range, -0, empty countries and ASNs, records outside the
// test windows, nanosecond times (stores keep µs) and times on minute
// edges, and runs of records of one probe at the same time with other
// sites, places, countries and ASNs (ties broken by value).
func SumRecordsOver(rng *rand.Rand, prefix string, n int, spread time.Duration) []result.Record {
	sites := []string{"ams", "fra", "lhr", "sin"}
	rs := make([]result.Record, n)
	for i := range rs {
		p := rng.IntN(12)
		t := SumT0.Add(time.Duration(rng.Int64N(int64(spread))))
		switch rng.IntN(30) {
		case 0:
			t = SumT0.Add(-time.Duration(rng.IntN(3600)) * time.Second) // before every window
		case 1:
			t = SumT0.Add(spread + time.Hour + time.Duration(rng.IntN(3600))*time.Second) // after
		case 2, 3:
			t = SumT0.Add(time.Duration(rng.Int64N(int64(spread/time.Minute)+1)) * time.Minute) // on a minute edge
		}
		r := result.Record{ID: fmt.Sprintf("%s-%05d", prefix, i), Time: t, Probe: fmt.Sprintf("p%02d", p),
			Target: fmt.Sprintf("t%d", rng.IntN(3)), Method: result.MethodDNS, AF: 4, Site: sites[p%4],
			RTTMs: float64(1+rng.IntN(50)) + rng.Float64(), Country: []string{"", "NL", "DE"}[rng.IntN(3)],
			ASN: uint32(rng.IntN(3))}
		if rng.IntN(6) > 0 {
			lat, lon := float64(p*7-40)+float64(rng.IntN(2)), float64(p*13-80)
			switch rng.IntN(25) {
			case 0:
				lon = math.NaN()
			case 1:
				lat = 91
			case 2:
				lon = -180.5
			case 3:
				lat = math.Copysign(0, -1)
			case 4:
				lon = 180 // on the edge: valid
			}
			r.Lat, r.Lon = &lat, &lon
			if rng.IntN(20) == 0 {
				r.Lon = nil
			}
		}
		switch k := rng.IntN(24); {
		case k == 0:
			r.Site, r.Error, r.ErrorKind = "", "timeout", result.KindTimeout
		case k == 1:
			r.Error = "refused" // failed, with no kind: still a failure
		case k == 2:
			r.ErrorKind = result.KindNoIdentity
		case k == 3:
			r.Suspect = true
		case k == 4:
			r.RTTMs = 0
		case k == 5:
			r.Site = ""
		case k < 9:
			r.Site = sites[rng.IntN(len(sites))]
		}
		if i > 0 && rng.IntN(15) == 0 {
			prev := rs[i-1]
			r.Time, r.Probe, r.Target = prev.Time, prev.Probe, prev.Target
			if prev.Lat != nil && rng.IntN(2) == 0 {
				lat, lon := *prev.Lat, float64(p*13-79)
				r.Lat, r.Lon = &lat, &lon
			}
		}
		rs[i] = r
	}
	return rs
}

// sumWindow picks a test window: whole minutes, any µs, open on one side,
// inside one minute.
func sumWindow(rng *rand.Rand, i int) (from, to time.Time) {
	switch i % 4 {
	case 0:
		from = SumT0.Add(time.Duration(rng.IntN(10)) * time.Minute)
		to = from.Add(time.Duration(1+rng.IntN(10)) * time.Minute)
	case 1:
		from = SumT0.Add(time.Duration(rng.Int64N(int64(11*time.Minute))) / 1000 * 1000)
		to = from.Add(time.Duration(1+rng.Int64N(int64(11*time.Minute))) / 1000 * 1000)
	case 2:
		if rng.IntN(2) == 0 {
			from = SumT0.Add(time.Duration(rng.Int64N(int64(11*time.Minute))) / 1000 * 1000)
		} else {
			to = SumT0.Add(time.Duration(rng.Int64N(int64(11*time.Minute))) / 1000 * 1000)
		}
	case 3:
		from = SumT0.Add(time.Duration(rng.IntN(10))*time.Minute + time.Second)
		to = from.Add(30 * time.Second)
	}
	return from, to
}

// sumKey is what summaries are merged by: a probe of a target, and the
// step (-1 for whole windows).
type sumKey struct {
	target, probe string
	step          int64
}

// merged folds summaries into one per key, sorted so that two sets of the
// same records compare equal: sites by code, RTTs ascending.
type merged map[sumKey]*summary.Summary

func (m merged) add(k sumKey, s *summary.Summary) {
	if m[k] == nil {
		m[k] = new(summary.Summary)
	}
	c := *s
	c.Sites = nil
	for _, x := range s.Sites {
		x.RTTs = slices.Clone(x.RTTs)
		c.Sites = append(c.Sites, x)
	}
	m[k].Merge(&c)
}

func (m merged) normalize(rtts bool) {
	for _, s := range m {
		// A site a summary names with no result adds nothing.
		s.Sites = slices.DeleteFunc(s.Sites, func(x summary.SiteSummary) bool { return x.N == 0 })
		slices.SortFunc(s.Sites, func(a, b summary.SiteSummary) int { return strings.Compare(a.Site, b.Site) })
		for i := range s.Sites {
			slices.Sort(s.Sites[i].RTTs)
			if !rtts || len(s.Sites[i].RTTs) == 0 {
				s.Sites[i].RTTs = nil
			}
		}
		if len(s.Sites) == 0 {
			s.Sites = nil
		}
	}
}

// stepOf is the step of t in a timeline from from by step.
func stepOf(t, from time.Time, step time.Duration) int64 { return int64(t.Sub(from) / step) }

// fromScan summarizes what s's Scan gives for q, per probe (step 0: whole
// window) or per step.
func fromScan(t *testing.T, s store.Store, q store.Query, step time.Duration) merged {
	t.Helper()
	m := merged{}
	err := s.Scan(context.Background(), q, func(r *result.Record) error {
		k := sumKey{target: r.Target, probe: r.Probe, step: -1}
		if step > 0 {
			k.step = stepOf(r.Time, q.From, step)
		}
		var one summary.Summary
		one.Add(r)
		m.add(k, &one)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameSummaries fails t unless s's summaries of q hold what its Scan gives,
// each within q's target and window, and reports whether any record is in q.
func sameSummaries(t *testing.T, s Summarizing, q store.Query, label string) bool {
	t.Helper()
	inside := func(sum *summary.Summary) error {
		switch {
		case q.Target != "" && sum.Target != q.Target:
			return fmt.Errorf("a summary of target %s", sum.Target)
		case q.Probe != "" && sum.Probe != q.Probe:
			return fmt.Errorf("a summary of probe %s", sum.Probe)
		case !q.From.IsZero() && sum.First < q.From.UnixNano(), !q.To.IsZero() && sum.Last >= q.To.UnixNano():
			return fmt.Errorf("probe %s's summary spans %s to %s, outside the window", sum.Probe,
				time.Unix(0, sum.First).UTC().Format(time.RFC3339Nano), time.Unix(0, sum.Last).UTC().Format(time.RFC3339Nano))
		}
		return nil
	}
	got := merged{}
	if err := s.ScanSummaries(context.Background(), q, func(sum *summary.Summary) error {
		if err := inside(sum); err != nil {
			return err
		}
		got.add(sumKey{sum.Target, sum.Probe, -1}, sum)
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	want := fromScan(t, s, q, 0)
	got.normalize(true)
	want.normalize(true)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: summaries of %+v differ from Scan:\n%s", label, q, diffSummaries(got, want))
	}
	return len(want) > 0
}

// sameStepSummaries is sameSummaries for the steps of a timeline; the RTTs
// of step summaries may be left out.
func sameStepSummaries(t *testing.T, s Summarizing, q store.Query, step time.Duration, label string) {
	t.Helper()
	got := merged{}
	if err := s.ScanStepSummaries(context.Background(), q, step, func(sum *summary.Summary) error {
		k := stepOf(time.Unix(0, sum.First), q.From, step)
		if stepOf(time.Unix(0, sum.Last), q.From, step) != k {
			return fmt.Errorf("probe %s's step summary crosses a step's edge", sum.Probe)
		}
		got.add(sumKey{sum.Target, sum.Probe, k}, sum)
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	want := fromScan(t, s, q, step)
	got.normalize(false)
	want.normalize(false)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: step summaries of %+v by %s differ from Scan:\n%s", label, q, step, diffSummaries(got, want))
	}
}

func diffSummaries(got, want merged) string {
	var b strings.Builder
	keys := make([]sumKey, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if got[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, c sumKey) int {
		return cmp.Or(strings.Compare(a.target, c.target), strings.Compare(a.probe, c.probe), cmp.Compare(a.step, c.step))
	})
	for _, k := range keys {
		if g, w := got[k], want[k]; !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "  %+v:\n    summaries %+v\n    Scan      %+v\n", k, g, w)
			if b.Len() > 4000 {
				break
			}
		}
	}
	return b.String()
}

// CheckSummaries compares s's summaries with its Scan over 24 random
// queries and 12 random timelines in the ten minutes SumRecords fills, and
// fails when too few hold records to mean much: for a backend's own cases
// (rows only it can hold) beside RunSummaries.
func CheckSummaries(t *testing.T, s Summarizing, rng *rand.Rand, label string) {
	t.Helper()
	full := 0
	for i := range 24 {
		q := store.Query{Target: fmt.Sprintf("t%d", i%3)}
		q.From, q.To = sumWindow(rng, i)
		if i%7 == 6 {
			q.Target = "" // every target
		}
		if i%5 == 0 {
			q.Probe = fmt.Sprintf("p%02d", rng.IntN(12))
		}
		if sameSummaries(t, s, q, fmt.Sprintf("%s, window %d", label, i)) {
			full++
		}
	}
	if full < 12 {
		t.Fatalf("%s: only %d of 24 windows hold records: the test checks little", label, full)
	}
	for i := range 12 {
		q := store.Query{Target: fmt.Sprintf("t%d", i%3)}
		q.From = SumT0.Add(time.Duration(rng.Int64N(int64(5 * time.Minute))))
		if i%2 == 0 {
			q.From = q.From.Truncate(time.Microsecond)
		}
		q.To = q.From.Add(time.Duration(1 + rng.Int64N(int64(10*time.Minute))))
		if i%7 == 6 {
			q.Target = ""
		}
		step := time.Duration(1+rng.IntN(120)) * time.Second
		sameStepSummaries(t, s, q, step, fmt.Sprintf("%s, timeline %d", label, i))
	}
}

func testSummariesEqualScan(t *testing.T, s Summarizing, settle func()) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	a := SumRecords(rng, "a", 3000)
	mustAppend(t, s, a[:1000])
	CheckSummaries(t, s, rng, "first batch")
	// Re-sent records, some changed: the store keeps the first, and so
	// must the summaries.
	again := slices.Clone(a[500:2000])
	for i := range again {
		if i%3 == 0 {
			again[i].Site, again[i].RTTMs = "zzz", 999
		}
	}
	if _, err := s.AppendBatches(ctx, [][]result.Record{again, a[1500:3000], a[:10]}); err != nil {
		t.Fatal(err)
	}
	CheckSummaries(t, s, rng, "re-sent batches")
	settle()
	if err := s.Compact(ctx, SumT0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	CheckSummaries(t, s, rng, "compacted")
	cut := SumT0.Add(3*time.Minute + 17*time.Second + 3*time.Microsecond)
	if _, err := s.DeleteBefore(ctx, cut); err != nil {
		t.Fatal(err)
	}
	CheckSummaries(t, s, rng, "after retention")
	// Late records, before and around the cut, into compacted buckets.
	mustAppend(t, s, SumRecords(rng, "late", 1500))
	CheckSummaries(t, s, rng, "after late records")
	settle()
	if err := s.Compact(ctx, SumT0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	CheckSummaries(t, s, rng, "late records compacted")
}

// testSummariesTie: probes whose place, country or ASN alone changes at a
// tie on time, where picking by time alone takes whichever row comes first
// rather than the greater value.
func testSummariesTie(t *testing.T, s Summarizing, _ func()) {
	at := SumT0.Add(time.Minute)
	var rs []result.Record
	for i, vary := range []string{"lat", "lon", "country", "asn"} {
		for k := range 2 {
			lat, lon := 10.0, 20.0
			r := result.Record{ID: fmt.Sprintf("%s-%d", vary, k), Time: at, Probe: "p-" + vary, Target: "t", Method: result.MethodDNS,
				Site: "ams", RTTMs: float64(i + 1), Country: "AA", ASN: 5, Lat: &lat, Lon: &lon}
			if k == 1 {
				switch vary {
				case "lat":
					lat = 11
				case "lon":
					lon = 21
				case "country":
					r.Country = "ZZ"
				case "asn":
					r.ASN = 7
				}
			}
			rs = append(rs, r)
		}
	}
	mustAppend(t, s, rs)
	q := store.Query{Target: "t", From: SumT0, To: SumT0.Add(time.Hour)}
	got := merged{}
	if err := s.ScanSummaries(context.Background(), q, func(sum *summary.Summary) error {
		got.add(sumKey{sum.Target, sum.Probe, -1}, sum)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for probe, want := range map[string][4]any{
		"p-lat": {11.0, 20.0, "AA", uint32(5)}, "p-lon": {10.0, 21.0, "AA", uint32(5)},
		"p-country": {10.0, 20.0, "ZZ", uint32(5)}, "p-asn": {10.0, 20.0, "AA", uint32(7)},
	} {
		g := got[sumKey{"t", probe, -1}]
		if g == nil {
			t.Errorf("%s: no summary", probe)
			continue
		}
		if have := [4]any{g.Lat, g.Lon, g.Country, g.ASN}; have != want {
			t.Errorf("%s: place, country, ASN %v, want %v", probe, have, want)
		}
	}
	sameSummaries(t, s, q, "ties")
}

// testSummariesRefused: queries summaries cannot answer are errors.
func testSummariesRefused(t *testing.T, s Summarizing, _ func()) {
	ctx := context.Background()
	none := func(*summary.Summary) error { t.Error("summary handed out"); return nil }
	for name, err := range map[string]error{
		"limit":             s.ScanSummaries(ctx, store.Query{Limit: 10}, none),
		"step limit":        s.ScanStepSummaries(ctx, store.Query{From: SumT0, Limit: 1}, time.Minute, none),
		"step without from": s.ScanStepSummaries(ctx, store.Query{}, time.Minute, none),
		"zero step":         s.ScanStepSummaries(ctx, store.Query{From: SumT0}, 0, none),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
