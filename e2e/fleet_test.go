package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Three agents measure a DNS and an HTTP target every second; the
// aggregator stops (SIGTERM) while they measure on, and restarts on the same
// database and port. Every result any agent made must then be stored, once.
func TestFleetLosesNothingAcrossAggregatorRestart(t *testing.T) {
	eachStore(t, testFleetLosesNothingAcrossAggregatorRestart)
}

func testFleetLosesNothingAcrossAggregatorRestart(t *testing.T, s storeKind) {
	since := time.Now().Add(-time.Minute) // the query window: this host's clock is the agents' too
	// Agents fetch the plan every second, so that emptying it stops them
	// measuring quickly and their counts can be compared at rest.
	agg := newAggregator(t, s, "plan_refresh: 1s\n")
	t.Logf("aggregator healthy in %s", agg.start())
	dnsAddr, httpURL := sites(t)
	agg.putPlan(
		api.Target{Spec: spec.Spec{Target: dnsAddr, Method: result.MethodDNS, Preset: "k-root"}, Name: "k-root", Interval: spec.Duration(time.Second)},
		api.Target{Spec: spec.Spec{Target: httpURL, Method: result.MethodHTTP, Preset: "fastly"}, Name: "fastly", Interval: spec.Duration(time.Second)},
	)
	// Records carry the plan entry's name, which maps and queries select by.
	wantSite := map[string]string{"k-root": "nl-ams", "fastly": "ams"}

	places := []struct {
		name     string
		lat, lon float64
	}{{"ams-1", 52.37, 4.90}, {"fra-1", 50.11, 8.68}, {"nyc-1", 40.71, -74.01}}
	agents := map[string]*agent{} // by probe id, as records name them
	var restartedID string        // the agent that also restarts during the outage
	for _, pl := range places {
		pc := agg.register(pl.name, pl.lat, pl.lon)
		agents[pc.ID] = startAgent(t, pl.name, agg.url, pc.Token)
		restartedID = pc.ID
	}

	// 1. Results arrive from every agent, for both targets.
	took := testutil.WaitForNil(t, time.Minute, "results from every agent for both targets", func() error {
		rs, err := agg.results(since)
		if err != nil {
			return err
		}
		seen := map[[2]string]bool{}
		for _, r := range rs {
			seen[[2]string{r.Probe, r.Target}] = true
		}
		for id, ag := range agents {
			for target := range wantSite {
				if !seen[[2]string{id, target}] {
					return fmt.Errorf("none yet from %s for %s (%d records in all)", ag.name, target, len(rs))
				}
			}
		}
		return nil
	})
	t.Logf("first results from all 3 agents for both targets after %s", took)

	// 2. The aggregator goes away; the agents measure on into their spools.
	agg.p.stop(t)
	down := time.Now()
	spooledAtStop := map[string]float64{}
	for id, ag := range agents {
		spooledAtStop[id] = ag.mustScrape(t)[mSpooled]
	}
	took = testutil.WaitForNil(t, time.Minute, "every agent spooling while the aggregator is down", func() error {
		for id, ag := range agents {
			m, err := ag.scrape()
			if err != nil {
				return err
			}
			// Three more rounds of both targets: a few intervals.
			if m[mSpooled] < spooledAtStop[id]+6 {
				return fmt.Errorf("agent %s has %v spooled", ag.name, m[mSpooled])
			}
		}
		return nil
	})
	t.Logf("aggregator down; every agent spooled 6+ more results in %s", took)

	// One agent restarts meanwhile: its spool and its cached plan outlive
	// the process, so it measures on without the aggregator.
	re := agents[restartedID]
	before := re.mustScrape(t)
	re.p.stop(t)
	re.start(t)
	if m := re.mustScrape(t); m[mSpooled] < before[mSpooled] {
		t.Errorf("agent %s restarted with %v spooled, had %v before", re.name, m[mSpooled], before[mSpooled])
	}
	took = testutil.WaitForNil(t, time.Minute, "the restarted agent measuring its cached plan", func() error {
		m, err := re.scrape()
		if err != nil {
			return err
		}
		if m[mResults] < 2 {
			return fmt.Errorf("%v results since its restart", m[mResults])
		}
		return nil
	})
	t.Logf("agent %s restarted during the outage and measured its cached plan within %s", re.name, took)

	// 3. The aggregator comes back on the same database and port.
	t.Logf("aggregator healthy again in %s", agg.start())
	up := time.Now()

	// 4. Stop the measuring (an empty plan) and let the spools drain, so
	// that the counters are final.
	agg.putPlan()
	final := map[string]map[string]float64{}
	took = testutil.WaitForNil(t, 2*time.Minute, "every agent idle with an empty spool", func() error {
		for id, ag := range agents {
			m, err := ag.scrape()
			if err != nil {
				return err
			}
			if m["catchmap_probe_plan_targets"] != 0 || m[mSpooled] != 0 {
				return fmt.Errorf("agent %s: %v plan targets, %v spooled", ag.name, m["catchmap_probe_plan_targets"], m[mSpooled])
			}
			if prev, ok := final[id]; !ok || prev[mResults] != m[mResults] {
				final[id] = m // one more look: still nothing new?
				return fmt.Errorf("agent %s still counting results", ag.name)
			}
		}
		return nil
	})
	t.Logf("spools drained and agents idle %s after the restart", took)
	for _, ag := range agents {
		ag.p.stop(t)
	}

	// 5. Every result made is stored exactly once.
	rs, err := agg.results(since)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	byProbe := map[string]int{}
	during := map[string]int{} // measured while the aggregator was down
	for _, r := range rs {
		ids[r.ID]++
		byProbe[r.Probe]++
		if r.Time.After(down) && r.Time.Before(up) {
			during[r.Probe]++
		}
		if want, ok := wantSite[r.Target]; !ok {
			t.Errorf("record %s of unknown target %q", r.ID, r.Target)
		} else if !r.OK() || r.Site != want {
			t.Errorf("record %s of %s: site %q, error %q (%s), want site %q", r.ID, r.Target, r.Site, r.Error, r.ErrorKind, want)
		}
		if r.Lat == nil || r.Lon == nil {
			t.Errorf("record %s of probe %s has no place, though the probe was registered with one", r.ID, r.Probe)
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("record %s stored %d times", id, n)
		}
	}
	var made, slack float64
	for id, ag := range agents {
		m := final[id]
		// The restarted agent's first run counted a little more than seen
		// last: a measurement in flight at its stop (one per target at
		// most) finished and was spooled.
		first, inFlight := 0.0, 0.0
		if id == restartedID {
			first, inFlight = before[mResults], float64(len(wantSite))
		}
		lo := first + m[mResults]
		made += lo
		slack += inFlight
		if got := float64(byProbe[id]); got < lo || got > lo+inFlight {
			t.Errorf("agent %s made %v results (%v in an earlier run, up to %v more in flight at its stop), the aggregator has %v",
				ag.name, lo, first, inFlight, got)
		}
		if during[id] == 0 {
			t.Errorf("agent %s: no stored result measured while the aggregator was down", ag.name)
		}
		t.Logf("agent %s: %v results made, %v stored, %d of them measured during the %s outage, %v upload errors",
			ag.name, lo, byProbe[id], during[id], up.Sub(down).Round(time.Millisecond), m[mUploadErrors])
	}
	if n := float64(len(rs)); n < made || n > made+slack {
		t.Errorf("%v records stored, the agents made %v (up to %v more)", n, made, slack)
	}

	// 6. The map of the DNS target, by the plan entry's name.
	q := url.Values{"target": {"k-root"}, "from": {since.UTC().Format(time.RFC3339)}, "to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
	code, body := call(t, http.MethodGet, agg.url+api.Prefix+"/catchment?"+q.Encode(), "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/catchment: %d %s", code, body)
	}
	var c struct {
		Probes int `json:"probes"`
		Sites  []struct {
			Site   string `json:"site"`
			Probes int    `json:"probes"`
		} `json:"sites"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("catchment answer %s: %v", body, err)
	}
	if c.Probes != 3 || len(c.Sites) != 1 || c.Sites[0].Site != "nl-ams" || c.Sites[0].Probes != 3 {
		t.Errorf("catchment of k-root: %s; want 3 probes, all served by nl-ams", body)
	}
}
