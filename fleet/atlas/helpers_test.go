package atlas

import (
	"context"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/atlas/atlastest"
	"github.com/catchmap/catchmap/fleet/fleettest"
)

// t0 is the first result's timestamp in testdata/results.json.
const t0 = 1767225600

func fixture(t testing.TB, name string) []byte { return fleettest.Fixture(t, name) }

// fake starts the fake API with the probe fixtures, two probes a page.
func fake(t testing.TB) *atlastest.Server {
	return atlastest.New(t, atlastest.Options{Probes: fixture(t, "probes.json"), PageSize: 2, ReadOnlyKey: "read-only-key"})
}

// waits records the client's waits between tries without spending them.
type waits []time.Duration

// client returns a client of srv with key, whose waits are recorded in
// the returned waits instead of slept.
func client(t testing.TB, srv *atlastest.Server, key string) (*Client, *waits) {
	t.Helper()
	c, err := New(Options{URL: srv.URL, Key: NewKey(key), Retry: Retry{Attempts: 4, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	c.retry.Sleep = func(ctx context.Context, d time.Duration) error {
		*w = append(*w, d)
		return context.Cause(ctx)
	}
	return c, w
}

// ctx is a test's context with a deadline, so that no wait is unbounded.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// kRoot is the plan entry the tests measure: K-root's site by CHAOS TXT
// hostname.bind from a few probe selections, every five minutes.
func kRoot() Spec {
	return Spec{
		Target: "k.root-servers.net", AFs: []int{4, 6}, Type: TypeDNS, Query: HostnameBind,
		Probes: []Selection{
			{Type: "area", Value: "ww", Requested: 50},
			{Type: "country", Value: "nl", Requested: 5, Tags: &TagFilter{Exclude: []string{"datacentre"}}},
			{Type: "asn", Value: "AS3320", Requested: 3},
			{Type: "prefix", Value: "193.0.14.1/23", Requested: 2},
			{Type: "probes", Value: "1001, 1002"},
		},
		Interval: 5 * time.Minute, Tags: []string{"catchmap"},
	}
}

func requests(t testing.TB, s Spec) []CreateRequest {
	t.Helper()
	reqs, err := s.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

// create creates s's first request on c and returns its measurement.
func create(t testing.TB, c *Client, s Spec) int64 {
	t.Helper()
	ids, err := c.Create(ctx(t), requests(t, s)[0])
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}
