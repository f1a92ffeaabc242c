package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// TestIngestAdmin: the admin token uploads records under their own probe
// and place (imports); a probe token still stamps its own.
func TestIngestAdmin(t *testing.T) {
	h := newHarness(t, nil)
	_, tok := h.register("ams-1", nil, nil, nil)
	now := time.Now().Add(-time.Minute)
	imported := records(2, now)
	lat, lon := -33.9, 18.4
	imported[0].Probe, imported[0].Lat, imported[0].Lon, imported[0].Country, imported[0].ASN = "atlas-6001", &lat, &lon, "ZA", 64500
	imported[1].Probe = "atlas-6002"
	resp, body := h.do("POST", "/api/v1/results", h.admin, gz(ndjson(imported)), "Content-Encoding", "gzip")
	h.want(http.StatusOK, resp, body)
	if got := ingestResp(t, body); got != (api.IngestResponse{Accepted: 2, Stored: 2}) {
		t.Errorf("admin upload: %+v", got)
	}
	err := h.st.Scan(t.Context(), store.Query{}, func(r *result.Record) error {
		want := imported[0]
		if r.ID == imported[1].ID {
			want = imported[1]
		}
		if r.Probe != want.Probe || r.Country != want.Country || r.ASN != want.ASN ||
			(r.Lat == nil) != (want.Lat == nil) || (r.Lat != nil && (*r.Lat != *want.Lat || *r.Lon != *want.Lon)) {
			t.Errorf("stored %+v, want probe %q and place as sent", r, want.Probe)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, probe, want string
	}{
		{"empty probe", "", "record 0 (id"},
		{"long probe", strings.Repeat("p", result.MaxProbeBytes+1), "probe: 129 bytes, more than 128"},
	} {
		rs := records(1, now)
		rs[0].Probe = c.probe
		resp, body := h.do("POST", "/api/v1/results", h.admin, rs)
		h.want(http.StatusBadRequest, resp, body)
		if !strings.Contains(errMsg(body), c.want) || !strings.Contains(errMsg(body), "probe:") {
			t.Errorf("%s: %s", c.name, body)
		}
	}

	// A probe's upload is stamped with the probe whatever it says.
	rs := records(1, now)
	rs[0].Probe = "atlas-6001"
	resp, body = h.do("POST", "/api/v1/results", tok, rs)
	h.want(http.StatusOK, resp, body)
	var got []result.Record
	_ = h.st.Scan(t.Context(), store.Query{}, func(r *result.Record) error {
		if r.ID == rs[0].ID {
			got = append(got, *r)
		}
		return nil
	})
	if len(got) != 1 || got[0].Probe == "atlas-6001" {
		t.Errorf("probe upload stored as %+v", got)
	}
	if n := h.count(); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
}

// TestIngestConcurrent: uploads racing each other through group commit,
// some with the same ids, store every record once, and the answers add up.
func TestIngestConcurrent(t *testing.T) {
	h := newHarness(t, nil)
	_, tok := h.register("ams-1", nil, nil, nil)
	const senders, uploads, size = 4, 5, 30
	now := time.Now().Add(-time.Minute)
	shared := records(size, now) // every sender sends this one too
	var (
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		stored, duplicate   int
		accepted, wantTotal = 0, senders*uploads*size + size
	)
	for range senders {
		wg.Go(func() {
			for i := range uploads + 1 {
				rs := shared
				if i < uploads {
					rs = records(size, now)
				}
				resp, body := h.do("POST", "/api/v1/results", tok, gz(ndjson(rs)), "Content-Encoding", "gzip")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d: %s", resp.StatusCode, body)
					return
				}
				got := ingestResp(t, body)
				mu.Lock()
				stored, duplicate, accepted = stored+got.Stored, duplicate+got.Duplicate, accepted+got.Accepted
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stored != wantTotal || duplicate != (senders-1)*size || accepted != senders*(uploads+1)*size {
		t.Errorf("stored %d, duplicate %d, accepted %d; want %d, %d, %d",
			stored, duplicate, accepted, wantTotal, (senders-1)*size, senders*(uploads+1)*size)
	}
	if n := h.count(); n != wantTotal {
		t.Errorf("%d records in the store, want %d", n, wantTotal)
	}
}

// TestCommitterCancelled: an upload whose client left before its commit
// is not stored, its probe not touched, and it does not fail the others of
// its group, whose touches the leader has written when it returns.
func TestCommitterCancelled(t *testing.T) {
	h := newHarness(t, nil)
	liveProbe, _ := h.register("ams-1", nil, nil, nil)
	goneProbe, _ := h.register("ams-2", nil, nil, nil)
	c := newCommitter(h.st, slog.New(slog.NewTextHandler(h.logs, nil)))
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	now := time.Now()
	live, left := records(2, now), records(3, now)
	queued := &upload{ctx: gone, rs: left, touch: &store.Touch{ID: goneProbe, Seen: now}}
	c.q = []*upload{queued}
	n, err := c.append(t.Context(), live, &store.Touch{ID: liveProbe, Seen: now, Addr: "192.0.2.1"})
	if err != nil || n != 2 {
		t.Fatalf("live upload: %d, %v", n, err)
	}
	if !queued.done || !errors.Is(queued.err, context.Canceled) {
		t.Errorf("cancelled upload: done %v, err %v", queued.done, queued.err)
	}
	if n := h.count(); n != 2 {
		t.Errorf("%d stored, want 2", n)
	}
	for id, want := range map[string]bool{liveProbe: true, goneProbe: false} {
		p, err := h.st.Probe(t.Context(), id)
		if err != nil || (p.LastSeen != nil) != want {
			t.Errorf("probe %s: last seen %v, %v; want touched %v", id, p.LastSeen, err, want)
		}
	}
}
