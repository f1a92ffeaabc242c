package globalping

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/fleet/fleettest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// measure runs s through the fake from every probe of the fixtures and
// returns the records and the probes they came from.
func measure(t *testing.T, s spec.Spec) (*Measurement, []*result.Record, []*Probe) {
	t.Helper()
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c := client(t, srv, "", clock)
	created, err := c.Create(ctx(t), request(t, s, everywhere))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Wait(ctx(t), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := NewConverter(s)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*result.Record
	var probes []*Probe
	if err := conv.Records(m, func(r *result.Record, p *Probe) error {
		recs, probes = append(recs, r), append(probes, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(m.Results) {
		t.Fatalf("%d records for %d tests", len(recs), len(m.Results))
	}
	return m, recs, probes
}

// want is what a test checks of a record.
type want struct {
	probe, identity, site string
	kind                  result.ErrorKind
	errorHas              string
	rtt                   float64
	addr                  string
}

func check(t *testing.T, m *Measurement, recs []*result.Record, wants []want) {
	t.Helper()
	for i, w := range wants {
		r := recs[i]
		if r.Probe != w.probe || r.Identity != w.identity || r.Site != w.site || r.ErrorKind != w.kind ||
			!strings.Contains(r.Error, w.errorHas) || (w.kind == result.KindNone) != (r.Error == "") || r.RTTMs != w.rtt || r.Addr != w.addr {
			t.Errorf("record %d: %+v\nwant %+v", i, r, w)
		}
		p := m.Results[i].Probe
		if r.ID != "gp-"+m.ID+"-"+string(rune('0'+i)) || !r.Time.Equal(t0) || r.Country != p.Country || r.ASN != p.ASN ||
			r.Lat == nil || *r.Lat != *p.Lat || *r.Lon != *p.Lon || !slices.Contains(result.Kinds, r.ErrorKind) && r.ErrorKind != "" {
			t.Errorf("record %d: id, time or place: %+v", i, r)
		}
		if w.addr != "" && r.AF != 4 {
			t.Errorf("record %d: af %d", i, r.AF)
		}
	}
}

// TestDNSRecords follows a plan entry through the fake: OpenDNS's site by
// IN TXT debug.opendns.com from every probe of testdata/dns-results.json.
func TestDNSRecords(t *testing.T) {
	s := openDNS()
	m, recs, probes := measure(t, s)
	const addr = "208.67.222.222"
	check(t, m, recs, []want{
		{probe: "gp:1136:amsterdam:1", identity: "server m85.ams", site: "ams", rtt: 9, addr: addr},
		{probe: "gp:1136:amsterdam:2", identity: "server m84.ams", site: "ams", rtt: 7, addr: addr},
		// No TXT, but the NSID dig printed names the server.
		{probe: "gp:3320:berlin:1", identity: "m81.fra", rtt: 18, addr: addr},
		{probe: "gp:7922:ashburn:1", kind: result.KindTimeout, addr: addr,
			errorHas: "dns to 208.67.222.222 via Globalping: the test failed (Globalping blames the resolver): The measurement command timed out."},
		{probe: "gp:4134:shanghai:1", kind: result.KindRefused, rtt: 41, addr: addr, errorHas: "the server refused debug.opendns.com. IN TXT"},
		{probe: "gp:12389:moscow:1", kind: result.KindNetwork, addr: addr, errorHas: "the probe was offline"},
		{probe: "gp:16509:frankfurt:1", kind: result.KindNotAllowed, addr: addr, errorHas: "Private IP ranges are not allowed."},
	})
	if d := recs[2].DNS; d == nil || d.NSID != "m81.fra" || d.QName != "debug.opendns.com." || d.QClass != "IN" || d.QType != "TXT" || d.Rcode != "NOERROR" || d.TCP {
		t.Errorf("dns details %+v", d)
	}
	if recs[0].Target != s.Target || recs[0].Method != result.MethodDNS || probes[6].Network != "Amazon.com, Inc." {
		t.Errorf("record %+v, probe %+v", recs[0], probes[6])
	}
}

// TestHTTPRecords: Cloudflare's site from the cf-ray header of every
// probe of testdata/http-results.json.
func TestHTTPRecords(t *testing.T) {
	m, recs, _ := measure(t, cloudflare())
	const addr = "104.16.124.96"
	check(t, m, recs, []want{
		{probe: "gp:4766:seoul:1", identity: "8f1e2d3c4b5a6978-ICN", site: "icn", rtt: 4, addr: addr},
		// An error page still names the site it came from.
		{probe: "gp:2516:tokyo:1", identity: "8f1e2d3c4b5a6979-NRT", site: "nrt", rtt: 3, addr: addr, kind: result.KindHTTPStatus,
			errorHas: "http to 104.16.124.96 via Globalping: status 503 Service Unavailable"},
		{probe: "gp:3215:paris:1", rtt: 6, addr: addr, kind: result.KindNoIdentity, errorHas: "no cf-ray header in the response"},
		{probe: "gp:28573:são-paulo:1", addr: addr, kind: result.KindRefused, errorHas: "connect ECONNREFUSED 104.16.124.96:443"},
		{probe: "gp:1221:sydney:1", kind: result.KindTimeout, errorHas: "http to https://www.example.net/ via Globalping: the test failed (Globalping blames the target): Request timeout."},
		{probe: "gp:7018:chicago:1", rtt: 4, addr: addr, kind: result.KindTLS, errorHas: "the certificate is not trusted: CERT_HAS_EXPIRED"},
	})
	if h := recs[0].HTTP; h == nil || *h != (result.HTTP{Status: 200, DNSMs: 5, ConnectMs: 4, TLSMs: 9, FirstByteMs: 39, TotalMs: 40, Proto: "HTTP/1.1"}) {
		t.Errorf("http details %+v", h)
	}
	if got := m.Results[0].Test.Headers.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("a header sent twice: %q", got)
	}
	if recs[4].AF != 0 || recs[4].Addr != "" {
		t.Errorf("a test that connected nowhere: %+v", recs[4])
	}
}

// TestIdentifyFromResults reads what other presets need from results
// written as Globalping writes them: Fastly's last x-served-by entry, a
// body, an untrusted certificate accepted with insecure.
func TestIdentifyFromResults(t *testing.T) {
	body := func(js string) *Measurement {
		t.Helper()
		m, err := decodeMeasurement([]byte(`{"id": "m1", "type": "http", "status": "finished", "target": "www.example.net",
			"createdAt": "2026-01-01T00:00:00.000Z", "probesCount": 1, "results": [{"probe": {"city": "Frankfurt", "asn": 3320,
			"latitude": 50.11, "longitude": 8.68}, "result": ` + js + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		s              spec.Spec
		result         string
		identity, site string
		kind           result.ErrorKind
	}{
		{spec.Spec{Preset: "fastly"}, `{"status": "finished", "statusCode": 200, "headers": {"x-served-by": ["cache-fra-eddf8230065-FRA", "cache-yyz4549-YYZ"]}}`,
			"cache-yyz4549-YYZ", "yyz", ""},
		{spec.Spec{Preset: "cloudflare-trace"}, `{"status": "finished", "statusCode": 200, "headers": {}, "rawBody": "fl=1\nh=www.example.net\ncolo=FRA\n"}`,
			"colo=FRA", "fra", ""},
		{spec.Spec{Preset: "cloudflare-trace"}, `{"status": "finished", "statusCode": 200, "headers": {}, "rawBody": "<html>", "truncated": true}`,
			"", "", result.KindNoIdentity},
		{spec.Spec{Preset: "cloudflare", Insecure: true}, `{"status": "finished", "statusCode": 200, "headers": {"cf-ray": "1-FRA"}, "tls": {"authorized": false}}`,
			"1-FRA", "fra", ""},
		{spec.Spec{Preset: "cloudflare"}, `{"status": "finished", "headers": {"cf-ray": "1-FRA"}}`, "1-FRA", "fra", result.KindMalformed},
		{spec.Spec{Preset: "cloudflare"}, `{"status": "weird"}`, "", "", result.KindMalformed},
		{spec.Spec{Preset: "cloudflare"}, `[1]`, "", "", result.KindMalformed},
	} {
		tc.s.Target, tc.s.Method = "https://www.example.net/", result.MethodHTTP
		conv, err := NewConverter(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		var got *result.Record
		if err := conv.Records(body(tc.result), func(r *result.Record, _ *Probe) error { got = r; return nil }); err != nil {
			t.Fatal(err)
		}
		if got.Identity != tc.identity || got.Site != tc.site || got.ErrorKind != tc.kind || got.Probe != "gp:3320:frankfurt:1" {
			t.Errorf("%s %s: %+v", tc.s.Preset, tc.result, got)
		}
	}
	conv, _ := NewConverter(openDNS())
	if err := conv.Records(body(`{"status": "finished"}`), nil); err == nil || !strings.Contains(err.Error(), `is of type "http", and the spec's method is dns`) {
		t.Errorf("a measurement of another type: %v", err)
	}
}

func TestNSID(t *testing.T) {
	for raw, want := range map[string]string{
		"; EDNS: version: 0\n; NSID: 67 70 64 6e 73 2d 73 79 64 (\"gpdns-syd\")\n;; QUESTION SECTION:": "gpdns-syd",
		"; NSID: 67 70 64 (g p d)":              "gpd",
		"  ; NSID: 00 ff 41 (\"..A\")":          "\x00\xffA",
		"; NSID: \"ns1.nl-ams.k.ripe.net\"":     "ns1.nl-ams.k.ripe.net",
		";; ANSWER SECTION:\nx. 0 IN TXT \"a\"": "",
		"; NSID: ":                              "",
		"; NSID: zz (\"x\")":                    "",
	} {
		got, ok := NSID(raw)
		if string(got) != want || ok != (want != "") {
			t.Errorf("NSID(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

// TestProbeIDs: what the derived ids keep when the results come in
// another order or a probe leaves.
func TestProbeIDs(t *testing.T) {
	var items []struct {
		Probe probeJSON `json:"probe"`
	}
	if err := json.Unmarshal(fixture(t, "dns-results.json"), &items); err != nil {
		t.Fatal(err)
	}
	var rs []Result
	for _, it := range items {
		rs = append(rs, Result{Probe: it.Probe.probe()})
	}
	// A third probe in Amsterdam's AS1136, which sorts between the two.
	third := rs[0].Probe
	third.Resolvers = []string{"8.8.8.8"}
	rs = append(rs, Result{Probe: third})
	byKey := func(rs []Result) map[string]string {
		out := map[string]string{}
		for i, id := range probeIDs(rs) {
			out[rs[i].Probe.sortKey()+rs[i].Probe.City] = id
		}
		return out
	}
	base := byKey(rs)
	if len(base) != len(rs) {
		t.Fatalf("ids %v are not one a probe", base)
	}
	for range 20 {
		shuffled := slices.Clone(rs)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := byKey(shuffled); !mapsEqual(got, base) {
			t.Fatalf("the order of the results changed the ids: %v, want %v", got, base)
		}
	}
	ids := probeIDs(rs)
	if ids[0] != "gp:1136:amsterdam:1" || ids[7] != "gp:1136:amsterdam:2" || ids[1] != "gp:1136:amsterdam:3" {
		t.Errorf("ids %v", ids)
	}
	// The probe that sorts last leaving changes no other id; the first
	// leaving renumbers those after it, in its ASN and city only.
	if got := probeIDs(rs[:7]); got[0] != ids[0] || got[1] != "gp:1136:amsterdam:2" || got[2] != ids[2] {
		t.Errorf("without the third probe: %v", got)
	}
	if got := probeIDs(rs[1:]); got[0] != "gp:1136:amsterdam:2" || got[6] != "gp:1136:amsterdam:1" || got[1] != ids[2] {
		t.Errorf("without the first probe: %v", got)
	}
	for city, want := range map[string]string{"São Paulo": "são-paulo", "Washington, D.C.": "washington-d-c", "": "unknown", " -- ": "unknown",
		strings.Repeat("a", 100): strings.Repeat("a", maxCity)} {
		if got := citySlug(city); got != want {
			t.Errorf("citySlug(%q) = %q, want %q", city, got, want)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPresets(t *testing.T) {
	table := map[string]Support{}
	for _, s := range Presets() {
		table[s.Preset+" "+s.Method] = s
	}
	for key, works := range map[string]bool{"opendns dns": true, "google dns": true, "k-root dns": false, "cloudflare dns": false,
		"quad9 dns": false, "cloudflare http": true, "cloudflare-trace http": true, "akamai http": true, "fastly http": true} {
		if s, ok := table[key]; !ok || s.Works != works || s.Why == "" {
			t.Errorf("%s: %+v, want works %v", key, s, works)
		}
	}
	if why := table["k-root dns"].Why; !strings.HasPrefix(why, "preset k-root asks hostname.bind. CH TXT, and Globalping asks class IN only") {
		t.Errorf("k-root: %s", why)
	}
	if why := table["google dns"].Why; !strings.Contains(why, "name no site") {
		t.Errorf("google: %s", why)
	}
}
