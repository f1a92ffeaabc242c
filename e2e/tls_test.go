package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/internal/testutil/testpki"
	"github.com/catchmap/catchmap/internal/tlsfiles"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// TLS to the aggregator, with certificates of a private CA: an agent given
// the CA with --ca-file uploads over HTTPS, one without it is told to pass
// it; with --tls-client-ca, serve refuses at the handshake a client without
// a certificate and one with another CA's, and still wants the token from
// the right one; an agent with --cert-file and --key-file uploads, one
// without is told to pass them. TLS does not depend on the store: SQLite
// only.
func TestTLSToTheAggregator(t *testing.T) {
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "catchmap"), testpki.NewCA(t, "other")
	caFile := ca.WriteCert(t, dir)
	serverCert, serverKey := ca.Server(t).Write(t, dir, "server")
	probePair := ca.Client(t, "tls-probe")
	clientCert, clientKey := probePair.Write(t, dir, "client")
	foreign := other.Client(t, "tls-probe")

	// Probes and plan first, over plain HTTP, with the helpers of the other
	// tests; then the same database serves HTTPS.
	agg := newAggregator(t, sqliteStore, "plan_refresh: 1s\n")
	agg.start()
	dnsAddr, _ := sites(t)
	agg.putPlan(api.Target{Spec: spec.Spec{Target: dnsAddr, Method: result.MethodDNS, Preset: "k-root"}, Name: "k-root", Interval: spec.Duration(time.Second)})
	pc := agg.register("tls-probe", 52.37, 4.90)
	agg.p.stop(t)

	agg.url = "https://" + agg.addr
	agg.args = []string{"--tls-cert", serverCert, "--tls-key", serverKey}
	agg.client = tlsClient(tlsfiles.Client(ca.Pool(), nil))
	agg.start()

	trusting := startAgent(t, "trusting", agg.url, pc.Token, "--ca-file", caFile)
	waitUploaded(t, trusting)
	doubting := startAgent(t, "doubting", agg.url, pc.Token)
	waitLog(t, doubting.p, "pass that CA's certificate with --ca-file")
	if n := doubting.mustScrape(t)[mUploaded]; n != 0 {
		t.Errorf("the agent without --ca-file uploaded %v records", n)
	}
	trusting.p.stop(t)
	doubting.p.stop(t)
	agg.p.stop(t)

	agg.args = append(agg.args, "--tls-client-ca", caFile)
	right := probePair.TLS(t)
	agg.client = tlsClient(tlsfiles.Client(ca.Pool(), &right))
	agg.start()

	wrong := foreign.TLS(t)
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		server string // what the aggregator logs of the handshake it refused
	}{
		{"no client certificate", nil, "client didn't provide a certificate"},
		{"a certificate of another CA", &wrong, "certificate signed by unknown authority"},
	} {
		code, err := get(tlsClient(tlsfiles.Client(ca.Pool(), c.cert)), agg.url+api.Prefix+"/plan", pc.Token)
		if err == nil {
			t.Errorf("%s: answered %d, want a refused handshake", c.name, code)
		}
		waitLog(t, agg.p, c.server)
	}
	if code, err := get(agg.client, agg.url+api.Prefix+"/plan", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("the right certificate without a token: %d, %v; want 401", code, err)
	}
	if code, err := get(agg.client, agg.url+api.Prefix+"/plan", pc.Token); err != nil || code != http.StatusOK {
		t.Errorf("the right certificate with the token: %d, %v; want 200", code, err)
	}

	// The admin and read commands take the same files as the agent.
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(catchmapBin, args...)
		cmd.Env = append(os.Environ(), "CATCHMAP_ADMIN_TOKEN="+adminToken)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	files := []string{"--aggregator", agg.url, "--ca-file", caFile, "--cert-file", clientCert, "--key-file", clientKey}
	if out, err := cli(append([]string{"probes", "list"}, files...)...); err != nil || !strings.Contains(out, "tls-probe") {
		t.Errorf("probes list with the client certificate: %v\n%s", err, out)
	}
	if out, err := cli(append([]string{"targets", "get"}, files[:4]...)...); err == nil {
		t.Errorf("targets get without a client certificate worked:\n%s", out)
	}
	if out, err := cli(append([]string{"map", "--target", "k-root", "--format", "json", "--token", adminToken}, files...)...); err != nil || !strings.Contains(out, `"target": "k-root"`) {
		t.Errorf("map with the client certificate: %v\n%s", err, out)
	}
	if out, err := cli(append([]string{"probes", "list", "--cert-file", clientCert}, files[:4]...)...); err == nil || !strings.Contains(out, "--cert-file without --key-file") {
		t.Errorf("a certificate without its key: %v\n%s", err, out)
	}

	anonymous := startAgent(t, "anonymous", agg.url, pc.Token, "--ca-file", caFile)
	waitLog(t, anonymous.p, "pass one its CA signs with --cert-file and --key-file")
	certified := startAgent(t, "certified", agg.url, pc.Token, "--ca-file", caFile, "--cert-file", clientCert, "--key-file", clientKey)
	waitUploaded(t, certified)
	if n := anonymous.mustScrape(t)[mUploaded]; n != 0 {
		t.Errorf("the agent without a client certificate uploaded %v records", n)
	}
	anonymous.p.stop(t)
	certified.p.stop(t)
	agg.p.stop(t)
	for _, p := range []*proc{agg.p, trusting.p, doubting.p, anonymous.p, certified.p} {
		noSecrets(t, p.name+"'s log", p.out.String(), pc.Token, adminToken)
		if strings.Contains(p.out.String(), "PRIVATE KEY") {
			t.Errorf("%s's log shows a private key", p.name)
		}
	}
}

func tlsClient(c *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: startTimeout}
}

// get GETs u with tok (none when empty) and returns the status, or the
// error of a request that got no answer.
func get(hc *http.Client, u, tok string) (int, error) {
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitUploaded waits until the aggregator has acknowledged records of ag.
func waitUploaded(t *testing.T, ag *agent) {
	t.Helper()
	testutil.WaitForNil(t, time.Minute, "agent "+ag.name+" uploading", func() error {
		if ag.p.exited() {
			t.Fatalf("agent %s exited: %v", ag.name, ag.p.err)
		}
		m, err := ag.scrape()
		if err != nil {
			return err
		}
		if m[mUploaded] < 1 {
			return fmt.Errorf("%v uploaded, %v upload errors", m[mUploaded], m[mUploadErrors])
		}
		return nil
	})
}

// waitLog waits until p's output says want.
func waitLog(t *testing.T, p *proc, want string) {
	t.Helper()
	testutil.WaitFor(t, time.Minute, p.name+"'s log saying "+strconv.Quote(want), func() bool {
		return strings.Contains(p.out.String(), want)
	})
}
