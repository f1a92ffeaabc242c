// Package e2e sweeps a real routed network: the lab's namespaces, delayed
// links and BIRD routers, a static catchmap-catch in every site namespace
// and `catchmap sweep run` in the operations network, as an operator would
// run them. Which site catches each /24 is checked against the routers'
// own tables.
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
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/lab"
	"github.com/catchmap/catchmap/lab/labtest"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/driver"
)

const (
	token       = "sweep-e2e-token-0123456789abcdef"
	catchPort   = "8100"
	maxRate     = 20_000
	waitTimeout = 60 * time.Second
	// runTimeout bounds one sweep run, so that a hang fails the test
	// rather than the suite.
	runTimeout = 3 * time.Minute
)

// build compiles catchmap (the lab, sweep run) and the static
// catchmap-catch into dir.
func build(t *testing.T, dir string) (catchmap, catch string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/catchmap/catchmap/cmd/catchmap", "github.com/catchmap/catchmap/cmd/catchmap-catch")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	t.Logf("TIMING build: %s", time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "catchmap"), filepath.Join(dir, "catchmap-catch")
}

// harness is one lab with a catcher at every site.
type harness struct {
	t        *testing.T
	lab      *lab.Lab
	bin      string
	dir      string
	opsNS    string
	catchers map[string]string // site -> control API URL
	client   *http.Client      // dials from the ops namespace
	procs    []*exec.Cmd
	logs     map[string]*testutil.Buffer
}

func newHarness(t *testing.T) *harness {
	labtest.Need(t)
	dir := t.TempDir()
	bin, catchBin := build(t, dir)
	topo, err := lab.ReadTopology(filepath.Join("testdata", "regions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Unique to this run, so that labs of concurrent runs do not meet.
	topo.Prefix = fmt.Sprintf("cmsw%04d", os.Getpid()%10000)
	h := &harness{t: t, bin: bin, dir: dir, catchers: map[string]string{}, logs: map[string]*testutil.Buffer{}}
	labDir := filepath.Join(dir, "lab")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Cleanup(func() {
		h.stopCatchers()
		if t.Failed() {
			for name, l := range h.logs {
				t.Logf("--- %s ---\n%s", name, labtest.Tail(l.String(), 3000))
			}
			if b, err := os.ReadFile(filepath.Join(labDir, "forward.log")); err == nil {
				t.Logf("--- forward.log ---\n%s", labtest.Tail(string(b), 2000))
			}
		}
		if err := lab.Down(context.Background(), log, labDir, topo.Prefix); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if h.lab, err = lab.Up(ctx, log, topo, labDir, lab.Options{Bin: bin}); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("TIMING lab up (namespaces, links, bird, BGP converged): %s", time.Since(start).Round(time.Millisecond))
	ops, _ := topo.Node(lab.OpsName)
	h.opsNS = ops.NS
	h.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: lab.Dialer(h.opsNS)}}
	for _, s := range topo.Sites {
		h.startCatcher(catchBin, s.Name)
	}
	return h
}

// startCatcher runs catchmap-catch in site's namespace, listening on the
// site's link address, and waits until it serves.
func (h *harness) startCatcher(bin, site string) {
	h.t.Helper()
	n, _ := h.lab.Topo.Node(site)
	up, _ := h.lab.Topo.Uplink(site)
	addr := net.JoinHostPort(up.AddrB().String(), catchPort)
	cmd := exec.Command("ip", "netns", "exec", n.NS, bin, "--listen", addr, "--site", site, "--anycast", h.lab.Topo.Anycast,
		"--max-rate", fmt.Sprint(maxRate), "--allow", "10.0.0.0/8", "--spool", filepath.Join(h.t.TempDir(), site))
	cmd.Env = append(os.Environ(), "CATCHMAP_CATCH_TOKEN="+token)
	buf := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	h.logs["catcher "+site] = buf
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("starting the catcher at %s: %v", site, err)
	}
	h.procs = append(h.procs, cmd)
	url := "http://" + addr
	h.catchers[site] = url
	testutil.WaitFor(h.t, waitTimeout, "the catcher at "+site+" to serve", func() bool {
		resp, err := h.client.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stopCatchers ends the catchers with SIGTERM, and kills what does not
// stop.
func (h *harness) stopCatchers() {
	for _, c := range h.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("catcher %v: %v", c.Args, err)
			}
		case <-time.After(15 * time.Second):
			_ = c.Process.Kill()
			<-done
			h.t.Errorf("catcher %v did not stop within 15s of SIGTERM: killed", c.Args)
		}
	}
	h.procs = nil
}

// status asks every catcher for its status.
func (h *harness) status() map[string]control.Status {
	h.t.Helper()
	out := map[string]control.Status{}
	for site, url := range h.catchers {
		st, err := control.NewClient(url, token, h.client).Status(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		out[site] = st
	}
	return out
}

// sweep runs catchmap sweep run in the operations network with args and
// returns its exit status, stderr, and the rows and summary it wrote.
func (h *harness) sweep(args ...string) (int, string, []driver.Row, *driver.Summary) {
	h.t.Helper()
	out := filepath.Join(h.dir, "catchment.ndjson")
	sum := filepath.Join(h.dir, "summary.json")
	os.Remove(out)
	os.Remove(sum)
	full := []string{"netns", "exec", h.opsNS, h.bin, "sweep", "run", "-o", out, "--summary", sum, "--contact", "catchmap sweep e2e test"}
	for _, url := range h.catchers {
		full = append(full, "--catcher", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append(full, args...)...)
	cmd.Env = append(os.Environ(), "CATCHMAP_CATCH_TOKEN="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		h.t.Fatalf("sweep run: %v\n%s", err, stderr.String())
	}
	var rows []driver.Row
	if f, err := os.Open(out); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r driver.Row
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				h.t.Fatalf("catchment line %q: %v", sc.Text(), err)
			}
			rows = append(rows, r)
		}
		f.Close()
	}
	var s *driver.Summary
	if b, err := os.ReadFile(sum); err == nil {
		s = &driver.Summary{}
		if err := json.Unmarshal(b, s); err != nil {
			h.t.Fatalf("summary: %v\n%s", err, b)
		}
	}
	return code, stderr.String(), rows, s
}

