package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
	"github.com/catchmap/catchmap/probe/spool"
)

func TestUploadNormal(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 20*time.Millisecond, 2))
	rec := newRecorder()
	r := start(t, testConfig(t, srv.URL), WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "10 records uploaded", func() bool { return len(ag.stored()) >= 10 })
	r.stop(t)
	sameIDs(t, rec.produced(), ag.stored())
	if ag.duplicates != 0 {
		t.Errorf("%d duplicate uploads with the aggregator up all along", ag.duplicates)
	}
	if len(ag.badHeaders) > 0 {
		t.Errorf("bad upload headers: %v", ag.badHeaders)
	}
	if r.a.Spool().Len() != 0 {
		t.Errorf("%d records left in the spool after the drain", r.a.Spool().Len())
	}
	if got, want := r.metric("catchmap_probe_uploaded_total"), float64(len(rec.produced())); got != want {
		t.Errorf("uploaded_total = %v, want %v", got, want)
	}
	if got := r.metric("catchmap_probe_results_total", "method", "tcp"); got != float64(len(rec.produced())) {
		t.Errorf("results_total{method=tcp} = %v, want %d", got, len(rec.produced()))
	}
}

// TestDrainUploadsOnStop: with uploads far apart, only the drain after
// SIGTERM can deliver the records.
func TestDrainUploadsOnStop(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 10*time.Millisecond, 1))
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.UploadInterval = time.Hour
	r := start(t, cfg, WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "5 records spooled", func() bool { return r.a.Spool().Len() >= 5 })
	if len(ag.stored()) != 0 {
		t.Fatal("uploaded before the interval")
	}
	r.stop(t)
	sameIDs(t, rec.produced(), ag.stored())
}

func TestAggregatorDownThenBack(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 10*time.Millisecond, 2))
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.MaxRate = 100 // so that uploads outpace measurements on a busy machine
	r := start(t, cfg, WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "first upload", func() bool { return len(ag.stored()) > 0 })

	addr := srv.Listener.Addr().String()
	srv.Close() // the aggregator goes away: connections refused
	testutil.WaitFor(t, waitTimeout, "network errors and a growing spool", func() bool {
		return r.metric("catchmap_probe_upload_errors_total", "kind", "network") >= 3 && r.a.Spool().Len() >= 20
	})

	// Back on the same address, same state.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv2 := httptest.NewUnstartedServer(ag)
	srv2.Listener.Close()
	srv2.Listener = ln
	srv2.Start()
	t.Cleanup(srv2.Close)

	// Measuring goes on, so the spool is seldom empty: wait for everything
	// measured while the aggregator was away, then let the drain do the rest.
	backlog := rec.produced()
	testutil.WaitFor(t, waitTimeout, "the backlog uploaded", func() bool {
		stored := ag.stored()
		for id := range backlog {
			if !stored[id] {
				return false
			}
		}
		return true
	})
	r.stop(t)
	sameIDs(t, rec.produced(), ag.stored())
	t.Logf("%d records, %d duplicate deliveries (the aggregator dedupes by id)", len(rec.produced()), ag.duplicates)
}

