package gptest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
)

// results are four probes, each answering with its city.
const results = `[
 {"probe": {"continent": "EU", "region": "Western Europe", "country": "DE", "state": null, "city": "Berlin", "asn": 3320, "network": "Deutsche Telekom AG", "tags": ["eyeball-network"]}, "result": {"status": "finished", "rawOutput": "Berlin"}},
 {"probe": {"continent": "EU", "region": "Western Europe", "country": "DE", "state": null, "city": "Frankfurt", "asn": 16509, "network": "Amazon.com, Inc.", "tags": ["datacenter-network", "aws-eu-central-1"]}, "result": {"status": "finished", "rawOutput": "Frankfurt"}},
 {"probe": {"continent": "NA", "region": "Northern America", "country": "US", "state": "VA", "city": "Ashburn", "asn": 14618, "network": "Amazon.com, Inc.", "tags": ["datacenter-network"]}, "result": {"status": "finished", "rawOutput": "Ashburn"}},
 {"probe": {"continent": "EU", "region": "Northern Europe", "country": "GB", "state": null, "city": "London", "asn": 5089, "network": "Virgin Media Limited", "tags": ["eyeball-network"]}, "result": {"status": "finished", "rawOutput": "London"}}
]`

func errorOf(a fleettest.Answer) (typ string, params map[string]any) {
	e, _ := a.JSON["error"].(map[string]any)
	typ, _ = e["type"].(string)
	params, _ = e["params"].(map[string]any)
	return typ, params
}

// cities are the probes a finished measurement of the fake reports.
func cities(t *testing.T, s *Server, id string) []string {
	t.Helper()
	a := fleettest.Send(t, http.MethodGet, s.URL+"/v1/measurements/"+id, "", "")
	var out []string
	for _, r := range a.JSON["results"].([]any) {
		out = append(out, r.(map[string]any)["result"].(map[string]any)["rawOutput"].(string))
	}
	return out
}

func TestLocations(t *testing.T) {
	clock := fleettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(t, Options{Now: clock.Now, InProgressReads: -1, Results: map[string][]byte{"dns": []byte(results)}})
	for body, want := range map[string]string{
		`{"type": "dns", "target": "x.example"}`:                                                                                  "Berlin",
		`{"type": "dns", "target": "x.example", "limit": 3}`:                                                                      "Berlin Frankfurt Ashburn",
		`{"type": "dns", "target": "x.example", "locations": [{"country": "de", "limit": 5}]}`:                                    "Berlin Frankfurt",
		`{"type": "dns", "target": "x.example", "locations": [{"magic": "AS14618"}, {"magic": "Virgin"}]}`:                        "Ashburn London",
		`{"type": "dns", "target": "x.example", "locations": [{"magic": "eu+datacenter-network"}]}`:                               "Frankfurt",
		`{"type": "dns", "target": "x.example", "locations": [{"tags": ["eyeball-network"]}, {"state": "VA"}], "limit": 4}`:       "Berlin Ashburn London",
		`{"type": "dns", "target": "x.example", "locations": [{"region": "Western Europe"}, {"continent": "NA"}], "limit": 4}`:    "Berlin Ashburn Frankfurt",
		`{"type": "dns", "target": "x.example", "locations": [{"network": "amazon.com, inc.", "city": "Ashburn", "asn": 14618}]}`: "Ashburn",
		`{"type": "dns", "target": "x.example", "locations": [{"magic": "US-VA"}]}`:                                               "Ashburn",
	} {
		a := fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "", body)
		if a.Status != http.StatusAccepted || !strings.HasPrefix(a.Header.Get("Location"), s.URL+"/v1/measurements/") {
			t.Fatalf("%s: %d %v", body, a.Status, a.JSON)
		}
		clock.Advance(time.Second)
		id := a.JSON["id"].(string)
		if got := strings.Join(cities(t, s, id), " "); got != want || a.JSON["probesCount"] != float64(len(strings.Fields(want))) {
			t.Errorf("%s: %q (%v), want %q", body, got, a.JSON["probesCount"], want)
		}
	}
	a := fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "", `{"type": "dns", "target": "x.example", "locations": [{"country": "AQ"}]}`)
	if typ, _ := errorOf(a); a.Status != http.StatusUnprocessableEntity || typ != "no_probes_found" {
		t.Errorf("no probe: %d %v", a.Status, a.JSON)
	}
}

