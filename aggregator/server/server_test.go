package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/geo/geotest"
	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/internal/testutil/testpki"
	"github.com/catchmap/catchmap/internal/tlsfiles"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// harness is a server on a real SQLite store in a temporary directory,
// behind a real HTTP server on loopback.
type harness struct {
	t      *testing.T
	srv    *Server
	st     store.Store
	ts     *httptest.Server
	logs   *testutil.Buffer
	admin  token.Token
	secret []string // every token handed out: none may show in logs
}

func newHarness(t *testing.T, cfgFn func(*config.Config), opts ...Option) *harness {
	t.Helper()
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/catchmap.db", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHarnessOn(t, st, logs, cfgFn, opts...)
}

func newHarnessOn(t *testing.T, st store.Store, logs *testutil.Buffer, cfgFn func(*config.Config), opts ...Option) *harness {
	t.Helper()
	admin, err := token.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AdminToken = admin
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(log, prometheus.NewRegistry(), st, append([]Option{WithConfig(cfg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, st: st, logs: logs, admin: admin, secret: []string{admin.Reveal()}}
	h.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		h.ts.Close()
		out := logs.String()
		for _, s := range h.secret {
			if strings.Contains(out, s) {
				t.Errorf("a token shows in the log:\n%s", out)
			}
		}
	})
	return h
}

// do sends a request; body may be nil, a []byte or a string.
func (h *harness) do(method, path string, tok token.Token, body any, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if !tok.IsZero() {
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, s := range h.secret {
		if strings.Contains(string(b), s) && !strings.Contains(path, "/probes") {
			h.t.Errorf("%s %s: a token shows in the answer: %s", method, path, b)
		}
	}
	return resp, b
}

// want checks the status, and that errors are JSON api.Error.
func (h *harness) want(code int, resp *http.Response, body []byte) {
	h.t.Helper()
	if resp.StatusCode != code {
		h.t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, code, body)
	}
	if code >= 400 {
		var e api.Error
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			h.t.Errorf("error answer is not an api.Error: %s", body)
		}
	}
}

// errMsg is the message of an api.Error answer.
func errMsg(body []byte) string {
	var e api.Error
	_ = json.Unmarshal(body, &e)
	return e.Error
}

func (h *harness) register(name string, lat, lon *float64, labels map[string]string) (string, token.Token) {
	h.t.Helper()
	resp, body := h.do("POST", "/api/v1/probes", h.admin, api.ProbeRegistration{Name: name, Lat: lat, Lon: lon, Labels: labels})
	h.want(http.StatusCreated, resp, body)
	var c api.ProbeCreated
	if err := json.Unmarshal(body, &c); err != nil || c.ID == "" || c.Token == "" {
		h.t.Fatalf("registration answer %s: %v", body, err)
	}
	h.secret = append(h.secret, c.Token)
	return c.ID, token.Parse(c.Token)
}

