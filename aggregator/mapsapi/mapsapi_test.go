package mapsapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb/geojson"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
	"github.com/catchmap/catchmap/sites"
)

// t0 starts the fixture: window A is [t0, t0+15m), B is [t0+15m, t0+30m),
// and the handler's clock stands at t0+30m, so B is the default window.
var (
	t0  = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now = t0.Add(30 * time.Minute)
)

type fixtureProbe struct {
	id           string
	lat, lon     float64
	country      string
	asn          uint32
	siteA, siteB string // "" for a timeout
}

// Two Brussels probes move from ams to fra at t0+15m; the rest stay.
var fixtureProbes = []fixtureProbe{
	{"p-ams1", 52.37, 4.90, "NL", 1136, "ams", "ams"},
	{"p-ams2", 52.36, 4.88, "NL", 1136, "ams", "ams"},
	{"p-ams3", 52.38, 4.91, "NL", 3265, "ams", "ams"},
	{"p-bru1", 50.85, 4.35, "BE", 5432, "ams", "fra"},
	{"p-bru2", 50.84, 4.36, "BE", 5432, "ams", "fra"},
	{"p-sin1", 1.29, 103.85, "SG", 4773, "sin", "sin"},
	{"p-err", 52.37, 4.89, "NL", 1136, "", ""},
}

