package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/responder"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
)

// Bounds of the waits. They are generous because ~8 test runs share two
// cores; a healthy run waits far less.
const (
	startTimeout = 30 * time.Second // a process to serve
	stopTimeout  = 30 * time.Second // a process to exit after a signal
)

// The tokens of these tests: long enough for the aggregator, and easy to
// find in a log should one leak.
const adminToken = "e2e-admin-token-0123456789abcdef"

// proc is one binary running as its own process. Its stdout and stderr are
// kept for the checks and shown when the test fails; t.Cleanup kills it if
// the test has not stopped it.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
	err  error // Wait's, once done is closed
}

// start runs bin with args, and the environment of the tests minus every
// CATCHMAP_ variable, plus env.
func start(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CATCHMAP_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s exited before it was stopped: %v", p.name, p.err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.kill()
		t.Fatalf("%s did not stop within %s of SIGTERM", p.name, stopTimeout)
	}
	if p.err != nil {
		t.Fatalf("%s stopped with %v, want a clean exit", p.name, p.err)
	}
}

// kill ends the process at once (SIGKILL) and reaps it.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// aggregator is `catchmap serve` on a fixed address and database, so that
// it can be restarted in place.
type aggregator struct {
	t      *testing.T
	dir    string
	addr   string
	url    string
	store  []string // flags that select its store and database
	config string   // file passed with --config, if any
	// args are more flags of serve, such as --tls-cert; client checks its
	// health (http.DefaultClient when nil), and must speak as those flags
	// ask.
	args   []string
	client *http.Client
	p      *proc
	runs   int
}