func (h *harness) count() int {
	h.t.Helper()
	n := 0
	err := h.st.Scan(h.t.Context(), store.Query{}, func(*result.Record) error { n++; return nil })
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func records(n int, at time.Time) []result.Record {
	rs := make([]result.Record, n)
	for i := range rs {
		rs[i] = result.Record{ID: result.NewID(), Time: at.Add(time.Duration(i) * time.Millisecond).UTC(), Probe: "someone-else",
			Target: "k.root-servers.net", Method: result.MethodDNS, AF: 4, Addr: "192.0.2.1",
			Identity: "ns1.nl-ams.k.ripe.net", Site: "ams", RTTMs: 12.5,
			DNS: &result.DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", NSID: "x"}}
	}
	return rs
}

func ndjson(rs []result.Record) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range rs {
		_ = enc.Encode(&rs[i])
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func ingestResp(t *testing.T, body []byte) api.IngestResponse {
	t.Helper()
	var r api.IngestResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("ingest answer %s: %v", body, err)
	}
	return r
}

func TestProbesAdmin(t *testing.T) {
	h := newHarness(t, nil)
	lat, lon := 52.0, 4.0
	id, _ := h.register("ams-1", &lat, &lon, map[string]string{"role": "edge"})

	resp, body := h.do("GET", "/api/v1/probes", h.admin, nil)
	h.want(http.StatusOK, resp, body)
	var ps []api.Probe
	if err := json.Unmarshal(body, &ps); err != nil || len(ps) != 1 || ps[0].ID != id || ps[0].Name != "ams-1" || ps[0].Labels["role"] != "edge" {
		t.Fatalf("probes: %s (%v)", body, err)
	}

	// Only the admin sees where probes upload from; readers get the rest.
	wrong, _ := token.New()
	for _, tok := range []token.Token{{}, wrong} {
		resp, body = h.do("POST", "/api/v1/probes", tok, api.ProbeRegistration{Name: "x"})
		h.want(http.StatusUnauthorized, resp, body)
		resp, body = h.do("GET", "/api/v1/probes", tok, nil)
		h.want(http.StatusOK, resp, body)
		var open []api.Probe
		if err := json.Unmarshal(body, &open); err != nil || len(open) != 1 || open[0].Name != "ams-1" || open[0].Addr != "" {
			t.Fatalf("probes for a reader: %s (%v)", body, err)
		}
	}
	for _, bad := range []string{`{"name":""}`, `{"name":"a","lat":91,"lon":0}`, `{"name":"a","lat":1}`, `{"name":"a","labels":{"bad key":"v"}}`, `{"name":"a","nmae":"b"}`, `{`} {
		resp, body = h.do("POST", "/api/v1/probes", h.admin, bad)
		h.want(http.StatusBadRequest, resp, body)
	}

	resp, body = h.do("DELETE", "/api/v1/probes/"+id, h.admin, nil)
	h.want(http.StatusNoContent, resp, body)
	resp, body = h.do("DELETE", "/api/v1/probes/no-such-probe", h.admin, nil)
	h.want(http.StatusNotFound, resp, body)
}

func TestAdminOff(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.AdminToken = token.Token{} })
	resp, body := h.do("POST", "/api/v1/probes", h.admin, api.ProbeRegistration{Name: "x"})
	h.want(http.StatusUnauthorized, resp, body)
	if !strings.Contains(string(body), "admin API is off") {
		t.Errorf("answer does not say why: %s", body)
	}
}

