package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/paulmach/orb/geojson"

	"github.com/catchmap/catchmap/aggregator/mapsapi"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// mapT0 starts the fixture: two Brussels probes move from ams to fra at
// mapT0+15m, the Amsterdam and Singapore probes stay.
var mapT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const mapToken = "cm_test-read-token"

func mapFixture() []result.Record {
	probes := []struct {
		id, country  string
		lat, lon     float64
		siteA, siteB string
	}{
		{"p-ams1", "NL", 52.37, 4.90, "ams", "ams"},
		{"p-ams2", "NL", 52.36, 4.88, "ams", "ams"},
		{"p-ams3", "NL", 52.38, 4.91, "ams", "ams"},
		{"p-bru1", "BE", 50.85, 4.35, "ams", "fra"},
		{"p-bru2", "BE", 50.84, 4.36, "ams", "fra"},
		{"p-sin1", "SG", 1.29, 103.85, "sin", "sin"},
	}
	var recs []result.Record
	for m := range 30 {
		for _, p := range probes {
			site := p.siteA
			if m >= 15 {
				site = p.siteB
			}
			recs = append(recs, result.Record{
				ID: fmt.Sprintf("%s-%02d", p.id, m), Time: mapT0.Add(time.Duration(m) * time.Minute),
				Probe: p.id, Target: "k-root", Method: result.MethodDNS, AF: 4, Addr: "193.0.14.129",
				Identity: site + "1.k.ripe.net", Site: site, RTTMs: 4, Country: p.country, Lat: &p.lat, Lon: &p.lon,
			})
		}
	}
	return recs
}

