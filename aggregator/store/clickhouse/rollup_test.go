package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// The aggregator compacts stores that have this method (server's compactor).
var _ interface {
	Compact(context.Context, time.Time) error
} = (*Store)(nil)

// rollT0 starts the 50 hours the rollup tests' records spread over: two
// midnights, so that day buckets are made too.
var rollT0 = time.Date(2026, 3, 1, 21, 0, 0, 0, time.UTC)

const rollSpread = 50 * time.Hour

// testMargin stands for the clock skew between instances; the tests run
// on one clock, so a short one keeps them from waiting a minute.
const testMargin = 20 * time.Millisecond

// rollClock is the clock of the rollup tests' stores: time stands still
// but when settle moves it on past the margin, so no test waits for it.
var rollClock = testutil.NewClock(time.Now())

// openRollup opens a store on dsn with the test margin and clock.
func openRollup(t *testing.T, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, nil, append(opts, WithClock(rollClock.Now))...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s.cfg.margin = testMargin
	return s
}

// rollRecords is sumRecords over rollSpread: the same cases, times moved
// (records at one time stay together), and some on bucket edges.
func rollRecords(rng *rand.Rand, prefix string, n int) []result.Record {
	rs := sumRecords(rng, prefix, n)
	moved := map[time.Time]time.Time{}
	for i := range rs {
		old := rs[i].Time
		nt, ok := moved[old]
		if !ok {
			nt = rollT0.Add(time.Duration(rng.Int64N(int64(rollSpread))))
			switch rng.IntN(12) {
			case 0:
				nt = nt.Truncate(15 * time.Minute)
			case 1:
				nt = nt.Truncate(time.Hour).Add(-time.Microsecond)
			case 2:
				nt = rollT0.Add(-time.Duration(rng.IntN(3600)) * time.Second) // before every window
			}
			if rng.IntN(3) > 0 {
				nt = nt.Truncate(time.Microsecond)
			}
			moved[old] = nt
		}
		rs[i].Time = nt
	}
	return rs
}

// settle moves the clock past the margin after the last Append, as the
// margin after a late record is.
func settle() { rollClock.Advance(2 * testMargin) }

// compactAll compacts until nothing is left to make and returns how many
// target buckets it made.
func compactAll(t *testing.T, s *Store) int {
	t.Helper()
	total := 0
	for range 50 {
		n, err := s.compact(context.Background(), rollClock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("compaction does not end")
	return 0
}

// rollWindow picks a window: on day, hour or quarter hour edges, anywhere
// to the µs or ns, open on one side.
func rollWindow(rng *rand.Rand, i int) (from, to time.Time) {
	at := func(unit time.Duration) time.Time {
		return rollT0.Add(-time.Hour + time.Duration(rng.Int64N(int64(rollSpread+2*time.Hour)))).Truncate(unit)
	}
	switch i % 6 {
	case 0:
		from, to = at(24*time.Hour), at(24*time.Hour).Add(24*time.Hour)
	case 1:
		from, to = at(time.Hour), at(time.Hour)
	case 2:
		from, to = at(15*time.Minute), at(15*time.Minute)
	case 3:
		from, to = at(time.Microsecond), at(time.Microsecond)
	case 4:
		from, to = at(1), at(1)
	case 5:
		if rng.IntN(2) == 0 {
			from = at(time.Hour)
		} else {
			to = at(time.Microsecond)
		}
	}
	if !to.IsZero() && to.Before(from) {
		from, to = to, from
	}
	if !to.IsZero() && to.Equal(from) {
		to = to.Add(time.Hour)
	}
	return from, to
}

// checkRollup compares, over random windows, the catchments and timelines
// from summaries with those from Scan, and returns how many windows read
// rollup buckets.
func checkRollup(t *testing.T, s *Store, rng *rand.Rand, stage string) (rolled int) {
	t.Helper()
	ctx := context.Background()
	full := 0
	for i := range 36 {
		o := maps.Options{Target: fmt.Sprintf("t%d", i%3), Res: 3}
		o.From, o.To = rollWindow(rng, i)
		if i%7 == 6 {
			o.Target = ""
		}
		q := store.Query{Target: o.Target, From: o.From, To: o.To}
		if i%5 == 0 {
			q.Probe = fmt.Sprintf("p%02d", rng.IntN(12))
		}
		if sameCatchments(t, s, s, o, q, stage) {
			full++
		}
		p, err := s.planRead(ctx, "test", q, len(spans)-1)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.picks) > 0 {
			rolled++
		}
	}
	if full < 20 {
		t.Fatalf("%s: only %d of 36 windows hold records: the test checks little", stage, full)
	}
	for i := range 12 {
		o := maps.TimelineOptions{Target: fmt.Sprintf("t%d", i%3), Threshold: 0.01,
			Step: []time.Duration{15 * time.Minute, time.Hour, 3 * time.Hour, 24 * time.Hour, 20 * time.Minute, 7 * time.Second}[i%6]}
		o.From = rollT0.Add(time.Duration(rng.Int64N(int64(20 * time.Hour)))).Truncate([]time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour, 1}[i%4])
		o.To = o.From.Add(time.Duration(1 + rng.Int64N(int64(rollSpread))))
		if i%5 == 4 {
			o.Target = ""
		}
		sameTimelines(t, s, s, o, stage+": timeline")
	}
	return rolled
}