func TestPlanByLabels(t *testing.T) {
	h := newHarness(t, nil)
	_, edge := h.register("edge-1", nil, nil, map[string]string{"role": "edge", "region": "us"})
	_, core := h.register("core-1", nil, nil, map[string]string{"role": "core"})

	plan := api.Plan{Targets: []api.Target{
		{Spec: specOf("k.root-servers.net", "dns")},
		{Spec: specOf("https://example.com/", "http"), Name: "web", Probes: []string{"role=edge"}},
		{Spec: specOf("192.0.2.53:53", "dns"), Probes: []string{"region=eu", "role=core"}, Prefixes: []string{"192.0.2.7/24"}},
	}}
	resp, body := h.do("PUT", "/api/v1/targets", h.admin, plan)
	h.want(http.StatusOK, resp, body)
	var stored api.Plan
	if err := json.Unmarshal(body, &stored); err != nil || stored.Version == "" || stored.Targets[2].Prefixes[0] != "192.0.2.0/24" ||
		stored.Targets[0].Name != "k.root-servers.net" || stored.Targets[0].Interval.D() != time.Minute {
		t.Fatalf("stored plan %s: %v", body, err)
	}

	names := func(tok token.Token) []string {
		resp, body := h.do("GET", "/api/v1/plan", tok, nil)
		h.want(http.StatusOK, resp, body)
		var p api.Plan
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Refresh.D() != time.Minute || p.Version == "" || resp.Header.Get("ETag") != `"`+p.Version+`"` {
			t.Errorf("plan refresh %s, version %q, etag %q", p.Refresh.D(), p.Version, resp.Header.Get("ETag"))
		}
		var ns []string
		for _, e := range p.Targets {
			ns = append(ns, e.Name)
		}
		return ns
	}
	if got := fmt.Sprint(names(edge)); got != "[k.root-servers.net web]" {
		t.Errorf("edge plan: %s", got)
	}
	if got := fmt.Sprint(names(core)); got != "[k.root-servers.net 192.0.2.53:53]" {
		t.Errorf("core plan: %s", got)
	}

	// Unchanged: 304.
	resp, _ = h.do("GET", "/api/v1/plan", edge, nil)
	resp2, _ := h.do("GET", "/api/v1/plan", edge, nil, "If-None-Match", resp.Header.Get("ETag"))
	if resp2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp2.StatusCode)
	}

	// Targets are readable without a token by default.
	resp, body = h.do("GET", "/api/v1/targets", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)

	// A bad entry is refused, naming it, and the plan stays.
	for _, c := range []struct{ body, want string }{
		{`{"targets":[{"target":"a.example"},{"target":"b.example","method":"smtp"}]}`, `targets[1] ("b.example"): bad measurement spec: unknown method "smtp"`},
		{`{"targets":[{"target":"a.example","prefixes":["nope"]}]}`, `targets[0] ("a.example"): prefixes: "nope" is not a prefix`},
		{`{"targets":[{"target":"a.example","probes":["edge"]}]}`, `targets[0] ("a.example"): probes: "edge"`},
		{`{"targets":[{"target":"a.example"},{"target":"a.example"}]}`, `targets[1] ("a.example"): name "a.example" is also the name of targets[0]`},
		{`{"targets":[{"target":"a.example","interval":"10ms"}]}`, `interval 10ms is shorter than 1s`},
		{`{"targets":[{"target":"a.example","colour":"red"}]}`, `unknown field "colour"`},
		{`{}`, `targets: missing`},
	} {
		resp, body = h.do("PUT", "/api/v1/targets", h.admin, c.body)
		h.want(http.StatusBadRequest, resp, body)
		if !strings.Contains(errMsg(body), c.want) {
			t.Errorf("PUT %s: answer %s does not contain %q", c.body, body, c.want)
		}
	}
	resp, body = h.do("GET", "/api/v1/targets", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	if err := json.Unmarshal(body, &stored); err != nil || len(stored.Targets) != 3 {
		t.Errorf("plan changed by a refused PUT: %s", body)
	}
}

func specOf(target, method string) spec.Spec {
	return spec.Spec{Target: target, Method: method}
}

