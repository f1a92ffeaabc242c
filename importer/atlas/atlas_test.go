package atlas

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/geo/geotest"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/importer/atlas/atlastest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/results.ndjson.bz2 and the fuzz seeds from the fixtures (needs the bzip2 command)")

func converter(t testing.TB, sp spec.Spec, ps Probes) *Converter {
	t.Helper()
	sp.Method = result.MethodDNS
	id, err := spec.NewIdentifier(&sp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(Options{Ident: id, Probes: ps})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apiProbes(t testing.TB) Probes {
	ps := Probes{}
	if err := ReadProbes(strings.NewReader(probesAPI), ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// importAll reads every record out of in.
func importAll(t testing.TB, c *Converter, in io.Reader) []*result.Record {
	t.Helper()
	rd, err := NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	var rs []*result.Record
	for {
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rs
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Convert(res, func(r *result.Record) error { rs = append(rs, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFixtures(t *testing.T) {
	fs := fixtures(t)
	c := converter(t, spec.Spec{Preset: "k-root"}, apiProbes(t))
	for _, f := range fs {
		t.Run(f.name, func(t *testing.T) {
			rs := importAll(t, c, bytes.NewReader(lines(t, []fixture{f})))
			if len(rs) != len(f.want) {
				t.Fatalf("%d records, want %d", len(rs), len(f.want))
			}
			prb := int64(f.res["prb_id"].(int64))
			for i, r := range rs {
				w := f.want[i]
				if r.Site != w.site || r.Identity != w.identity || r.ErrorKind != w.kind ||
					r.RTTMs != w.rtt || r.AF != w.af || r.Suspect != w.suspect {
					t.Errorf("record %d: site %q identity %q kind %q rtt %v af %d suspect %v; want %+v (error %q)",
						i, r.Site, r.Identity, r.ErrorKind, r.RTTMs, r.AF, r.Suspect, w, r.Error)
				}
				if (r.ErrorKind == result.KindNone) != (r.Error == "") {
					t.Errorf("record %d: kind %q but error %q", i, r.ErrorKind, r.Error)
				}
				if want := ID(kMsm, prb, kTime, i); r.ID != want {
					t.Errorf("record %d: id %q, want %q", i, r.ID, want)
				}
				if want := fmt.Sprintf("atlas:%d", prb); r.Probe != want || r.Method != "dns" {
					t.Errorf("record %d: probe %q method %q", i, r.Probe, r.Method)
				}
				if r.Time.Before(time.Unix(kTime, 0)) || r.Time.After(time.Unix(kTime+2, 0)) {
					t.Errorf("record %d: time %v", i, r.Time)
				}
			}
		})
	}
}

func TestRecordFields(t *testing.T) {
	c := converter(t, spec.Spec{Preset: "k-root"}, apiProbes(t))
	rs := importAll(t, c, bytes.NewReader(lines(t, fixtures(t))))
	byID := map[string]*result.Record{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	r := byID[ID(kMsm, 1001, kTime, 0)]
	if r.Target != kName || r.Addr != kAddr || !r.Time.Equal(time.Unix(kTime, 0)) {
		t.Errorf("target %q addr %q time %v", r.Target, r.Addr, r.Time)
	}
	if r.DNS == nil || r.DNS.QName != "hostname.bind." || r.DNS.QClass != "CH" || r.DNS.QType != "TXT" ||
		r.DNS.Rcode != "NOERROR" || r.DNS.TCP || r.DNS.Size == 0 {
		t.Errorf("dns details %+v", r.DNS)
	}
	// geometry.coordinates is [lon, lat].
	if r.Lat == nil || *r.Lat != 50.1109 || *r.Lon != 8.6821 || r.Country != "DE" || r.ASN != 3320 {
		t.Errorf("probe 1001 placed at %v,%v %s AS%d; want 50.1109,8.6821 DE AS3320", deref(r.Lat), deref(r.Lon), r.Country, r.ASN)
	}
	// A probe asking over IPv6 is in its IPv6 network's AS.
	if r := byID[ID(kMsm, 1017, kTime, 0)]; r.ASN != 64496 || r.Lat != nil {
		t.Errorf("probe 1017 over IPv6: AS%d lat %v; want AS64496 and no location", r.ASN, r.Lat)
	}
	// A resultset item is named by its own resolver's address.
	if r := byID[ID(kMsm, 1012, kTime, 0)]; r.Target != "2001:db8::53" || r.ASN != 1299 || !r.Time.Equal(time.Unix(kTime+1, 0)) {
		t.Errorf("resultset item: target %q AS%d time %v", r.Target, r.ASN, r.Time)
	}
	if r := byID[ID(kMsm, 1016, kTime, 0)]; r.Lat != nil || r.ASN != 0 {
		t.Errorf("probe 1016 is not in the metadata but was placed: %+v", r)
	}
	if r := byID[ID(kMsm, 1014, kTime, 0)]; !strings.Contains(r.Error, "rt") {
		t.Errorf("a field of the wrong type should be named: %q", r.Error)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestTargetAndRegex(t *testing.T) {
	id, err := spec.NewIdentifier(&spec.Spec{Method: "dns", SiteRegex: `^ns\d\.([a-z]{2})-`})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(Options{Ident: id, Target: "K-root"})
	if err != nil {
		t.Fatal(err)
	}
	rs := importAll(t, c, bytes.NewReader(lines(t, fixtures(t)[:1])))
	if rs[0].Target != "K-root" || rs[0].Site != "de" {
		t.Errorf("target %q site %q; want K-root, de", rs[0].Target, rs[0].Site)
	}
}

// Any TXT measurement reads with a site regex: the question is the one in
// the answer, not the identifier's default.
func TestOtherQuestion(t *testing.T) {
	q9 := chaos("res100.qams2.rrdns.pch.net")
	q9.Q.Name = "id.server."
	f := atlastest.K.Result(2001, 5080, atlastest.OK(t, q9, 4))
	c := converter(t, spec.Spec{Preset: "quad9"}, nil)
	rs := importAll(t, c, bytes.NewReader(lines(t, []fixture{{res: f}})))
	if rs[0].Site != "ams" || rs[0].DNS.QName != "id.server." {
		t.Errorf("site %q qname %q error %q", rs[0].Site, rs[0].DNS.QName, rs[0].Error)
	}
}

// TestQuestionWarning: the warning about another question says "asked"
// only when qbuf says what Atlas asked, and answers whose class the path
// rewrote (IN for CH) raise none, being mismatches of the identifier's
// question.
func TestQuestionWarning(t *testing.T) {
	idServer := chaos("ns1.de-fra.k.ripe.net")
	idServer.Q.Name = "id.server."
	var rewritten []fixture
	for _, f := range fixtures(t) {
		if strings.HasPrefix(f.name, "rewritten_") {
			rewritten = append(rewritten, f)
		}
	}
	for _, tc := range []struct {
		name string
		fs   []fixture
		want string // in the log; "" for no warning
	}{
		{"rewritten class", rewritten, ""},
		{"other question in the answer", []fixture{{res: atlastest.K.Result(2002, 5080, atlastest.OK(t, idServer, 4))}},
			`answered="CH TXT id.server."`},
		{"other question in qbuf", []fixture{{res: atlastest.K.Result(2003, 5080, map[string]any{
			"qbuf": atlastest.Qbuf(t, idServer.Q), "result": atlastest.OKResult(t, idServer, 4)})}},
			`asked="CH TXT id.server."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			c := converter(t, spec.Spec{Preset: "k-root"}, nil)
			c.opt.Log = slog.New(slog.NewTextHandler(&log, nil))
			importAll(t, c, bytes.NewReader(lines(t, tc.fs)))
			if got := log.String(); tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("log %q, want %q", got, tc.want)
			}
			if tc.want != `asked="CH TXT id.server."` && strings.Contains(log.String(), "asked=") {
				t.Errorf("log %q claims to know what Atlas asked", log.String())
			}
		})
	}
}

const bz2File = "testdata/results.ndjson.bz2"

// TestShapes reads the fixtures in every layout and compression Atlas uses
// and wants the same records from each. The bzip2 file is committed (Go
// has no bzip2 writer); -update regenerates it with the bzip2 command.
func TestShapes(t *testing.T) {
	fs := fixtures(t)
	if *update {
		writeBZ2(t, lines(t, fs))
		writeSeeds(t, fs)
	}
	bz, err := os.ReadFile(bz2File)
	if err != nil {
		t.Fatalf("%v: run go test -run TestShapes -update", err)
	}
	shapes := map[string][]byte{
		"ndjson":         lines(t, fs),
		"array":          atlastest.Array(t, results(fs)...),
		"array_indented": bytes.ReplaceAll(atlastest.Array(t, results(fs)...), []byte("},{"), []byte("},\n  {")),
		"latest":         atlastest.Latest(t, results(fs)...),
		"ndjson.gz":      atlastest.Gzip(t, lines(t, fs)),
		"array.gz":       atlastest.Gzip(t, atlastest.Array(t, results(fs)...)),
		"ndjson.bz2":     bz,
	}
	c := converter(t, spec.Spec{Preset: "k-root"}, apiProbes(t))
	want := byID(importAll(t, c, bytes.NewReader(shapes["ndjson"])))
	if len(want) != nRecords(fs) {
		t.Fatalf("%d distinct records from the fixtures, want %d", len(want), nRecords(fs))
	}
	for name, in := range shapes {
		t.Run(name, func(t *testing.T) {
			got := byID(importAll(t, c, bytes.NewReader(in)))
			if !reflect.DeepEqual(got, want) {
				for id, r := range want {
					if !reflect.DeepEqual(got[id], r) {
						t.Errorf("%s: got %+v\nwant %+v", id, got[id], r)
					}
				}
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
		})
	}
}

func byID(rs []*result.Record) map[string]result.Record {
	m := map[string]result.Record{}
	for _, r := range rs {
		m[r.ID] = *r
	}
	return m
}

func writeBZ2(t *testing.T, b []byte) {
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		t.Fatalf("-update needs the bzip2 command (Debian package bzip2): %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(bz2File), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bz, "-c", "-9")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bz2File, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSeeds writes each fixture, and a few broken inputs, as a seed of
// FuzzAtlasDecode.
func writeSeeds(t *testing.T, fs []fixture) {
	dir := filepath.Join("testdata", "fuzz", "FuzzAtlasDecode")
	seeds := map[string][]byte{
		"array":        atlastest.Array(t, results(fs[:3])...),
		"latest":       atlastest.Latest(t, results(fs[3:6])...),
		"cut_array":    atlastest.Array(t, results(fs[:2])...)[:200],
		"empty_latest": []byte("{}"),
	}
	for _, f := range fs {
		seeds[f.name] = lines(t, []fixture{f})
	}
	writeCorpus(t, dir, seeds)
	writeCorpus(t, filepath.Join("testdata", "fuzz", "FuzzReadProbes"), map[string][]byte{
		"api":     []byte(probesAPI),
		"archive": []byte(probesArchive),
		"plain":   []byte(`[{"id": 7, "geometry": {"coordinates": [200, 10]}, "asn_v4": 65000}]`),
	})
}

func writeCorpus(t *testing.T, dir string, seeds map[string][]byte) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	one := string(lines(t, fixtures(t)[:1]))
	cases := []struct{ name, in, want string }{
		{"empty", "  \n", "the input is empty"},
		{"not json", "hello", `starts with "hello"`},
		{"cut array", "[" + strings.TrimSpace(one) + ",", "cut short"},
		{"cut object", one[:50], "cut short"},
		{"data after array", "[" + strings.TrimSpace(one) + "] []", "data after the end"},
		{"element not object", "[1]", "is a JSON number, not an object"},
		{"ping result", `{"type": "ping", "prb_id": 1}`, `"ping" result`},
		{"latest not array", `{"1001": 5}`, "not an array"},
		{"broken gzip", "\x1f\x8b\x08\x00garbage", "gzip"},
		{"bad json", `{"af": 4,, }`, "bad JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := readAll(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	for _, in := range []string{"[]", "{}", " [ ] \n"} {
		if err := readAll(strings.NewReader(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func readAll(in io.Reader) error {
	rd, err := NewReader(in)
	if err != nil {
		return err
	}
	for {
		if _, err := rd.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestProbes(t *testing.T) {
	api, archive := Probes{}, Probes{}
	if err := ReadProbes(strings.NewReader(probesAPI), api); err != nil {
		t.Fatal(err)
	}
	if err := ReadProbes(bytes.NewReader(atlastest.Gzip(t, []byte(probesArchive))), archive); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(api, archive) {
		t.Errorf("the API and archive forms differ:\n%+v\n%+v", api, archive)
	}
	p := api[1001]
	if p.Lat == nil || *p.Lat != 50.1109 || *p.Lon != 8.6821 || p.ASNv4 != 3320 || p.ASNv6 != 0 || p.Country != "DE" {
		t.Errorf("probe 1001: %+v lat %v lon %v", p, deref(p.Lat), deref(p.Lon))
	}
	// A plain array of probes, with an out-of-range location dropped.
	plain := Probes{}
	if err := ReadProbes(strings.NewReader(`[{"id": 7, "geometry": {"coordinates": [200, 10]}, "asn_v4": 65000}]`), plain); err != nil {
		t.Fatal(err)
	}
	if p := plain[7]; p.Lat != nil || p.ASNv4 != 65000 {
		t.Errorf("probe 7: %+v", p)
	}
	for in, want := range map[string]string{
		`{"count": 0}`:          `no "results"`,
		`"probes"`:              "starts with probes",
		`{"results": [{"id": 1`: "cut short",
		`{"results": 5}`:        "not an array",
		`[{"id": "x"}]`:         "probe 1",
	} {
		if err := ReadProbes(strings.NewReader(in), Probes{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

// Probes missing from the metadata are placed by GeoIP of their public
// address, with real (generated) mmdb files.
func TestGeoFallback(t *testing.T) {
	city, asn := geotest.Write(t, t.TempDir(), geotest.Place{Network: "198.51.100.0/24", Lat: 48.85, Lon: 2.35, Country: "FR", ASN: 64501, Org: "Test"})
	db, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := spec.NewIdentifier(&spec.Spec{Method: "dns", Preset: "k-root"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(Options{Ident: id, Probes: apiProbes(t), Geo: db})
	if err != nil {
		t.Fatal(err)
	}
	rs := byID(importAll(t, c, bytes.NewReader(lines(t, fixtures(t)))))
	if r := rs[ID(kMsm, 1016, kTime, 0)]; r.Lat == nil || *r.Lat != 48.85 || r.Country != "FR" || r.ASN != 64501 {
		t.Errorf("probe 1016 by GeoIP: %v %s AS%d", deref(r.Lat), r.Country, r.ASN)
	}
	// Metadata wins over GeoIP.
	if r := rs[ID(kMsm, 1001, kTime, 0)]; r.Country != "DE" {
		t.Errorf("probe 1001 should keep its metadata: %s", r.Country)
	}
}

// Importing the same results twice into SQLite stores them once.
func TestIdempotentSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "catchmap.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := converter(t, spec.Spec{Preset: "k-root"}, apiProbes(t))
	fs := fixtures(t)
	in := lines(t, fs)
	for i, want := range []int{nRecords(fs), 0} {
		var rs []result.Record
		for _, r := range importAll(t, c, bytes.NewReader(in)) {
			rs = append(rs, *r)
		}
		stored, err := st.Append(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		if stored != want {
			t.Errorf("import %d stored %d, want %d", i+1, stored, want)
		}
	}
}

func TestResultsURL(t *testing.T) {
	start, stop := time.Unix(1764000000, 0), time.Unix(1764003600, 0)
	for _, tc := range []struct {
		got, want string
	}{
		{ResultsURL(DefaultBaseURL, 10301, start, stop, false), "https://atlas.ripe.net/api/v2/measurements/10301/results/?start=1764000000&stop=1764003600"},
		{ResultsURL("http://127.0.0.1:1/", 10301, time.Time{}, time.Time{}, false), "http://127.0.0.1:1/api/v2/measurements/10301/results/"},
		{ResultsURL(DefaultBaseURL, 10301, start, stop, true), "https://atlas.ripe.net/api/v2/measurements/10301/latest/"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// TestFetch serves recorded results from a local Atlas stand-in.
func TestFetch(t *testing.T) {
	fs := fixtures(t)
	body := atlastest.Gzip(t, atlastest.Array(t, results(fs)...))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Key sekrit" {
			http.Error(w, `{"error": {"detail": "Authentication credentials were not provided."}}`, http.StatusForbidden)
			return
		}
		if r.URL.Path != "/api/v2/measurements/10301/results/" || r.URL.Query().Get("start") != "1764000000" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	ctx := context.Background()
	u := ResultsURL(srv.URL, kMsm, time.Unix(kTime, 0), time.Time{}, false)
	rc, _, err := Fetch(ctx, srv.Client(), u, token.Parse("sekrit"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if rs := importAll(t, converter(t, spec.Spec{Preset: "k-root"}, nil), rc); len(rs) != nRecords(fs) {
		t.Errorf("%d records, want %d", len(rs), nRecords(fs))
	}
	_, _, err = Fetch(ctx, srv.Client(), u, token.Token{})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "--atlas-key") {
		t.Errorf("without a key: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sekrit") {
		t.Errorf("the key leaked into an error: %v", err)
	}
}
