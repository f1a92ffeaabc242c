package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/gate"
	"github.com/catchmap/catchmap/lab"
	"github.com/catchmap/catchmap/lab/labtest"
	cmaps "github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// outage is how long scenario 5 keeps the aggregator down: the 30 s of a
// real restart, fifteen probe intervals of spooling for every agent.
const outage = 30 * time.Second

// snapWindow is the window of the gate's snapshots: a few intervals.
const snapWindow = 6 * time.Second

// TestLab runs the scenarios in order on one lab: steady state, a
// withdraw, the gate, a prepend, and an aggregator outage.
func TestLab(t *testing.T) {
	labtest.Need(t)
	h := newHarness(t)
	h.startAggregator()
	agentsStart := time.Now()
	h.register()

	steady := h.readTruth()
	t.Logf("BGP's catchment: %v", steady.site)
	baseline := filepath.Join(h.dir, "baseline.json")

	if !t.Run("1_steady_state", func(t *testing.T) { h.steady(t, steady, agentsStart, baseline) }) {
		return
	}
	if !t.Run("1_measure_every_method", func(t *testing.T) { h.measureAll(t, steady) }) {
		return
	}
	if !t.Run("2_withdraw_and_4_gate_fails", func(t *testing.T) { h.withdraw(t, "ams", baseline) }) {
		return
	}
	if !t.Run("4_gate_passes_after_restore_and_noop", func(t *testing.T) { h.restoreAndNoop(t, "ams", steady) }) {
		return
	}
	if !t.Run("3_prepend", func(t *testing.T) { h.prepend(t, "iad", 3, steady) }) {
		return
	}
	t.Run("5_aggregator_outage", func(t *testing.T) { h.outage(t, "nrt", agentsStart) })
}