// count runs a count query in a test.
func countRows(t *testing.T, s *Store, query string, args ...any) uint64 {
	t.Helper()
	n, err := s.count(context.Background(), "test", query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRollupEqualScan: maps and timelines from the rollup equal those from
// Scan before compaction, after a partial and a full one, with late records
// in made buckets (before and after they are made again), after a re-sent
// batch and after retention cutting into a bucket.
func TestRollupEqualScan(t *testing.T) {
	s := openRollup(t, freshDSN(t))
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	rs := rollRecords(rng, "a", 6000)
	if _, err := s.Append(ctx, rs[:4000]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, rs[3000:]); err != nil {
		t.Fatal(err)
	}
	insertAgain(t, s, rs)
	checkRollup(t, s, rng, "before compaction")

	settle()
	if _, err := s.compact(ctx, rollT0.Add(20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count() FROM made_buckets WHERE start + span > ?`, micros(rollT0.Add(20*time.Hour))); n != 0 {
		t.Fatalf("compaction up to %s made %d buckets after it", rollT0.Add(20*time.Hour), n)
	}
	if checkRollup(t, s, rng, "partial compaction") == 0 {
		t.Fatal("partial compaction: no window reads the rollup")
	}
	if compactAll(t, s) == 0 {
		t.Fatal("compaction made nothing")
	}
	if checkRollup(t, s, rng, "full compaction") < 15 {
		t.Fatal("full compaction: few windows read the rollup")
	}

	// Late records, into made buckets.
	before := millis(rollClock.Now())
	late := rollRecords(rng, "late", 1500)
	if _, err := s.Append(ctx, late); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count() FROM dirty_buckets WHERE at >= ?`, before); n == 0 {
		t.Fatal("late records marked no bucket dirty")
	}
	checkRollup(t, s, rng, "late records, not compacted")
	settle()
	if compactAll(t, s) == 0 {
		t.Fatal("compaction remade no dirty bucket")
	}
	if checkRollup(t, s, rng, "late records, compacted") < 15 {
		t.Fatal("after late records: few windows read the rollup")
	}

	// A batch re-sent: stores nothing new, and maps do not change.
	if n, err := s.Append(ctx, late[:700]); err != nil || n != 0 {
		t.Fatalf("re-sent batch stored %d, %v", n, err)
	}
	checkRollup(t, s, rng, "re-sent batch")
	settle()
	compactAll(t, s)
	checkRollup(t, s, rng, "re-sent batch, compacted")

	cut := rollT0.Add(27*time.Hour + 17*time.Minute + 3*time.Microsecond)
	cutAt := millis(rollClock.Now())
	if _, err := s.DeleteBefore(ctx, cut); err != nil {
		t.Fatal(err)
	}
	checkRollup(t, s, rng, "after retention")
	if n := countRows(t, s, `SELECT count() FROM summaries WHERE start < ?`, micros(cut.Truncate(24*time.Hour))); n != 0 {
		t.Errorf("retention left %d summaries of the days before the cut", n)
	}
	settle()
	compactAll(t, s)
	if n := countRows(t, s, `SELECT count() FROM made_buckets WHERE start < ? AND at > ?`, micros(cut), cutAt); n != 0 {
		t.Errorf("compaction made %d buckets below the floor", n)
	}
	checkRollup(t, s, rng, "after retention, compacted")
}

// TestCompactIdempotentAndBounded: a call after everything is made writes
// nothing; one call makes a bounded number of buckets of a long history.
func TestCompactIdempotentAndBounded(t *testing.T) {
	s := openRollup(t, freshDSN(t))
	defer s.Close()
	ctx := context.Background()
	// Ten records a day over 40 days, in one target.
	var rs []result.Record
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 400 {
		rs = append(rs, result.Record{ID: fmt.Sprintf("r%04d", i), Time: t0.Add(time.Duration(i) * 144 * time.Minute),
			Probe: fmt.Sprintf("p%d", i%5), Target: "t", Site: "ams", RTTMs: 3})
	}
	if _, err := s.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	settle()
	n, err := s.compact(ctx, rollClock.Now())
	if err != nil {
		t.Fatal(err)
	}
	bound := 0
	for l := range spans {
		bound += runsPerCall * int(runBuckets[l])
	}
	if n == 0 || n > bound {
		t.Fatalf("one call made %d buckets, want 1 to %d", n, bound)
	}
	compactAll(t, s)
	rows := func() [2]uint64 {
		return [2]uint64{countRows(t, s, `SELECT count() FROM summaries`), countRows(t, s, `SELECT count() FROM made_buckets`)}
	}
	was := rows()
	if n, err := s.compact(ctx, rollClock.Now()); err != nil || n != 0 {
		t.Fatalf("compaction after everything is made made %d, %v", n, err)
	}
	if now := rows(); now != was {
		t.Fatalf("compaction after everything is made wrote rows: summaries and marks %v, were %v", now, was)
	}
	// Every day of the history is read from one summary per probe.
	q := store.Query{Target: "t", From: t0, To: t0.Add(40 * 24 * time.Hour)}
	p, err := s.planRead(ctx, "test", q, len(spans)-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.picks["t"]) != 40 || p.read {
		t.Fatalf("40 days read from %d buckets and results %v, want 40 days and no results", len(p.picks["t"]), p.read)
	}
}

// TestCompactConcurrently: two stores on one database compacting at once,
// while late records arrive, leave maps exact.
func TestCompactConcurrently(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openRollup(t, dsn), openRollup(t, dsn, WithQuerySlices(1))
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	if _, err := a.Append(ctx, rollRecords(rng, "a", 4000)); err != nil {
		t.Fatal(err)
	}
	settle()
	late := rollRecords(rng, "late", 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			for range 3 {
				if _, err := s.compact(ctx, rollClock.Now()); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			if _, err := s.Append(ctx, late[i*500:(i+1)*500]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkRollup(t, a, rng, "concurrent compaction")
	settle()
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			if _, err := s.compact(ctx, rollClock.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	compactAll(t, a)
	if checkRollup(t, b, rng, "concurrent compaction, settled") < 15 {
		t.Fatal("few windows read the rollup")
	}
}