// mapInput writes the fixture as an NDJSON results file.
func mapInput(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	w := result.NewNDJSONWriter(&buf)
	for i := range mapFixture() {
		if err := w.Write(&mapFixture()[i]); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "results.ndjson")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mapAggregator serves the maps routes from a real SQLite store, behind a
// read-token check like the aggregator's.
func mapAggregator(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "catchmap.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Append(ctx, mapFixture()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mapsapi.New(slog.New(slog.DiscardHandler), st, mapsapi.Sites(sites.Default())).Register(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+mapToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":"missing or wrong read token"}`)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runMap runs catchmap in-process and returns its exit status and outputs.
func runMap(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runMap(t, env, args...)
	if code != exitOK {
		t.Fatalf("catchmap %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

func TestMapSources(t *testing.T) {
	sources := map[string][]string{
		"aggregator": {"--aggregator", mapAggregator(t), "--token", mapToken},
		"input":      {"--input", mapInput(t)},
	}
	windows := []string{"--a-from", "2026-03-01T10:00:00Z", "--a-to", "2026-03-01T10:15:00Z",
		"--b-from", "2026-03-01T10:15:00Z", "--b-to", "2026-03-01T10:30:00Z"}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			base := append([]string{"map", "--target", "k-root", "--from", "2026-03-01T10:15:00Z", "--window", "15m"}, src...)

			out := mustRun(t, nil, base...)
			for _, want := range []string{
				"k-root 2026-03-01T10:15:00Z .. 2026-03-01T10:30:00Z, by h3 res 3: 6 probes (0 unlocated, 0 unserved), 90 results",
				"CELL ", "SITE ", "Amsterdam Airport Schiphol",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("table lacks %q:\n%s", want, out)
				}
			}
			brussels, _ := maps.Cell(50.85, 4.35, 3)
			if !regexp.MustCompile(`(?m)^` + brussels.String() + ` +fra +100\.0% +2 +4\.0ms +4\.0ms +low$`).MatchString(out) {
				t.Errorf("table lacks the Brussels cell on fra:\n%s", out)
			}

			var c maps.Catchment
			if err := json.Unmarshal([]byte(mustRun(t, nil, append(base, "--format", "json", "--by", "country")...)), &c); err != nil {
				t.Fatal(err)
			}
			if c.By != maps.ByCountry || len(c.Cells) != 3 || c.Probes != 6 {
				t.Errorf("json: by %s, %d cells, %d probes", c.By, len(c.Cells), c.Probes)
			}

			fc, err := geojson.UnmarshalFeatureCollection([]byte(mustRun(t, nil, append(base, "--format", "geojson", "--res", "2")...)))
			if err != nil || len(fc.Features) == 0 {
				t.Errorf("geojson: %v, %d features", err, len(fc.Features))
			}

			csvOut := mustRun(t, nil, append(base, "--format", "csv")...)
			if !strings.HasPrefix(csvOut, strings.Join(maps.CellsCSVHeader, ",")+"\n") {
				t.Errorf("csv header: %q", csvOut[:min(len(csvOut), 200)])
			}

			diff := append(append([]string{"diff", "--target", "k-root"}, src...), windows...)
			d := mustRun(t, nil, diff...)
			for _, want := range []string{"moved: 2 of 6 probes served in both windows, 33.3% weighted", "\nams   fra  2\n", "\nCHANGED CELL     FROM  TO\n"} {
				if !strings.Contains(d, want) {
					t.Errorf("diff table lacks %q:\n%s", want, d)
				}
			}
			flows := mustRun(t, nil, append(diff, "--format", "csv", "--table", "flows")...)
			if flows != "from,to,probes\nams,fra,2\n" {
				t.Errorf("flows csv: %q", flows)
			}
		})
	}
}

func TestMapInputWholeFile(t *testing.T) {
	var c maps.Catchment
	out := mustRun(t, nil, "map", "--target", "k-root", "--input", mapInput(t), "--format", "json")
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c.Results != 180 || !c.From.Equal(mapT0) || !c.To.Equal(mapT0.Add(29*time.Minute)) {
		t.Errorf("whole file: %d results, %s .. %s", c.Results, c.From, c.To)
	}
	// stdin works as well.
	var stdout, stderr bytes.Buffer
	data, err := os.ReadFile(mapInput(t))
	if err != nil {
		t.Fatal(err)
	}
	code := run(context.Background(), []string{"map", "--target", "k-root", "--input", "-", "--format", "csv", "--by", "asn"},
		bytes.NewReader(data), &stdout, &stderr, func(string) string { return "" })
	if code != exitOK || !strings.Contains(stdout.String(), "\nAS0,") {
		t.Errorf("stdin: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
}

func TestMapTokenFromEnv(t *testing.T) {
	url := mapAggregator(t)
	args := []string{"map", "--target", "k-root", "--aggregator", url, "--from", "2026-03-01T10:00:00Z"}
	mustRun(t, map[string]string{"CATCHMAP_TOKEN": mapToken}, args...)
	code, _, stderr := runMap(t, nil, args...)
	if code != exitFail || !strings.Contains(stderr, "401 Unauthorized: missing or wrong read token (give a read token with --token or $CATCHMAP_TOKEN)") {
		t.Errorf("no token: exit %d, %s", code, stderr)
	}
	if strings.Contains(stderr, mapToken) {
		t.Errorf("token leaked: %s", stderr)
	}
}

func TestMapErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	agg := mapAggregator(t)
	in := mapInput(t)
	for _, c := range []struct {
		code int
		want string
		args []string
	}{
		{exitUsage, "give either --aggregator URL", []string{"map", "--target", "k"}},
		{exitUsage, "give either --aggregator URL", []string{"map", "--target", "k", "--input", in, "--aggregator", agg}},
		{exitUsage, "--res 9 is out of range: use 0 to 7", []string{"map", "--target", "k", "--input", in, "--res", "9"}},
		{exitUsage, "--by", []string{"map", "--target", "k", "--input", in, "--by", "prefix"}},
		{exitUsage, "is not an RFC 3339 time", []string{"map", "--target", "k", "--input", in, "--from", "yesterday"}},
		{exitUsage, "give at most two", []string{"map", "--target", "k", "--input", in, "--from", "2026-03-01T10:00:00Z", "--to", "2026-03-01T11:00:00Z", "--window", "1m"}},
		{exitUsage, "--sites applies to --input only", []string{"map", "--target", "k", "--aggregator", agg, "--sites", "x.yaml"}},
		{exitUsage, "is not an http(s) URL", []string{"map", "--target", "k", "--aggregator", "127.0.0.1:1"}},
		{exitUsage, "--input needs both windows", []string{"diff", "--target", "k", "--input", in, "--a-from", "2026-03-01T10:00:00Z"}},
		{exitUsage, "--b-from must be before --b-to", []string{"diff", "--target", "k", "--aggregator", agg, "--b-from", "2026-03-01T10:00:00Z", "--b-to", "2026-03-01T09:00:00Z"}},
		{exitFail, "cannot reach the aggregator at " + dead, []string{"map", "--target", "k", "--aggregator", dead}},
		{exitFail, "cannot reach the aggregator at " + dead, []string{"diff", "--target", "k", "--aggregator", dead}},
		{exitFail, "the aggregator answered 400 Bad Request: window from to to is", []string{"map", "--target", "k", "--aggregator", agg,
			"--token", mapToken, "--from", "2025-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"}},
		{exitFail, "cannot read --input", []string{"map", "--target", "k", "--input", filepath.Join(t.TempDir(), "none.ndjson")}},
	} {
		code, _, stderr := runMap(t, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("catchmap %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, stderr)
		}
	}
}

// TestMapTableHostileText: site codes, countries and targets from a results
// file reach the terminal escaped: no C0 or C1 control and no bidi control
// is printed raw, so a hostile site name cannot rewrite the screen.
func TestMapTableHostileText(t *testing.T) {
	rs := mapFixture()[:6]
	hostile := []string{"ams\x1b[2J", "fra\u009b31m", "sin\u202egnp", "x\u0007\u2066y"}
	for i := range rs {
		rs[i].Site = hostile[i%len(hostile)]
		rs[i].Country = "N\x1bL"
	}
	var buf bytes.Buffer
	w := result.NewNDJSONWriter(&buf)
	for i := range rs {
		if err := w.Write(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	in := filepath.Join(t.TempDir(), "hostile.ndjson")
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, by := range []string{"h3", "country"} {
		code, out, errOut := runMap(t, nil, "map", "--input", in, "--target", "k-root", "--by", by, "--format", "table")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if i := strings.IndexFunc(out, func(r rune) bool {
			return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r))
		}); i >= 0 {
			t.Errorf("--by %s: the table prints %q raw:\n%q", by, out[i:i+1], out)
		}
		if !strings.Contains(out, `ams\x1b[2J`) || !strings.Contains(out, `sin\u202egnp`) {
			t.Errorf("--by %s: the escaped site codes are missing:\n%s", by, out)
		}
	}
}
