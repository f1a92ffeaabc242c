package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/summarycodec"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// TestCompactedSummariesEqualScan: with the coarser levels made part way
// and then fully, with late records landing in made buckets and with
// retention cutting into buckets of every level, the catchment of any
// window from summaries equals the one from the raw records.
func TestCompactedSummariesEqualScan(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	const spread = 50 * time.Hour
	check := func(stage string) {
		t.Helper()
		full := 0
		for i := range 60 {
			o := maps.Options{Target: fmt.Sprintf("t%d", i%3), Res: 3}
			switch i % 4 {
			case 0: // on the edges of a level
				edge := time.Duration(spans[1+rng.IntN(len(spans)-1)]) * time.Microsecond
				o.From = sumT0.Truncate(edge).Add(time.Duration(rng.Int64N(int64(spread/edge))) * edge)
				o.To = o.From.Add(time.Duration(1+rng.IntN(30)) * edge)
			case 1: // anywhere, to the µs
				o.From = sumT0.Add(time.Duration(rng.Int64N(int64(spread))) / 1000 * 1000)
				o.To = o.From.Add(time.Duration(1 + rng.Int64N(int64(spread))))
			case 2: // open on one side
				if rng.IntN(2) == 0 {
					o.From = sumT0.Add(time.Duration(rng.Int64N(int64(spread))))
				} else {
					o.To = sumT0.Add(time.Duration(rng.Int64N(int64(spread))))
				}
			case 3: // everything
			}
			if i%7 == 6 {
				o.Target = ""
			}
			probe := ""
			if i%5 == 0 {
				probe = fmt.Sprintf("p%02d", rng.IntN(12))
			}
			if sameCatchments(t, s, o, probe, stage) {
				full++
			}
		}
		if full < 30 {
			t.Fatalf("%s: only %d of 60 windows hold records: the test checks little", stage, full)
		}
	}
	// made counts the summaries of each coarser level.
	made := func() map[int64]int {
		t.Helper()
		out := map[int64]int{}
		rows, err := s.r.Query(`SELECT span, count(*) FROM summaries WHERE span > ? GROUP BY span`, spans[0])
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var span int64
			var n int
			if err := rows.Scan(&span, &n); err != nil {
				t.Fatal(err)
			}
			out[span] = n
		}
		return out
	}

	if _, err := s.Append(ctx, sumRecordsOver(rng, "a", 6000, spread)); err != nil {
		t.Fatal(err)
	}
	// 12 hours in, 10:00 to 22:00: the first day has not ended.
	if err := s.Compact(ctx, sumT0.Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := made(); m[spans[1]] == 0 || m[6*hour] == 0 || m[day] != 0 {
		t.Fatalf("compacting up to 12 hours in made %v summaries per span, want some of 5 minutes and 6 hours, none of a day", m)
	}
	check("made part way")

	if _, err := s.Append(ctx, sumRecordsOver(rng, "late", 2000, spread)); err != nil {
		t.Fatal(err)
	}
	check("late records in made buckets")

	if err := s.Compact(ctx, sumT0.Add(4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	m := made()
	for _, span := range spans[1:] {
		if m[span] == 0 {
			t.Fatalf("after compacting everything, no summary of %s: %v", time.Duration(span)*time.Microsecond, m)
		}
	}
	check("made fully")
	// A second pass finds nothing to do.
	if err := s.Compact(ctx, sumT0.Add(4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again := made(); fmt.Sprint(again) != fmt.Sprint(m) {
		t.Fatalf("compacting again changed the summaries per span from %v to %v", m, again)
	}

	if _, err := s.DeleteBefore(ctx, sumT0.Add(7*time.Hour+13*time.Minute+17*time.Second)); err != nil {
		t.Fatal(err)
	}
	check("after retention")
	if _, err := s.Append(ctx, sumRecordsOver(rng, "later", 2000, spread)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, sumT0.Add(5*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("late records after retention")
}

// TestCompactStopsAtTheHorizon: buckets that have not ended compactGrace
// before now are left to level 0, whatever records they hold.
func TestCompactStopsAtTheHorizon(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, sumRecordsOver(rand.New(rand.NewPCG(9, 10)), "a", 500, 30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := sumT0.Add(10*time.Minute + 30*time.Second) // 10:05-10:10 ended only 30 s ago
	if err := s.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	var last sql.NullInt64
	if err := s.r.QueryRow(`SELECT max(start + span) FROM summaries WHERE span > ?`, spans[0]).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := sumT0.Add(5 * time.Minute).UnixMicro(); !last.Valid || last.Int64 != want {
		t.Fatalf("compacting at %s made buckets up to %v, want up to %s", now, last, sumT0.Add(5*time.Minute))
	}
	var done int64
	if err := s.r.QueryRow(`SELECT done FROM rollup_state WHERE span = ?`, spans[1]).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if done != last.Int64 {
		t.Fatalf("5-minute level marked made up to %s, want %s", time.UnixMicro(done).UTC(), time.UnixMicro(last.Int64).UTC())
	}
}

// TestCompactCancelled: a cancelled context stops Compact with its error.
func TestCompactCancelled(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Compact(ctx, sumT0); err == nil {
		t.Fatal("Compact with a cancelled context: no error")
	}
}

// TestCover: the runs of a window tile it exactly, and each run lies on
// its level's edges and within what the level holds.
func TestCover(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 2000 {
		var lv levels
		lv.done[0] = 1 << 62
		for l := 1; l < len(spans); l++ {
			lv.done[l] = floorTo(min(lv.done[l-1], rng.Int64N(30*day)), spans[l])
		}
		a := rng.Int64N(30*day) / minute * minute
		b := a + minute + rng.Int64N(30*day)/minute*minute
		at := a
		top := rng.IntN(len(spans))
		err := lv.cover(0, top, a, b, func(l int, x, y int64) error {
			switch {
			case x != at || x >= y:
				return fmt.Errorf("run %d..%d after %d", x, y, at)
			case x%spans[l] != 0 || y%spans[l] != 0:
				return fmt.Errorf("run %d..%d off the edges of level %d", x, y, l)
			case l > top:
				return fmt.Errorf("run %d..%d of level %d above the top %d", x, y, l, top)
			case l > 0 && y > lv.done[l]:
				return fmt.Errorf("run %d..%d of level %d past its done %d", x, y, l, lv.done[l])
			}
			at = y
			return nil
		})
		if err == nil && at != b {
			err = fmt.Errorf("runs end at %d", at)
		}
		if err != nil {
			t.Fatalf("cover of %d..%d with done %v: %v", a, b, lv.done, err)
		}
	}
}

// TestMinuteSummariesMigrate: the minute summaries of schema version 2
// serve maps as level 0 after the migration to spans, and compact.
func TestMinuteSummariesMigrate(t *testing.T) {
	recs := sumRecordsOver(rand.New(rand.NewPCG(13, 14)), "v2", 3000, 3*time.Hour)
	ru := rollup{}
	var row rolledRow
	for i := range recs {
		ru.add(row.stored(&recs[i]), recs[i].Time.UnixMicro())
	}
	path := oldDatabase(t, 2, recs, func(db *sql.DB) {
		for k, sum := range ru {
			if _, err := db.Exec(`INSERT INTO summaries (target, minute, probe, body) VALUES (?, ?, ?, ?)`,
				k.target, k.start, k.probe, summarycodec.Append(nil, sum)); err != nil {
				t.Fatal(err)
			}
		}
	})

	s := open(t, path)
	defer s.Close()
	o := maps.Options{Target: "t2", From: sumT0, To: sumT0.Add(3 * time.Hour)}
	if !sameCatchments(t, s, o, "", "migrated") {
		t.Fatal("the migrated store holds no results of t2")
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM summaries WHERE span = ?`, minute).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ru) {
		t.Fatalf("%d minute summaries after the migration, want %d", n, len(ru))
	}
	if err := s.Compact(context.Background(), sumT0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sameCatchments(t, s, o, "", "migrated and compacted")
}

// TestStepSummariesEqualScan: the timeline of any window and step from
// step summaries equals the one from the raw records, with the levels made
// part way.
func TestStepSummariesEqualScan(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 16))
	const spread = 30 * time.Hour
	if _, err := s.Append(ctx, sumRecordsOver(rng, "a", 5000, spread)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, sumT0.Add(20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	steps := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour,
		2 * time.Minute, 90 * time.Second, 7 * time.Minute}
	full := 0
	for i := range 60 {
		step := steps[rng.IntN(len(steps))]
		o := maps.TimelineOptions{Target: fmt.Sprintf("t%d", i%3), Step: step}
		if i%2 == 0 { // on the step's edges
			o.From = sumT0.Truncate(step).Add(time.Duration(rng.Int64N(int64(spread/step))) * step)
		} else {
			o.From = sumT0.Add(time.Duration(rng.Int64N(int64(spread))) / 1000 * 1000)
		}
		o.To = o.From.Add(time.Duration(1+rng.IntN(40)) * step)
		q := store.Query{Target: o.Target, From: o.From, To: o.To}
		raw, err := maps.NewTimelineBuilder(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Scan(ctx, q, func(r *result.Record) error { raw.Add(r); return nil }); err != nil {
			t.Fatal(err)
		}
		sum, err := maps.NewTimelineBuilder(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ScanStepSummaries(ctx, q, step, sum.AddSummary); err != nil {
			t.Fatalf("window %s to %s by %s: %v", o.From, o.To, step, err)
		}
		want, got := raw.Build(), sum.Build()
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("window %s to %s by %s: timeline from step summaries differs from the raw one:\n sum %+v\n raw %+v",
				o.From, o.To, step, got, want)
		}
		for _, st := range want.Steps {
			if st.Probes > 0 {
				full++
				break
			}
		}
	}
	if full < 30 {
		t.Fatalf("only %d of 60 timelines hold records: the test checks little", full)
	}
	// On the edges, made buckets serve: fewer summaries than records.
	q := store.Query{From: sumT0, To: sumT0.Add(12 * time.Hour)}
	var sums, results int
	if err := s.ScanStepSummaries(ctx, q, time.Hour, func(s *summary.Summary) error { sums++; results += s.Results; return nil }); err != nil {
		t.Fatal(err)
	}
	if sums == 0 || sums > results/4 {
		t.Errorf("a 12-hour timeline by the hour read %d summaries of %d results, want hourly ones", sums, results)
	}
	if err := s.ScanStepSummaries(ctx, store.Query{From: sumT0}, time.Minute, func(*summary.Summary) error { return nil }); err == nil {
		t.Error("step summaries of a window with no end: no error")
	}
}

// TestImportIntoEmptyStore: compacting an empty store makes nothing, so
// that an import of past records afterwards is rolled up by the next
// Compact rather than merged into coarse buckets by every Append.
func TestImportIntoEmptyStore(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	now := sumT0.Add(48 * time.Hour)
	if err := s.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, sumRecordsOver(rand.New(rand.NewPCG(17, 18)), "import", 3000, 6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	coarse := func() int {
		t.Helper()
		var n int
		if err := s.r.QueryRow(`SELECT count(*) FROM summaries WHERE span > ?`, spans[0]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := coarse(); n != 0 {
		t.Fatalf("the import wrote %d coarse summaries: Append treated it as late records", n)
	}
	if err := s.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	if coarse() == 0 {
		t.Fatal("compacting after the import made no coarse summaries")
	}
	sameCatchments(t, s, maps.Options{Target: "t1", From: sumT0, To: sumT0.Add(6 * time.Hour)}, "", "imported")
}

// TestCompactMakesTheTail: once records stop coming, the buckets holding
// the last of them are made at every level, up to a day.
func TestCompactMakesTheTail(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, sumRecords(rand.New(rand.NewPCG(19, 20)), "a", 500)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, sumT0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM summaries WHERE span = ?`, day).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("two days after the last record, its day is not made")
	}
}
