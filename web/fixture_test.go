package web

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/api"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
)

var update = flag.Bool("update", false, "rewrite the API fixtures under testdata/ from the maps package")

// The fixture: target k-root measured for 20 minutes from t0. Window A is
// the first ten minutes, B the next ten; Berlin moves from fra to ams and
// Paris from lhr to fra between them, so the diff changes exactly two cells.
var (
	t0    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	winA  = [2]time.Time{t0, t0.Add(10 * time.Minute)}
	winB  = [2]time.Time{t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}
	noteT = t0.Add(9*time.Minute + 30*time.Second)
)

var fixtureSites = map[string]maps.Site{
	"ams": {Code: "ams", Name: "Amsterdam", Lat: 52.31, Lon: 4.76},
	"fra": {Code: "fra", Name: "Frankfurt", Lat: 50.03, Lon: 8.57},
	"lhr": {Code: "lhr", Name: "London", Lat: 51.47, Lon: -0.45},
	"sin": {Code: "sin", Name: "Singapore", Lat: 1.36, Lon: 103.99},
	"iad": {Code: "iad", Name: "Washington", Lat: 38.95, Lon: -77.45},
	"syd": {Code: "syd", Name: "Sydney", Lat: -33.94, Lon: 151.18},
	// nrt is left out on purpose: a site the table does not know.
}

var siteLocator = maps.SiteLocatorFunc(func(code string) (maps.Site, bool) {
	s, ok := fixtureSites[code]
	return s, ok
})

type fixtureProbe struct {
	id, name     string
	lat, lon     float64
	located      bool
	country      string
	asn          uint32
	siteA, siteB string // "" for every result a timeout
	rtt          float64
}

var fixtureProbes = []fixtureProbe{
	{"p-ams1", "amsterdam-1", 52.37, 4.90, true, "NL", 1136, "ams", "ams", 2},
	{"p-ams2", "amsterdam-2", 52.36, 4.88, true, "NL", 1136, "ams", "ams", 3},
	{"p-ams3", "amsterdam-3", 52.38, 4.91, true, "NL", 3265, "ams", "fra", 3},
	{"p-ber1", "berlin-1", 52.52, 13.40, true, "DE", 3320, "fra", "ams", 10},
	{"p-ber2", "berlin-2", 52.51, 13.41, true, "DE", 3320, "fra", "ams", 11},
	{"p-ber3", "berlin-3", 52.52, 13.39, true, "DE", 3320, "fra", "ams", 12},
	{"p-par1", "paris-1", 48.85, 2.35, true, "FR", 3215, "lhr", "fra", 8},
	{"p-par2", "paris-2", 48.86, 2.34, true, "FR", 3215, "lhr", "fra", 9},
	{"p-lon1", "london-1", 51.51, -0.13, true, "GB", 2856, "lhr", "lhr", 1.5},
	{"p-lon2", "london-2", 51.50, -0.12, true, "GB", 2856, "lhr", "lhr", 2},
	{"p-lon3", "london-3", 51.52, -0.10, true, "GB", 5089, "lhr", "lhr", 2.5},
	{"p-sin1", "singapore-1", 1.29, 103.85, true, "SG", 4773, "sin", "sin", 2},
	{"p-sin2", "singapore-2", 1.30, 103.84, true, "SG", 4773, "sin", "sin", 3},
	{"p-sin3", "singapore-3", 1.31, 103.86, true, "SG", 9506, "sin", "sin", 2},
	{"p-was1", "washington-1", 38.90, -77.04, true, "US", 7922, "iad", "iad", 3},
	{"p-was2", "washington-2", 38.91, -77.03, true, "US", 7922, "iad", "iad", 4},
	{"p-was3", "washington-3", 38.89, -77.05, true, "US", 701, "iad", "iad", 3},
	{"p-nyc1", "new-york-1", 40.71, -74.01, true, "US", 7922, "iad", "iad", 7},
	{"p-sao1", "sao-paulo-1", -23.55, -46.63, true, "BR", 28573, "iad", "iad", 140},
	{"p-syd1", "sydney-1", -33.87, 151.21, true, "AU", 1221, "syd", "syd", 2},
	{"p-syd2", "sydney-2", -33.86, 151.20, true, "AU", 1221, "syd", "syd", 3},
	// Claims Sydney, answers from Amsterdam in 2 ms: a location suspect.
	{"p-liar", "liar", -33.88, 151.22, true, "AU", 1221, "ams", "ams", 2},
	{"p-tyo1", "tokyo-1", 35.68, 139.69, true, "JP", 2516, "nrt", "nrt", 4},
	// Its H3 cell crosses the antimeridian.
	{"p-fiji", "fiji-1", -16.5, 179.99, true, "FJ", 38442, "syd", "syd", 30},
	{"p-noloc", "nowhere-1", 0, 0, false, "", 0, "ams", "ams", 20},
	{"p-err", "frankfurt-broken", 50.11, 8.68, true, "DE", 3320, "", "", 5},
}

