package atlas

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/atlas/atlastest"
	atlasimport "github.com/catchmap/catchmap/importer/atlas"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

func kRootIdent(t testing.TB) *spec.Identifier {
	t.Helper()
	id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, Preset: "k-root"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func source(t testing.TB, c *Client) *Source {
	t.Helper()
	s, err := NewSource(c, NewProbeCache(c, 0), SourceOptions{Ident: kRootIdent(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func records(t testing.TB, s *Source, id int64, start, stop int64) map[string]*result.Record {
	t.Helper()
	out := map[string]*result.Record{}
	err := s.Records(ctx(t), id, time.Unix(start, 0), time.Unix(stop, 0), func(r *result.Record) error {
		if _, dup := out[r.ID]; dup {
			t.Errorf("record %s twice in one poll", r.ID)
		}
		out[r.ID] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// probeRequests counts the requests to the probes route and the ids they
// asked for.
func probeRequests(srv *atlastest.Server) (n int, ids []string) {
	for _, r := range srv.Requests() {
		if r.Route == atlastest.RouteProbes {
			n++
			if r.Query.Get("page") == "" {
				ids = append(ids, r.Query.Get("id__in"))
			}
		}
	}
	return n, ids
}

// TestPolls follows what the fleet runner does: poll the last hour, then
// again after late results arrived.
func TestPolls(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, srv.Key)
	id := create(t, c, kRoot())
	src := source(t, c)
	srv.Deliver(t, id, fixture(t, "results.json"))

	first := records(t, src, id, t0-3600, t0+3600)
	if len(first) != 6 {
		t.Fatalf("%d records, want one per result (6)", len(first))
	}
	get := func(rs map[string]*result.Record, prb int64, ts int64) *result.Record {
		t.Helper()
		r := rs[atlasimport.ID(id, prb, ts, 0)]
		if r == nil {
			t.Fatalf("no record of probe %d at %d", prb, ts)
		}
		return r
	}
	fra := get(first, 1001, t0)
	if fra.Probe != "atlas:1001" || fra.Site != "de-fra" || fra.Identity != "ns1.de-fra.k.ripe.net" || fra.RTTMs != 12.5 ||
		fra.Lat == nil || *fra.Lat != 50.1109 || *fra.Lon != 8.6821 || fra.Country != "DE" || fra.ASN != 3320 ||
		fra.DNS == nil || fra.DNS.QName != "hostname.bind." || fra.DNS.QClass != "CH" || fra.Target != "k.root-servers.net" {
		t.Errorf("probe 1001: %+v dns %+v", fra, fra.DNS)
	}
	if ams := get(first, 1002, t0+5); ams.Site != "nl-ams" || ams.DNS.NSID != "k2.nl-ams" || ams.ASN != 1136 {
		t.Errorf("probe 1002: site %q nsid %q AS%d", ams.Site, ams.DNS.NSID, ams.ASN)
	}
	if lon := get(first, 1003, t0+9); lon.Site != "gb-lon" || lon.Country != "GB" {
		t.Errorf("probe 1003, answers without abuf: site %q country %q", lon.Site, lon.Country)
	}
	if to := get(first, 1004, t0+12); to.ErrorKind != result.KindTimeout || to.OK() {
		t.Errorf("probe 1004: kind %q error %q", to.ErrorKind, to.Error)
	}
	if un := get(first, 1006, t0+302); un.Lat != nil || un.Country != "" || un.Site != "nl-ams" {
		t.Errorf("probe 1006, unknown to Atlas: placed at %v %q", un.Lat, un.Country)
	}
	n, asked := probeRequests(srv)
	if len(asked) != 1 || asked[0] != "1001,1002,1003,1004,1005,1006" || n != 3 {
		t.Errorf("%d probe requests asking %q: want one lookup of the six probes, in three pages of two", n, asked)
	}
	for _, r := range srv.Requests() {
		if r.Route == atlastest.RouteResults &&
			(r.Query.Get("start") != "1767222000" || r.Query.Get("stop") != "1767229200" || r.Query.Get("format") != "json") {
			t.Errorf("results query %v", r.Query)
		}
	}

	// Atlas filters on the time the probe measured.
	if w := records(t, src, id, t0, t0+60); len(w) != 4 {
		t.Errorf("%d records in the first minute, want 4", len(w))
	}

	// Late results: the next poll of the same window finds them, and the
	// earlier ones again with the same ids.
	srv.Deliver(t, id, fixture(t, "results-late.json"))
	second := records(t, src, id, t0-3600, t0+3600)
	if len(second) != 8 {
		t.Fatalf("%d records after the late results, want 8", len(second))
	}
	for rid, r := range first {
		if !reflect.DeepEqual(second[rid], r) {
			t.Errorf("record %s changed between polls:\n%+v\n%+v", rid, r, second[rid])
		}
	}
	if mia := get(second, 1007, t0+20); mia.Site != "us-mia" || mia.Lat == nil || *mia.Lat != 25.7617 {
		t.Errorf("late probe 1007: site %q lat %v", mia.Site, mia.Lat)
	}
	_, asked = probeRequests(srv)
	if !slices.Equal(asked, []string{"1001,1002,1003,1004,1005,1006", "1007"}) {
		t.Errorf("probe lookups %q: the cache should fetch only the new probe", asked)
	}
}

// TestSameAsImport: a fetched result becomes the record an import of the
// same result makes, id included, so fetching and importing store it once.
func TestSameAsImport(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, srv.Key)
	id := create(t, c, kRoot())
	srv.Deliver(t, id, fixture(t, "results.json"))
	fetched := records(t, source(t, c), id, 0, t0+3600)

	var dl bytes.Buffer
	if err := c.Results(ctx(t), id, time.Time{}, time.Time{}, func(r *atlasimport.Result) error {
		if r.MsmID != id {
			t.Errorf("result of measurement %d", r.MsmID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/api/v2/measurements/" + idString(id) + "/results/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(&dl, resp.Body); err != nil {
		t.Fatal(err)
	}
	ps := atlasimport.Probes{}
	if err := atlasimport.ReadProbes(bytes.NewReader(fixture(t, "probes.json")), ps); err != nil {
		t.Fatal(err)
	}
	conv, err := atlasimport.NewConverter(atlasimport.Options{Ident: kRootIdent(t), Probes: ps})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := atlasimport.NewReader(&dl)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := conv.Convert(res, func(r *result.Record) error {
			n++
			if !reflect.DeepEqual(fetched[r.ID], r) {
				t.Errorf("imported %+v\nfetched %+v", r, fetched[r.ID])
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n != len(fetched) {
		t.Errorf("%d imported, %d fetched", n, len(fetched))
	}
}

// TestResultErrors: what the caller's fn returns ends the stream, and a
// measurement of another type is refused by the importer's reader.
func TestResultErrors(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, srv.Key)
	id := create(t, c, kRoot())
	srv.Deliver(t, id, fixture(t, "results.json"))
	stop := errors.New("the store is full")
	calls := 0
	if err := c.Results(ctx(t), id, time.Time{}, time.Time{}, func(*atlasimport.Result) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn's error: %v after %d calls", err, calls)
	}
	ping := create(t, c, Spec{Target: "192.0.2.1", AFs: []int{4}, Type: TypePing, Probes: []Selection{{Type: "area", Value: "WW", Requested: 1}}})
	srv.Deliver(t, ping, []byte(`[{"type": "ping", "prb_id": 1001, "timestamp": 1767225600, "af": 4, "avg": 3.2}]`))
	err := source(t, c).Records(ctx(t), ping, time.Time{}, time.Time{}, func(*result.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `"ping" result`) || !strings.Contains(err.Error(), "reading the results of RIPE Atlas measurement") {
		t.Errorf("ping results: %v", err)
	}
	if _, err := NewSource(c, NewProbeCache(c, 0), SourceOptions{}); err == nil || !strings.Contains(err.Error(), "no identifier") {
		t.Errorf("a source without identifier: %v", err)
	}
}

func TestProbes(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, "")
	ids := []int64{1008, 1001, 9999, 1001}
	for i := range 450 {
		ids = append(ids, 20000+int64(i))
	}
	ps, err := c.Probes(ctx(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[1001].Country != "DE" || ps[1001].ASNv6 != 3320 || ps[1008].Lat != nil {
		t.Errorf("probes %+v", ps)
	}
	_, asked := probeRequests(srv)
	if len(asked) != 3 || !strings.HasPrefix(asked[0], "1001,1008,9999,20000,") {
		t.Errorf("id__in lists %d: want 453 ids in 3 requests of at most %d", len(asked), idsPerRequest)
	}
	for _, r := range srv.Requests() {
		if r.Auth != "" {
			t.Errorf("a key was sent (%q) though none is set", r.Auth)
		}
	}
}

func TestProbeCache(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, "")
	pc := NewProbeCache(c, time.Hour)
	now := time.Unix(t0, 0)
	pc.now = func() time.Time { return now }
	lookup := func(want int, ids ...int64) {
		t.Helper()
		ps, err := pc.Lookup(ctx(t), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != want {
			t.Errorf("Lookup(%v) found %d probes, want %d", ids, len(ps), want)
		}
	}
	lookup(2, 1001, 1002, 4242)
	lookup(2, 1001, 1002, 4242)
	now = now.Add(59 * time.Minute)
	lookup(3, 1001, 1002, 1003, 4242)
	now = now.Add(2 * time.Minute)
	lookup(1, 1001, 4242)
	_, asked := probeRequests(srv)
	if !slices.Equal(asked, []string{"1001,1002,4242", "1003", "1001,4242"}) {
		t.Errorf("lookups %q: want the unknown 4242 remembered too, and both refetched after the TTL", asked)
	}
	srv.Fail(atlastest.RouteProbes, atlastest.Fault{Status: 400})
	if _, err := pc.Lookup(ctx(t), []int64{1004}); err == nil || !strings.Contains(err.Error(), "reading RIPE Atlas probes") {
		t.Errorf("a failed lookup: %v", err)
	}
}
