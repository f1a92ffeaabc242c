package globalping

import (
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
	"github.com/catchmap/catchmap/fleet/globalping/gptest"
)

// TestWait: a measurement is read until it has finished, with a pause of
// at least 500 ms after each answer; the fake refuses faster reads, so
// none may have been refused.
func TestWait(t *testing.T) {
	for _, tc := range []struct {
		interval, want time.Duration
	}{{0, 500 * time.Millisecond}, {100 * time.Millisecond, 500 * time.Millisecond}, {2 * time.Second, 2 * time.Second}} {
		clock := fleettest.NewClock(t0)
		srv := gptest.New(t, gptest.Options{Now: clock.Now, InProgressReads: 3,
			Results: map[string][]byte{TypeDNS: fixture(t, "dns-results.json")}})
		c := clientWith(t, Options{URL: srv.URL, PollInterval: tc.interval}, clock)
		created, err := c.Create(ctx(t), request(t, openDNS(), everywhere))
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.Wait(ctx(t), created.ID)
		if err != nil {
			t.Fatal(err)
		}
		reads := 0
		for _, r := range srv.Requests() {
			if r.Route == gptest.RouteMeasurement {
				reads++
			}
		}
		slept := clock.Slept()
		if m.Status != Finished || reads != 4 || len(slept) != 3 || slept[0] != tc.want || slept[2] != tc.want {
			t.Errorf("interval %v: status %q after %d reads, waits %v; want finished after 4 reads and 3 waits of %v",
				tc.interval, m.Status, reads, slept, tc.want)
		}
		if m.ID != created.ID || m.Type != TypeDNS || m.Target != "debug.opendns.com" || m.ProbesCount != 7 ||
			len(m.Results) != 7 || m.Resolver != "208.67.222.222" || m.Protocol != "UDP" || !m.CreatedAt.Equal(t0) {
			t.Errorf("measurement %+v", m)
		}
	}
}

// TestInProgress: what a read finds before the measurement has finished.
func TestInProgress(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c := client(t, srv, "", clock)
	created, err := c.Create(ctx(t), request(t, cloudflare(), everywhere))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Measurement(ctx(t), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != InProgress || len(m.Results) != 6 || m.Results[0].Test.Status != InProgress || m.Results[0].Probe.City != "Seoul" {
		t.Errorf("in progress: %+v", m)
	}
	conv, err := NewConverter(cloudflare())
	if err != nil {
		t.Fatal(err)
	}
	if err := conv.Records(m, nil); err == nil {
		t.Error("a measurement in progress was converted")
	}
	if _, err := c.Measurement(ctx(t), "../probes"); err == nil {
		t.Error("an id that is not one was read")
	}
}