// fixtureRecords is one result per probe and minute, site A before winB.
func fixtureRecords() []result.Record {
	var recs []result.Record
	for m := range 20 {
		for _, p := range fixtureProbes {
			r := result.Record{
				ID:      fmt.Sprintf("%s-%02d", p.id, m),
				Time:    t0.Add(time.Duration(m)*time.Minute + 7*time.Second),
				Probe:   p.id,
				Target:  "k-root",
				Method:  result.MethodDNS,
				AF:      4,
				Addr:    "193.0.14.129",
				RTTMs:   p.rtt + float64(m%3)*0.25,
				Country: p.country,
				ASN:     p.asn,
			}
			if p.located {
				r.Lat, r.Lon = &p.lat, &p.lon
			}
			site := p.siteA
			if !r.Time.Before(winB[0]) {
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

// fixtureFiles computes every API answer the page reads from the records,
// with the maps package the aggregator uses, so the fixtures have the
// aggregator's exact shapes.
func fixtureFiles(t testing.TB) map[string][]byte {
	recs := fixtureRecords()
	files := map[string][]byte{}
	put := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatalf("encoding %s: %v", name, err)
		}
		files[name] = append(b, '\n')
	}
	var cs [2]*maps.Catchment
	for i, w := range [][2]time.Time{winA, winB} {
		c, err := maps.Compute(recs, maps.Options{Target: "k-root", From: w[0], To: w[1], Res: 3}, siteLocator)
		if err != nil {
			t.Fatalf("computing the catchment of window %c: %v", 'a'+i, err)
		}
		cs[i] = c
		name := fmt.Sprintf("catchment-%c", 'a'+i)
		put(name+".json", c)
		var gj, csv bytes.Buffer
		if err := maps.WriteGeoJSON(&gj, c); err != nil {
			t.Fatal(err)
		}
		if err := maps.WriteCellsCSV(&csv, c); err != nil {
			t.Fatal(err)
		}
		files[name+".geojson"] = gj.Bytes()
		files[name+".csv"] = csv.Bytes()
	}
	d, err := maps.Compare(cs[0], cs[1])
	if err != nil {
		t.Fatalf("comparing the windows: %v", err)
	}
	put("diff.json", d)
	tl, err := maps.ComputeTimeline(recs, maps.TimelineOptions{Target: "k-root", From: t0, To: winB[1]})
	if err != nil {
		t.Fatalf("computing the timeline: %v", err)
	}
	put("timeline.json", tl)
	put("annotations.json", []api.Annotation{{ID: "n1", Time: noteT, Target: "k-root", Text: "drained fra for maintenance"}})
	put("targets.json", api.Plan{Targets: []api.Target{
		{Spec: probe.Spec{Target: "k.root-servers.net", Method: "dns", Preset: "root"}, Name: "k-root"},
		{Spec: probe.Spec{Target: "1.1.1.1", Method: "dns"}, Name: "cloudflare-dns"},
	}})
	var ps []api.Probe
	for _, p := range fixtureProbes {
		seen := winB[1]
		ap := api.Probe{ID: p.id, Name: p.name, Country: p.country, ASN: p.asn, Created: t0.Add(-24 * time.Hour), LastSeen: &seen, Addr: "127.0.0.1"}
		if p.located {
			ap.Lat, ap.Lon = &p.lat, &p.lon
		}
		ps = append(ps, ap)
	}
	put("probes.json", ps)
	return files
}

// TestFixtures keeps testdata/ equal to what maps computes today, so a
// change in the API's shapes shows up here first. Run with -update to
// rewrite the files.
func TestFixtures(t *testing.T) {
	for name, want := range fixtureFiles(t) {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v (run go test ./web -run TestFixtures -update)", path, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what maps computes now: the API shapes changed? Check app.js, then run go test ./web -run TestFixtures -update", path)
		}
	}
}

