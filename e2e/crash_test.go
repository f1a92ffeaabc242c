package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// A 200 to an upload means the batch is durable: the aggregator killed
// with SIGKILL right after answering still has all of it when it comes back.
// Sending the batch again then stores nothing new.
func TestKill9KeepsAcknowledgedBatches(t *testing.T) { eachStore(t, testKill9KeepsAcknowledgedBatches) }

func testKill9KeepsAcknowledgedBatches(t *testing.T, s storeKind) {
	const rounds, batch = 3, 500
	agg := newAggregator(t, s, "")
	agg.start()
	pc := agg.register("crash-1", 48.85, 2.35)
	since := time.Now().Add(-time.Hour)

	var sent [][]result.Record
	for round := range rounds {
		now := time.Now().UTC()
		recs := make([]result.Record, batch)
		for i := range recs {
			// 192.0.2.1 (TEST-NET-1) is a string here, never dialled.
			recs[i] = result.Record{ID: result.NewID(), Time: now.Add(-time.Duration(i) * time.Millisecond),
				Probe: "crash-1", Target: "k.root-servers.net", Method: result.MethodDNS, AF: 4, Addr: "192.0.2.1",
				Identity: "ns1.nl-ams.k.ripe.net", Site: "nl-ams", RTTMs: 12.5}
		}
		var ir api.IngestResponse
		mustCall(t, http.MethodPost, agg.url+api.Prefix+"/results", pc.Token, recs, http.StatusOK, &ir)
		answered := time.Now()
		agg.p.kill()
		t.Logf("round %d: SIGKILL %s after the 200 (stored %d of %d)", round, time.Since(answered).Round(time.Microsecond), ir.Stored, len(recs))
		if ir.Stored != batch {
			t.Fatalf("round %d: the aggregator stored %d of %d new records", round, ir.Stored, batch)
		}
		sent = append(sent, recs)
		t.Logf("round %d: aggregator healthy again in %s", round, agg.start())
	}

	rs, err := agg.results(since)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, r := range rs {
		stored[r.ID]++
	}
	lost := 0
	for _, recs := range sent {
		for _, r := range recs {
			if stored[r.ID] != 1 {
				lost++
				if lost <= 5 {
					t.Errorf("record %s stored %d times after the kill, want once", r.ID, stored[r.ID])
				}
			}
		}
	}
	if lost > 0 || len(rs) != rounds*batch {
		t.Fatalf("%d of %d acknowledged records not stored exactly once; %d stored in all", lost, rounds*batch, len(rs))
	}

	// The agent resends a batch whose 200 it never saw: nothing is stored twice.
	var ir api.IngestResponse
	mustCall(t, http.MethodPost, agg.url+api.Prefix+"/results", pc.Token, sent[0], http.StatusOK, &ir)
	if ir.Stored != 0 || ir.Duplicate != batch {
		t.Errorf("resent batch: stored %d, duplicate %d; want 0 and %d", ir.Stored, ir.Duplicate, batch)
	}
}
