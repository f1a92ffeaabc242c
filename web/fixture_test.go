package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// world is when the browser tests' data lies. Target k-root is measured
// every minute; window A is [now-20m, now-10m) and B is [now-10m, now).
// Between them Berlin moves from fra to ams and Paris from lhr to fra, so
// the diff changes exactly two cells and the timeline shifts once.
//
// now is the aggregator's injected clock, taken from the wall clock at the
// start of the test because the page's live window comes from the
// browser's clock, which the test does not control. Window A has results
// only in its first five minutes, so the last 15 minutes (the
// aggregator's default window, and the page's live one for as long as the
// test runs, under five minutes) hold exactly window B's results.
type world struct {
	now        time.Time
	winA, winB [2]time.Time
	note       time.Time
}

func newWorld() world {
	now := time.Now().UTC().Truncate(time.Minute)
	return world{
		now:  now,
		winA: [2]time.Time{now.Add(-20 * time.Minute), now.Add(-10 * time.Minute)},
		winB: [2]time.Time{now.Add(-10 * time.Minute), now},
		note: now.Add(-10*time.Minute - 30*time.Second),
	}
}

// aMinutes is how many minutes of window A have results (see world).
const aMinutes = 5

type fixtureProbe struct {
	id           string
	lat, lon     float64
	located      bool
	country      string
	asn          uint32
	siteA, siteB string // "" for every result a timeout
	rtt          float64
}

var fixtureProbes = []fixtureProbe{
	{"p-ams1", 52.37, 4.90, true, "NL", 1136, "ams", "ams", 2},
	{"p-ams2", 52.36, 4.88, true, "NL", 1136, "ams", "ams", 3},
	{"p-ams3", 52.38, 4.91, true, "NL", 3265, "ams", "fra", 3},
	{"p-ber1", 52.52, 13.40, true, "DE", 3320, "fra", "ams", 10},
	{"p-ber2", 52.51, 13.41, true, "DE", 3320, "fra", "ams", 11},
	{"p-ber3", 52.52, 13.39, true, "DE", 3320, "fra", "ams", 12},
	{"p-par1", 48.85, 2.35, true, "FR", 3215, "lhr", "fra", 8},
	{"p-par2", 48.86, 2.34, true, "FR", 3215, "lhr", "fra", 9},
	{"p-lon1", 51.51, -0.13, true, "GB", 2856, "lhr", "lhr", 1.5},
	{"p-lon2", 51.50, -0.12, true, "GB", 2856, "lhr", "lhr", 2},
	{"p-lon3", 51.52, -0.10, true, "GB", 5089, "lhr", "lhr", 2.5},
	{"p-sin1", 1.29, 103.85, true, "SG", 4773, "sin", "sin", 2},
	{"p-sin2", 1.30, 103.84, true, "SG", 4773, "sin", "sin", 3},
	{"p-sin3", 1.31, 103.86, true, "SG", 9506, "sin", "sin", 2},
	{"p-was1", 38.90, -77.04, true, "US", 7922, "iad", "iad", 3},
	{"p-was2", 38.91, -77.03, true, "US", 7922, "iad", "iad", 4},
	{"p-was3", 38.89, -77.05, true, "US", 701, "iad", "iad", 3},
	{"p-nyc1", 40.71, -74.01, true, "US", 7922, "iad", "iad", 7},
	{"p-sao1", -23.55, -46.63, true, "BR", 28573, "iad", "iad", 140},
	{"p-syd1", -33.87, 151.21, true, "AU", 1221, "syd", "syd", 2},
	{"p-syd2", -33.86, 151.20, true, "AU", 1221, "syd", "syd", 3},
	// Claims Sydney, answers from Amsterdam in 2 ms: a location suspect.
	{"p-liar", -33.88, 151.22, true, "AU", 1221, "ams", "ams", 2},
	{"p-tyo1", 35.68, 139.69, true, "JP", 2516, "nrt", "nrt", 4},
	// Its H3 cell crosses the antimeridian.
	{"p-fiji", -16.5, 179.99, true, "FJ", 38442, "syd", "syd", 30},
	{"p-noloc", 0, 0, false, "", 0, "ams", "ams", 20},
	{"p-err", 50.11, 8.68, true, "DE", 3320, "", "", 5},
}

