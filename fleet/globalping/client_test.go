package globalping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
	"github.com/catchmap/catchmap/fleet/globalping/gptest"
)

const secret = "gp-token-5eb2c1a0cafe"

func TestNewURL(t *testing.T) {
	for _, u := range []string{"api.globalping.io", "ftp://api.globalping.io", "https://", "http://[::1"} {
		if _, err := New(Options{URL: u}); err == nil || !strings.Contains(err.Error(), "give the API's home") {
			t.Errorf("URL %q: %v", u, err)
		}
	}
	c, err := New(Options{PollInterval: time.Millisecond})
	if err != nil || c.endpoint("measurements", "a/b") != "https://api.globalping.io/v1/measurements/a%2Fb" || c.poll != MinPollInterval {
		t.Errorf("defaults: %v %v", c, err)
	}
	if c.Limits() != LimitsFor(false) || c.Budget().Limit != 250 {
		t.Errorf("without a token: %+v, %+v", c.Limits(), c.Budget())
	}
	c, _ = New(Options{Token: NewToken(secret)})
	if l := c.Limits(); l.ProbesPerMeasurement != 500 || l.TestsPerHour != 500 || c.Budget().Left != 500 {
		t.Errorf("with a token: %+v, %+v", l, c.Budget())
	}
}

