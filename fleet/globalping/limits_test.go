package globalping

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
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
			// Globalping's hour ends at t0+1h; the client waits a second
			// more, since Globalping gives the reset in whole seconds.
			end := t0.Add(time.Hour + time.Second)
			if b.Limit != tc.tests || b.Left != tc.left || !b.Reset.Equal(end) {
				t.Fatalf("budget %+v, want %d of %d left until %v", b, tc.left, tc.tests, end)
			}
			slept := len(clock.Slept())
			created, err := c.Create(ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			waits := clock.Slept()[slept:]
			if want := end.Sub(t0.Add(time.Duration(tc.before) * time.Minute)); len(waits) != 1 || waits[0] != want {
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
	if waits := clock.Slept()[slept:]; len(waits) != 1 || waits[0] != 50*time.Minute+time.Second {
		t.Errorf("waits %v, want the 50m Globalping's X-RateLimit-Reset said, and a second", waits)
	}
	if n := creates(srv); n != 29+2 {
		t.Errorf("%d creations, want 29 and the refused one and its retry", n)
	}
	if b := c.Budget(); b.Left != 250-7 {
		t.Errorf("budget %+v", b)
	}

	// A 429 that says no more than its reset is waited for as long, and
	// a second.
	srv.Fail(gptest.RouteCreate, fleettest.Fault{Status: 429, Header: map[string]string{"X-RateLimit-Reset": "7", "X-RateLimit-Remaining": "0"},
		Body: `{"error": {"type": "rate_limit_exceeded", "message": "This measurement exceeds the remaining hourly rate limit for your IP address."}}`})
	slept = len(clock.Slept())
	if _, err := c.Create(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	if waits := clock.Slept()[slept:]; len(waits) != 1 || waits[0] != 8*time.Second {
		t.Errorf("waits %v, want 8s", waits)
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
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "creating a Globalping measurement: stopped waiting for Globalping's hourly budget (493 of 500 tests left, 500 needed, whole again at 2026-01-01T01:00:01Z)") {
		t.Errorf("error %v", err)
	}
	if n := creates(srv); n != 1 {
		t.Errorf("%d creations sent", n)
	}
}

// TestBudgetShared: creations from several goroutines share one client's
// budget, and together never go beyond it: Globalping refuses none.
func TestBudgetShared(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c := client(t, srv, "", clock)
	req := request(t, openDNS(), Where{Limit: 50})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for range 10 {
				if _, err = c.Create(ctx(t), req); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := creates(srv); n != 80 {
		t.Errorf("%d creations sent for 80: Globalping refused some", n)
	}
}

// TestBudgetSync: how the client takes Globalping's count, which answers
// to concurrent creations bring in any order.
func TestBudgetSync(t *testing.T) {
	headers := func(left, reset int) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"250"}, "X-Ratelimit-Remaining": {strconv.Itoa(left)}, "X-Ratelimit-Reset": {strconv.Itoa(reset)}}
	}
	clock := fleettest.NewClock(t0)
	b := &budget{limit: 250, now: clock.Now}
	// The client guessed its hour from its first test; Globalping's began
	// earlier, with someone else's.
	if err := b.take(t.Context(), 10, clock.Sleep, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b.settle(10, 7)
	b.sync(headers(200, 1200))
	if st := b.state(); st.Left != 200 || !st.Reset.Equal(t0.Add(1201*time.Second)) {
		t.Fatalf("after Globalping's first answer: %+v", st)
	}
	// An answer counted before the last one comes after it: no lower.
	b.sync(headers(210, 1199))
	if st := b.state(); st.Left != 200 {
		t.Errorf("a late answer lowered the count: %+v", st)
	}
	b.sync(headers(190, 1199))
	if st := b.state(); st.Left != 190 {
		t.Errorf("a later count was not taken: %+v", st)
	}
	// An answer from the hour before is ignored; one from the next hour
	// starts it.
	b.sync(headers(250, 10))
	if st := b.state(); st.Left != 190 {
		t.Errorf("an answer of an ended hour was taken: %+v", st)
	}
	clock.Advance(1201 * time.Second)
	if st := b.state(); st.Left != 250 || !st.Reset.IsZero() {
		t.Errorf("after the hour: %+v", st)
	}
	b.sync(headers(243, 3600))
	if st := b.state(); st.Left != 243 || !st.Reset.Equal(clock.Now().Add(3601*time.Second)) {
		t.Errorf("a new hour: %+v", st)
	}
}
