package agent

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

const testToken = "s3cret-probe-token"

// waitTimeout bounds every wait of these tests for the agent to act.
const waitTimeout = 15 * time.Second

// aggregator implements the two endpoints a probe uses, minimally: enough to
// count what arrives. The real aggregator's end-to-end test with this agent
// lives with the aggregator (aggregator/server).
type aggregator struct {
	t    *testing.T
	plan atomic.Pointer[api.Plan]

	down          atomic.Bool  // hang up on every request: a network error
	resultsStatus atomic.Int32 // answer POST /results with this status when non-zero
	poison        atomic.Value // string: a batch holding this id gets 400

	posts    atomic.Int64 // POST /results requests, answered or not
	planGets atomic.Int64

	mu         sync.Mutex
	seen       map[string]int
	recs       map[string]result.Record
	offered    map[string]bool // ids in uploads answered with resultsStatus
	duplicates int
	badHeaders []string
}

func newAggregator(t *testing.T, plan api.Plan) (*aggregator, *httptest.Server) {
	t.Helper()
	ag := &aggregator{t: t, seen: map[string]int{}, recs: map[string]result.Record{}, offered: map[string]bool{}}
	ag.plan.Store(&plan)
	ag.poison.Store("")
	srv := httptest.NewServer(ag) // listens on 127.0.0.1:0 and is ready on return
	t.Cleanup(srv.Close)
	return ag, srv
}

func (ag *aggregator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/results" {
		ag.posts.Add(1)
	} else {
		ag.planGets.Add(1)
	}
	if ag.down.Load() {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("test server cannot hijack")
		}
		c, _, err := hj.Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		fail(w, http.StatusUnauthorized, "unknown token")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/plan":
		_ = json.NewEncoder(w).Encode(ag.plan.Load())
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/results":
		recs, ok := ag.readBatch(w, r)
		if !ok {
			return
		}
		if s := ag.resultsStatus.Load(); s != 0 {
			ag.mu.Lock()
			for _, rec := range recs {
				ag.offered[rec.ID] = true
			}
			ag.mu.Unlock()
			fail(w, int(s), "test says no")
			return
		}
		ag.ingest(w, recs)
	default:
		fail(w, http.StatusNotFound, "no such route")
	}
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
}

// readBatch reads an upload, answering 400 (and ok false) when it is bad.
func (ag *aggregator) readBatch(w http.ResponseWriter, r *http.Request) (recs []result.Record, ok bool) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		ag.badHeader("content-type " + ct)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") != "gzip" {
		ag.badHeader("not gzip")
	} else {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			fail(w, http.StatusBadRequest, "bad gzip")
			return nil, false
		}
		body = zr
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec result.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.ID == "" {
			fail(w, http.StatusBadRequest, "bad record")
			return nil, false
		}
		recs = append(recs, rec)
	}
	if sc.Err() != nil {
		fail(w, http.StatusBadRequest, sc.Err().Error())
		return nil, false
	}
	return recs, true
}

func (ag *aggregator) ingest(w http.ResponseWriter, recs []result.Record) {
	poison := ag.poison.Load().(string)
	for _, rec := range recs {
		if rec.ID == poison {
			fail(w, http.StatusBadRequest, "record "+poison+" is malformed")
			return
		}
	}
	ag.mu.Lock()
	resp := api.IngestResponse{Accepted: len(recs)}
	for _, rec := range recs {
		if ag.seen[rec.ID] > 0 {
			ag.duplicates++
			resp.Duplicate++
		} else {
			resp.Stored++
		}
		ag.seen[rec.ID]++
		ag.recs[rec.ID] = rec
	}
	ag.mu.Unlock()
	_ = json.NewEncoder(w).Encode(resp)
}

func (ag *aggregator) records() []result.Record {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	out := make([]result.Record, 0, len(ag.recs))
	for _, r := range ag.recs {
		out = append(out, r)
	}
	return out
}

func (ag *aggregator) badHeader(s string) {
	ag.mu.Lock()
	ag.badHeaders = append(ag.badHeaders, s)
	ag.mu.Unlock()
}