// fixture is thirty minutes of results for target k-root, one per probe
// and minute.
func fixture() []result.Record {
	var recs []result.Record
	for m := range 30 {
		for _, p := range fixtureProbes {
			site := p.siteA
			if m >= 15 {
				site = p.siteB
			}
			r := result.Record{
				ID: fmt.Sprintf("%s-%02d", p.id, m), Time: t0.Add(time.Duration(m) * time.Minute),
				Probe: p.id, Target: "k-root", Method: result.MethodDNS, AF: 4, Addr: "193.0.14.129",
				Country: p.country, ASN: p.asn, Lat: &p.lat, Lon: &p.lon,
			}
			if site == "" {
				r.Error, r.ErrorKind = "i/o timeout", result.KindTimeout
			} else {
				r.Identity, r.Site, r.RTTMs = site+"1.k.ripe.net", site, 5+float64(m%3)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func newStore(t testing.TB, recs []result.Record) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "catchmap.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if len(recs) > 0 {
		if _, err := st.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func newServer(t testing.TB, st store.Results) *httptest.Server {
	t.Helper()
	h := New(slog.New(slog.DiscardHandler), st, Sites(sites.Default()), WithClock(func() time.Time { return now }))
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and returns the response (body read) and its body.
func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func getOK(t *testing.T, srv *httptest.Server, path, contentType string) (*http.Response, []byte) {
	t.Helper()
	resp, body := get(t, srv, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if got := resp.Header.Get("Content-Type"); got != contentType {
		t.Errorf("GET %s: Content-Type %q, want %q", path, got, contentType)
	}
	return resp, body
}

func cellOf(t *testing.T, c *maps.Catchment, probe string) maps.CellStat {
	t.Helper()
	for _, p := range fixtureProbes {
		if p.id != probe {
			continue
		}
		cell, err := maps.Cell(p.lat, p.lon, maps.DefaultRes)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range c.Cells {
			if cs.Cell == cell.String() {
				return cs
			}
		}
		t.Fatalf("no cell %s (of %s) in %+v", cell, probe, c.Cells)
	}
	t.Fatalf("no probe %s in the fixture", probe)
	return maps.CellStat{}
}

func TestCatchmentJSONDefaultWindow(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	_, body := getOK(t, srv, "/api/v1/catchment?target=k-root", contentJSON)
	var c maps.Catchment
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if !c.From.Equal(now.Add(-DefaultWindow)) || !c.To.Equal(now) {
		t.Errorf("window %s..%s, want the last 15 minutes %s..%s", c.From, c.To, now.Add(-DefaultWindow), now)
	}
	if c.Target != "k-root" || c.By != maps.ByH3 || c.Resolution != maps.DefaultRes {
		t.Errorf("target %q by %q res %d", c.Target, c.By, c.Resolution)
	}
	if c.Probes != len(fixtureProbes) || c.Results != 15*len(fixtureProbes) || c.Unserved != 1 {
		t.Errorf("probes %d results %d unserved %d", c.Probes, c.Results, c.Unserved)
	}
	if cs := cellOf(t, &c, "p-bru1"); cs.Site != "fra" || cs.Probes != 2 || cs.Confidence != maps.ConfidenceLow {
		t.Errorf("Brussels cell in B: %+v, want fra with 2 probes, low confidence", cs)
	}
	if cs := cellOf(t, &c, "p-ams1"); cs.Site != "ams" || cs.SiteDistanceKm == nil {
		t.Errorf("Amsterdam cell: %+v, want ams with a site distance from the site table", cs)
	}

	// Window A by country, with a looser confidence rule.
	q := url.Values{"target": {"k-root"}, "from": {t0.Format(time.RFC3339)}, "to": {t0.Add(15 * time.Minute).Format(time.RFC3339)},
		"by": {"country"}, "min_probes": {"2"}, "dominance": {"0.5"}}
	_, body = getOK(t, srv, "/api/v1/catchment?"+q.Encode(), contentJSON)
	c = maps.Catchment{}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cs := range c.Cells {
		got[cs.Cell] = cs.Site + "/" + cs.Confidence
	}
	want := map[string]string{"NL": "ams/high", "BE": "ams/high", "SG": "sin/low"}
	for cell, w := range want {
		if got[cell] != w {
			t.Errorf("country %s: %q, want %q (all: %v)", cell, got[cell], w, got)
		}
	}
}

func TestCatchmentGeoJSON(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	resp, body := getOK(t, srv, "/api/v1/catchment?target=k-root&format=geojson&res=4", contentGeoJSON)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="catchment-k-root-20260301T101500Z.geojson"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	fc, err := geojson.UnmarshalFeatureCollection(body)
	if err != nil {
		t.Fatalf("not GeoJSON: %v\n%s", err, body)
	}
	kinds := map[string]int{}
	for _, f := range fc.Features {
		kinds[f.Properties.MustString("kind", "")]++
	}
	cells := map[string]bool{}
	for _, p := range fixtureProbes {
		c, err := maps.Cell(p.lat, p.lon, 4)
		if err != nil {
			t.Fatal(err)
		}
		cells[c.String()] = true
	}
	if kinds[maps.KindCell] != len(cells) || kinds[maps.KindSite] != 3 || kinds[maps.KindProbe] != len(fixtureProbes) {
		t.Errorf("feature kinds %v", kinds)
	}
}

func TestCatchmentCSV(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	resp, body := getOK(t, srv, "/api/v1/catchment?target=k-root&format=csv&by=asn", contentCSV)
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(maps.CellsCSVHeader, ",") {
		t.Errorf("header %v, want %v", rows[0], maps.CellsCSVHeader)
	}
	if len(rows) != 1+4 { // AS1136, AS3265, AS5432, AS4773
		t.Errorf("%d rows, want a header and 4 ASes: %v", len(rows), rows)
	}
}

func TestDiff(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	_, body := getOK(t, srv, "/api/v1/diff?target=k-root", contentJSON)
	var d maps.Diff
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if !d.FromA.Equal(t0) || !d.ToA.Equal(t0.Add(15*time.Minute)) || !d.FromB.Equal(d.ToA) || !d.ToB.Equal(now) {
		t.Errorf("windows A %s..%s B %s..%s, want the two last quarter hours", d.FromA, d.ToA, d.FromB, d.ToB)
	}
	if d.MovedProbes != 2 || len(d.Flows) != 1 || d.Flows[0] != (maps.Flow{From: "ams", To: "fra", Probes: 2}) {
		t.Errorf("moved %d flows %+v, want 2 probes ams->fra", d.MovedProbes, d.Flows)
	}
	if len(d.CellsChanged) != 1 || d.CellsChanged[0].From != "ams" || d.CellsChanged[0].To != "fra" {
		t.Errorf("cells changed %+v", d.CellsChanged)
	}

	for table, header := range map[string][]string{"cells": maps.DiffCSVHeader, "flows": maps.FlowsCSVHeader} {
		resp, body := getOK(t, srv, "/api/v1/diff?target=k-root&format=csv&table="+table, contentCSV)
		first, _, _ := strings.Cut(string(body), "\n")
		if first != strings.Join(header, ",") {
			t.Errorf("table %s: header %q", table, first)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "diff-k-root-") {
			t.Errorf("table %s: Content-Disposition %q", table, cd)
		}
	}
}

func TestTimelineShift(t *testing.T) {
	srv := newServer(t, newStore(t, fixture()))
	q := url.Values{"target": {"k-root"}, "from": {t0.Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)},
		"step": {"5m"}, "threshold": {"0.2"}}
	_, body := getOK(t, srv, "/api/v1/timeline?"+q.Encode(), contentJSON)
	var tl maps.Timeline
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Steps) != 6 || tl.Step != 300 || tl.Threshold != 0.2 {
		t.Errorf("%d steps of %vs, threshold %v", len(tl.Steps), tl.Step, tl.Threshold)
	}
	// 2 of 6 served probes move: a third.
	if len(tl.Shifts) != 1 || !tl.Shifts[0].Time.Equal(t0.Add(15*time.Minute)) || tl.Shifts[0].MovedShare < 0.33 {
		t.Errorf("shifts %+v, want one at t0+15m moving a third", tl.Shifts)
	}
}

func TestParamErrors(t *testing.T) {
	srv := newServer(t, newStore(t, nil))
	for _, c := range []struct{ path, want string }{
		{"/api/v1/catchment", "missing parameter target"},
		{"/api/v1/catchment?target=%20", "missing parameter target"},
		{"/api/v1/catchment?target=" + strings.Repeat("x", 300), "target is 300 bytes"},
		{"/api/v1/catchment?target=k&res=8", "res=\"8\" is not allowed: use an integer from 0 to 7"},
		{"/api/v1/catchment?target=k&res=-1", "res=\"-1\""},
		{"/api/v1/catchment?target=k&res=x", "res=\"x\""},
		{"/api/v1/catchment?target=k&by=prefix", "by=\"prefix\" is not allowed: use one of h3, country, asn"},
		{"/api/v1/catchment?target=k&format=xml", "format=\"xml\" is not allowed: use one of json, geojson, csv"},
		{"/api/v1/catchment?target=k&from=yesterday", "from=\"yesterday\" is not an RFC 3339 time"},
		{"/api/v1/catchment?target=k&from=2026-03-01T11:00:00Z&to=2026-03-01T10:00:00Z", "from must be before to"},
		{"/api/v1/catchment?target=k&from=2025-01-01T00:00:00Z", "at most 744h0m0s is allowed"},
		{"/api/v1/catchment?target=k&min_probes=0", "min_probes=\"0\""},
		{"/api/v1/catchment?target=k&dominance=1.5", "dominance=\"1.5\" is not allowed: use a share"},
		{"/api/v1/diff?target=k&format=geojson", "format=\"geojson\" is not allowed: use one of json, csv"},
		{"/api/v1/diff?target=k&table=probes", "table=\"probes\""},
		{"/api/v1/diff?target=k&a_to=nope", "a_to=\"nope\""},
		{"/api/v1/diff?target=k&b_from=2026-03-01T10:40:00Z", "b_from must be before b_to"},
		{"/api/v1/diff", "missing parameter target"},
		{"/api/v1/timeline?target=k&step=500ms", "step=\"500ms\" is not allowed: use a duration of 1s or more"},
		{"/api/v1/timeline?target=k&step=1s&from=2026-02-01T00:00:00Z", "steps in the window: at most 100000"},
		{"/api/v1/timeline?target=k&threshold=0", "threshold=\"0\""},
		{"/api/v1/timeline?target=k&step=2562047h47m16s", "step=\"2562047h47m16s\" is longer than the window"},
		{"/api/v1/timeline", "missing parameter target"},
	} {
		resp, body := get(t, srv, c.path)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != contentJSON {
			t.Errorf("GET %s: %s %s, want 400 JSON", c.path, resp.Status, resp.Header.Get("Content-Type"))
			continue
		}
		var e api.Error
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("GET %s: body %s is not an api.Error: %v", c.path, body, err)
		}
		if !strings.Contains(e.Error, c.want) {
			t.Errorf("GET %s: error %q, want it to contain %q", c.path, e.Error, c.want)
		}
	}
}

// failingStore stands in for a broken backend: SQLite cannot be made to
// report ErrUnavailable on demand, and the point is the status mapping.
type failingStore struct {
	store.Results
	err error
}

func (f failingStore) Scan(context.Context, store.Query, func(*result.Record) error) error {
	return f.err
}

func TestStoreErrors(t *testing.T) {
	secret := "disk /var/lib/catchmap/secret.db is corrupt"
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("sqlite: locked: %w", store.ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New(secret), http.StatusInternalServerError},
	} {
		srv := newServer(t, failingStore{err: c.err})
		for _, path := range []string{"/api/v1/catchment?target=k", "/api/v1/diff?target=k", "/api/v1/timeline?target=k"} {
			resp, body := get(t, srv, path)
			if resp.StatusCode != c.code || strings.Contains(string(body), "secret") {
				t.Errorf("GET %s with %v: %s %s", path, c.err, resp.Status, body)
			}
		}
	}
	// A real closed store fails too, without leaking the driver's words.
	st := newStore(t, nil)
	srv := newServer(t, st)
	st.Close()
	resp, body := get(t, srv, "/api/v1/catchment?target=k")
	if resp.StatusCode < 500 || strings.Contains(string(body), "sql") {
		t.Errorf("closed store: %s %s", resp.Status, body)
	}
}

// TestHugeRTTsStillMap: records that got past ingest with an RTT near the
// largest float (their median is +Inf) do not break the maps of their
// window: every format answers 200, JSON with null, CSV with an empty cell.
func TestHugeRTTsStillMap(t *testing.T) {
	recs := fixture()
	for i := range recs {
		if recs[i].Probe == "p-sin1" {
			recs[i].RTTMs = 1e308
		}
	}
	srv := newServer(t, newStore(t, recs))
	for _, path := range []string{
		"/api/v1/catchment?target=k-root&from=" + t0.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339),
		"/api/v1/catchment?target=k-root&format=geojson&from=" + t0.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339),
		"/api/v1/catchment?target=k-root&format=csv&from=" + t0.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339),
		"/api/v1/diff?target=k-root&a_from=" + t0.Format(time.RFC3339) + "&a_to=" + t0.Add(15*time.Minute).Format(time.RFC3339) +
			"&b_from=" + t0.Add(15*time.Minute).Format(time.RFC3339) + "&b_to=" + now.Format(time.RFC3339),
		"/api/v1/timeline?target=k-root&step=5m&from=" + t0.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339),
	} {
		resp, body := get(t, srv, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s %s", path, resp.Status, body)
			continue
		}
		if bytes.Contains(body, []byte("Inf")) || bytes.Contains(body, []byte("NaN")) {
			t.Errorf("GET %s: the answer prints a non-number: %s", path, body)
		}
	}
}