// apiStub stands in for the aggregator's /api/v1 read routes until the
// end-to-end test against `catchmap serve` exists: it answers from files
// (testdata/ or a benchmark's generated set), checks the parameters the page
// sends, and records every request so tests can see what the page asked.
type apiStub struct {
	files map[string][]byte

	mu   sync.Mutex
	reqs []string // RequestURI of every API request
	bad  []string // requests the stub refused, with why
}

func loadFixtures(t testing.TB) map[string][]byte {
	files := map[string][]byte{}
	ents, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// mux serves web.Handler at / and the stub's API routes.
func (s *apiStub) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/", Handler())
	m.HandleFunc("GET /api/v1/targets", s.serve(func(*http.Request) (string, error) { return "targets.json", nil }))
	m.HandleFunc("GET /api/v1/probes", s.serve(func(*http.Request) (string, error) { return "probes.json", nil }))
	m.HandleFunc("GET /api/v1/catchment", s.serve(func(r *http.Request) (string, error) {
		q := r.URL.Query()
		from, err := s.window(q.Get("target"), q.Get("from"), q.Get("to"))
		if err != nil {
			return "", err
		}
		if q.Get("res") == "" || q.Get("by") != "h3" {
			return "", fmt.Errorf("want res and by=h3, got %q", r.URL.RawQuery)
		}
		name := "catchment-a"
		if !from.Before(winB[0]) {
			name = "catchment-b"
		}
		switch f := q.Get("format"); f {
		case "json", "geojson", "csv":
			return name + "." + f, nil
		default:
			return "", fmt.Errorf("unknown format %q", f)
		}
	}))
	m.HandleFunc("GET /api/v1/diff", s.serve(func(r *http.Request) (string, error) {
		q := r.URL.Query()
		if _, err := s.window(q.Get("target"), q.Get("a_from"), q.Get("a_to")); err != nil {
			return "", err
		}
		if _, err := s.window(q.Get("target"), q.Get("b_from"), q.Get("b_to")); err != nil {
			return "", err
		}
		return "diff.json", nil
	}))
	m.HandleFunc("GET /api/v1/timeline", s.serve(func(r *http.Request) (string, error) {
		q := r.URL.Query()
		if _, err := time.ParseDuration(q.Get("step")); err != nil {
			return "", fmt.Errorf("bad step: %v", err)
		}
		_, err := s.window(q.Get("target"), q.Get("from"), q.Get("to"))
		return "timeline.json", err
	}))
	m.HandleFunc("GET /api/v1/annotations", s.serve(func(r *http.Request) (string, error) {
		q := r.URL.Query()
		_, err := s.window(q.Get("target"), q.Get("from"), q.Get("to"))
		return "annotations.json", err
	}))
	return m
}