// TestHourOfDowntime plays an hour with the aggregator unreachable on a fake
// clock: a result a minute is measured and kept, uploads back off instead of
// hammering, and everything arrives once the aggregator is back.
func TestHourOfDowntime(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), time.Minute, 1))
	clk := newFakeClock()
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.UploadInterval = 10 * time.Second
	r := start(t, cfg, WithMeasurer(rec), WithClock(clk), WithBackoff(time.Second, 5*time.Minute))

	// Idle, the agent waits on three timers: the target, the uploader, the
	// plan refresh. Each step waits until every goroutine woken is idle again.
	idle := func() { testutil.WaitFor(t, waitTimeout, "agent idle", func() bool { return clk.Waiters() == 3 }) }
	testutil.WaitFor(t, waitTimeout, "plan applied", func() bool { return r.metric("catchmap_probe_plan_targets") == 1 })
	idle()
	ag.down.Store(true)
	postsBefore := ag.posts.Load()
	for range 3600 / 5 {
		clk.Advance(5 * time.Second)
		idle()
	}
	attempts := ag.posts.Load() - postsBefore
	if n := r.a.Spool().Len(); n < 58 || n > 62 {
		t.Fatalf("after an hour down the spool holds %d records, want about 60 (one a minute)", n)
	}
	// Backoff 1s x1.5 up to 5m: about 25 attempts in an hour, not 360.
	if attempts < 5 || attempts > 60 {
		t.Fatalf("%d upload attempts during an hour down: backoff not working", attempts)
	}
	if len(ag.stored()) > 1 {
		t.Fatalf("aggregator down but has %d records", len(ag.stored()))
	}

	ag.down.Store(false)
	for i := 0; r.a.Spool().Len() > 0; i++ {
		if i > 200 {
			t.Fatal("spool not drained 2000 fake seconds after the aggregator came back")
		}
		clk.Advance(10 * time.Second)
		idle()
	}
	r.stop(t)
	sameIDs(t, rec.produced(), ag.stored())
	if ag.duplicates != 0 {
		t.Errorf("%d duplicates: a refused connection cannot have stored anything", ag.duplicates)
	}
	t.Logf("%d records after an hour down, %d upload attempts", len(rec.produced()), attempts)
}

// TestKilledAndRestarted SIGKILLs an agent in a child process while it
// spools, then runs a new agent on the same spool: everything the child
// spooled (offered in uploads the aggregator refused) reaches the
// aggregator.
func TestKilledAndRestarted(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 5*time.Millisecond, 3))
	ag.resultsStatus.Store(http.StatusServiceUnavailable) // keep it all in the spool
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildAgent$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AGENT_CHILD_URL="+srv.URL, "AGENT_CHILD_SPOOL="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	testutil.WaitFor(t, waitTimeout, "child offered 30 spooled records", func() bool { return len(ag.offeredIDs()) >= 30 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()

	// What the child left, read as a restart would.
	sp, err := spool.Open(quiet(), prometheus.NewRegistry(), dir, spool.Options{Subsystem: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := spool.Results(sp).Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	_ = sp.Close()
	left := map[string]bool{}
	for _, rec := range b.Records {
		left[rec.ID] = true
	}
	for id := range ag.offeredIDs() {
		if !left[id] {
			t.Fatalf("record %s the child had spooled is not in its spool", id)
		}
	}

	ag.resultsStatus.Store(0)
	cfg := testConfig(t, srv.URL)
	cfg.Spool = dir
	r := start(t, cfg)
	testutil.WaitFor(t, waitTimeout, "the child's records uploaded", func() bool {
		stored := ag.stored()
		for id := range left {
			if !stored[id] {
				return false
			}
		}
		return true
	})
	r.stop(t)
	if n := r.a.Spool().Len(); n != 0 {
		t.Errorf("%d records left in the spool", n)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmps) != 0 {
		t.Errorf("temp files left: %v", tmps)
	}
}

// TestUpgradeUploadsOldSpool: an agent upgraded in place uploads the spool
// its older version left, one NDJSON file per Put, and deletes it.
func TestUpgradeUploadsOldSpool(t *testing.T) {
	ag, srv := newAggregator(t, api.Plan{Version: "v1"})
	cfg := testConfig(t, srv.URL)
	if err := os.CopyFS(cfg.Spool, os.DirFS("../spool/testdata/oldspool")); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	old := map[string]bool{"old-0-0": true, "old-1-0": true, "old-1-1": true, "old-2-0": true, "old-2-1": true, "old-2-2": true}
	testutil.WaitFor(t, waitTimeout, "the old spool uploaded", func() bool { return len(ag.stored()) == len(old) })
	r.stop(t)
	sameIDs(t, old, ag.stored())
	if left, _ := filepath.Glob(filepath.Join(cfg.Spool, "*-*.ndjson")); len(left) != 0 || r.a.Spool().Len() != 0 {
		t.Fatalf("old segments left after the upload: %v, %d records", left, r.a.Spool().Len())
	}
	if got := ag.records()[0]; got.Site != "fra" || got.RTTMs != 12.5 {
		t.Fatalf("old record uploaded as %+v", got)
	}
}

// TestChildAgent is the agent TestKilledAndRestarted kills; it does nothing
// when run on its own.
func TestChildAgent(t *testing.T) {
	url, dir := os.Getenv("AGENT_CHILD_URL"), os.Getenv("AGENT_CHILD_SPOOL")
	if url == "" {
		t.Skip("only runs as TestKilledAndRestarted's child")
	}
	cfg := testConfig(t, url)
	cfg.Spool = dir
	a, err := New(quiet(), prometheus.NewRegistry(), cfg, WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Bounded in case the parent dies before killing it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = a.Run(ctx)
}

func TestUnauthorizedStopsUploads(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 10*time.Millisecond, 1))
	ag.resultsStatus.Store(http.StatusUnauthorized)
	r := start(t, testConfig(t, srv.URL))
	testutil.WaitFor(t, waitTimeout, "a 401", func() bool { return r.metric("catchmap_probe_upload_errors_total", "kind", "unauthorized") == 1 })
	n := r.a.Spool().Len()
	// Twenty more measurements, many upload intervals: no more attempts.
	testutil.WaitFor(t, waitTimeout, "spooling goes on", func() bool { return r.a.Spool().Len() >= n+20 })
	r.stop(t)
	if p := ag.posts.Load(); p != 1 {
		t.Fatalf("%d upload attempts after a 401, want 1", p)
	}
}

