package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/mapsapi"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/internal/testutil/aggtest"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sim"
	"github.com/catchmap/catchmap/sites"
)

func testEnv(ctx context.Context, t *testing.T, getenv map[string]string) (*env, *testutil.Buffer) {
	out := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return &env{ctx: ctx, log: log, stdin: strings.NewReader(""), stdout: out, stderr: out,
		getenv: func(k string) string { return getenv[k] }}, out
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// getJSON fetches base+path into out; false when the answer is not 200.
func getJSON(t *testing.T, base, path string, out any) bool {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Logf("GET %s: %s: %s", path, resp.Status, body)
		return false
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return true
}

// TestDemo runs the demo in-process on a free loopback port, with a fast
// schedule: the map fills with several sites, and the scripted withdrawal
// of fra shows in the timeline as a shift, beside its annotation.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e, out := testEnv(ctx, t, nil)
	ready := make(chan string, 1)
	const target = "anycast-sim"
	const steady = 6 * time.Second
	d := demoSettings{
		listen: "127.0.0.1:0", db: filepath.Join(t.TempDir(), "demo.db"), target: target,
		model: sim.Config{Seed: 1, Probes: 400, Target: target},
		run: sim.DemoOptions{Tick: time.Second, Backfill: time.Minute, Interval: 2 * time.Second,
			Scenario: sim.DefaultScenario(steady)[:2]},
		ready: func(base string) { ready <- base },
	}
	d.run.Scenario[1].Duration = time.Hour // stay withdrawn
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- runDemo(e, d) }()

	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("demo ended before it was ready: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("demo not ready within 30 s:\n%s", out)
	}
	if !strings.Contains(out.String(), base+"/?target="+target) {
		t.Errorf("the demo did not print the UI URL:\n%s", out)
	}

	q := url.Values{"target": {target}}.Encode()
	var plan api.Plan
	if !getJSON(t, base, "/api/v1/targets", &plan) || len(plan.Targets) != 1 || plan.Targets[0].Name != target {
		t.Errorf("GET /api/v1/targets = %+v, want the simulated target", plan)
	}
	testutil.WaitFor(t, time.Until(start.Add(30*time.Second)), "catchment with cells of >= 5 sites", func() bool {
		var c maps.Catchment
		if !getJSON(t, base, "/api/v1/catchment?"+q, &c) {
			return false
		}
		seen := map[string]bool{}
		for _, cell := range c.Cells {
			if cell.Site != "" {
				seen[cell.Site] = true
			}
		}
		return len(seen) >= 5
	})

	var withdrawn time.Time
	testutil.WaitFor(t, steady+15*time.Second, "the withdrawal's annotation", func() bool {
		var as []api.Annotation
		getJSON(t, base, "/api/v1/annotations?"+q, &as)
		for _, a := range as {
			if strings.Contains(a.Text, "fra withdrawn") && a.Target == target {
				withdrawn = a.Time
				return true
			}
		}
		return false
	})

	const step = 3 * time.Second
	testutil.WaitFor(t, 30*time.Second, "the withdrawal as a shift in the timeline", func() bool {
		var tl maps.Timeline
		tq := url.Values{"target": {target}, "step": {step.String()},
			"from": {withdrawn.Add(-30 * time.Second).Truncate(time.Second).Format(time.RFC3339)},
			"to":   {time.Now().UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339)}}
		if !getJSON(t, base, "/api/v1/timeline?"+tq.Encode(), &tl) {
			return false
		}
		var before, after bool
		for _, s := range tl.Steps {
			switch {
			case s.Time.Add(step).Before(withdrawn) && s.Shares["fra"] > 0:
				before = true
			case s.Time.After(withdrawn) && s.Probes > 0 && s.Time.Add(step+2*time.Second).Before(time.Now()):
				if s.Shares["fra"] != 0 {
					t.Errorf("step %s, after the withdrawal at %s: fra share %v", s.Time, withdrawn, s.Shares["fra"])
					return true
				}
				after = true
			}
		}
		shifted := false
		for _, sh := range tl.Shifts {
			for _, f := range sh.Flows {
				shifted = shifted || (f.From == "fra" && !sh.Time.Before(withdrawn.Add(-step)))
			}
		}
		return before && after && shifted
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30 s of its context ending")
	}
	if !strings.Contains(out.String(), "catchmap demo: stopped") {
		t.Errorf("no clean stop in the output:\n%s", out)
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--probes", "0"},
		{"demo", "--speed", "0"},
		{"demo", "--listen", "127.0.0.1:bad"},
		{"sim", "--token", "x", "--rate", "0"},
		{"sim", "--token", "x", "--duration", "0s"},
		{"sim", "--aggregator", "ftp://x", "--token", "x"},
		{"sim"}, // no admin token
		{"sim", "--aggregator", "http://127.0.0.1:1", "--token", "x", "--probes", "1"}, // nothing listens on port 1
	} {
		var out bytes.Buffer
		if code := run(t.Context(), args, strings.NewReader(""), &out, &out, func(string) string { return "" }); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out.String())
		} else if !strings.Contains(out.String(), "catchmap: ") {
			t.Errorf("%v: no message: %s", args, out.String())
		}
	}
}