// planOf is a store.Plans with a fixed plan.
type planOf api.Plan

func (p planOf) Plan(context.Context) (api.Plan, error) { return api.Plan(p), nil }
func (planOf) PutPlan(context.Context, api.Plan) error  { return nil }

// TestTargetResolved: a map names its target by a plan entry's name, else
// by the address of exactly one entry, else by a target with results; else
// it gets a 404 that lists the known targets (it once answered 200 with an
// empty map for the address of the entry anycast-sim).
func TestTargetResolved(t *testing.T) {
	st := newStore(t, fixture()) // records of target k-root
	plan := planOf{Targets: []api.Target{
		{Name: "anycast-sim", Spec: spec.Spec{Target: "192.0.2.53", Method: result.MethodDNS}},
		{Name: "k-root", Spec: spec.Spec{Target: "193.0.14.129", Method: result.MethodDNS}},
		{Name: "web", Spec: spec.Spec{Target: "https://www.example.com/", Method: result.MethodHTTP, ConnectTo: "198.51.100.80"}},
		{Name: "twice-a", Spec: spec.Spec{Target: "203.0.113.9", Method: result.MethodDNS}},
		{Name: "twice-b", Spec: spec.Spec{Target: "203.0.113.9:53", Method: result.MethodICMP}},
	}}
	h := New(slog.New(slog.DiscardHandler), st, Sites(sites.Default()), WithClock(func() time.Time { return now }), WithPlan(plan))
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	win := "&from=" + t0.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339)
	for _, c := range []struct {
		name, target string
		code         int
		probes       bool
	}{
		{"entry name", "k-root", 200, true},
		{"address of one entry", "193.0.14.129", 200, true},
		{"connect_to of one entry", "198.51.100.80", 200, false},
		{"entry with no results", "192.0.2.53", 200, false},
	} {
		resp, body := get(t, srv, "/api/v1/catchment?target="+url.QueryEscape(c.target)+win)
		var cm maps.Catchment
		if resp.StatusCode != c.code || json.Unmarshal(body, &cm) != nil || (cm.Probes > 0) != c.probes {
			t.Errorf("%s: %s %.300s", c.name, resp.Status, body)
		}
	}
	resp, body := get(t, srv, "/api/v1/catchment?target=192.0.2.53"+win)
	var cm maps.Catchment
	if json.Unmarshal(body, &cm); resp.StatusCode != 200 || cm.Target != "anycast-sim" {
		t.Errorf("an entry's address: target %q in the answer (%s), want the entry's name", cm.Target, resp.Status)
	}
	for _, c := range []struct{ name, path string }{
		{"unknown", "/api/v1/catchment?target=nowhere"},
		{"address of two entries", "/api/v1/catchment?target=203.0.113.9"},
		{"diff", "/api/v1/diff?target=nowhere"},
		{"timeline", "/api/v1/timeline?target=nowhere"},
	} {
		resp, body := get(t, srv, c.path)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "known targets are anycast-sim, k-root, twice-a, twice-b, web") {
			t.Errorf("%s: %s %s, want 404 listing the known targets", c.name, resp.Status, body)
		}
	}
	// A target with results but no entry (one removed from the plan).
	h = New(slog.New(slog.DiscardHandler), st, nil, WithClock(func() time.Time { return now }), WithPlan(planOf{Targets: plan.Targets[:1]}))
	rec := httptest.NewRecorder()
	h.Routes()[0].Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/catchment?target=k-root"+win, nil))
	if json.Unmarshal(rec.Body.Bytes(), &cm); rec.Code != 200 || cm.Probes == 0 {
		t.Errorf("a target with results only: %d %.200s", rec.Code, rec.Body.String())
	}
}