// hitlist writes a hitlist file.
func (h *harness) hitlist(name, text string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// truth is the site bird chose for each region, read from the routers.
func (h *harness) truth() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for _, r := range h.lab.Topo.Regions {
		p, err := h.lab.RegionPath(context.Background(), r.Name)
		if err != nil {
			h.t.Fatal(err)
		}
		out[r.Name] = p.Site
		h.t.Logf("region %s (%s): bird sends its replies to %s via %s", r.Name, r.Prefix, p.Site, strings.Join(p.Hops, " > "))
	}
	return out
}

// regionOf finds the region holding a.
func (h *harness) regionOf(a netip.Addr) (lab.Region, bool) {
	for _, r := range h.lab.Topo.Regions {
		if r.Net().Contains(a) {
			return r, true
		}
	}
	return lab.Region{}, false
}

// TestLabSweep brings up one lab and runs the sweep tests on it: bad input
// sends nothing; a sweep of 53,248 /24s over four regions at 10,000
// packets/s finds the catchment bird chose; forged and stray replies are
// counted as such.
func TestLabSweep(t *testing.T) {
	h := newHarness(t)
	t.Run("BadInputSendsNothing", h.testBadInput)
	t.Run("Catchment", h.testCatchment)
	t.Run("ForgedAndStray", h.testForgedAndStray)
}

func (h *harness) testBadInput(t *testing.T) {
	h.t = t
	good := h.hitlist("good.txt", "10.16.0.0/16\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"malformed line", []string{"--hitlist", h.hitlist("bad.txt", "10.16.0.0/16\n10.16.1.300\n"), "--from", "ams"}, `line 2: "10.16.1.300": not an IPv4 address`},
		{"empty hitlist", []string{"--hitlist", h.hitlist("empty.txt", "# nothing\n"), "--from", "ams"}, "the hitlist holds no address to probe"},
		{"IPv6 line", []string{"--hitlist", h.hitlist("v6.txt", "10.16.0.0/16\n\n2001:db8::1\n"), "--from", "ams"}, `line 3: "2001:db8::1": an IPv6 address`},
		{"rate above the cap", []string{"--hitlist", good, "--from", "ams", "--rate", fmt.Sprint(maxRate + 1)}, fmt.Sprintf("above site ams's cap of %d", maxRate)},
		{"unknown site", []string{"--hitlist", good, "--from", "ams,fra"}, `unknown site "fra" in --from: the catchers are ams, iad, nrt`},
	}
	for _, c := range cases {
		code, stderr, rows, _ := h.sweep(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q:\n%s", c.name, code, c.want, stderr)
		}
		if len(rows) != 0 {
			t.Errorf("%s: %d rows written", c.name, len(rows))
		}
	}
	for site, st := range h.status() {
		if st.Sent != 0 || len(st.Sweeps) != 0 {
			t.Errorf("site %s after bad input: sent %d, %d sweeps known", site, st.Sent, len(st.Sweeps))
		}
	}
}