func (ag *aggregator) stored() map[string]bool {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	out := make(map[string]bool, len(ag.seen))
	for id := range ag.seen {
		out[id] = true
	}
	return out
}

// offeredIDs are the ids of the uploads refused with resultsStatus: what
// the agent had spooled.
func (ag *aggregator) offeredIDs() map[string]bool {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	return maps.Clone(ag.offered)
}

// recorder wraps the real measurer and remembers the id of every record it
// produced, so a test can tell what the aggregator should end up with.
type recorder struct {
	m     *probe.Measurer
	calls atomic.Int64
	mu    sync.Mutex
	ids   map[string]bool
}

func newRecorder() *recorder {
	return &recorder{m: probe.NewMeasurer(quiet(), probe.WithProbeName("test")), ids: map[string]bool{}}
}

func (r *recorder) Measure(ctx context.Context, s spec.Spec) ([]result.Record, error) {
	r.calls.Add(1)
	recs, err := r.m.Measure(ctx, s)
	r.mu.Lock()
	for _, rec := range recs {
		r.ids[rec.ID] = true
	}
	r.mu.Unlock()
	return recs, err
}

func (r *recorder) produced() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.ids))
	for id := range r.ids {
		out[id] = true
	}
	return out
}

// tcpTarget is a real loopback listener for tcp measurements.
func tcpTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func tcpPlan(addr string, interval time.Duration, n int) api.Plan {
	p := api.Plan{Version: "v1", Refresh: spec.Duration(time.Minute)}
	for range n {
		p.Targets = append(p.Targets, api.Target{
			Spec:     spec.Spec{Target: addr, Method: result.MethodTCP, Timeout: spec.Duration(time.Second)},
			Interval: spec.Duration(interval),
		})
	}
	// Distinct entries: a name each, so each gets its own schedule.
	for i := range p.Targets {
		p.Targets[i].Name = "t" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return p
}

func quiet() *slog.Logger {
	if os.Getenv("AGENT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(t *testing.T, srvURL string) Config {
	return Config{
		Aggregator:     srvURL,
		Token:          testToken,
		Name:           "test",
		Spool:          t.TempDir(),
		Allow:          []string{"127.0.0.0/8"},
		MaxRate:        1000,
		UploadInterval: 20 * time.Millisecond,
	}
}

type running struct {
	a      *Agent
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, opts ...Option) *running {
	t.Helper()
	return startLogged(t, quiet(), cfg, opts...)
}

// startLogged is start with the agent's logger.
func startLogged(t *testing.T, log *slog.Logger, cfg Config, opts ...Option) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts = append([]Option{WithBackoff(10*time.Millisecond, 100*time.Millisecond)}, opts...)
	a, err := New(log, reg, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the agent as SIGTERM would and waits for the drain.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop within 20s of cancel")
	}
}

// metric sums a metric's series whose labels include want.
func (r *running) metric(name string, want ...string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		panic(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sameIDs fails unless the aggregator stored exactly the produced ids.
func sameIDs(t *testing.T, produced, stored map[string]bool) {
	t.Helper()
	missing, extra := 0, 0
	for id := range produced {
		if !stored[id] {
			missing++
		}
	}
	for id := range stored {
		if !produced[id] {
			extra++
		}
	}
	if missing > 0 || extra > 0 {
		t.Fatalf("aggregator has %d records, produced %d: %d missing, %d unexpected", len(stored), len(produced), missing, extra)
	}
	if len(produced) == 0 {
		t.Fatal("nothing was measured")
	}
}

// fakeClock stands in for the wall clock only where a test plays hours of
// time: an hour of downtime must not take an hour.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timers: map[*fakeTimer]bool{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers[t] = true
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.clk.timers[t]
	delete(t.clk.timers, t)
	return was
}

// Advance moves time on and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			delete(c.timers, t)
		}
	}
}

// Waiters counts timers not yet fired or stopped.
func (c *fakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