// TestSimCommand drives a real aggregator with catchmap sim and checks that
// what it reports stored is in the aggregator.
func TestSimCommand(t *testing.T) {
	agg := aggtest.Start(t)
	base, admin := agg.URL, agg.Admin
	e, out := testEnv(t.Context(), t, map[string]string{adminTokenEnv: admin.Reveal()})
	args := []string{"sim", "--aggregator", base, "--probes", "50", "--rate", "200", "--duration", "2s", "--flush", "500ms", "--batch", "20", "--seed", "3", "--target", "load-test"}
	if code := run(e.ctx, args, e.stdin, out, out, e.getenv); code != exitOK {
		t.Fatalf("catchmap %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	m := regexp.MustCompile(`stored (\d+) results \(0 duplicates\): [0-9.]+ results/s`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no report in the output:\n%s", out)
	}
	stored, _ := strconv.Atoi(m[1])
	if stored != 400 || !strings.Contains(out.String(), "generated 400 results") {
		t.Errorf("stored %s of 400 results:\n%s", m[1], out)
	}
	var probes []api.Probe
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/probes", nil)
	req.Header.Set("Authorization", "Bearer "+admin.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&probes); err != nil || len(probes) != 50 {
		t.Errorf("GET /api/v1/probes: %d probes (%v), want 50", len(probes), err)
	}
	var c1 maps.Catchment
	if !getJSON(t, base, "/api/v1/catchment?target=load-test", &c1) || c1.Results != 400 || c1.Probes != 50 {
		t.Errorf("catchment of load-test: %d results from %d probes, want 400 from 50", c1.Results, c1.Probes)
	}
}

// simRecords is what a seed's fleet measures in a fixed window.
func simRecords(t *testing.T, seed uint64) []result.Record {
	t.Helper()
	m, err := sim.New(sim.Config{Seed: seed, Probes: 500}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var rs []result.Record
	for i := range m.Probes() {
		for k := range 4 {
			rs = append(rs, m.Measure(i, t0.Add(time.Duration(k*20+i%20)*time.Second)))
		}
	}
	return rs
}

func simCatchment(t *testing.T, rs []result.Record) []byte {
	t.Helper()
	c, err := maps.Compute(rs, maps.Options{Target: sim.DefaultTarget}, mapsapi.Sites(sites.Default()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSimSameCatchment: the same seed gives the same catchment, cell by
// cell; another seed another.
func TestSimSameCatchment(t *testing.T) {
	a, b := simCatchment(t, simRecords(t, 42)), simCatchment(t, simRecords(t, 42))
	if !bytes.Equal(a, b) {
		t.Error("seed 42 twice: the catchments differ")
	}
	if bytes.Equal(a, simCatchment(t, simRecords(t, 43))) {
		t.Error("seeds 42 and 43: the same catchment")
	}
	var c maps.Catchment
	if err := json.Unmarshal(a, &c); err != nil || len(c.Sites) < 8 || len(c.Cells) < 100 {
		t.Errorf("catchment: %d sites, %d cells (%v); want a global map", len(c.Sites), len(c.Cells), err)
	}
}
