package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/importer/atlas/atlastest"
	"github.com/catchmap/catchmap/probe/result"
)

var updateImport = flag.Bool("update-import", false, "rewrite the generated Atlas files in testdata/script/import_atlas.txtar")

// atlasScriptResults are the results import_atlas.txtar reads: two sites,
// a timeout and a header-only NOTIMP, as K-root's measurement gives them.
func atlasScriptResults(t testing.TB) []map[string]any {
	k := atlastest.K
	chaos := func(id string) atlastest.Answer { return atlastest.Answer{Q: atlastest.Chaos, TXT: []string{id}} }
	return []map[string]any{
		k.Result(1001, 5080, atlastest.OK(t, chaos("ns1.de-fra.k.ripe.net"), 12.5)),
		k.Result(1002, 4720, atlastest.OK(t, chaos("ns1.nl-ams.k.ripe.net"), 4.25)),
		k.Result(1003, 5080, atlastest.Timeout()),
		k.Result(1004, 5080, map[string]any{"result": map[string]any{"abuf": atlastest.HeaderOnly(dns.RcodeNotImplemented), "rt": 1.5}}),
	}
}

const atlasScriptProbes = `{"count": 2, "next": null, "previous": null, "results": [
 {"id": 1001, "asn_v4": 3320, "asn_v6": null, "country_code": "DE", "geometry": {"type": "Point", "coordinates": [8.6821, 50.1109]}},
 {"id": 1002, "asn_v4": 1136, "asn_v6": null, "country_code": "NL", "geometry": {"type": "Point", "coordinates": [4.8897, 52.374]}}
]}
`

