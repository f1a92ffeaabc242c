package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/mapsapi"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/storetest"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

var (
	_ store.Summarizer     = (*Store)(nil)
	_ store.StepSummarizer = (*Store)(nil)
)

// sumT0 starts the ten minutes the summary tests' records spread over.
var sumT0 = storetest.SumT0

// sumRecords is the conformance suite's generator with the RTTs that only
// ClickHouse can store: NaN, infinite and negative ones, which Scan gives
// and the summaries must leave out.
func sumRecords(rng *rand.Rand, prefix string, n int) []result.Record {
	rs := storetest.SumRecords(rng, prefix, n)
	for i := range rs {
		if rng.IntN(24) == 0 {
			rs[i].RTTMs = []float64{math.NaN(), math.Inf(1), math.Inf(-1), -3}[rng.IntN(4)]
		}
	}
	return rs
}

// seedSummaries stores records through Append and, to leave duplicates
// that only FINAL merges, inserts part of them again behind Append's back
// (as two instances appending the same batch at once do).
func seedSummaries(t *testing.T, s *Store, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	rs := sumRecords(rng, "a", 4000)
	// Each probe's last records tie on time with other places,
	// countries and ASNs, in both orders of id.
	last := sumT0.Add(10*time.Minute - time.Microsecond)
	for i := range rs[:144] {
		p, tg := i/12, i%12/4
		lat, lon := float64(p), float64(i%2)
		rs[i] = result.Record{ID: fmt.Sprintf("tie-%03d", i), Time: last, Probe: fmt.Sprintf("p%02d", p), Target: fmt.Sprintf("t%d", tg),
			Site: []string{"ams", "fra"}[p%2], RTTMs: 5, Country: []string{"AA", "ZZ", "", "AB"}[i%4], ASN: uint32(i % 4), Lat: &lat, Lon: &lon}
	}
	if _, err := s.Append(ctx, rs[:2500]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(ctx, rs[1000:]); err != nil || n != 1500 {
		t.Fatalf("re-sent batch: stored %d, %v; want the 1500 new ones", n, err)
	}
	insertAgain(t, s, rs[:4000])
	var rows uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM results`).Scan(&rows); err != nil || rows != 6000 {
		t.Fatalf("results table holds %d rows, %v; want 6000 with duplicates", rows, err)
	}
}

// encodeCatchment is c's JSON and that of its probes, which tells -0 from
// 0 where reflect.DeepEqual does not.
func encodeCatchment(t *testing.T, c *maps.Catchment) string {
	t.Helper()
	b, err := json.Marshal([]any{c, c.ProbeList})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSummaryConformance: the summaries hold exactly what Scan gives, with
// FINAL sliced over the window's time and in one query.
func TestSummaryConformance(t *testing.T) {
	for name, opts := range map[string][]Option{"sliced": nil, "unsliced": {WithQuerySlices(1)}} {
		t.Run(name, func(t *testing.T) {
			storetest.RunSummaries(t, func(t *testing.T) storetest.Summarizing { return openRollup(t, freshDSN(t), opts...) }, settle)
		})
	}
}

// TestSummariesOverDuplicateRows: rows of one id that only FINAL merges (two
// instances appending one batch at once) count once in the summaries too.
func TestSummariesOverDuplicateRows(t *testing.T) {
	s := openStore(t, freshDSN(t))
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	seedSummaries(t, s, rng)
	storetest.CheckSummaries(t, s, rng, "duplicate rows")
}

// scanOnly hides the store's summaries, so mapsapi falls back to Scan.
type scanOnly struct{ store.Results }

// TestMapsAPIOnSummaries: the HTTP answers of mapsapi on the store (from
// summaries) equal those on the same store through Scan only.
func TestMapsAPIOnSummaries(t *testing.T) {
	s := openStore(t, freshDSN(t))
	defer s.Close()
	seedSummaries(t, s, rand.New(rand.NewPCG(9, 10)))
	log := slog.New(slog.DiscardHandler)
	fast, slow := http.NewServeMux(), http.NewServeMux()
	mapsapi.New(log, s, nil).Register(fast)
	mapsapi.New(log, scanOnly{s}, nil).Register(slow)
	w := func(d time.Duration) string { return url.QueryEscape(sumT0.Add(d).Format(time.RFC3339Nano)) }
	for _, path := range []string{
		"/api/v1/catchment?target=t1&from=" + w(0) + "&to=" + w(10*time.Minute) + "&res=3",
		"/api/v1/catchment?target=t0&from=" + w(90*time.Second+7*time.Microsecond) + "&to=" + w(7*time.Minute) + "&format=csv",
		"/api/v1/diff?target=t2&a_from=" + w(0) + "&a_to=" + w(5*time.Minute) + "&b_from=" + w(5*time.Minute) + "&b_to=" + w(10*time.Minute),
		"/api/v1/timeline?target=t1&from=" + w(time.Second/3) + "&to=" + w(10*time.Minute) + "&step=20s&threshold=0.01",
	} {
		get := func(mux *http.ServeMux) (int, string) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			body, _ := io.ReadAll(rec.Result().Body)
			return rec.Code, string(body)
		}
		fc, fb := get(fast)
		sc, sb := get(slow)
		if fc != http.StatusOK || fc != sc || fb != sb {
			t.Errorf("GET %s: on summaries %d\n %.400s\non Scan %d\n %.400s", path, fc, fb, sc, sb)
		}
	}
}

func TestCeilMicros(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want uint64
	}{
		{time.UnixMicro(5), 5},
		{time.Unix(0, 5001), 6},
		{time.Unix(0, 5999), 6},
		{time.Unix(-1, 0), 0},
	} {
		if got := ceilMicros(c.t); got != c.want {
			t.Errorf("ceilMicros(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

// sameCatchments fails t unless the catchment of o built from raw's Scan
// and the one built from sum's ScanSummaries (one summary per probe, RTTs
// as maps keeps them) are the same; it reports whether they hold results.
func sameCatchments(t *testing.T, raw, sum *Store, o maps.Options, q store.Query, label string) bool {
	t.Helper()
	ctx := context.Background()
	br, err := maps.NewBuilder(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Scan(ctx, q, func(r *result.Record) error { br.Add(r); return nil }); err != nil {
		t.Fatal(err)
	}
	bs, err := maps.NewBuilder(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]string]bool{}
	err = sum.ScanSummaries(ctx, q, func(s *summary.Summary) error {
		k := [2]string{s.Target, s.Probe}
		if seen[k] {
			t.Errorf("%s: probe %s of %s has two summaries", label, s.Probe, s.Target)
		}
		seen[k] = true
		for _, x := range s.Sites {
			if slices.ContainsFunc(x.RTTs, func(v float64) bool { return !(v > 0) || math.IsInf(v, 0) }) {
				t.Errorf("%s: probe %s keeps RTTs that maps does not: %v", label, s.Probe, x.RTTs)
			}
		}
		return bs.AddSummary(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, sc := br.Build(), bs.Build()
	if !reflect.DeepEqual(rc, sc) || encodeCatchment(t, rc) != encodeCatchment(t, sc) {
		t.Fatalf("%s: window %s to %s of %q, probe %q: catchment from summaries differs from the raw one:\n sum %s\n raw %s",
			label, o.From, o.To, o.Target, q.Probe, encodeCatchment(t, sc), encodeCatchment(t, rc))
	}
	return rc.Results > 0
}

// sameTimelines fails t unless the timeline of o built from raw's Scan and
// the one from sum's ScanStepSummaries are the same, and returns it.
func sameTimelines(t *testing.T, raw, sum *Store, o maps.TimelineOptions, label string) *maps.Timeline {
	t.Helper()
	ctx := context.Background()
	q := store.Query{Target: o.Target, From: o.From, To: o.To}
	br, err := maps.NewTimelineBuilder(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Scan(ctx, q, func(r *result.Record) error { br.Add(r); return nil }); err != nil {
		t.Fatal(err)
	}
	bs, err := maps.NewTimelineBuilder(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.ScanStepSummaries(ctx, q, o.Step, bs.AddSummary); err != nil {
		t.Fatal(err)
	}
	want, got := br.Build(), bs.Build()
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if !reflect.DeepEqual(got, want) || string(gj) != string(wj) {
		t.Fatalf("%s %+v: from step summaries\n %.600s\nfrom Scan\n %.600s", label, o, gj, wj)
	}
	return want
}

// insertAgain inserts every other record of rs once more, past Append's
// lookup, as two instances appending one batch at once may: duplicates
// that only FINAL merges.
func insertAgain(t *testing.T, s *Store, rs []result.Record) {
	t.Helper()
	again := make([]*result.Record, 0, len(rs)/2)
	for i := 0; i < len(rs); i += 2 {
		again = append(again, &rs[i])
	}
	if err := s.insert(context.Background(), again); err != nil {
		t.Fatal(err)
	}
}
