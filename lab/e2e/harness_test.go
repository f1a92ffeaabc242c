// Package e2e checks catchmap against a real routed network: the lab's
// namespaces, delayed links and BIRD routers, a real `catchmap serve` in
// the lab's operations network and a real `catchmap-probe` in every probe
// namespace. What the maps say is compared with what BGP chose, read from
// the routers' own tables.
//
// It needs root and bird2. Without them it skips, except under CI (CI set),
// where it fails: CI is root and must run it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/lab"
	"github.com/catchmap/catchmap/lab/labtest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Settings of the run. The probe interval is short so that the suite takes
// minutes; detection is judged in intervals.
const (
	interval    = 2 * time.Second
	uploadEvery = time.Second
	// target is the plan entry and the records' target: the entry has no
	// name of its own, because agents stamp records with the entry's
	// target, not its name.
	target      = "192.0.2.53"
	adminToken  = "lab-e2e-admin-token-0123456789abcdef"
	aggPort     = "8080"
	metricsPort = "9464"
	waitTimeout = 60 * time.Second
)

// runPrefix names this run's namespaces: not the default, so that a lab
// someone runs by hand survives, and unique to the process, so that two
// runs on one machine do not tear down each other's lab.
func runPrefix(kind string) string { return fmt.Sprintf("%s%05d", kind, os.Getpid()%100000) }

// harness is one lab with an aggregator and a fleet of agents.
type harness struct {
	t        *testing.T
	dir      string
	bin      string // catchmap
	probeBin string // catchmap-probe
	lab      *lab.Lab
	opsNS    string
	base     string // aggregator URL
	client   *http.Client
	agg      *proc
	aggArgs  []string
	agents   map[string]*proc   // by probe name
	names    map[string]string  // probe id -> name
	ids      map[string]string  // probe name -> id
	bgp      bool               // the aggregator runs its BGP listener
	logs     map[string]*buffer // per process, shown on failure
	// lastChange is when the last routing change had converged.
	lastChange time.Time
	mu         sync.Mutex
}

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a process in a lab namespace.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 20s of SIGTERM: killed", p.cmd.Args)
	}
}

// The binaries, built once for every test of the package.
var (
	buildOnce     sync.Once
	buildDir      string
	builtCatchmap string
	builtProbe    string
	buildErr      error
	buildOut      []byte
	buildTook     time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles both commands the first time a test needs them.
func build(t *testing.T) (string, string) {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		if buildDir, buildErr = os.MkdirTemp("", "catchmap-lab-e2e-"); buildErr != nil {
			return
		}
		buildOut, buildErr = exec.Command("go", "build", "-o", buildDir+"/",
			"github.com/catchmap/catchmap/cmd/catchmap", "github.com/catchmap/catchmap/cmd/catchmap-probe").CombinedOutput()
		builtCatchmap, builtProbe = filepath.Join(buildDir, "catchmap"), filepath.Join(buildDir, "catchmap-probe")
		buildTook = time.Since(start)
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v\n%s", buildErr, buildOut)
	}
	t.Logf("catchmap and catchmap-probe built in %s (once for all tests)", buildTook.Round(time.Millisecond))
	return builtCatchmap, builtProbe
}

// newHarness brings the lab up; t.Cleanup tears everything down, whatever
// happens.
func newHarness(t *testing.T) *harness {
	bin, probeBin := build(t)
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, bin: bin, probeBin: probeBin, agents: map[string]*proc{},
		names: map[string]string{}, ids: map[string]string{}, logs: map[string]*buffer{}}

	topo := lab.DefaultTopology()
	topoPath := writeTopology(t, topo, runPrefix("cme"))
	labDir := filepath.Join(dir, "lab")
	t.Cleanup(func() {
		for _, a := range h.agents {
			a.stop(t)
		}
		if h.agg != nil {
			h.agg.stop(t)
		}
		if out, code := h.run(context.Background(), bin, "lab", "--dir", labDir, "down"); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, out)
		}
		if t.Failed() {
			for name, l := range h.logs {
				t.Logf("--- %s ---\n%s", name, labtest.Tail(quiet(l.String()), 2000))
			}
			for _, f := range []string{"forward.log", "t-eu.bird.log"} {
				if b, err := os.ReadFile(filepath.Join(labDir, f)); err == nil {
					t.Logf("--- %s ---\n%s", f, labtest.Tail(string(b), 3000))
				}
			}
		}
	})
	start := time.Now()
	if out, code := h.run(context.Background(), bin, "lab", "--dir", labDir, "up", "--topology", topoPath); code != 0 {
		t.Fatalf("lab up: exit %d\n%s", code, out)
	}
	t.Logf("TIMING lab up (namespaces, links, bird, sites, BGP converged): %s", time.Since(start).Round(time.Millisecond))
	var err error
	if h.lab, err = lab.Open(slog.New(slog.NewTextHandler(io.Discard, nil)), labDir); err != nil {
		t.Fatal(err)
	}
	ops, _ := topo.Node(lab.OpsName)
	h.opsNS = ops.NS
	opsAddr, _ := topo.OpsAddr()
	h.base = "http://" + net.JoinHostPort(opsAddr.String(), aggPort)
	h.client = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: lab.Dialer(h.opsNS), DisableKeepAlives: true}}
	return h
}