// TestImportScriptFixtures checks that the Atlas files embedded in
// import_atlas.txtar are what atlastest generates; -update-import rewrites
// them.
func TestImportScriptFixtures(t *testing.T) {
	rs := atlasScriptResults(t)
	want := map[string][]byte{
		"probes.json":    []byte(atlasScriptProbes),
		"results.json":   append(atlastest.Array(t, rs...), '\n'),
		"results.ndjson": atlastest.NDJSON(t, rs...),
		"latest.json":    append(atlastest.Latest(t, rs...), '\n'),
	}
	path := filepath.Join("testdata", "script", "import_atlas.txtar")
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ar.Files {
		f := &ar.Files[i]
		w, ok := want[f.Name]
		if !ok {
			continue
		}
		delete(want, f.Name)
		if *updateImport {
			f.Data = w
		} else if !bytes.Equal(f.Data, w) {
			t.Errorf("%s in %s is not what atlastest generates: run go test -run TestImportScriptFixtures -update-import", f.Name, path)
		}
	}
	for name := range want {
		t.Errorf("%s has no %s section", path, name)
	}
	if *updateImport {
		if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runCLI runs catchmap in-process as a user would type it.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// TestImportFromAtlasAPI fetches a measurement's results from a local
// stand-in for the Atlas API serving generated files.
func TestImportFromAtlasAPI(t *testing.T) {
	rs := atlasScriptResults(t)
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.String())
		mu.Unlock()
		if r.Header.Get("Authorization") != "Key test-key" {
			http.Error(w, `{"error": {"status": 403, "detail": "You do not have permission"}}`, http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/api/v2/measurements/10301/results/":
			w.Write(atlastest.Gzip(t, atlastest.Array(t, rs...)))
		case "/api/v2/measurements/10301/latest/":
			w.Write(atlastest.Latest(t, rs[:2]...))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "out.ndjson")
	code, _, stderr := runCLI(t, "import", "ripe-atlas", "--preset", "k-root", "--atlas-url", srv.URL, "--atlas-key", "test-key",
		"--msm", "10301", "--start", "2025-11-24T16:00:00Z", "--stop", "1764003600", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := readRecords(t, out); len(got) != 4 || got[0].Site != "de-fra" {
		t.Errorf("records %+v", got)
	}
	if want := "/api/v2/measurements/10301/results/?start=1764000000&stop=1764003600"; len(asked) != 1 || asked[0] != want {
		t.Errorf("asked %v, want %s", asked, want)
	}

	code, stdout, stderr := runCLI(t, "import", "ripe-atlas", "--preset", "k-root", "--atlas-key", "test-key",
		srv.URL+"/api/v2/measurements/10301/latest/")
	if code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Errorf("latest by URL: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}

	code, _, stderr = runCLI(t, "import", "ripe-atlas", "--atlas-url", srv.URL, "--msm", "10301", "-o", out)
	if code != 1 || !strings.Contains(stderr, "403 Forbidden: the measurement may be private: give an Atlas API key with --atlas-key") {
		t.Errorf("without a key: exit %d, %s", code, stderr)
	}
}

func readRecords(t *testing.T, path string) []*result.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rs []*result.Record
	if err := result.ReadNDJSON(f, func(r *result.Record) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

// ingestStandIn answers POST /api/v1/results like the aggregator for an
// admin-token upload: it keeps each record's probe and skips ids it has.
// It stands in for the real server, whose ingest takes probe tokens only
// until the lead wires the admin token there.
type ingestStandIn struct {
	mu       sync.Mutex
	token    string
	ids      map[string]result.Record
	requests int
}

func (s *ingestStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != api.Prefix+"/results" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, `{"error": "this route needs a token"}`, http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, `{"error": "want gzip NDJSON"}`, http.StatusUnsupportedMediaType)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, `{"error": "not gzip"}`, http.StatusBadRequest)
		return
	}
	var resp api.IngestResponse
	err = result.ReadNDJSON(bufio.NewReader(zr), func(rec *result.Record) error {
		resp.Accepted++
		if _, dup := s.ids[rec.ID]; dup {
			resp.Duplicate++
			return nil
		}
		s.ids[rec.ID] = *rec
		resp.Stored++
		return nil
	})
	if err != nil {
		http.Error(w, `{"error": "bad NDJSON"}`, http.StatusBadRequest)
		return
	}
	json.NewEncoder(w).Encode(resp)
}

func TestImportToAggregator(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.ndjson")
	if err := os.WriteFile(in, atlastest.NDJSON(t, atlasScriptResults(t)...), 0o644); err != nil {
		t.Fatal(err)
	}
	agg := &ingestStandIn{token: "cm_admin-token-for-tests", ids: map[string]result.Record{}}
	srv := httptest.NewServer(agg)
	defer srv.Close()
	for i, want := range []string{"stored 4 new (0 already stored)", "stored 0 new (4 already stored)"} {
		code, _, stderr := runCLI(t, "import", "ripe-atlas", "--preset", "k-root", "--aggregator", srv.URL,
			"--token", agg.token, in)
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("upload %d: exit %d, %s; want %q", i+1, code, stderr, want)
		}
	}
	if r := agg.ids["atlas-10301-1001-1764000000-0"]; r.Probe != "atlas:1001" || r.Site != "de-fra" {
		t.Errorf("uploaded record %+v", r)
	}
	code, _, stderr := runCLI(t, "import", "ripe-atlas", "--aggregator", srv.URL, "--token", "wrong", in)
	if code != 1 || !strings.Contains(stderr, "401 Unauthorized") || !strings.Contains(stderr, "admin token") {
		t.Errorf("wrong token: exit %d, %s", code, stderr)
	}
	if strings.Contains(stderr, "wrong") && strings.Contains(stderr, "Bearer") {
		t.Errorf("the token leaked: %s", stderr)
	}
	if agg.requests != 3 {
		t.Errorf("%d uploads, want 3 (a 4xx is not retried)", agg.requests)
	}
}

// The progress line shows only on a terminal; a pipe gets the summary.
func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true, "results.json", 1000)
	p.draw(500, 250)
	if got := buf.String(); !strings.Contains(got, "results.json: 500 results") || !strings.Contains(got, "25%") || !strings.Contains(got, "ETA") {
		t.Errorf("progress line %q", got)
	}
	buf.Reset()
	q := newProgress(&buf, false, "x", 10)
	q.update(1, 1)
	q.done(func() int { return 1 })
	if buf.Len() != 0 {
		t.Errorf("progress off but wrote %q", buf.String())
	}
}
