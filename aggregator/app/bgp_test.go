package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

const adminToken = "0123456789abcdef0123456789abcdef"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	st  *sqlite.Store
	srv *httptest.Server
	app *server.Server
	reg *prometheus.Registry
}

// newFixture serves the whole app over a real SQLite store, with a plan
// whose target "svc" lives in 192.0.2.0/24, and a fixed clock.
func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	plan := api.Plan{Targets: []api.Target{
		{Spec: spec.Spec{Target: "192.0.2.53", Method: "dns"}, Name: "svc", Prefixes: []string{"192.0.2.0/24"}},
		{Spec: spec.Spec{Target: "198.51.100.53", Method: "dns"}, Name: "other-svc"},
	}}
	if err := st.PutPlan(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AdminToken = token.Parse(adminToken)
	o.Now = func() time.Time { return now }
	o.Server = append(o.Server, server.WithConfig(cfg))
	reg := prometheus.NewRegistry()
	a, err := New(log, reg, st, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &fixture{st: st, srv: srv, app: a, reg: reg}
}

func (f *fixture) do(t *testing.T, method, path, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestPostEvents(t *testing.T) {
	f := newFixture(t, Options{})
	es := []api.Event{
		{Time: now.Add(-time.Hour), Prefix: "192.0.2.0/24", Kind: "announce", ASPath: []uint32{64500, 64501}, Peer: "192.0.2.1", Source: "mrt"},
		{Time: now.Add(-30 * time.Minute), Prefix: "192.0.2.0/24", Kind: "withdraw", Peer: "192.0.2.1"},
	}
	if code, b := f.do(t, "POST", "/api/v1/events", "", es); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", code, b)
	}
	for i := range 2 { // twice: the second post stores nothing new
		if code, b := f.do(t, "POST", "/api/v1/events", adminToken, es); code != http.StatusOK || !strings.Contains(string(b), `"accepted":2`) {
			t.Fatalf("post %d: %d %s", i, code, b)
		}
	}
	code, b := f.do(t, "GET", "/api/v1/events?target=svc", "", nil)
	var got []api.Event
	if code != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("get: %d %s", code, b)
	}
	if len(got) != 2 || got[0].Kind != "announce" || got[1].Kind != "withdraw" || got[1].Source != "mrt" || got[0].ID == "" {
		t.Errorf("stored events %+v", got)
	}
	for name, c := range map[string]struct {
		body any
		code int
		want string
	}{
		"kind":      {[]api.Event{{Time: now, Prefix: "192.0.2.0/24", Kind: "flap"}}, 400, `event 0: kind \"flap\"`},
		"prefix":    {[]api.Event{{Time: now, Prefix: "192.0.2.1/24", Kind: "announce"}}, 400, "event 0: prefix"},
		"future":    {[]api.Event{{Time: now.Add(time.Hour), Prefix: "192.0.2.0/24", Kind: "announce"}}, 400, "ahead of the aggregator's clock"},
		"peer":      {[]api.Event{{Time: now, Prefix: "192.0.2.0/24", Kind: "announce", Peer: "r1"}}, 400, "peer"},
		"source":    {[]api.Event{{Time: now, Prefix: "192.0.2.0/24", Kind: "announce", Source: "ris"}}, 400, "source"},
		"not array": {map[string]string{"prefix": "x"}, 400, "send a JSON array"},
		"too many":  {make([]api.Event, 10001), 413, "at most"},
	} {
		t.Run(name, func(t *testing.T) {
			code, b := f.do(t, "POST", "/api/v1/events", adminToken, c.body)
			if code != c.code || !strings.Contains(string(b), c.want) {
				t.Errorf("%d %s, want %d with %q", code, b, c.code, c.want)
			}
		})
	}
}

// TestOpenAPIAppRoutes checks that the operations the API document marks
// as mounted by the app are served by it.
// rec is a successful result of probe p reaching site at t.
func rec(target, p, site string, t time.Time, rtt float64) result.Record {
	return result.Record{ID: result.NewID(), Time: t, Probe: p, Target: target, Method: "dns", AF: 4, Addr: "192.0.2.53",
		Identity: site, Site: site, RTTMs: rtt, Country: "NL"}
}

