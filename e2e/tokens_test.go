package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Tokens across processes: an unknown token gets 401 on every probe route,
// a revoked probe's agent gets 401 and keeps its results spooled, and
// neither the aggregator's log nor the agents' ever shows a token.
func TestTokensAcrossProcesses(t *testing.T) { eachStore(t, testTokensAcrossProcesses) }

func testTokensAcrossProcesses(t *testing.T, s storeKind) {
	agg := newAggregator(t, s, "plan_refresh: 1s\n")
	agg.start()
	dnsAddr, _ := sites(t)
	agg.putPlan(api.Target{Spec: spec.Spec{Target: dnsAddr, Method: result.MethodDNS, Preset: "k-root"}, Name: "k-root", Interval: spec.Duration(time.Second)})
	a := agg.register("tok-a", 52.37, 4.90)
	b := agg.register("tok-b", 50.11, 8.68)
	unknown := "cm_" + strings.Repeat("u", 43) // shaped like a token, never issued

	// An unknown token, by hand: 401 with a message that does not echo it.
	rec := []result.Record{{ID: result.NewID(), Time: time.Now().UTC(), Target: dnsAddr, Method: result.MethodDNS}}
	for _, r := range []struct {
		method, path string
		body         any
	}{{http.MethodGet, "/plan", nil}, {http.MethodPost, "/results", rec}} {
		code, body := call(t, r.method, agg.url+api.Prefix+r.path, unknown, r.body)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), "unknown or revoked probe token") {
			t.Errorf("%s %s with an unknown token: %d %s, want 401 saying the token is unknown", r.method, r.path, code, body)
		}
		noSecrets(t, r.method+" "+r.path+"'s answer", string(body), unknown)
	}

	// An agent with an unknown token is refused the plan, and says so.
	stranger := startAgent(t, "stranger", agg.url, unknown)
	testutil.WaitForNil(t, time.Minute, "the stranger agent refused the plan", func() error {
		m, err := stranger.scrape()
		if err != nil {
			return err
		}
		if m[`catchmap_probe_plan_errors_total{kind="unauthorized"}`] < 1 {
			return fmt.Errorf("no refused plan fetch yet")
		}
		return nil
	})

	// A registered agent uploads, until its probe is revoked.
	agentA := startAgent(t, "tok-a", agg.url, a.Token)
	took := testutil.WaitForNil(t, time.Minute, "agent tok-a uploading", func() error {
		m, err := agentA.scrape()
		if err != nil {
			return err
		}
		if m[mUploaded] < 2 {
			return fmt.Errorf("%v uploaded", m[mUploaded])
		}
		return nil
	})
	t.Logf("agent tok-a uploaded its first results in %s", took)
	mustCall(t, http.MethodDelete, agg.url+api.Prefix+"/probes/"+a.ID, adminToken, nil, http.StatusNoContent, nil)
	revoked := time.Now()

	var spooledAtRefusal float64
	took = testutil.WaitForNil(t, time.Minute, "agent tok-a refused after the revocation", func() error {
		m, err := agentA.scrape()
		if err != nil {
			return err
		}
		if m[`catchmap_probe_upload_errors_total{kind="unauthorized"}`] < 1 {
			return fmt.Errorf("no refused upload yet (%v spooled)", m[mSpooled])
		}
		spooledAtRefusal = m[mSpooled]
		return nil
	})
	t.Logf("agent tok-a got its 401 %s after the revocation", took)
	testutil.WaitForNil(t, time.Minute, "agent tok-a spooling on after the 401", func() error {
		if agentA.p.exited() {
			t.Fatalf("agent tok-a exited after its 401: %v", agentA.p.err)
		}
		m, err := agentA.scrape()
		if err != nil {
			return err
		}
		if m[mSpooled] < spooledAtRefusal+3 {
			return fmt.Errorf("%v spooled, %v at the refusal", m[mSpooled], spooledAtRefusal)
		}
		return nil
	})
	if !strings.Contains(agentA.p.out.String(), "REFUSES THIS PROBE'S TOKEN") {
		t.Errorf("agent tok-a's log does not say that the aggregator refuses its token")
	}

	// The revoked token is refused by hand too; another probe's still works.
	if code, body := call(t, http.MethodGet, agg.url+api.Prefix+"/plan", a.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /plan with the revoked token: %d %s, want 401", code, body)
	}
	mustCall(t, http.MethodGet, agg.url+api.Prefix+"/plan", b.Token, nil, http.StatusOK, nil)

	// Nothing tok-a measured after its 401 reached the aggregator.
	rs, err := agg.results(revoked.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Probe == a.ID && r.Time.After(revoked.Add(5*time.Second)) {
			t.Errorf("record %s of the revoked probe, measured at %s, was stored", r.ID, r.Time)
		}
	}

	stranger.p.stop(t)
	agentA.p.stop(t)
	agg.p.stop(t)
	tokens := []string{adminToken, a.Token, b.Token, unknown}
	noSecrets(t, "the aggregator's log", agg.p.out.String(), tokens...)
	noSecrets(t, "agent tok-a's log", agentA.p.out.String(), tokens...)
	noSecrets(t, "the stranger agent's log", stranger.p.out.String(), tokens...)
	if !strings.Contains(agg.p.out.String(), "probe revoked") {
		t.Errorf("the aggregator's log does not record the revocation")
	}
}