// window checks a query window as the aggregator's ParseWindow would.
func (s *apiStub) window(target, from, to string) (time.Time, error) {
	if target == "" {
		return time.Time{}, fmt.Errorf("no target")
	}
	f, err := time.Parse(time.RFC3339Nano, from)
	if err != nil {
		return f, fmt.Errorf("bad from: %v", err)
	}
	u, err := time.Parse(time.RFC3339Nano, to)
	if err != nil {
		return f, fmt.Errorf("bad to: %v", err)
	}
	if !f.Before(u) {
		return f, fmt.Errorf("from %s is not before to %s", from, to)
	}
	return f, nil
}

func (s *apiStub) serve(pick func(*http.Request) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.RequestURI)
		s.mu.Unlock()
		name, err := pick(r)
		if err != nil {
			s.mu.Lock()
			s.bad = append(s.bad, r.RequestURI+": "+err.Error())
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
			return
		}
		b, ok := s.files[name]
		if !ok {
			http.Error(w, "fixture "+name+" missing", http.StatusInternalServerError)
			return
		}
		switch {
		case strings.HasSuffix(name, ".csv"):
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		case strings.HasSuffix(name, ".geojson"):
			w.Header().Set("Content-Type", "application/geo+json")
		default:
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(b)
	}
}

func (s *apiStub) requests() (reqs, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...), append([]string(nil), s.bad...)
}

// bigFixture is a catchment of 10,000 H3 cells (resolution 3) over 12
// sites, for the rendering benchmark; it is generated, not stored, to keep
// the repository small.
func bigFixture(b testing.TB, cells int) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	codes := make([]string, 0, 12)
	for i := range 12 {
		code := fmt.Sprintf("s%02d", i)
		codes = append(codes, code)
		fixtureSites[code] = maps.Site{Code: code, Name: "Site " + code, Lat: rng.Float64()*120 - 60, Lon: rng.Float64()*360 - 180}
	}
	seen := map[string]bool{}
	var recs []result.Record
	var ps []api.Probe
	for i := 0; len(seen) < cells && i < 50*cells; i++ {
		lat, lon := rng.Float64()*150-70, rng.Float64()*360-180
		c, err := maps.Cell(lat, lon, 3)
		if err != nil || seen[c.String()] {
			continue
		}
		seen[c.String()] = true
		id := fmt.Sprintf("b%05d", len(seen))
		for k := range 3 {
			recs = append(recs, result.Record{
				ID: fmt.Sprintf("%s-%d", id, k), Time: winB[0].Add(time.Duration(k) * time.Minute), Probe: id,
				Target: "k-root", Method: result.MethodDNS, AF: 4, Addr: "193.0.14.129",
				Site: codes[rng.IntN(len(codes))], RTTMs: 5 + rng.Float64()*200, Lat: &lat, Lon: &lon,
			})
		}
		seen := winB[1]
		ps = append(ps, api.Probe{ID: id, Name: id, Lat: &lat, Lon: &lon, Created: t0, LastSeen: &seen})
	}
	if len(seen) < cells {
		b.Fatalf("made only %d distinct cells", len(seen))
	}
	c, err := maps.Compute(recs, maps.Options{Target: "k-root", From: winB[0], To: winB[1], Res: 3}, siteLocator)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	var gj bytes.Buffer
	if err := maps.WriteGeoJSON(&gj, c); err != nil {
		b.Fatal(err)
	}
	files["catchment-b.geojson"] = gj.Bytes()
	for name, v := range map[string]any{
		"catchment-b.json": c,
		"targets.json":     api.Plan{Targets: []api.Target{{Spec: probe.Spec{Target: "k.root-servers.net", Method: "dns"}, Name: "k-root"}}},
		"probes.json":      ps,
		"timeline.json":    maps.Timeline{Target: "k-root", From: winB[0], To: winB[1], Step: 60, Steps: []maps.Step{}, Shifts: []maps.Shift{}},
		"annotations.json": []api.Annotation{},
	} {
		bs, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		files[name] = bs
	}
	return files
}