func (h *harness) testCatchment(t *testing.T) {
	h.t = t
	truth := h.truth()
	var hl strings.Builder
	for _, r := range h.lab.Topo.Regions {
		fmt.Fprintln(&hl, r.Prefix)
	}
	before := h.status()
	start := time.Now()
	// Two senders at 5,000 packets/s each: 10,000 packets/s in all.
	code, stderr, rows, s := h.sweep("--hitlist", h.hitlist("regions.txt", hl.String()), "--from", "ams,nrt", "--rate", "5000", "--cooldown", "5s")
	t.Logf("TIMING sweep run of %d /24s: %s\n%s", len(rows), time.Since(start).Round(time.Millisecond), stderr)
	if code != 0 || s == nil {
		t.Fatalf("sweep run: exit %d\n%s", code, stderr)
	}
	if len(rows) != 53248 || s.Prefixes != 53248 || s.Sent != 53248 {
		t.Fatalf("%d rows, %d prefixes, %d sent: want 53248 each", len(rows), s.Prefixes, s.Sent)
	}
	silent, others, responded := 0, 0, 0
	for _, row := range rows {
		r, ok := h.regionOf(row.Target)
		if !ok {
			t.Fatalf("row %s is in no region", row.Prefix)
		}
		if r.IsSilent(row.Target) {
			silent++
			if row.Status != driver.Unresponsive {
				t.Errorf("silent %s (region %s): %s at %s", row.Prefix, r.Name, row.Status, row.Site)
			}
			continue
		}
		others++
		switch row.Status {
		case control.Caught:
			responded++
			if row.Site != truth[r.Name] || len(row.Also) > 0 {
				t.Errorf("%s (region %s) caught at %s (also %v): bird sends the region to %s", row.Prefix, r.Name, row.Site, row.Also, truth[r.Name])
			}
		case control.OtherSource:
			t.Errorf("%s: a reply from %s: the lab answers from the probed address", row.Prefix, row.From)
		}
	}
	share := float64(responded) / float64(others)
	t.Logf("%d silent /24s, all unresponsive; %d of %d others responded (%.3f%%)", silent, responded, others, 100*share)
	if share < 0.999 {
		t.Errorf("%d of %d responding /24s answered (%.3f%%): want at least 99.9%%", responded, others, 100*share)
	}
	if s.Forged != 0 || s.Stray != 0 || s.Duplicates != 0 {
		t.Errorf("forged %d, stray %d, duplicates %d in a clean sweep", s.Forged, s.Stray, s.Duplicates)
	}
	after := h.status()
	if sent := after["ams"].Sent + after["nrt"].Sent - before["ams"].Sent - before["nrt"].Sent; sent != 53248 || after["iad"].Sent != before["iad"].Sent {
		t.Errorf("sites sent %d in all, iad %d: want 53248, 0", sent, after["iad"].Sent-before["iad"].Sent)
	}
}

// testForgedAndStray injects, with raw sockets in two routers, forged
// replies (the sweep's id, a wrong key, silent targets) and strays while a
// sweep runs; the catchers count them as such, and the targets stay
// unresponsive.
func (h *harness) testForgedAndStray(t *testing.T) {
	h.t = t
	ctx := context.Background()
	forgedTarget := netip.MustParseAddr("10.16.0.1") // silent
	var wg sync.WaitGroup
	var injectErr error
	wg.Go(func() {
		// Every catcher must know the sweep first: before, its replies
		// are strays of no sweep.
		var id string
		testutil.WaitFor(t, waitTimeout, "the sweep at every catcher", func() bool {
			ids := map[string]bool{}
			for _, url := range h.catchers {
				st, err := control.NewClient(url, token, h.client).Status(ctx)
				if err != nil || len(st.Sweeps) != 1 {
					return false
				}
				id = st.Sweeps[0].ID.String()
				ids[id] = true
			}
			return len(ids) == 1
		})
		// t-eu's replies go to ams, t-ap's to nrt.
		injectErr = errors.Join(
			injectReplies(h.lab, "t-eu", h.lab.Topo.Anycast, forged(id, forgedTarget, 5), strays(4)),
			injectReplies(h.lab, "t-ap", h.lab.Topo.Anycast, forged(id, forgedTarget, 3), strays(2)))
	})
	code, stderr, rows, s := h.sweep("--hitlist", h.hitlist("sa.txt", "10.16.0.0/16\n"), "--from", "iad", "--rate", "2000", "--cooldown", "3s")
	wg.Wait()
	if injectErr != nil {
		t.Fatal(injectErr)
	}
	if code != 0 || s == nil {
		t.Fatalf("sweep run: exit %d\n%s", code, stderr)
	}
	if s.Forged != 8 || s.Stray != 6 {
		t.Errorf("forged %d, stray %d: want 8 and 6\n%s", s.Forged, s.Stray, stderr)
	}
	for i, name := range s.SiteNames {
		want := map[string][2]uint64{"ams": {5, 4}, "nrt": {3, 2}, "iad": {0, 0}}[name]
		if got := s.Sites[i].Replies; got[control.Forged] != want[0] || got[control.Stray] != want[1] {
			t.Errorf("site %s: forged %d, stray %d; want %d, %d", name, got[control.Forged], got[control.Stray], want[0], want[1])
		}
	}
	for _, row := range rows {
		if row.Target == forgedTarget && row.Status != driver.Unresponsive {
			t.Errorf("the forged target: %+v", row)
		}
	}
}