func TestTimelineCauses(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	from := now.Add(-10 * time.Minute)
	var rs []result.Record
	// Four probes on ams, then two of them move to fra from minute 5.
	for m := range 10 {
		for p := range 4 {
			site := "ams"
			if m >= 5 && p < 2 {
				site = "fra"
			}
			rs = append(rs, rec("svc", fmt.Sprintf("p%d", p), site, from.Add(time.Duration(m)*time.Minute+time.Second), 10))
		}
	}
	if _, err := f.st.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	get := func() []map[string]any {
		t.Helper()
		q := fmt.Sprintf("/api/v1/timeline?target=svc&from=%s&to=%s&step=1m", from.Format(time.RFC3339), now.Format(time.RFC3339))
		code, b := f.do(t, "GET", q, "", nil)
		var tl struct {
			Steps  []json.RawMessage `json:"steps"`
			Shifts []map[string]any  `json:"shifts"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &tl) != nil || len(tl.Steps) != 10 || len(tl.Shifts) != 1 {
			t.Fatalf("timeline: %d %s", code, b)
		}
		return tl.Shifts
	}
	if sh := get(); sh[0]["cause"] != nil || sh[0]["moved_share"] != 0.5 {
		t.Errorf("no events yet: shift %v", sh[0])
	}

	shiftAt := from.Add(5 * time.Minute)
	if err := f.st.AddAnnotation(ctx, api.Annotation{ID: "a1", Time: shiftAt.Add(-20 * time.Minute), Target: "svc", Text: "prepend ams x3"}); err != nil {
		t.Fatal(err)
	}
	if sh := get(); !causeIs(sh[0], "annotation", "prepend ams x3") {
		t.Errorf("annotation only: cause %v", sh[0]["cause"])
	}
	es := []api.Event{
		{ID: "e1", Time: shiftAt.Add(-2 * time.Minute), Prefix: "192.0.2.0/24", Kind: "withdraw", Peer: "192.0.2.1", Source: "bgp"},
		// After the shift's step: not its cause.
		{ID: "e2", Time: shiftAt.Add(2 * time.Minute), Prefix: "192.0.2.0/24", Kind: "announce", ASPath: []uint32{64500}, Source: "bgp"},
		// Another prefix: not this target's.
		{ID: "e3", Time: shiftAt.Add(-time.Minute), Prefix: "198.51.100.0/24", Kind: "withdraw", Source: "bgp"},
	}
	if err := f.st.AddEvents(ctx, es); err != nil {
		t.Fatal(err)
	}
	sh := get()
	if !causeIs(sh[0], "bgp", "withdraw 192.0.2.0/24 from 192.0.2.1 (bgp)") {
		t.Errorf("cause %v, want the withdraw e1", sh[0]["cause"])
	}
	if sh[0]["moved_share"] != 0.5 || sh[0]["flows"] == nil {
		t.Errorf("shift fields lost: %v", sh[0])
	}
	// Errors pass through untouched.
	if code, b := f.do(t, "GET", "/api/v1/timeline?target=svc&step=0s", "", nil); code != http.StatusBadRequest || !strings.Contains(string(b), "error") {
		t.Errorf("bad step: %d %s", code, b)
	}
}

func causeIs(shift map[string]any, kind, text string) bool {
	c, ok := shift["cause"].(map[string]any)
	return ok && c["kind"] == kind && c["text"] == text && c["time"] != nil
}

func TestCatchmentGauges(t *testing.T) {
	f := newFixture(t, Options{Gauges: &GaugeOptions{}})
	ctx := context.Background()
	var rs []result.Record
	for p := range 4 {
		site, rtt := "ams", 10.0
		if p == 3 {
			site, rtt = "fra", 30
		}
		rs = append(rs, rec("svc", fmt.Sprintf("p%d", p), site, now.Add(-time.Minute), rtt))
		// Too old for the 5-minute window.
		rs = append(rs, rec("svc", fmt.Sprintf("p%d", p), "lhr", now.Add(-time.Hour), 5))
	}
	rs = append(rs, rec("gone", "p9", "ams", now.Add(-time.Minute), 10)) // not in the plan
	if _, err := f.st.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got := gauges(t, f.reg)
	want := map[string]float64{
		"share svc ams": 0.75, "share svc fra": 0.25,
		"rtt svc ams": 10, "rtt svc fra": 30,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gauges %v, want %v", got, want)
	}
	// Targets leaving the plan lose their series (at the next computation;
	// the fixed clock makes every scrape one).
	if err := f.st.PutPlan(ctx, api.Plan{}); err != nil {
		t.Fatal(err)
	}
	g := newCatchmentGauges(slog.New(slog.DiscardHandler), f.st, GaugeOptions{}, func() time.Time { return now })
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	if got := gauges(t, reg); len(got) != 0 {
		t.Errorf("empty plan: gauges %v", got)
	}
}

func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		kind := map[string]string{"catchmap_catchment_site_share": "share", "catchmap_catchment_site_rtt_p50_ms": "rtt"}[mf.GetName()]
		if kind == "" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[kind+" "+label(m, "target")+" "+label(m, "site")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestSiteRowsOther(t *testing.T) {
	var sites []maps.SiteStat
	for i := range 5 {
		rtt := float64(i)
		sites = append(sites, maps.SiteStat{Site: fmt.Sprintf("s%d", i), Share: float64(5-i) / 15, RTTP50: &rtt})
	}
	rows := siteRows("svc", sites, 3)
	if len(rows) != 3 || rows[0].site != "s0" || rows[1].site != "s1" || rows[2].site != "other" || rows[2].rtt != nil {
		t.Fatalf("rows %+v", rows)
	}
	if s := rows[2].share; s < 6.0/15-1e-9 || s > 6.0/15+1e-9 {
		t.Errorf("other share %v, want 6/15", s)
	}
	if rows := siteRows("svc", sites, 5); len(rows) != 5 || rows[4].site != "s4" {
		t.Errorf("at the cap: %+v", rows)
	}
}

func TestPlanPrefixes(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	prefixes := planPrefixes(slog.New(slog.DiscardHandler), f.st)
	ps, err := prefixes(ctx)
	if err != nil || ps.Len() != 1 || len(ps.Match(netip.MustParsePrefix("192.0.2.128/25"))) != 1 {
		t.Fatalf("plan prefixes: %v %v", ps, err)
	}
	if err := RunBGP(ctx, slog.New(slog.DiscardHandler), f.st, nil); err != nil {
		t.Errorf("RunBGP with no bgp section: %v", err)
	}
	bad := &config.BGP{Peer: "127.0.0.2", PeerAS: 1, LocalAS: 2, RouterID: "127.0.0.1", ListenPort: 1179, Prefixes: []string{"x"}}
	if err := RunBGP(ctx, slog.New(slog.DiscardHandler), f.st, bad); err == nil || !strings.Contains(err.Error(), "bgp.prefixes") {
		t.Errorf("RunBGP with a bad prefix: %v", err)
	}
}