func TestValidation(t *testing.T) {
	s := New(t, Options{Results: map[string][]byte{"dns": []byte(results)}})
	for body, param := range map[string]string{
		`[1]`:                     "body",
		`{"target": "x.example"}`: "type",
		`{"type": "dns"}`:         "target",
		`{"type": "dns", "target": "x", "limit": 51}`:                                                                   "limit",
		`{"type": "dns", "target": "x", "limit": 0}`:                                                                    "limit",
		`{"type": "dns", "target": "x", "limit": 2.5}`:                                                                  "limit",
		`{"type": "dns", "target": "x", "extra": 1}`:                                                                    "extra",
		`{"type": "dns", "target": "x", "locations": "someid"}`:                                                         "locations",
		`{"type": "dns", "target": "x", "locations": [{}]}`:                                                             "locations[0]",
		`{"type": "dns", "target": "x", "locations": [{"planet": "Mars"}]}`:                                             "locations[0].planet",
		`{"type": "dns", "target": "x", "limit": 2, "locations": [{"country": "DE", "limit": 1}]}`:                      "locations[0].limit",
		`{"type": "dns", "target": "x", "locations": [{"country": "DE", "limit": 30}, {"country": "GB", "limit": 21}]}`: "locations",
		`{"type": "dns", "target": "x", "locations": [{"magic": "a+b+c+d+e"}]}`:                                         "locations[0].magic",
		`{"type": "dns", "target": "x", "measurementOptions": {"query": {"type": "CH"}}}`:                               "measurementOptions.query.type",
		`{"type": "dns", "target": "x", "measurementOptions": {"query": {"class": "CH"}}}`:                              "measurementOptions.query.class",
		`{"type": "dns", "target": "x", "measurementOptions": {"resolver": "192.0.2.1", "ipVersion": 4}}`:               "measurementOptions.ipVersion",
		`{"type": "dns", "target": "x", "measurementOptions": {"protocol": "QUIC"}}`:                                    "measurementOptions.protocol",
		`{"type": "http", "target": "x", "measurementOptions": {"request": {"method": "POST"}}}`:                        "measurementOptions.request.method",
		`{"type": "http", "target": "x", "measurementOptions": {"request": {"headers": {"a": 1}}}}`:                     "measurementOptions.request.headers.a",
	} {
		a := fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "", body)
		typ, params := errorOf(a)
		if a.Status != http.StatusBadRequest || typ != "validation_error" || params[param] == nil {
			t.Errorf("%s: %d %v, want a message for %s", body, a.Status, a.JSON, param)
		}
	}
	// A token raises the caps to 500.
	a := fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "Bearer "+s.Token, `{"type": "dns", "target": "x", "limit": 500}`)
	if a.Status != http.StatusAccepted || a.Header.Get("X-RateLimit-Limit") != "500" || a.Header.Get("X-RateLimit-Remaining") != "496" {
		t.Errorf("500 probes with a token: %d %v %v", a.Status, a.JSON, a.Header)
	}
}

func TestAuthAndReads(t *testing.T) {
	clock := fleettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(t, Options{Now: clock.Now, Results: map[string][]byte{"dns": []byte(results)}})
	for _, auth := range []string{"Bearer nope", "Token " + s.Token, "Bearer " + s.Token + " x"} {
		for _, path := range []string{"/v1/measurements", "/v1/measurements/x"} {
			method := map[bool]string{true: http.MethodPost, false: http.MethodGet}[path == "/v1/measurements"]
			a := fleettest.Send(t, method, s.URL+path, auth, `{"type": "dns", "target": "x"}`)
			if typ, _ := errorOf(a); a.Status != http.StatusUnauthorized || typ != "unauthorized" {
				t.Errorf("%s %s with %q: %d %v", method, path, auth, a.Status, a.JSON)
			}
		}
	}
	if a := fleettest.Send(t, http.MethodGet, s.URL+"/v1/measurements/nope", "", ""); a.Status != http.StatusNotFound {
		t.Errorf("unknown id: %d %v", a.Status, a.JSON)
	}
	a := fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "", `{"type": "dns", "target": "x", "limit": 2}`)
	id := a.JSON["id"].(string)
	url := s.URL + "/v1/measurements/" + id
	if a := fleettest.Send(t, http.MethodGet, url, "", ""); a.JSON["status"] != "in-progress" || a.JSON["probesCount"] != float64(2) {
		t.Errorf("first read: %v", a.JSON)
	}
	clock.Advance(MinRead - time.Millisecond)
	if a := fleettest.Send(t, http.MethodGet, url, "", ""); a.Status != http.StatusTooManyRequests || a.Header.Get("Retry-After") != "1" {
		t.Errorf("a read too soon: %d %v", a.Status, a.JSON)
	}
	clock.Advance(MinRead)
	if a := fleettest.Send(t, http.MethodGet, url, "", ""); a.JSON["status"] != "finished" || a.JSON["limit"] != float64(2) {
		t.Errorf("a read later: %v", a.JSON)
	}
	if ms := s.Measurements(); len(ms) != 1 || ms[0].ID != id || ms[0].ProbesCount != 2 || ms[0].Request["limit"] != float64(2) || ms[0].Request["type"] != "dns" {
		t.Errorf("measurements %+v", ms)
	}
}

func TestHourlyLimit(t *testing.T) {
	clock := fleettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(t, Options{Now: clock.Now, Results: map[string][]byte{"dns": []byte(results)}})
	create := func(limit int) fleettest.Answer {
		return fleettest.Send(t, http.MethodPost, s.URL+"/v1/measurements", "",
			string(must(json.Marshal(map[string]any{"type": "dns", "target": "x", "limit": limit}))))
	}
	// Each creation spends the 4 probes there are, and needs its limit
	// of 50 left: 51 fit in 250.
	accepted := 0
	for ; accepted <= 100; accepted++ {
		a := create(50)
		if a.Status == http.StatusAccepted {
			continue
		}
		h := a.Header
		if typ, _ := errorOf(a); a.Status != http.StatusTooManyRequests || typ != "rate_limit_exceeded" ||
			h.Get("X-RateLimit-Remaining") != "46" || h.Get("X-RateLimit-Reset") != "3600" || h.Get("X-Request-Cost") != "50" {
			t.Fatalf("creation %d: %d %v %v", accepted+1, a.Status, a.JSON, h)
		}
		break
	}
	if accepted != 51 || s.Spent("") != 204 {
		t.Errorf("%d creations, %d spent; want 51 of 4", accepted, s.Spent(""))
	}
	clock.Advance(time.Hour)
	if a := create(50); a.Status != http.StatusAccepted || s.Spent("") != 4 {
		t.Errorf("after the hour: %d %v, spent %d", a.Status, a.JSON, s.Spent(""))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
