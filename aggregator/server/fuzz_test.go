package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/api"
)

// FuzzIngest feeds arbitrary bodies to the upload reader, plain and as
// gzip: it must never panic, and whatever it accepts must be valid records
// with distinct ids.
func FuzzIngest(f *testing.F) {
	f.Add([]byte(`[{"id":"a","time":"2026-01-01T00:00:00Z","target":"k","method":"dns","af":4}]`), false)
	f.Add([]byte("{\"id\":\"a\",\"time\":\"2026-01-01T00:00:00Z\",\"target\":\"k\",\"method\":\"icmp\"}\n{\"id\":\"b\",\"time\":\"2026-01-01T00:00:00Z\",\"target\":\"k\",\"method\":\"tcp\",\"lat\":1,\"lon\":2}\n"), false)
	f.Add([]byte(`[{"id":"a","time":"2026-01-01T00:00:00Z","target":"k","method":"dns"},{"id":"a","time":"2026-01-01T00:00:00Z","target":"k","method":"dns"}]`), true)
	f.Add([]byte(`[] x`), false)
	f.Add([]byte(`{"id":1}`), false)
	f.Add([]byte{}, true)

	cfg := config.Default()
	cfg.MaxBodyBytes = 4 << 10
	cfg.MaxBatch = 20
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil, WithConfig(cfg), WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, gzipped bool) {
		req := httptest.NewRequest("POST", "/api/v1/results", bytes.NewReader(body))
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		rs, dups, err := s.readBatch(httptest.NewRecorder(), req)
		if err != nil {
			if _, ok := err.(*batchError); !ok {
				t.Fatalf("error %v (%T) is not a batchError", err, err)
			}
			return
		}
		if len(rs) == 0 || len(rs)+dups > cfg.MaxBatch {
			t.Fatalf("accepted %d records (+%d repeats)", len(rs), dups)
		}
		ids := map[string]bool{}
		for i := range rs {
			if err := rs[i].Validate(now, cfg.MaxFuture.D()); err != nil {
				t.Fatalf("accepted an invalid record: %v", err)
			}
			if ids[rs[i].ID] {
				t.Fatalf("id %q twice", rs[i].ID)
			}
			ids[rs[i].ID] = true
		}
	})
}

// FuzzTargets feeds arbitrary PUT /api/v1/targets bodies to the plan
// validation: it must never panic, and an accepted plan must have unique
// names, intervals and canonical prefixes.
func FuzzTargets(f *testing.F) {
	f.Add([]byte(`{"targets":[{"target":"k.root-servers.net","preset":"root"},{"target":"https://example.com/","method":"http","name":"web","probes":["role=edge"]}]}`))
	f.Add([]byte(`{"targets":[{"target":"192.0.2.1:53","site_regex":"^(\\w+)$","prefixes":["192.0.2.9/24"],"interval":"5s"}]}`))
	f.Add([]byte(`{"targets":[{"target":"[2001:db8::1]:53","af":6},{"target":"a","method":"icmp","count":3}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var p api.Plan
		if json.Unmarshal(body, &p) != nil {
			return
		}
		if validatePlan(&p) != nil {
			return
		}
		names := map[string]bool{}
		for _, e := range p.Targets {
			if names[e.Name] || e.Name == "" || e.Interval.D() < minInterval {
				t.Fatalf("accepted entry %+v", e)
			}
			names[e.Name] = true
			for _, s := range e.Prefixes {
				if pfx, err := netip.ParsePrefix(s); err != nil || pfx.Masked().String() != s {
					t.Fatalf("accepted prefix %q", s)
				}
			}
		}
	})
}
