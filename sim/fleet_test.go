package sim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/internal/testutil/aggtest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sim"
)

// TestMain fails the package when a goroutine of the fleet outlives its
// tests.
func TestMain(m *testing.M) {
	testutil.Main(m, "catchmap/sim.")
}

// aggregator is a real aggregator over SQLite, served on loopback.
func aggregator(t *testing.T) (*sim.Client, store.Store) {
	t.Helper()
	agg := aggtest.Start(t)
	cl, err := sim.NewClient(agg.URL, agg.Admin, agg.Server.Client())
	if err != nil {
		t.Fatal(err)
	}
	return cl, agg.Store
}

func fleet(t *testing.T, cl *sim.Client, probes int) *sim.Fleet {
	t.Helper()
	m, err := sim.New(sim.Config{Seed: 11, Probes: probes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sim.Register(t.Context(), cl, m, 4)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func countResults(t *testing.T, st store.Store, target string) (n int, probes map[string]bool) {
	t.Helper()
	probes = map[string]bool{}
	err := st.Scan(t.Context(), store.Query{Target: target, From: time.Unix(0, 0), To: time.Now().Add(time.Hour)}, func(r *result.Record) error {
		n++
		probes[r.Probe] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, probes
}

func TestLoad(t *testing.T) {
	cl, st := aggregator(t)
	f := fleet(t, cl, 20)
	rep, err := f.Load(t.Context(), sim.LoadOptions{Rate: 200, Duration: time.Second, Batch: 7, Flush: 200 * time.Millisecond, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generated != 200 || rep.Stored != 200 || rep.Failed != 0 || rep.Duplicate != 0 {
		t.Fatalf("load: generated %d, stored %d, failed %d (%v), duplicate %d; want 200 stored",
			rep.Generated, rep.Stored, rep.Failed, rep.FirstErr, rep.Duplicate)
	}
	if rep.StoredPerSecond() <= 0 || rep.Latency(0.5) <= 0 || rep.Latency(0.99) < rep.Latency(0.5) {
		t.Errorf("rate %v, latency p50 %s p99 %s", rep.StoredPerSecond(), rep.Latency(0.5), rep.Latency(0.99))
	}
	// Each record is stored under the probe whose token uploaded it.
	n, probes := countResults(t, st, sim.DefaultTarget)
	if n != 200 || len(probes) != 20 {
		t.Errorf("store holds %d results of %d probes, want 200 of 20", n, len(probes))
	}
	for i := range 20 {
		if !probes[f.ID(i)] {
			t.Errorf("no results stored under probe %s", f.ID(i))
		}
	}
}

func TestLoadBadOptions(t *testing.T) {
	cl, _ := aggregator(t)
	f := fleet(t, cl, 1)
	if _, err := f.Load(t.Context(), sim.LoadOptions{Rate: 0, Duration: time.Second}); err == nil {
		t.Error("rate 0 accepted")
	}
}

// TestRunDemoStops runs the demo loop against a real aggregator until its
// context ends: it backfills, uploads each tick, annotates a change, and
// returns nil.
func TestRunDemoStops(t *testing.T) {
	cl, st := aggregator(t)
	f := fleet(t, cl, 30)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sim.RunDemo(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), f, sim.DemoOptions{
			Tick: 200 * time.Millisecond, Backfill: 10 * time.Second, Interval: time.Second,
			Scenario: sim.DefaultScenario(300 * time.Millisecond), Ready: func() { close(ready) },
		})
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("no backfill within 20 s")
	}
	backfilled, _ := countResults(t, st, sim.DefaultTarget)
	if backfilled < 30*9 {
		t.Errorf("backfill stored %d results, want about 300", backfilled)
	}
	testutil.WaitForNil(t, 20*time.Second, "the scenario's changes as annotations", func() error {
		as, err := st.Annotations(t.Context(), sim.DefaultTarget, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(as) < 2 {
			return fmt.Errorf("%d annotations", len(as))
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunDemo: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("RunDemo did not return within 20 s of its context ending")
	}
	if n, _ := countResults(t, st, sim.DefaultTarget); n <= backfilled {
		t.Errorf("no results uploaded after the backfill (%d, then %d)", backfilled, n)
	}
}
