package globalping

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
	"github.com/catchmap/catchmap/fleet/globalping/gptest"
)

// creates counts the creations the fake received.
func creates(srv *gptest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Route == gptest.RouteCreate {
			n++
		}
	}
	return n
}

// TestHourlyBudget: a client keeps to its hourly budget of tests, 250
// without a token and 500 with one, and waits for the hour to end rather
// than be refused.
func TestHourlyBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		token       string
		limit       int
		before      int // creations that fit in the hour
		tests, left int
	}{
		// Each creation asks for up to limit probes and finds the 7 of
		// the fixture: Globalping wants the limit left before and spends
		// the 7 after, so 29 fit in 250 (47 left) and one in 500.
		{name: "without a token", limit: 50, before: 29, tests: 250, left: 250 - 29*7},
		{name: "with a token", token: "test-token", limit: 500, before: 1, tests: 500, left: 500 - 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := fleettest.NewClock(t0)
			srv := fake(t, clock)
			c := client(t, srv, tc.token, clock)
			req := request(t, openDNS(), Where{Limit: tc.limit})
			for i := range tc.before {
				if _, err := c.Create(ctx(t), req); err != nil {
					t.Fatalf("creation %d: %v", i+1, err)
				}
				clock.Advance(time.Minute)
			}
			b := c.Budget()
			if b.Limit != tc.tests || b.Left != tc.left || !b.Reset.Equal(t0.Add(time.Hour)) {
				t.Fatalf("budget %+v, want %d of %d left until %v", b, tc.left, tc.tests, t0.Add(time.Hour))
			}
			slept := len(clock.Slept())
			created, err := c.Create(ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			waits := clock.Slept()[slept:]
			if want := t0.Add(time.Hour).Sub(t0.Add(time.Duration(tc.before) * time.Minute)); len(waits) != 1 || waits[0] != want {
				t.Errorf("waits %v, want one until the hour ends (%v)", waits, want)
			}
			if n := creates(srv); n != tc.before+1 {
				t.Errorf("%d creations sent, want %d: the client went beyond its budget and was refused", n, tc.before+1)
			}
			if created.ProbesCount != 7 || srv.Spent(tc.token) != 7 || c.Budget().Left != tc.tests-7 {
				t.Errorf("after the hour: %+v, spent %d, budget %+v", created, srv.Spent(tc.token), c.Budget())
			}
		})
	}
}

// TestRateLimited: when others spend from the same address, Globalping
// answers a creation with 429 and X-RateLimit-Reset; the client waits for
// the reset and tries again, and takes Globalping's count as its own.
func TestRateLimited(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	other, c := client(t, srv, "", clock), client(t, srv, "", clock)
	req := request(t, openDNS(), Where{Limit: 50})
	for range 29 {
		if _, err := other.Create(ctx(t), req); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(10 * time.Minute)
	slept := len(clock.Slept())
	if _, err := c.Create(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	if waits := clock.Slept()[slept:]; len(waits) != 1 || waits[0] != 50*time.Minute {
		t.Errorf("waits %v, want the 50m Globalping's X-RateLimit-Reset said", waits)
	}
	if n := creates(srv); n != 29+2 {
		t.Errorf("%d creations, want 29 and the refused one and its retry", n)
	}
	if b := c.Budget(); b.Left != 250-7 {
		t.Errorf("budget %+v", b)
	}

	// A 429 that says no more than its reset is waited for as long.
	srv.Fail(gptest.RouteCreate, fleettest.Fault{Status: 429, Header: map[string]string{"X-RateLimit-Reset": "7", "X-RateLimit-Remaining": "0"},
		Body: `{"error": {"type": "rate_limit_exceeded", "message": "This measurement exceeds the remaining hourly rate limit for your IP address."}}`})
	slept = len(clock.Slept())
	if _, err := c.Create(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	if waits := clock.Slept()[slept:]; len(waits) != 1 || waits[0] != 7*time.Second {
		t.Errorf("waits %v, want 7s", waits)
	}
}

// TestBudgetWaitEnds: the context bounds the wait for the budget, and the
// error says why it waited.
func TestBudgetWaitEnds(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c := client(t, srv, "test-token", clock)
	req := request(t, openDNS(), Where{Limit: 500})
	if _, err := c.Create(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	cx, cancel := context.WithCancelCause(ctx(t))
	cause := errors.New("serve is stopping")
	cancel(cause)
	_, err := c.Create(cx, req)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "creating a Globalping measurement: stopped waiting for Globalping's hourly budget (493 of 500 tests left, 500 needed, whole again at 2026-01-01T01:00:00Z)") {
		t.Errorf("error %v", err)
	}
	if n := creates(srv); n != 1 {
		t.Errorf("%d creations sent", n)
	}
}
