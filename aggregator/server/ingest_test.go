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

// TestIngestContract: every field is bounded at ingest, and a refusal
// names the record and its field (issue: a 15 MB identity was stored,
// rtt_ms 1e308 broke every map, year 1 was taken, invalid UTF-8 became
// U+FFFD and a bad time said only "parsing time").
func TestIngestContract(t *testing.T) {
	h := newHarness(t, nil)
	_, tok := h.register("ams-1", nil, nil, nil)
	now := time.Now()
	with := func(f func(*result.Record)) []result.Record {
		rs := records(2, now)
		f(&rs[1])
		return rs
	}
	nsid := func(s string) func(*result.Record) {
		return func(r *result.Record) { r.DNS.NSID = s }
	}
	for _, c := range []struct {
		name string
		body any
		hdr  []string
		code int
		want string
	}{
		{"identity", with(func(r *result.Record) { r.Identity = strings.Repeat("i", 4097) }), nil, 400, "record 1 (id"},
		{"identity field", with(func(r *result.Record) { r.Identity = strings.Repeat("i", 4097) }), nil, 400, "identity: 4097 bytes, more than 4096"},
		{"site", with(func(r *result.Record) { r.Site = strings.Repeat("s", 65) }), nil, 400, "site: 65 bytes, more than 64"},
		{"target", with(func(r *result.Record) { r.Target = strings.Repeat("t", 1025) }), nil, 400, "target: 1025 bytes, more than 1024"},
		{"error", with(func(r *result.Record) { r.Error = strings.Repeat("e", 1025) }), nil, 400, "error: 1025 bytes, more than 1024"},
		{"nsid", with(nsid(strings.Repeat("n", 4097))), nil, 400, "dns.nsid: 4097 bytes"},
		{"huge rtt", with(func(r *result.Record) { r.RTTMs = 1e308 }), nil, 400, "rtt_ms: 1e+308: must be a number from 0 to 600000"},
		{"rtt above the maximum", with(func(r *result.Record) { r.RTTMs = 600_000.5 }), nil, 400, "rtt_ms: 600000.5"},
		{"loss", with(func(r *result.Record) { r.Ping = &result.Ping{Sent: 3, Loss: 1.5} }), nil, 400, "ping.loss: 1.5: a share, from 0 to 1"},
		{"phase", with(func(r *result.Record) { r.HTTP = &result.HTTP{Status: 200, TotalMs: -2} }), nil, 400, "http.total_ms: -2"},
		{"status", with(func(r *result.Record) { r.HTTP = &result.HTTP{Status: 1000} }), nil, 400, "http.status: 1000"},
		{"year 1", with(func(r *result.Record) { r.Time = time.Date(1, 6, 1, 0, 0, 0, 0, time.UTC) }), nil, 400, "time: 0001-06-01T00:00:00Z is before 2000-01-01"},
		{"bad time", `{"id":"a","time":"yesterday","target":"t","method":"dns"}`, nil, 400, `record 0: time: "yesterday" is not an RFC 3339 time`},
		{"bad time, slow path", `{"id":"a\u0062","time":"noon","target":"t","method":"dns"}`, nil, 400, `record 0: time: "noon" is not an RFC 3339 time`},
		{"invalid UTF-8", "{\"id\":\"a\xff\",\"time\":\"2026-01-01T00:00:00Z\",\"target\":\"t\",\"method\":\"dns\"}", nil, 400, "record 0: id: not valid UTF-8"},
		{"invalid UTF-8, slow path", "[{\"id\":\"b\"},{\"id\":\"\\u0061\",\"site\":\"a\xff\"}]", nil, 400, "record 1: site: not valid UTF-8"},
		{"content type", records(1, now), []string{"Content-Type", "text/plain"}, 415, `Content-Type "text/plain"`},
		{"form", records(1, now), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "send application/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do("POST", "/api/v1/results", tok, c.body, c.hdr...)
			h.want(c.code, resp, body)
			if !strings.Contains(errMsg(body), c.want) {
				t.Errorf("answer %s does not contain %q", body, c.want)
			}
			if n := h.count(); n != 0 {
				t.Errorf("%d records stored from a refused upload", n)
			}
		})
	}
	for _, ct := range []string{"application/json", "application/x-ndjson", "application/json; charset=utf-8"} {
		resp, body := h.do("POST", "/api/v1/results", tok, records(1, now), "Content-Type", ct)
		h.want(http.StatusOK, resp, body)
	}
}