// TestFaults drives each fault through a read of a measurement: what is
// retried, after what wait, and what is final.
func TestFaults(t *testing.T) {
	cases := []struct {
		name    string
		faults  []fleettest.Fault
		wantErr string
		isToken bool
		tries   int
		waits   func(w []time.Duration) bool
	}{
		{name: "401", faults: []fleettest.Fault{{Status: 401}}, tries: 1, isToken: true,
			wantErr: "401 Unauthorized: Unauthorized: check fleets.globalping.token (or $CATCHMAP_GLOBALPING_TOKEN)"},
		{name: "429 Retry-After", faults: []fleettest.Fault{{Status: 429, RetryAfter: "4"}}, tries: 2,
			waits: func(w []time.Duration) bool { return len(w) == 1 && w[0] == 4*time.Second }},
		{name: "5xx", faults: []fleettest.Fault{{Status: 500}, {Status: 502}, {Status: 503}}, tries: 4,
			waits: func(w []time.Duration) bool {
				return len(w) == 3 && w[0] >= 5*time.Millisecond && w[2] <= 60*time.Millisecond
			}},
		{name: "5xx to the end", faults: []fleettest.Fault{{Status: 503}, {Status: 500}, {Status: 503}, {Status: 502}}, tries: 4,
			wantErr: "502 Bad Gateway: <html><head><title>502 Bad Gateway</title>"},
		{name: "404", faults: []fleettest.Fault{{Status: 404, Body: `{"error": {"type": "not_found", "message": "Couldn't find the requested item."}}`}}, tries: 1,
			wantErr: "404 Not Found: Couldn't find the requested item: check the measurement id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := fleettest.NewClock(t0)
			srv := fake(t, clock)
			c := client(t, srv, "", clock)
			created, err := c.Create(ctx(t), request(t, openDNS(), everywhere))
			if err != nil {
				t.Fatal(err)
			}
			srv.Fail(gptest.RouteMeasurement, tc.faults...)
			before, slept := len(srv.Requests()), len(clock.Slept())
			_, err = c.Measurement(ctx(t), created.ID)
			if tries := len(srv.Requests()) - before; tries != tc.tries {
				t.Errorf("%d tries, want %d", tries, tc.tries)
			}
			if w := clock.Slept()[slept:]; tc.waits != nil && !tc.waits(w) {
				t.Errorf("waits %v", w)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("the read failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "reading Globalping measurement ") {
				t.Fatalf("error %v, want it to say what failed and %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrToken) != tc.isToken {
				t.Errorf("errors.Is(err, ErrToken) = %v", !tc.isToken)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.faults[len(tc.faults)-1].Status {
				t.Errorf("errors.As(err, *APIError): %+v", apiErr)
			}
		})
	}
}

// TestToken: the token goes out as a bearer token, never into logs or
// errors; one Globalping refuses stops at once.
func TestToken(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := gptest.New(t, gptest.Options{Token: secret, Now: clock.Now,
		Results: map[string][]byte{TypeDNS: fixture(t, "dns-results.json")}})
	var logs bytes.Buffer
	c := clientWith(t, Options{URL: srv.URL, Token: NewToken(secret), Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry: Retry{Attempts: 2, Base: time.Millisecond}}, clock)
	created, err := c.Create(ctx(t), request(t, openDNS(), everywhere))
	if err != nil {
		t.Fatal(err)
	}
	if auth := srv.Requests()[0].Auth; auth != "Bearer "+secret {
		t.Errorf("Authorization %q", auth)
	}
	echo := fmt.Sprintf(`{"error": {"type": "api_error", "message": "token %s broke us", "params": {"x": "%s"}}}`, secret, secret)
	srv.Fail(gptest.RouteMeasurement, fleettest.Fault{Status: 500, Body: echo}, fleettest.Fault{Status: 500, Body: echo})
	_, err = c.Measurement(ctx(t), created.ID)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "token [REDACTED] broke us") {
		t.Errorf("error %v", err)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "trying again") {
		t.Errorf("logs:\n%s", logs.String())
	}

	wrong := client(t, srv, "not-the-token", clock)
	before := len(srv.Requests())
	_, err = wrong.Create(ctx(t), request(t, openDNS(), everywhere))
	if !errors.Is(err, ErrToken) || !strings.HasPrefix(err.Error(), "creating a Globalping measurement: Globalping answered 401") ||
		strings.Contains(err.Error(), "not-the-token") || len(srv.Requests())-before != 1 {
		t.Errorf("a wrong token: %v", err)
	}
	if b := wrong.Budget(); b.Left != b.Limit {
		t.Errorf("a refused creation spent from the budget: %+v", b)
	}
}

// TestCancelledWhileWaiting: the context bounds the waits between tries,
// and a creation that did not happen gives its tests back.
func TestCancelledWhileWaiting(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c, err := New(Options{URL: srv.URL, Retry: Retry{Base: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(gptest.RouteCreate, fleettest.Fault{Status: 503})
	fleettest.CancelWhileWaiting(t, func(s func(context.Context, time.Duration) error) { c.sleep = s }, func(ctx context.Context) error {
		_, err := c.Create(ctx, request(t, openDNS(), everywhere))
		return err
	}, "503")
	if b := c.Budget(); b.Left != b.Limit {
		t.Errorf("a failed creation kept tests of the budget: %+v", b)
	}
}

// TestValidationError: a 400 names the parameters, and is not retried.
func TestValidationError(t *testing.T) {
	clock := fleettest.NewClock(t0)
	srv := fake(t, clock)
	c := client(t, srv, "", clock)
	req := request(t, openDNS(), everywhere)
	req.DNS.Query.Type = "CHAOS"
	_, err := c.Create(ctx(t), req)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Kind != "validation_error" ||
		!strings.Contains(err.Error(), `(measurementOptions.query.type: "measurementOptions.query.type" must be one of [A, AAAA`) ||
		len(srv.Requests()) != 1 {
		t.Errorf("error %v", err)
	}
	req = request(t, openDNS(), Where{Locations: []Location{{Country: "AQ"}}})
	if _, err := c.Create(ctx(t), req); err == nil || !strings.Contains(err.Error(), "422 Unprocessable Entity: No matching IPv4 probes available: no probe fits the locations") {
		t.Errorf("no probes: %v", err)
	}
	if b := c.Budget(); b.Left != b.Limit {
		t.Errorf("refused creations spent from the budget: %+v", b)
	}
}