// unregistered is the one fixture probe left out of the probe registry,
// as the results of a probe registered elsewhere (or imported) would be:
// the probe table shows its id.
const unregistered = "p-tyo1"

// registered is the probe registry: every fixture probe but unregistered,
// named for people and last seen a few seconds apart before now.
func (w world) registered() []api.Probe {
	var ps []api.Probe
	for i, p := range fixtureProbes {
		if p.id == unregistered {
			continue
		}
		seen := w.now.Add(-time.Duration(i*7) * time.Second)
		ps = append(ps, api.Probe{ID: p.id, Name: "probe " + strings.ToUpper(strings.TrimPrefix(p.id, "p-")),
			Created: w.winA[0].Add(-24 * time.Hour), LastSeen: &seen})
	}
	return ps
}

// records is one k-root result per probe and minute: site A in window A's
// first aMinutes minutes, site B in all of window B.
func (w world) records() []result.Record {
	var recs []result.Record
	for m := range 20 {
		if m >= aMinutes && m < 10 {
			continue
		}
		at := w.winA[0].Add(time.Duration(m)*time.Minute + 7*time.Second)
		for _, p := range fixtureProbes {
			r := result.Record{
				ID:      fmt.Sprintf("%s-%02d", p.id, m),
				Time:    at,
				Probe:   p.id,
				Target:  "k-root",
				Method:  result.MethodDNS,
				AF:      4,
				Addr:    "193.0.14.129", // a string in the record, never dialled
				RTTMs:   p.rtt + float64(m%3)*0.25,
				Country: p.country,
				ASN:     p.asn,
			}
			if p.located {
				r.Lat, r.Lon = &p.lat, &p.lon
			}
			site := p.siteA
			if !at.Before(w.winB[0]) {
				site = p.siteB
			}
			if site == "" {
				r.RTTMs, r.Error, r.ErrorKind = 0, "i/o timeout", result.KindTimeout
			} else {
				r.Site, r.Identity = site, site+"1.k.ripe.net"
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// wideRecords is one result each in window B from probes in `cells`
// distinct H3 resolution-3 cells spread over the world, answered by 12
// sites, for target: enough cells to take the page's canvas path.
func (w world) wideRecords(tb testing.TB, target string, cells int) []result.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var recs []result.Record
	for i := 0; len(seen) < cells && i < 50*cells; i++ {
		lat, lon := rng.Float64()*150-70, rng.Float64()*360-180
		c, err := maps.Cell(lat, lon, 3)
		if err != nil || seen[c.String()] {
			continue
		}
		seen[c.String()] = true
		recs = append(recs, result.Record{
			ID: fmt.Sprintf("%s-%05d", target, len(seen)), Time: w.winB[0].Add(time.Duration(i%600) * time.Second),
			Probe: fmt.Sprintf("w%05d", len(seen)), Target: target, Method: result.MethodDNS, AF: 4,
			Addr: "193.0.14.129", Site: fmt.Sprintf("s%02d", rng.IntN(12)), RTTMs: 5 + rng.Float64()*200,
			Lat: &lat, Lon: &lon,
		})
	}
	if len(seen) < cells {
		tb.Fatalf("made only %d distinct cells of %d", len(seen), cells)
	}
	return recs
}

// seedStore opens a SQLite store in a temporary directory holding the
// k-root results, the registered probes, the plan, an annotation, and the
// extra results.
func seedStore(tb testing.TB, w world, extra ...result.Record) *sqlite.Store {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "catchmap.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := st.Append(ctx, append(w.records(), extra...)); err != nil {
		tb.Fatalf("seeding results: %v", err)
	}
	for _, p := range w.registered() {
		if err := st.CreateProbe(ctx, p, []byte("token hash of "+p.ID)); err != nil {
			tb.Fatalf("registering probe %s: %v", p.ID, err)
		}
	}
	plan := api.Plan{Targets: []api.Target{
		{Spec: spec.Spec{Target: "k.root-servers.net", Method: "dns", Preset: "root"}, Name: "k-root"},
		{Spec: spec.Spec{Target: "1.1.1.1", Method: "dns"}, Name: "cloudflare-dns"},
	}}
	if err := st.PutPlan(ctx, plan); err != nil {
		tb.Fatalf("seeding the plan: %v", err)
	}
	if err := st.AddAnnotation(ctx, api.Annotation{ID: "n1", Time: w.note, Target: "k-root", Text: "drained fra for maintenance"}); err != nil {
		tb.Fatalf("seeding an annotation: %v", err)
	}
	return st
}

// aggregator is the real aggregator (aggregator/app, as `catchmap serve`
// builds it) over a store, listening on 127.0.0.1:0. It records the API
// requests the page sends, with their answers' status; the test's own
// requests (Go's client) are not recorded.
type aggregator struct {
	URL   string
	token string // the read token it requires; "" for none

	mu   sync.Mutex
	reqs []apiRequest
}

type apiRequest struct {
	URI    string
	Status int    // 0 while it is being served
	Auth   string // the Authorization header sent
}

func serve(tb testing.TB, w world, st *sqlite.Store, readToken string) *aggregator {
	cfg := config.Default()
	cfg.ReadToken = token.Parse(readToken)
	srv, err := app.New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), st, app.Options{
		Now:    func() time.Time { return w.now },
		Server: []server.Option{server.WithConfig(cfg)},
	})
	if err != nil {
		tb.Fatalf("building the aggregator: %v", err)
	}
	a := &aggregator{token: readToken}
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, api.Prefix+"/") || !strings.Contains(r.UserAgent(), "Chrome") {
			h.ServeHTTP(rw, r)
			return
		}
		// Recorded before it is served: the page may show the answer
		// before the handler returns.
		a.mu.Lock()
		i := len(a.reqs)
		a.reqs = append(a.reqs, apiRequest{URI: r.RequestURI, Auth: r.Header.Get("Authorization")})
		a.mu.Unlock()
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.mu.Lock()
		a.reqs[i].Status = sw.status
		a.mu.Unlock()
	})) // listening on 127.0.0.1:0 and serving when this returns
	tb.Cleanup(hs.Close)
	a.URL = hs.URL
	return a
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requests returns the page's API requests recorded so far.
func (a *aggregator) requests() []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiRequest(nil), a.reqs...)
}