// newAggregator picks the address of an aggregator in a fresh directory and
// a fresh database on store s; configYAML, when not empty, is its config
// file.
func newAggregator(t *testing.T, s storeKind, configYAML string) *aggregator {
	t.Helper()
	a := &aggregator{t: t, dir: t.TempDir(), addr: testutil.FreeAddr(t, "127.0.0.1")}
	a.store = storeArgs(t, s, a.dir)
	a.url = "http://" + a.addr
	if configYAML != "" {
		a.config = filepath.Join(a.dir, "catchmap.yaml")
		if err := os.WriteFile(a.config, []byte(configYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// start runs the aggregator and waits until /healthz answers.
func (a *aggregator) start() time.Duration {
	t := a.t
	t.Helper()
	a.runs++
	args := append([]string{"--log-level", "debug", "serve", "--listen", a.addr}, a.store...)
	if a.config != "" {
		args = append(args, "--config", a.config)
	}
	args = append(args, a.args...)
	a.p = start(t, fmt.Sprintf("aggregator (run %d)", a.runs), catchmapBin, []string{"CATCHMAP_ADMIN_TOKEN=" + adminToken}, args...)
	hc := a.client
	if hc == nil {
		hc = http.DefaultClient
	}
	return testutil.WaitForNil(t, startTimeout, "aggregator healthy at "+a.url, func() error {
		if a.p.exited() {
			t.Fatalf("aggregator exited while starting: %v", a.p.err)
		}
		return testutil.Healthy(hc, a.url)
	})
}

// call makes one API request with a token (none when empty) and a JSON
// body (none when nil), and returns the status and the answer.
func call(t *testing.T, method, u, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, u, err)
	}
	return resp.StatusCode, data
}

// mustCall is call that wants status want and decodes the answer into out
// (when not nil).
func mustCall(t *testing.T, method, u, tok string, body any, want int, out any) {
	t.Helper()
	code, data := call(t, method, u, tok, body)
	if code != want {
		t.Fatalf("%s %s answered %d, want %d: %s", method, u, code, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, u, data, err)
		}
	}
}

// register adds a probe at lat, lon and returns its id and token.
func (a *aggregator) register(name string, lat, lon float64) api.ProbeCreated {
	var pc api.ProbeCreated
	mustCall(a.t, http.MethodPost, a.url+api.Prefix+"/probes", adminToken,
		api.ProbeRegistration{Name: name, Lat: &lat, Lon: &lon}, http.StatusCreated, &pc)
	return pc
}

func (a *aggregator) putPlan(targets ...api.Target) {
	if targets == nil {
		targets = []api.Target{}
	}
	mustCall(a.t, http.MethodPut, a.url+api.Prefix+"/targets", adminToken, api.Plan{Targets: targets}, http.StatusOK, nil)
}

// results reads every stored record measured since from, as NDJSON; the
// window ends well after now so that nothing recent is cut.
func (a *aggregator) results(from time.Time) ([]result.Record, error) {
	q := url.Values{"format": {"ndjson"}, "from": {from.UTC().Format(time.RFC3339Nano)},
		"to": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)}}
	resp, err := http.Get(a.url + api.Prefix + "/results?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /results answered %s: %s", resp.Status, b)
	}
	var rs []result.Record
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r result.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("GET /results: line %q: %w", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// agent is one catchmap-probe process with its spool and /metrics.
type agent struct {
	name    string
	aggURL  string
	tok     string
	spool   string
	metrics string   // address of its /metrics
	args    []string // more flags, such as --ca-file
	p       *proc
	runs    int
}

// startAgent runs catchmap-probe against aggURL with tok, the token given
// as the environment variable the help recommends, and more flags args.
func startAgent(t *testing.T, name, aggURL, tok string, args ...string) *agent {
	t.Helper()
	ag := &agent{name: name, aggURL: aggURL, tok: tok, spool: filepath.Join(t.TempDir(), "spool"), args: args}
	ag.start(t)
	return ag
}

// start runs the agent (again: on the same spool) and waits for its
// /metrics.
func (ag *agent) start(t *testing.T) {
	t.Helper()
	ag.runs++
	ag.metrics = testutil.FreeAddr(t, "127.0.0.1")
	args := []string{"--log-level", "debug", "--aggregator", ag.aggURL, "--name", ag.name, "--spool", ag.spool,
		"--metrics-listen", ag.metrics, "--upload-interval", "1s"}
	args = append(args, ag.args...)
	ag.p = start(t, fmt.Sprintf("agent %s (run %d)", ag.name, ag.runs), probeBin, []string{"CATCHMAP_TOKEN=" + ag.tok}, args...)
	testutil.WaitForNil(t, startTimeout, "agent "+ag.name+" serving /metrics", func() error {
		if ag.p.exited() {
			t.Fatalf("agent %s exited while starting: %v", ag.name, ag.p.err)
		}
		_, err := ag.scrape()
		return err
	})
}

// scrape reads the agent's /metrics: each metric's samples summed over
// their labels, or, with a name{label="value"} key, one labelled sample.
func (ag *agent) scrape() (map[string]float64, error) {
	resp, err := http.Get("http://" + ag.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	m := map[string]float64{}
	for name, f := range fams {
		for _, s := range f.GetMetric() {
			v := s.GetCounter().GetValue() + s.GetGauge().GetValue() + s.GetUntyped().GetValue()
			m[name] += v
			for _, l := range s.GetLabel() {
				m[name+"{"+l.GetName()+"="+strconv.Quote(l.GetValue())+"}"] += v
			}
		}
	}
	return m, nil
}

// mustScrape is scrape for tests that need the numbers now.
func (ag *agent) mustScrape(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := ag.scrape()
	if err != nil {
		t.Fatalf("agent %s: %v", ag.name, err)
	}
	return m
}

// Metric names of the agent, as it exports them.
const (
	mResults      = "catchmap_probe_results_total"
	mUploaded     = "catchmap_probe_uploaded_total"
	mSpooled      = "catchmap_probe_spooled_records"
	mUploadErrors = "catchmap_probe_upload_errors_total"
)

// sites starts the anycast service the tests measure: one K-root-like DNS
// site and one Fastly-like HTTP edge, both in Amsterdam, on loopback.
func sites(t *testing.T) (dnsAddr, httpURL string) {
	t.Helper()
	d := responder.NewDNS("ns1.nl-ams.k.ripe.net")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dnsAddr, err := d.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting the DNS site: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stopping the DNS site: %v", err)
		}
	})
	h := httptest.NewServer(responder.HTTP("x-served-by", "cache-ams-eham2230041-AMS", "AMS"))
	t.Cleanup(h.Close)
	return dnsAddr, h.URL
}

// noSecrets fails the test if out shows any of the tokens.
func noSecrets(t *testing.T, what, out string, tokens ...string) {
	t.Helper()
	for i, tok := range tokens {
		if tok != "" && strings.Contains(out, tok) {
			t.Errorf("%s shows token %d of %d", what, i+1, len(tokens))
		}
	}
}
