package globalping

import (
	"context"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
	"github.com/catchmap/catchmap/fleet/globalping/gptest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// t0 is when the tests' clocks start.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte { return fleettest.Fixture(t, name) }

// fake starts the fake API with the fixtures' probes and results, on
// clock.
func fake(t testing.TB, clock *fleettest.Clock) *gptest.Server {
	return gptest.New(t, gptest.Options{Now: clock.Now, Results: map[string][]byte{
		TypeDNS: fixture(t, "dns-results.json"), TypeHTTP: fixture(t, "http-results.json")}})
}

// client returns a client of srv with token (none when empty) whose clock
// is clock: its waits move the clock instead of passing.
func client(t testing.TB, srv *gptest.Server, token string, clock *fleettest.Clock) *Client {
	return clientWith(t, Options{URL: srv.URL, Token: NewToken(token),
		Retry: Retry{Attempts: 4, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}}, clock)
}

// clientWith returns a client with opt whose clock is clock.
func clientWith(t testing.TB, opt Options, clock *fleettest.Clock) *Client {
	t.Helper()
	c, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	c.now, c.sleep = clock.Now, clock.Sleep
	return c
}

// ctx is a test's context with a deadline, so that no wait is unbounded.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// openDNS is the dns plan entry the tests measure: OpenDNS's site by IN
// TXT debug.opendns.com.
func openDNS() spec.Spec {
	return spec.Spec{Target: "208.67.222.222", Method: result.MethodDNS, Preset: "opendns"}
}

// cloudflare is the http plan entry: the site at the end of cf-ray.
func cloudflare() spec.Spec {
	return spec.Spec{Target: "https://www.example.net/", Method: result.MethodHTTP, Preset: "cloudflare"}
}

func request(t testing.TB, s spec.Spec, w Where) *Request {
	t.Helper()
	req, err := NewRequest(s, w)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// everywhere asks for every probe of the fixtures.
var everywhere = Where{Locations: []Location{{Magic: "eyeball-network", Limit: 10}, {Tags: []string{"datacenter-network"}}}}