func TestRejectedBatchQuarantined(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 5*time.Millisecond, 2))
	ag.resultsStatus.Store(http.StatusServiceUnavailable)
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.BatchSize = 16
	cfg.MaxRate = 100 // so that uploads outpace measurements on a busy machine
	r := start(t, cfg, WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "40 records spooled", func() bool { return r.a.Spool().Len() >= 40 })
	// Poison one record in the middle of the first batch.
	b, _ := r.a.Spool().Peek(cfg.BatchSize)
	poison := b.Records[len(b.Records)/2].ID
	ag.poison.Store(poison)
	ag.resultsStatus.Store(0)
	testutil.WaitFor(t, waitTimeout, "poison quarantined", func() bool { return r.metric("catchmap_probe_quarantined_total") == 1 })
	r.stop(t) // the drain uploads what is left

	produced := rec.produced()
	delete(produced, poison)
	sameIDs(t, produced, ag.stored())
	f, err := os.Open(filepath.Join(cfg.Spool, spool.QuarantineFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var q []string
	if err := result.ReadNDJSON(f, func(r *result.Record) error { q = append(q, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0] != poison {
		t.Fatalf("quarantine holds %v, want just the poison %s", q, poison)
	}
	if got := r.metric("catchmap_probe_upload_errors_total", "kind", "rejected"); got < 1 || got > 10 {
		t.Fatalf("%v rejected uploads: splitting a batch of 16 takes at most log2(16)+1", got)
	}
}

func TestAllowlistRefuses(t *testing.T) {
	addr := tcpTarget(t)
	_, port, _ := net.SplitHostPort(addr)
	plan := api.Plan{Version: "v1", Targets: []api.Target{
		{Spec: spec.Spec{Target: addr, Method: "tcp"}, Interval: spec.Duration(5 * time.Millisecond)},
		// An address literal outside the allowlist: never dialled.
		{Spec: spec.Spec{Target: "127.0.0.2:" + port, Method: "tcp"}, Interval: spec.Duration(5 * time.Millisecond)},
		{Spec: spec.Spec{Target: "192.0.2.7:" + port, Method: "tcp"}, Interval: spec.Duration(5 * time.Millisecond)},
		// A name: checked after resolution, pinned to what passed.
		{Spec: spec.Spec{Target: "localhost:" + port, Method: "tcp"}, Interval: spec.Duration(5 * time.Millisecond)},
		// A name outside the allowlist that fails to resolve: an error record, no dial.
		{Spec: spec.Spec{Target: "nowhere.invalid:" + port, Method: "tcp"}, Interval: spec.Duration(5 * time.Millisecond)},
	}}
	ag, srv := newAggregator(t, plan)
	cfg := testConfig(t, srv.URL)
	cfg.Allow = []string{"127.0.0.1/32"}
	// Resolution from /etc/hosts only: a query for a name must not leave the
	// machine, so the DNS "server" is a closed loopback port.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", "127.0.0.1:9")
	}}
	rec := newRecorder()
	r := start(t, cfg, WithMeasurer(rec), WithResolver(res))
	testutil.WaitFor(t, waitTimeout, "refusals", func() bool { return r.metric("catchmap_probe_refused_total") >= 10 })
	r.stop(t)

	sameIDs(t, rec.produced(), measuredIDs(ag.records()))
	notAllowed := map[string]int{}
	measuredAddr := map[string]map[string]bool{}
	for _, rec := range ag.records() {
		if rec.ErrorKind == result.KindNotAllowed {
			notAllowed[rec.Target]++
			continue
		}
		if measuredAddr[rec.Target] == nil {
			measuredAddr[rec.Target] = map[string]bool{}
		}
		measuredAddr[rec.Target][rec.Addr] = true
	}
	for _, tgt := range []string{"127.0.0.2:" + port, "192.0.2.7:" + port} {
		if notAllowed[tgt] != 1 {
			t.Errorf("%s reported refused %d times, want once", tgt, notAllowed[tgt])
		}
		if len(measuredAddr[tgt]) != 0 {
			t.Errorf("%s measured: %v", tgt, measuredAddr[tgt])
		}
	}
	if !measuredAddr[addr]["127.0.0.1"] {
		t.Errorf("allowed target %s not measured", addr)
	}
	if got := measuredAddr["localhost:"+port]; !got["127.0.0.1"] || len(got) != 1 {
		t.Errorf("localhost measured at %v, want only 127.0.0.1 (::1 is outside the allowlist)", got)
	}
	if got := measuredAddr["nowhere.invalid:"+port]; len(got) != 1 || !got[""] {
		t.Errorf("unresolvable name: want error records without an address, got addresses %v", got)
	}
}

// measuredIDs are the ids of records the measurer made: not the refusals
// and resolution errors the agent writes itself.
func measuredIDs(recs []result.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range recs {
		if r.ErrorKind != result.KindNotAllowed && r.Addr != "" {
			out[r.ID] = true
		}
	}
	return out
}

func TestRateCap(t *testing.T) {
	_, srv := newAggregator(t, tcpPlan(tcpTarget(t), time.Millisecond, 40))
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.MaxRate = 50
	cfg.Burst = 5
	startAt := time.Now()
	r := start(t, cfg, WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "25 measurements", func() bool { return rec.calls.Load() >= 25 })
	r.stop(t)
	elapsed := time.Since(startAt)
	n := rec.calls.Load()
	// The limiter allows burst + rate x elapsed; 20% and 5 more of slack.
	limit := float64(cfg.Burst) + cfg.MaxRate*elapsed.Seconds()*1.2 + 5
	if float64(n) > limit {
		t.Fatalf("%d measurements in %v at max %v/s burst %d: over the bound %.0f", n, elapsed, cfg.MaxRate, cfg.Burst, limit)
	}
	t.Logf("%d measurements in %v (bound %.0f)", n, elapsed, limit)
}

func TestSplayDeterministic(t *testing.T) {
	cfg := Config{Aggregator: "http://127.0.0.1:1", Token: "a", Spool: t.TempDir()}
	a1, err := New(quiet(), prometheus.NewRegistry(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spool = t.TempDir()
	a2, _ := New(quiet(), prometheus.NewRegistry(), cfg)
	cfg.Token, cfg.Spool = "b", t.TempDir()
	b, _ := New(quiet(), prometheus.NewRegistry(), cfg)
	key := targetKey(api.Target{Spec: spec.Spec{Target: "192.0.2.1"}})
	if a1.splay(key, time.Minute) != a2.splay(key, time.Minute) {
		t.Fatal("splay differs between two runs of the same probe")
	}
	same := 0
	for i := range 20 {
		k := targetKey(api.Target{Spec: spec.Spec{Target: fmt.Sprintf("192.0.2.%d", i)}})
		s := a1.splay(k, time.Minute)
		if s < 0 || s >= time.Minute {
			t.Fatalf("splay %v outside the interval", s)
		}
		if s == b.splay(k, time.Minute) {
			same++
		}
	}
	if same > 2 {
		t.Fatalf("two probes share the splay of %d targets in 20: the fleet would burst", same)
	}
}