// last is the URI of the page's latest request to path (such as
// /api/v1/catchment) whose URI contains every one of parts; it fails the
// test when there is none.
func (a *aggregator) last(tb testing.TB, path string, parts ...string) string {
	tb.Helper()
	reqs := a.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		u := reqs[i].URI
		if !strings.HasPrefix(u, path+"?") {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(u, p)
		}
		if ok {
			return u
		}
	}
	tb.Fatalf("the page sent no request to %s with %q", path, parts)
	return ""
}

// shown is the page's latest catchment request whose URI contains every
// one of parts, and the aggregator's JSON answer to the same query: what
// the page drew from. The page asks for the GeoJSON only, which carries
// the rest of the JSON answer as a foreign member.
func (a *aggregator) shown(tb testing.TB, parts ...string) (string, maps.Catchment) {
	tb.Helper()
	u := a.last(tb, api.Prefix+"/catchment", append(parts, "format=geojson")...)
	j := strings.Replace(u, "format=geojson", "format=json", 1)
	return u, decode[maps.Catchment](tb, j, a.get(tb, j))
}

// get fetches uri from the aggregator, with its read token, and fails the
// test unless the answer is 200.
func (a *aggregator) get(tb testing.TB, uri string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+uri, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", uri, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s %v: %s", uri, resp.Status, err, b)
	}
	return b
}