func openGeo(t *testing.T, dir string) *geo.DB {
	t.Helper()
	city, asn := geotest.Write(t, dir, geotest.Loopback)
	db, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestIngest(t *testing.T) {
	h := newHarness(t, nil)
	id, tok := h.register("ams-1", nil, nil, nil)
	now := time.Now().Add(-time.Minute)

	arr := records(3, now)
	nd := records(4, now)
	gzArr := records(5, now)
	gzBody, _ := json.Marshal(gzArr)
	arrBody, _ := json.Marshal(arr)
	for _, c := range []struct {
		name string
		body []byte
		hdr  []string
		n    int
	}{
		{"array", append([]byte("\n  "), arrBody...), nil, 3},
		{"ndjson", ndjson(nd), nil, 4},
		{"gzip", gz(gzBody), []string{"Content-Encoding", "gzip"}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do("POST", "/api/v1/results", tok, c.body, c.hdr...)
			h.want(http.StatusOK, resp, body)
			if got := ingestResp(t, body); got != (api.IngestResponse{Accepted: c.n, Stored: c.n}) {
				t.Errorf("first upload: %+v", got)
			}
			// A retry of the same batch stores nothing twice.
			resp, body = h.do("POST", "/api/v1/results", tok, c.body, c.hdr...)
			h.want(http.StatusOK, resp, body)
			if got := ingestResp(t, body); got != (api.IngestResponse{Accepted: c.n, Duplicate: c.n}) {
				t.Errorf("re-sent upload: %+v", got)
			}
		})
	}
	if n := h.count(); n != 12 {
		t.Errorf("%d records stored, want 12", n)
	}
	// Every record is stored under the token's probe, whatever the body said.
	err := h.st.Scan(t.Context(), store.Query{}, func(r *result.Record) error {
		if r.Probe != id {
			t.Errorf("record %s stored under probe %q, want %q", r.ID, r.Probe, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Repeated ids inside one batch count as duplicates.
	dup := records(2, now)
	dup = append(dup, dup[0])
	resp, body := h.do("POST", "/api/v1/results", tok, dup)
	h.want(http.StatusOK, resp, body)
	if got := ingestResp(t, body); got != (api.IngestResponse{Accepted: 3, Stored: 2, Duplicate: 1}) {
		t.Errorf("batch with a repeated id: %+v", got)
	}

	// last_seen and addr are recorded.
	p, err := h.st.Probe(t.Context(), id)
	if err != nil || p.LastSeen == nil || p.Addr != "127.0.0.1" {
		t.Errorf("probe after upload: %+v, %v", p, err)
	}
}

func TestIngestRefused(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxBatch = 50
	})
	_, tok := h.register("ams-1", nil, nil, nil)
	now := time.Now()

	big, _ := json.Marshal(records(40, now))
	big = append(big[:len(big)-1], []byte(`,`+strings.Repeat(" ", 64<<10)+`]`)...)
	bomb := gz(bytes.Repeat([]byte(" "), 10<<20)) // 10 MiB of spaces, ~10 KiB compressed
	tooMany, _ := json.Marshal(records(51, now))
	future := records(2, now)
	future[1].Time = now.Add(time.Hour)
	method := records(2, now)
	method[0].Method = "smtp"
	noID := records(1, now)
	noID[0].ID = ""
	longID := records(1, now)
	longID[0].ID = strings.Repeat("x", 129)
	kind := records(1, now)
	kind[0].ErrorKind = "gremlins"
	af := records(1, now)
	af[0].AF = 5
	rtt := records(1, now)
	rtt[0].RTTMs = -1
	lat := records(1, now)
	bad := 100.0
	lat[0].Lat, lat[0].Lon = &bad, &bad
	noTime := records(1, now)
	noTime[0].Time = time.Time{}
	// with is two records, the second changed by f.
	with := func(f func(*result.Record)) []result.Record {
		rs := records(2, now)
		f(&rs[1])
		return rs
	}

	for _, c := range []struct {
		name string
		body any
		hdr  []string
		code int
		want string
	}{
		{"oversized", big, nil, 413, "body larger than max_body_bytes (65536 bytes"},
		{"gzip bomb", bomb, []string{"Content-Encoding", "gzip"}, 413, "also after gzip decoding"},
		{"too many records", tooMany, nil, 413, "more than max_batch (50) records"},
		{"broken json", `[{"id":"a","time":"2026-01-01T00:00:00Z"},{"id":`, nil, 400, "record 1: the body ends in the middle"},
		{"not json", `hello`, nil, 400, `body starts with 'h'`},
		{"empty", ` `, nil, 400, "empty body"},
		{"empty array", `[]`, nil, 400, "no records"},
		{"trailing", `[] []`, nil, 400, "data after the closing ]"},
		{"type error", `{"id":"a","af":"four"}`, nil, 400, "record 0: bad JSON"},
		{"not gzip", "plain", []string{"Content-Encoding", "gzip"}, 400, "not gzip"},
		{"brotli", "x", []string{"Content-Encoding", "br"}, 415, `Content-Encoding "br"`},
		{"future", future, nil, 400, "record 1 (id"},
		{"method", method, nil, 400, `method: unknown "smtp"`},
		{"no id", noID, nil, 400, "id: empty"},
		{"long id", longID, nil, 400, "id: 129 bytes"},
		{"error kind", kind, nil, 400, `error_kind: unknown "gremlins"`},
		{"af", af, nil, 400, "af: 5"},
		{"rtt", rtt, nil, 400, "rtt_ms: -1"},
		{"lat", lat, nil, 400, "lat: 100 out of range"},
		{"no time", noTime, nil, 400, "time: missing"},
		// Every field is bounded, and a refusal names the record and its
		// field (a 15 MB identity was stored, rtt_ms 1e308 broke every map,
		// year 1 was taken, invalid UTF-8 became U+FFFD and a bad time said
		// only "parsing time").
		{"identity", with(func(r *result.Record) { r.Identity = strings.Repeat("i", 4097) }), nil, 400, "record 1 (id"},
		{"identity field", with(func(r *result.Record) { r.Identity = strings.Repeat("i", 4097) }), nil, 400, "identity: 4097 bytes, more than 4096"},
		{"site", with(func(r *result.Record) { r.Site = strings.Repeat("s", 65) }), nil, 400, "site: 65 bytes, more than 64"},
		{"target", with(func(r *result.Record) { r.Target = strings.Repeat("t", 1025) }), nil, 400, "target: 1025 bytes, more than 1024"},
		{"error", with(func(r *result.Record) { r.Error = strings.Repeat("e", 1025) }), nil, 400, "error: 1025 bytes, more than 1024"},
		{"nsid", with(func(r *result.Record) { r.DNS.NSID = strings.Repeat("n", 4097) }), nil, 400, "dns.nsid: 4097 bytes"},
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
	if t.Failed() {
		return
	}
	resp, body := h.do("POST", "/api/v1/results", tok, future)
	if !strings.Contains(string(body), "in the future (more than max_future 5m0s): fix the probe's clock") {
		t.Errorf("future answer %d: %s", resp.StatusCode, body)
	}
}

func TestProbeTokens(t *testing.T) {
	h := newHarness(t, nil)
	id, tok := h.register("ams-1", nil, nil, nil)
	unknown, _ := token.New()
	rs := records(1, time.Now())
	for _, c := range []struct {
		name string
		tok  token.Token
		want string
	}{
		{"missing", token.Token{}, "needs a probe token"},
		{"unknown", unknown, "unknown or revoked probe token"},
		{"admin", h.admin, "unknown or revoked probe token"},
	} {
		resp, body := h.do("GET", "/api/v1/plan", c.tok, nil)
		h.want(http.StatusUnauthorized, resp, body)
		if !strings.Contains(errMsg(body), c.want) || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %s", c.name, body)
		}
		if c.tok == h.admin {
			continue // the admin token uploads as an import: TestIngestAdmin
		}
		resp, body = h.do("POST", "/api/v1/results", c.tok, rs)
		h.want(http.StatusUnauthorized, resp, body)
		if !strings.Contains(errMsg(body), c.want) || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %s", c.name, body)
		}
	}
	resp, body := h.do("POST", "/api/v1/results", tok, rs)
	h.want(http.StatusOK, resp, body)

	resp, body = h.do("DELETE", "/api/v1/probes/"+id, h.admin, nil)
	h.want(http.StatusNoContent, resp, body)
	resp, body = h.do("POST", "/api/v1/results", tok, records(1, time.Now()))
	h.want(http.StatusUnauthorized, resp, body)
	resp, body = h.do("GET", "/api/v1/plan", tok, nil)
	h.want(http.StatusUnauthorized, resp, body)
}

func TestReadToken(t *testing.T) {
	read, _ := token.New()
	h := newHarness(t, func(c *config.Config) { c.ReadToken = read })
	h.secret = append(h.secret, read.Reveal())
	for _, path := range []string{"/api/v1/results", "/api/v1/targets", "/metrics", "/api/v1/annotations"} {
		resp, body := h.do("GET", path, token.Token{}, nil)
		h.want(http.StatusUnauthorized, resp, body)
		resp, body = h.do("GET", path, read, nil)
		h.want(http.StatusOK, resp, body)
		resp, body = h.do("GET", path, h.admin, nil)
		h.want(http.StatusOK, resp, body)
	}
	resp, body := h.do("GET", "/healthz", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	// The read token is not an admin token.
	resp, body = h.do("PUT", "/api/v1/targets", read, `{"targets":[]}`)
	h.want(http.StatusUnauthorized, resp, body)
}

func TestResultsQuery(t *testing.T) {
	h := newHarness(t, nil)
	id, tok := h.register("ams-1", nil, nil, nil)
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	rs := records(3, now)
	rs[2].Target = "other.example"
	rs[1].ErrorKind, rs[1].Error = result.KindTimeout, "i/o timeout"
	old := records(1, now.Add(-time.Hour))
	for _, b := range [][]result.Record{rs, old} {
		resp, body := h.do("POST", "/api/v1/results", tok, b)
		h.want(http.StatusOK, resp, body)
	}

	resp, body := h.do("GET", "/api/v1/results?target=k.root-servers.net", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	var got []result.Record
	if err := json.Unmarshal(body, &got); err != nil || len(got) != 2 || got[0].ID != rs[0].ID || got[1].ErrorKind != result.KindTimeout || got[0].Probe != id {
		t.Fatalf("json: %s (%v)", body, err)
	}

	from := now.Add(-2 * time.Hour).Format(time.RFC3339)
	resp, body = h.do("GET", "/api/v1/results?format=ndjson&from="+from, token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); len(lines) != 4 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("ndjson: %d lines (%s): %s", len(lines), resp.Header.Get("Content-Type"), body)
	}

	resp, body = h.do("GET", "/api/v1/results?format=csv&probe="+id+"&target=other.example", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(CSVColumns, ",") || rows[1][0] != rs[2].ID || rows[1][3] != "other.example" || rows[1][17] != "hostname.bind." {
		t.Errorf("csv: %q (%v)", rows, err)
	}

	resp, body = h.do("GET", "/api/v1/results?probe=nobody", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("empty json: %s", body)
	}
	resp, body = h.do("GET", "/api/v1/results?format=csv&probe=nobody", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	if strings.TrimSpace(string(body)) != strings.Join(CSVColumns, ",") {
		t.Errorf("empty csv: %s", body)
	}

	for q, want := range map[string]string{
		"from=yesterday": `bad from "yesterday"`,
		"to=2026-13-01":  `bad to "2026-13-01"`,
		"from=" + now.Format(time.RFC3339) + "&to=" + now.Add(-time.Hour).Format(time.RFC3339): "is not before to",
		"format=xml": `bad format "xml"`,
		"limit=-1":   `bad limit "-1"`,
	} {
		resp, body = h.do("GET", "/api/v1/results?"+q, token.Token{}, nil)
		h.want(http.StatusBadRequest, resp, body)
		if !strings.Contains(errMsg(body), want) {
			t.Errorf("%s: answer %s does not contain %q", q, body, want)
		}
	}
}

func TestAnnotationsAndEvents(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	resp, body := h.do("POST", "/api/v1/annotations", h.admin, api.Annotation{Time: now.Add(-time.Hour), Target: "k", Text: "moved AMS to FRA"})
	h.want(http.StatusCreated, resp, body)
	resp, body = h.do("POST", "/api/v1/annotations", h.admin, api.Annotation{Text: " "})
	h.want(http.StatusBadRequest, resp, body)
	resp, body = h.do("POST", "/api/v1/annotations", token.Token{}, api.Annotation{Text: "x"})
	h.want(http.StatusUnauthorized, resp, body)
	resp, body = h.do("GET", "/api/v1/annotations?target=k", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	var as []api.Annotation
	if err := json.Unmarshal(body, &as); err != nil || len(as) != 1 || as[0].Text != "moved AMS to FRA" || as[0].ID == "" {
		t.Errorf("annotations: %s (%v)", body, err)
	}

	plan := api.Plan{Targets: []api.Target{{Spec: specOf("192.0.2.53", "dns"), Name: "k", Prefixes: []string{"192.0.2.0/24"}}}}
	resp, body = h.do("PUT", "/api/v1/targets", h.admin, plan)
	h.want(http.StatusOK, resp, body)
	err := h.st.AddEvents(t.Context(), []api.Event{
		{Time: now.Add(-time.Hour), Prefix: "192.0.2.0/24", Kind: "withdraw", Source: "mrt"},
		{Time: now.Add(-time.Hour), Prefix: "198.51.100.0/24", Kind: "announce", Source: "mrt"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = h.do("GET", "/api/v1/events?target=k", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	var es []api.Event
	if err := json.Unmarshal(body, &es); err != nil || len(es) != 1 || es[0].Kind != "withdraw" {
		t.Errorf("events: %s (%v)", body, err)
	}
	resp, body = h.do("GET", "/api/v1/events", token.Token{}, nil)
	h.want(http.StatusBadRequest, resp, body)
	resp, body = h.do("GET", "/api/v1/events?target=nope", token.Token{}, nil)
	h.want(http.StatusNotFound, resp, body)
}

func TestGeoIP(t *testing.T) {
	dir := t.TempDir()
	db := openGeo(t, dir)
	h := newHarness(t, nil, WithGeo(db))
	roamingID, roaming := h.register("roaming", nil, nil, nil)
	lat, lon := -33.9, 18.4
	_, fixed := h.register("fixed", &lat, &lon, nil)
	now := time.Now().Add(-time.Minute)
	for _, tok := range []token.Token{roaming, fixed} {
		resp, body := h.do("POST", "/api/v1/results", tok, records(1, now))
		h.want(http.StatusOK, resp, body)
	}
	var got []result.Record
	err := h.st.Scan(t.Context(), store.Query{}, func(r *result.Record) error {
		c := *r // the store reuses r and what it points to
		if r.Lat != nil && r.Lon != nil {
			lat, lon := *r.Lat, *r.Lon
			c.Lat, c.Lon = &lat, &lon
		}
		got = append(got, c)
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d records, %v", len(got), err)
	}
	for _, r := range got {
		if r.Lat == nil || r.Lon == nil || r.Country != "NL" || r.ASN != 64500 {
			t.Fatalf("record not placed: %+v", r)
		}
	}
	if got[0].Probe != roamingID {
		got[0], got[1] = got[1], got[0]
	}
	if *got[0].Lat != 52.37 || *got[0].Lon != 4.89 || *got[1].Lat != -33.9 || *got[1].Lon != 18.4 {
		t.Errorf("GeoIP fill %v,%v; registered %v,%v", *got[0].Lat, *got[0].Lon, *got[1].Lat, *got[1].Lon)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	_, tok := h.register("ams-1", nil, nil, nil)
	rs := records(2, time.Now().Add(-time.Minute))
	h.do("POST", "/api/v1/results", tok, rs)
	h.do("POST", "/api/v1/results", tok, rs)
	h.do("POST", "/api/v1/results", tok, "nonsense")
	resp, body := h.do("GET", "/no/such/page", token.Token{}, nil)
	h.want(http.StatusNotFound, resp, body)
	resp, body = h.do("PATCH", "/api/v1/targets", h.admin, nil)
	h.want(http.StatusMethodNotAllowed, resp, body)
	if !strings.Contains(errMsg(body), "PUT") || resp.Header.Get("Allow") == "" {
		t.Errorf("405 answer %s, Allow %q", body, resp.Header.Get("Allow"))
	}
	resp, body = h.do("GET", "/metrics", token.Token{}, nil)
	h.want(http.StatusOK, resp, body)
	for _, want := range []string{
		`catchmap_ingest_results_total{outcome="stored"} 2`,
		`catchmap_ingest_results_total{outcome="duplicate"} 2`,
		`catchmap_ingest_results_total{outcome="rejected"} 0`,
		`catchmap_ingest_batches_total{code="200"} 2`,
		`catchmap_ingest_batches_total{code="400"} 1`,
		`catchmap_http_requests_total{code="200",route="POST /api/v1/results"} 2`,
		`catchmap_http_requests_total{code="201",route="POST /api/v1/probes"} 1`,
		`catchmap_http_requests_total{code="404",route="unmatched"} 1`,
		`catchmap_http_requests_total{code="405",route="unmatched"} 1`,
		`catchmap_http_request_duration_seconds_count{route="POST /api/v1/results"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// unavailableStore fails every append as a full disk or a lost database
// would; a real SQLite file cannot be made to fail on demand.
type unavailableStore struct{ store.Store }

func (unavailableStore) AppendBatches(context.Context, [][]result.Record) ([]int, error) {
	return nil, fmt.Errorf("disk full: %w", store.ErrUnavailable)
}

func TestStoreUnavailable(t *testing.T) {
	logs := &testutil.Buffer{}
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/catchmap.db", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarnessOn(t, unavailableStore{st}, logs, nil)
	_, tok := h.register("ams-1", nil, nil, nil)
	resp, body := h.do("POST", "/api/v1/results", tok, records(1, time.Now()))
	h.want(http.StatusServiceUnavailable, resp, body)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestRetention(t *testing.T) {
	now := time.Now()
	h := newHarness(t, func(c *config.Config) { c.RetentionDays = 7 }, WithClock(func() time.Time { return now }))
	_, tok := h.register("ams-1", nil, nil, nil)
	h.do("POST", "/api/v1/results", tok, append(records(2, now.Add(-8*24*time.Hour)), records(1, now.Add(-time.Hour))...))
	if n := h.count(); n != 3 {
		t.Fatalf("%d stored", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { h.srv.retain(ctx, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 10*time.Second, "retention of the old results", func() bool { return h.count() == 1 })
	if n := h.count(); n != 1 {
		t.Errorf("%d records after retention, want 1", n)
	}
}

// TestCompaction: the server rolls the store's minute summaries of a past
// hour up, so that a map of the hour reads one summary per probe.
func TestCompaction(t *testing.T) {
	now := time.Now()
	h := newHarness(t, nil, WithClock(func() time.Time { return now }))
	_, tok := h.register("ams-1", nil, nil, nil)
	hourAgo := now.Add(-2 * time.Hour).Truncate(time.Hour)
	var rs []result.Record
	for m := range 10 {
		rs = append(rs, records(3, hourAgo.Add(time.Duration(m)*time.Minute))...)
	}
	h.do("POST", "/api/v1/results", tok, rs)
	sm := h.st.(store.Summarizer)
	summaries := func() int {
		n := 0
		if err := sm.ScanSummaries(t.Context(), store.Query{From: hourAgo, To: hourAgo.Add(time.Hour)},
			func(*summary.Summary) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := summaries(); n != 10 {
		t.Fatalf("%d summaries of the hour before compaction, want one a minute (10)", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { h.srv.compact(ctx, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 10*time.Second, "compaction of the hour", func() bool { return summaries() == 1 })
	if n := summaries(); n != 1 {
		t.Errorf("%d summaries of the hour after compaction, want 1", n)
	}
}

func TestServe(t *testing.T) {
	h := newHarness(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	testutil.WaitForNil(t, 10*time.Second, "the server ready", func() error { return testutil.Healthy(http.DefaultClient, base) })
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestExtraRoutes(t *testing.T) {
	read, _ := token.New()
	extra := Route{Pattern: "GET /api/v1/catchment", Access: Read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})}
	h := newHarness(t, func(c *config.Config) { c.ReadToken = read }, WithRoutes(extra))
	resp, body := h.do("GET", "/api/v1/catchment", token.Token{}, nil)
	h.want(http.StatusUnauthorized, resp, body)
	resp, body = h.do("GET", "/api/v1/catchment", read, nil)
	h.want(http.StatusOK, resp, body)

	clash := Route{Pattern: "GET /api/v1/results", Access: Read, Handler: extra.Handler}
	_, err := New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), h.st, WithRoutes(clash))
	if err == nil || !strings.Contains(err.Error(), "server routes") {
		t.Errorf("clashing route: %v", err)
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "catchmap")
	cert, key := ca.Server(t).Write(t, dir, "server")
	h := newHarness(t, func(c *config.Config) { c.TLSCert, c.TLSKey = cert, key })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsfiles.Client(ca.Pool(), nil)}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}

// TestServeTLSFiles checks that Serve reads the TLS files before it
// answers, and that its errors name the setting of a wrong file.
func TestServeTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "catchmap")
	cert, key := ca.Server(t).Write(t, dir, "server")
	_, otherKey := ca.Server(t).Write(t, dir, "other")
	missing := dir + "/missing.pem"
	for _, c := range []struct {
		name                      string
		cert, key, clientCA, want string
	}{
		{"missing client CA", cert, key, missing, "tls_client_ca (--tls-client-ca): open " + missing + ": no such file or directory"},
		{"client CA not PEM", cert, key, key, `tls_client_ca (--tls-client-ca) ` + key + `: holds a "PRIVATE KEY" PEM block`},
		{"missing cert", missing, key, "", "tls_cert (--tls-cert): open " + missing},
		{"key of another cert", cert, otherKey, "", "tls_cert (--tls-cert) " + cert + " and tls_key (--tls-key) " + otherKey + ": tls: private key does not match public key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *config.Config) { cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = c.cert, c.key, c.clientCA })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := h.srv.Serve(t.Context(), ln); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Serve = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