// quiet drops the lines an agent logs at every plan refresh.
func quiet(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(line, "plan applied") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// writeTopology writes topo with the given namespace prefix to a file.
func writeTopology(t *testing.T, topo *lab.Topology, prefix string) string {
	t.Helper()
	topo.Prefix = prefix
	b, err := yaml.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a command to completion and returns its output and exit code.
func (h *harness) run(ctx context.Context, name string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	return string(out) + err.Error(), -1
}

// inOps runs catchmap in the operations network, as an operator there would.
func (h *harness) inOps(args ...string) (string, int) {
	return h.run(context.Background(), "ip", append([]string{"netns", "exec", h.opsNS, h.bin}, args...)...)
}

// cleanEnv is the test's environment without CATCHMAP_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CATCHMAP_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs a long-lived process in node's namespace.
func (h *harness) start(name, node string, env []string, bin string, args ...string) *proc {
	h.t.Helper()
	n, ok := h.lab.Topo.Node(node)
	if !ok {
		h.t.Fatalf("no node %s", node)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS, bin}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	h.mu.Lock()
	if h.logs[name] == nil {
		h.logs[name] = &buffer{}
	}
	cmd.Stdout, cmd.Stderr = h.logs[name], h.logs[name]
	h.mu.Unlock()
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p
}

// startAggregator runs catchmap serve in the operations network, with the
// BGP listener peering with the ops router when this build has one.
func (h *harness) startAggregator() {
	h.t.Helper()
	if h.aggArgs == nil {
		opsAddr, _ := h.lab.Topo.OpsAddr()
		up, _ := h.lab.Topo.Uplink(lab.OpsName)
		router, _ := h.lab.Topo.Node(up.A)
		cfg := fmt.Sprintf("listen: %s\ndb: %s\nplan_refresh: 1s\n", net.JoinHostPort(opsAddr.String(), aggPort), filepath.Join(h.dir, "agg.db"))
		ops := h.lab.Topo.Ops
		bgpCfg := fmt.Sprintf("bgp:\n  peer: %s\n  peer_as: %d\n  local_as: %d\n  router_id: %s\n  listen_address: %s\n  listen_port: %d\n  mode: passive\n",
			up.AddrA(), router.AS, ops.CollectorAS, opsAddr, opsAddr, ops.CollectorPort)
		path := filepath.Join(h.dir, "serve.yaml")
		if err := os.WriteFile(path, []byte(cfg+bgpCfg), 0o644); err != nil {
			h.t.Fatal(err)
		}
		out, code := h.run(context.Background(), h.bin, "serve", "--check", "--config", path)
		h.bgp = code == 0
		if !h.bgp {
			h.t.Logf("this build's catchmap serve has no BGP listener (serve --check: %s): running without; the BGP event assertion is left out", strings.TrimSpace(out))
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				h.t.Fatal(err)
			}
		}
		h.aggArgs = []string{"serve", "--config", path}
	}
	h.agg = h.start("aggregator", lab.OpsName, []string{"CATCHMAP_ADMIN_TOKEN=" + adminToken}, h.bin, h.aggArgs...)
	h.waitFor("the aggregator to serve", func() (bool, string) {
		resp, err := h.client.Get(h.base + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func (h *harness) waitFor(what string, cond func() (bool, string)) time.Time {
	h.t.Helper()
	testutil.WaitForNil(h.t, waitTimeout, what, func() error {
		if ok, why := cond(); !ok {
			return errors.New(why)
		}
		return nil
	})
	return time.Now()
}

// api calls the aggregator with the admin token; out, when set, gets the
// JSON answer.
func (h *harness) api(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// register registers every probe with its place, and sets the plan.
func (h *harness) register() {
	h.t.Helper()
	for _, p := range h.lab.Topo.Probes {
		lat, lon := p.Lat, p.Lon
		var created api.ProbeCreated
		if err := h.api("POST", api.Prefix+"/probes", api.ProbeRegistration{Name: p.Name, Lat: &lat, Lon: &lon}, &created); err != nil {
			h.t.Fatal(err)
		}
		h.names[created.ID] = p.Name
		h.ids[p.Name] = created.ID
		h.startAgent(p.Name, created.Token)
	}
	h.setPlan(true)
}

// setPlan puts the lab's DNS target in the plan, or empties the plan.
func (h *harness) setPlan(on bool) {
	h.t.Helper()
	plan := api.Plan{Targets: []api.Target{}}
	if on {
		tg := api.Target{Interval: spec.Duration(interval), Prefixes: []string{h.lab.Topo.Anycast + "/32"}}
		tg.Target = h.lab.Topo.Anycast
		tg.Method = result.MethodDNS
		tg.SiteRegex = lab.SiteRegex
		tg.Timeout = spec.Duration(time.Second)
		plan.Targets = append(plan.Targets, tg)
	}
	if err := h.api("PUT", api.Prefix+"/targets", plan, nil); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) startAgent(name, token string) {
	h.t.Helper()
	up, _ := h.lab.Topo.Uplink(name)
	h.agents[name] = h.start("agent "+name, name, []string{"CATCHMAP_TOKEN=" + token}, h.probeBin,
		"--aggregator", h.base, "--name", name, "--spool", filepath.Join(h.dir, "spool", name),
		"--upload-interval", uploadEvery.String(), "--metrics-listen", net.JoinHostPort(up.AddrB().String(), metricsPort))
}

// results returns the records of the window, by probe name.
func (h *harness) results(from, to time.Time) (map[string][]result.Record, error) {
	q := url.Values{"target": {target}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}, "format": {"ndjson"}}
	req, _ := http.NewRequest("GET", h.base+api.Prefix+"/results?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET results: %s: %s", resp.Status, b)
	}
	out := map[string][]result.Record{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r result.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("GET results: bad line %q: %v", sc.Text(), err)
		}
		name := h.names[r.Probe]
		if name == "" {
			return nil, fmt.Errorf("record %s from unknown probe %q", r.ID, r.Probe)
		}
		out[name] = append(out[name], r)
	}
	return out, sc.Err()
}

// truth is what BGP chose for every probe: the site and the path's RTT.
type truth struct {
	site map[string]string
	rtt  map[string]float64 // ms
	path map[string][]string
}

// readTruth reads the routers' best paths, and checks that each site's
// route back to its probes takes the same routers.
func (h *harness) readTruth() truth {
	h.t.Helper()
	tr := truth{site: map[string]string{}, rtt: map[string]float64{}, path: map[string][]string{}}
	ctx := context.Background()
	for _, p := range h.lab.Topo.Probes {
		path, err := h.lab.Path(ctx, p.Name)
		if err != nil {
			h.t.Fatal(err)
		}
		back, err := h.lab.ReturnPath(ctx, path.Site, p.Name)
		if err != nil {
			h.t.Fatal(err)
		}
		fwd := path.Hops
		for i := range back {
			if back[i] != fwd[len(fwd)-1-i] {
				// Asymmetric: the RTT is the two one-way sums.
				h.t.Fatalf("probe %s: forward path %v, return path %v: the lab's topology should route symmetrically", p.Name, fwd, back)
			}
		}
		tr.site[p.Name] = path.Site
		tr.rtt[p.Name] = 2 * path.Delay
		tr.path[p.Name] = fwd
	}
	return tr
}

// lastSites returns each probe's site by its latest successful results
// (the last n, all equal), or "" when they disagree.
func lastSites(recs map[string][]result.Record, n int) map[string]string {
	out := map[string]string{}
	for name, rs := range recs {
		var ok []result.Record
		for _, r := range rs {
			if r.OK() && r.Site != "" {
				ok = append(ok, r)
			}
		}
		if len(ok) < n {
			continue
		}
		site := ok[len(ok)-1].Site
		for _, r := range ok[len(ok)-n:] {
			if r.Site != site {
				site = ""
			}
		}
		out[name] = site
	}
	return out
}
