package maps

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// TestSummariesEqualRecords: a catchment built from summaries of the
// records, cut into random pieces and merged in random groups, is the
// catchment built from the records, field for field.
func TestSummariesEqualRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	recs := randomRecords(rng, 4000, 120)
	for i := 0; i+2 < len(recs); i += 40 {
		// Ties on time between sites, places, countries and ASNs.
		recs[i+1].Time, recs[i+1].Probe = recs[i].Time, recs[i].Probe
		recs[i+2].Time, recs[i+2].Probe, recs[i+2].Country, recs[i+2].ASN = recs[i].Time, recs[i].Probe, "ZZ", 99
		if recs[i+1].Lat != nil {
			recs[i+1].Lat, recs[i+1].Lon = ptr(*recs[i+1].Lat), ptr(*recs[i+1].Lon+0.5)
		}
	}
	recs[3].Lat, recs[3].Lon = ptr(95.0), ptr(4.0) // invalid: ignored both ways
	recs[4].RTTMs = -1
	for trial := range 20 {
		o := Options{Target: "t", Res: 1 + trial%7, Weights: Weights{ByASN: map[uint32]float64{4: 0.3}}}
		if trial%4 != 0 {
			o.From = t0.Add(time.Duration(rng.IntN(1800)) * time.Second)
			o.To = o.From.Add(time.Duration(1+rng.IntN(3600)) * time.Second)
		}
		if trial%5 == 1 {
			o.By = ByCountry
		}
		want, err := Compute(recs, o, testSites)
		if err != nil {
			t.Fatal(err)
		}

		// Summaries of random runs of each probe's records in the window.
		byProbe := map[string][]*result.Record{}
		for i := range recs {
			if inWindow(&recs[i], o.Target, o.From, o.To) {
				byProbe[recs[i].Probe] = append(byProbe[recs[i].Probe], &recs[i])
			}
		}
		var sums []*summary.Summary
		for _, rs := range byProbe {
			s := &summary.Summary{}
			for _, r := range rs {
				s.Add(r)
				if rng.IntN(8) == 0 {
					sums, s = append(sums, s), &summary.Summary{}
				}
			}
			sums = append(sums, s)
		}
		rng.Shuffle(len(sums), func(i, j int) { sums[i], sums[j] = sums[j], sums[i] })
		b, err := NewBuilder(o, testSites)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(sums); i++ {
			s := sums[i]
			// Merge a probe's following summary into this one now and then.
			if i+1 < len(sums) && sums[i+1].Probe == s.Probe && rng.IntN(2) == 0 {
				s.Merge(sums[i+1])
				i++
			}
			if err := b.AddSummary(s); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.Build(); !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: the catchment from summaries differs from the one from records:\n got %+v\nwant %+v", trial, got, want)
		}
	}
}

func TestSummaryResetKeepsNothing(t *testing.T) {
	var s summary.Summary
	s.Add(&result.Record{Probe: "p", Target: "t", Time: t0, Site: "ams", RTTMs: 3, Country: "NL", ASN: 1,
		Lat: ptr(1.0), Lon: ptr(2.0)})
	s.Reset()
	if !reflect.DeepEqual(s, summary.Summary{Sites: s.Sites}) || len(s.Sites) != 0 {
		t.Fatalf("Reset left %+v", s)
	}
}

func TestAddSummaryRefusesCrossingTheWindow(t *testing.T) {
	b, err := NewBuilder(Options{Target: "t", From: t0, To: t0.Add(time.Minute)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []summary.Summary{
		{Target: "t", Probe: "p", Results: 1, First: t0.Add(-time.Nanosecond).UnixNano(), Last: t0.UnixNano()},
		{Target: "t", Probe: "p", Results: 1, First: t0.UnixNano(), Last: t0.Add(time.Minute).UnixNano()},
		{Target: "u", Probe: "p", Results: 1, First: t0.UnixNano(), Last: t0.UnixNano()},
	} {
		if err := b.AddSummary(&s); err == nil {
			t.Errorf("AddSummary(%+v) took a summary outside the builder's window or target", s)
		}
	}
	if c := b.Build(); c.Results != 0 {
		t.Fatalf("refused summaries were counted: %d results", c.Results)
	}
}