// steady checks that every probe reaches the site BGP chose, at the RTT
// of the path's delays.
func (h *harness) steady(t *testing.T, tr truth, since time.Time, baseline string) {
	h.t = t
	seen := h.waitSites(t, "every probe to report the site BGP chose", tr.site, since, 3)
	t.Logf("TIMING first results matching BGP for every probe: %s after the agents started", seen.Sub(since).Round(time.Millisecond))
	// Eight results a probe: enough for the fastest to show the path's
	// delay through a busy machine's noise, and for a full snapshot window.
	h.waitSites(t, "eight results from every probe", tr.site, since, 8)
	recs, err := h.results(since, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.checkRTT(t, recs, tr, nil)

	var c cmaps.Catchment
	h.get(t, "/catchment", url.Values{"from": {fmtTime(since)}, "to": {fmtTime(time.Now().Add(time.Second))}}, &c)
	want := map[string]int{}
	for _, s := range tr.site {
		want[s]++
	}
	got := map[string]int{}
	for _, s := range c.Sites {
		if s.Probes > 0 {
			got[s.Site] = s.Probes
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("catchment: probes per site %v, BGP routes %v", got, want)
	}
	if c.Probes != len(h.lab.Topo.Probes) {
		t.Errorf("catchment counts %d probes, the lab has %d", c.Probes, len(h.lab.Topo.Probes))
	}
	out, code := h.inOps("snapshot", "--aggregator", h.base, "--target", target, "--window", snapWindow.String(), "-o", baseline)
	if code != 0 {
		t.Fatalf("snapshot: exit %d\n%s", code, out)
	}
}

// measureAll runs catchmap measure in every probe namespace, over each
// way a site names itself (CHAOS hostname.bind and id.server, NSID, the
// HTTP POP header), and checks each names the site BGP chose.
func (h *harness) measureAll(t *testing.T, tr truth) {
	h.t = t
	ways := []struct {
		name string
		args []string
	}{
		{"hostname.bind", []string{"--method", "dns", target}},
		{"id.server", []string{"--method", "dns", "--qname", "id.server.", target}},
		{"http header", []string{"--method", "http", "--site-header", lab.POPHeader, "http://" + target + "/"}},
	}
	for _, p := range h.lab.Topo.Probes {
		n, _ := h.lab.Topo.Node(p.Name)
		for _, w := range ways {
			args := append([]string{"netns", "exec", n.NS, h.bin, "measure", "--format", "ndjson", "--timeout", "2s",
				"--site-regex", lab.SiteRegex}, w.args...)
			out, code := h.run(context.Background(), "ip", args...)
			var r result.Record
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); code != 0 || err != nil {
				t.Errorf("probe %s, %s: exit %d, %v\n%s", p.Name, w.name, code, err, out)
				continue
			}
			if r.Site != tr.site[p.Name] {
				t.Errorf("probe %s, %s: site %q (identity %q), BGP routes it to %s", p.Name, w.name, r.Site, r.Identity, tr.site[p.Name])
			}
			if r.DNS != nil && r.DNS.NSID != lab.Identity(tr.site[p.Name]) {
				t.Errorf("probe %s, %s: NSID %q, want %q", p.Name, w.name, r.DNS.NSID, lab.Identity(tr.site[p.Name]))
			}
		}
	}
}

// checkRTT compares each probe's fastest answer with its path's RTT.
// The fastest, not the median: a busy machine only ever adds delay, and
// the lab never removes any. only, when set, limits the check to probes.
func (h *harness) checkRTT(t *testing.T, recs map[string][]result.Record, tr truth, only map[string]bool) {
	t.Helper()
	for _, p := range h.lab.Topo.Probes {
		if only != nil && !only[p.Name] {
			continue
		}
		best := math.Inf(1)
		n := 0
		for _, r := range recs[p.Name] {
			if r.OK() && r.Site == tr.site[p.Name] {
				best = min(best, r.RTTMs)
				n++
			}
		}
		want := tr.rtt[p.Name]
		tol := max(2, 0.05*want)
		t.Logf("RTT %s via %s: fastest %.2f ms of %d, path delay %.0f ms round trip (tolerance +%.1f ms)",
			p.Name, strings.Join(tr.path[p.Name], ">"), best, n, want, tol)
		if n == 0 {
			t.Errorf("probe %s: no successful result from %s", p.Name, tr.site[p.Name])
		} else if best < want-0.5 || best > want+tol {
			t.Errorf("probe %s: fastest RTT %.2f ms, the path's delays make %.0f ms (tolerance -0.5/+%.1f ms)", p.Name, best, want, tol)
		}
	}
}

// waitSites waits until every probe's last n results name the site in
// want, and returns when that was first seen.
func (h *harness) waitSites(t *testing.T, what string, want map[string]string, since time.Time, n int) time.Time {
	t.Helper()
	return h.waitFor(what, func() (bool, string) {
		recs, err := h.results(since, time.Now().Add(time.Second))
		if err != nil {
			return false, err.Error()
		}
		got := lastSites(recs, n)
		if maps.Equal(got, want) {
			return true, ""
		}
		return false, fmt.Sprintf("probes report %v, BGP routes %v", got, want)
	})
}

// change applies a routing change and waits for BGP, logging how long it
// took; it returns when the change was made and when routing settled.
func (h *harness) change(t *testing.T, what string, fn func(context.Context) error) (time.Time, time.Time) {
	t.Helper()
	// Space changes three timeline steps apart, so that the shift a change
	// causes is never mistaken for the previous change's (a shift is seen
	// within one step of its change).
	if !h.lastChange.IsZero() {
		h.waitFor("three quiet timeline steps since the last change", func() (bool, string) {
			return time.Since(h.lastChange) >= 3*step, "waiting"
		})
	}
	defer func() { h.lastChange = time.Now() }()
	ctx := context.Background()
	at := time.Now()
	if err := fn(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, lab.ConvergeTimeout)
	defer cancel()
	last, err := h.lab.WaitConverged(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if last.Before(at) {
		t.Logf("TIMING %s: no route changed; stable after %s", what, time.Since(at).Round(time.Millisecond))
	} else {
		t.Logf("TIMING %s: BGP converged %s after the change (BIRD's last route change; the lab saw it settle %s after the change)",
			what, last.Sub(at).Round(time.Millisecond), time.Since(at).Round(time.Millisecond))
	}
	return at, last
}

// moves lists the probes whose site differs, and the site->site flows.
func moves(before, after truth) (map[string]bool, map[[2]string]int) {
	moved := map[string]bool{}
	flows := map[[2]string]int{}
	for p, s := range before.site {
		if after.site[p] != s {
			moved[p] = true
			flows[[2]string{s, after.site[p]}]++
		}
	}
	return moved, flows
}

func flowMap(fs []cmaps.Flow) map[[2]string]int {
	m := map[[2]string]int{}
	for _, f := range fs {
		m[[2]string{f.From, f.To}] += f.Probes
	}
	return m
}

// step is the timeline's: two probe intervals, because with the agents'
// jitter a one-interval step can miss a probe, and the timeline counts only
// probes seen in both steps it compares.
const step = 2 * interval

// waitShift waits for the timeline to show the expected flows in the
// shifts after at, and checks that they are within two probe intervals
// of it. It returns when the timeline first showed them.
func (h *harness) waitShift(t *testing.T, at time.Time, want map[[2]string]int) time.Time {
	t.Helper()
	var shifts []cmaps.Shift
	seen := h.waitFor("the timeline to show the shift", func() (bool, string) {
		var tl cmaps.Timeline
		q := url.Values{"from": {fmtTime(at.Add(-20 * time.Second).Truncate(step))}, "to": {fmtTime(time.Now().Add(step))},
			"step": {step.String()}}
		if err := h.getErr("/timeline", q, &tl); err != nil {
			return false, err.Error()
		}
		shifts = nil
		var fs []cmaps.Flow
		for _, s := range tl.Shifts {
			if s.Time.Add(step).After(at) {
				shifts = append(shifts, s)
				fs = append(fs, s.Flows...)
			}
		}
		got := flowMap(fs)
		return maps.Equal(got, want), fmt.Sprintf("timeline shifts after the change: %v, BGP moved %v", got, want)
	})
	for _, s := range shifts {
		lag := s.Time.Sub(at)
		t.Logf("timeline shift at step %s (%+.1fs from the change): %d probes moved, flows %v",
			s.Time.Format("15:04:05"), lag.Seconds(), len(s.Flows), s.Flows)
		if lag > 2*interval {
			t.Errorf("shift at step %s is %s after the change: more than two probe intervals (%s)", s.Time.Format(time.RFC3339), lag, 2*interval)
		}
	}
	t.Logf("TIMING shift visible through the API %s after the change", seen.Sub(at).Round(time.Millisecond))
	return seen
}

// withdraw takes a site's announcement away and checks the timeline, the
// diff, the BGP events and the gate.
func (h *harness) withdraw(t *testing.T, site, baseline string) {
	h.t = t
	before := h.readTruth()
	at, _ := h.change(t, "withdraw "+site, func(ctx context.Context) error { return h.lab.Withdraw(ctx, site) })
	after := h.readTruth()
	moved, flows := moves(before, after)
	if len(moved) == 0 {
		t.Fatalf("withdrawing %s moved no probe: the topology must give it some", site)
	}
	t.Logf("BGP moved %v: flows %v", slices.Sorted(maps.Keys(moved)), flows)
	h.waitShift(t, at, flows)

	// The first result that shows the new catchment.
	settled := h.waitSites(t, "every probe on its new site", after.site, at, 2)
	recs, err := h.results(at.Add(-time.Minute), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	firstMoved := time.Time{}
	for p := range moved {
		for _, r := range recs[p] {
			if r.OK() && r.Site == after.site[p] && (firstMoved.IsZero() || r.Time.Before(firstMoved)) {
				firstMoved = r.Time
			}
		}
	}
	t.Logf("TIMING first result from the new site measured %s after the withdraw", firstMoved.Sub(at).Round(time.Millisecond))

	if h.bgp {
		var es []api.Event
		h.get(t, "/events", url.Values{"from": {fmtTime(at.Add(-time.Minute))}, "to": {fmtTime(time.Now().Add(time.Second))}}, &es)
		var found *api.Event
		for i, e := range es {
			if !e.Time.Before(at.Add(-time.Second)) && !e.Time.After(firstMoved) {
				found = &es[i]
				break
			}
		}
		if found == nil {
			t.Errorf("no BGP event between the withdraw (%s) and the first moved result (%s): events %+v",
				at.Format(time.RFC3339Nano), firstMoved.Format(time.RFC3339Nano), es)
		} else {
			t.Logf("BGP event %s %s path %v at %s: %s before the first moved result", found.Kind, found.Prefix, found.ASPath,
				found.Time.Format("15:04:05.000"), firstMoved.Sub(found.Time).Round(time.Millisecond))
		}
	}

	// Diff: the window before the withdraw against one after it settled.
	h.waitFor("a window of results after the change", func() (bool, string) {
		return time.Since(settled) > snapWindow, "waiting"
	})
	var d cmaps.Diff
	h.get(t, "/diff", url.Values{
		"a_from": {fmtTime(at.Add(-snapWindow))}, "a_to": {fmtTime(at)},
		"b_from": {fmtTime(settled)}, "b_to": {fmtTime(time.Now())},
	}, &d)
	if got := flowMap(d.Flows); !maps.Equal(got, flows) {
		t.Errorf("diff flows %v, BGP moved %v", got, flows)
	}
	if d.MovedProbes != len(moved) {
		t.Errorf("diff: %d moved probes, BGP moved %d", d.MovedProbes, len(moved))
	}
	after0 := filepath.Join(h.dir, "after-withdraw.json")
	if out, code := h.inOps("snapshot", "--aggregator", h.base, "--target", target, "--window", snapWindow.String(), "-o", after0); code != 0 {
		t.Fatalf("snapshot: exit %d\n%s", code, out)
	}
	named := h.movedProbes(t, baseline, after0)
	if !maps.Equal(named, moved) {
		t.Errorf("the snapshots name moved probes %v, BGP moved %v", named, moved)
	}
	cells := map[string]bool{}
	for _, c := range d.CellsChanged {
		cells[c.Cell] = true
	}
	for p := range moved {
		if c := h.probeCell(t, after0, p); !cells[c] {
			t.Errorf("diff: cell %s of moved probe %s is not among the changed cells %v", c, p, d.CellsChanged)
		}
	}

	out, code := h.check()
	t.Logf("catchmap check after the withdraw: exit %d\n%s", code, out)
	if code != 1 || !strings.Contains(out, "FAIL max_moved_share") {
		t.Errorf("check against the pre-change baseline after withdrawing %s: exit %d, want 1 for the moved probes", site, code)
	}
}

// check runs catchmap check against the baseline, with the lab's rules.
func (h *harness) check() (string, int) {
	rules, err := filepath.Abs(filepath.Join("..", "testdata", "gate_rules.yaml"))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.inOps("check", "--baseline", filepath.Join(h.dir, "baseline.json"), "--rules", rules,
		"--aggregator", h.base, "--window", snapWindow.String())
}

// movedProbes names the probes whose site differs between two snapshots.
func (h *harness) movedProbes(t *testing.T, a, b string) map[string]bool {
	t.Helper()
	sa, sb := readSnap(t, a), readSnap(t, b)
	in := map[string]string{}
	for _, p := range sb.Probes {
		in[p.ID] = p.Site
	}
	moved := map[string]bool{}
	for _, p := range sa.Probes {
		if s, ok := in[p.ID]; ok && s != "" && p.Site != "" && s != p.Site {
			moved[h.names[p.ID]] = true
		}
	}
	return moved
}

func (h *harness) probeCell(t *testing.T, snap, probe string) string {
	t.Helper()
	for _, p := range readSnap(t, snap).Probes {
		if p.ID == h.ids[probe] {
			return p.Cell
		}
	}
	t.Fatalf("probe %s is not in snapshot %s", probe, snap)
	return ""
}

func readSnap(t *testing.T, path string) *gate.Snapshot {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := gate.ReadSnapshot(f)
	if err != nil {
		t.Fatalf("snapshot %s: %v", path, err)
	}
	return s
}

// restoreAndNoop brings the site back, makes a change that changes no
// route, and checks that the gate passes.
func (h *harness) restoreAndNoop(t *testing.T, site string, steady truth) {
	h.t = t
	at, _ := h.change(t, "restore "+site, func(ctx context.Context) error { return h.lab.Restore(ctx, site) })
	if tr := h.readTruth(); !maps.Equal(tr.site, steady.site) {
		t.Fatalf("after restoring %s BGP routes %v, before the withdraw %v", site, tr.site, steady.site)
	}
	back := h.waitSites(t, "every probe back on its site", steady.site, at, 2)
	t.Logf("TIMING catchment back %s after the restore", back.Sub(at).Round(time.Millisecond))
	// No-op: a prepend of 0 on a site that has none reloads BIRD and moves
	// nothing.
	h.change(t, "no-op change (prepend iad 0)", func(ctx context.Context) error { return h.lab.Prepend(ctx, "iad", 0) })
	if tr := h.readTruth(); !maps.Equal(tr.site, steady.site) {
		t.Fatalf("the no-op change moved routes: %v, want %v", tr.site, steady.site)
	}
	h.waitFor("a window of results after the restore", func() (bool, string) {
		return time.Since(back) > snapWindow+interval, "waiting"
	})
	out, code := h.check()
	t.Logf("catchmap check after restore and no-op: exit %d\n%s", code, out)
	if code != 0 {
		t.Errorf("check after restoring %s and a no-op change: exit %d, want 0", site, code)
	}
}

// prepend lengthens a site's path and checks the partial shift.
func (h *harness) prepend(t *testing.T, site string, n int, steady truth) {
	h.t = t
	at, _ := h.change(t, fmt.Sprintf("prepend %s %d", site, n), func(ctx context.Context) error { return h.lab.Prepend(ctx, site, n) })
	after := h.readTruth()
	moved, flows := moves(steady, after)
	t.Logf("BGP moved %v: flows %v", slices.Sorted(maps.Keys(moved)), flows)
	if len(moved) == 0 || len(moved) == len(steady.site) {
		t.Fatalf("prepending %s moved %d of %d probes: want a partial shift", site, len(moved), len(steady.site))
	}
	h.waitShift(t, at, flows)
	// Four results each on the new path, for the fastest to be a fair one.
	h.waitSites(t, "every probe on its new site", after.site, at, 4)
	recs, err := h.results(at, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.checkRTT(t, recs, after, moved)
	at, _ = h.change(t, "restore "+site, func(ctx context.Context) error { return h.lab.Restore(ctx, site) })
	h.waitSites(t, "every probe back on its site", steady.site, at, 2)
}

// outage stops the aggregator while the agents measure a withdraw, and
// checks that every result they made is stored exactly once, at the time
// it was measured.
func (h *harness) outage(t *testing.T, site string, since time.Time) {
	h.t = t
	before := h.readTruth()
	down := time.Now()
	h.agg.stop(t)
	at, _ := h.change(t, "withdraw "+site+" while the aggregator is down", func(ctx context.Context) error { return h.lab.Withdraw(ctx, site) })
	after := h.readTruth()
	_, flows := moves(before, after)
	h.waitFor("the outage to last its time", func() (bool, string) { return time.Since(down) >= outage, "waiting" })
	up := time.Now()
	h.startAggregator()
	t.Logf("aggregator down for %s", up.Sub(down).Round(time.Millisecond))
	h.waitShift(t, at, flows)

	// Stop measuring, so the agents' counts stop moving, then wait for the
	// spools to drain.
	h.setPlan(false)
	counts := map[string][2]float64{}
	stableSince := time.Now()
	h.waitFor("every agent to stop measuring and upload all", func() (bool, string) {
		now := map[string][2]float64{}
		for _, p := range h.lab.Topo.Probes {
			made, uploaded, err := h.agentCounts(p.Name)
			if err != nil {
				return false, err.Error()
			}
			now[p.Name] = [2]float64{made, uploaded}
			if made != uploaded {
				stableSince = time.Now()
			}
		}
		if !maps.Equal(now, counts) {
			counts, stableSince = now, time.Now()
		}
		return time.Since(stableSince) > 3*time.Second, fmt.Sprintf("made/uploaded %v", counts)
	})
	recs, err := h.results(since.Add(-time.Minute), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range h.lab.Topo.Probes {
		ids := map[string]bool{}
		during := 0
		for _, r := range recs[p.Name] {
			if ids[r.ID] {
				t.Errorf("probe %s: result %s stored twice", p.Name, r.ID)
			}
			ids[r.ID] = true
			if r.Time.After(down) && r.Time.Before(up) {
				during++
			}
		}
		made := counts[p.Name][0]
		t.Logf("probe %s: made %.0f results, aggregator holds %d (%d measured while it was down)", p.Name, made, len(ids), during)
		if float64(len(ids)) != made {
			t.Errorf("probe %s made %.0f results, the aggregator holds %d", p.Name, made, len(ids))
		}
		if want := int(outage/interval) - 1; during < want {
			t.Errorf("probe %s: %d results from the outage, want at least %d", p.Name, during, want)
		}
	}
	h.change(t, "restore "+site, func(ctx context.Context) error { return h.lab.Restore(ctx, site) })
}

// agentCounts scrapes an agent's metrics: records measured and uploaded.
func (h *harness) agentCounts(probe string) (made, uploaded float64, err error) {
	n, _ := h.lab.Topo.Node(probe)
	up, _ := h.lab.Topo.Uplink(probe)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: lab.Dialer(n.NS), DisableKeepAlives: true}}
	resp, err := c.Get("http://" + net.JoinHostPort(up.AddrB().String(), metricsPort) + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "catchmap_probe_results_total{"):
			made += v
		case strings.HasPrefix(line, "catchmap_probe_uploaded_total "):
			uploaded = v
		}
	}
	return made, uploaded, sc.Err()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// get reads an API route under /api/v1 for the lab target.
func (h *harness) get(t *testing.T, path string, q url.Values, out any) {
	t.Helper()
	if err := h.getErr(path, q, out); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) getErr(path string, q url.Values, out any) error {
	q.Set("target", target)
	var raw json.RawMessage
	if err := h.api("GET", api.Prefix+path+"?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
