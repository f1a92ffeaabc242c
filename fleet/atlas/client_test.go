package atlas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/atlas/atlastest"
	"github.com/catchmap/catchmap/fleet/fleettest"
)

const secret = "5eb2c1a0-0000-4000-8000-00000000cafe"

// TestFaults drives each fault of the documented API through a read: what
// is retried, after what wait, and what is final.
func TestFaults(t *testing.T) {
	type fault = atlastest.Fault
	cases := []struct {
		name   string
		faults []fault
		// wantErr is empty when the read succeeds after the faults.
		wantErr string
		isKey   bool
		tries   int
		check   func(t *testing.T, w waits)
	}{
		{name: "401", faults: []fault{{Status: 401}}, wantErr: "401 Unauthorized: The API key is not valid: check fleets.ripe_atlas.key", isKey: true, tries: 1},
		{name: "403", faults: []fault{{Status: 403}}, wantErr: "403 Forbidden", isKey: true, tries: 1},
		{name: "429 Retry-After", faults: []fault{{Status: 429, RetryAfter: "7"}}, tries: 2,
			check: func(t *testing.T, w waits) {
				if len(w) != 1 || w[0] != 7*time.Second {
					t.Errorf("waits %v, want the server's 7s", w)
				}
			}},
		{name: "429 Retry-After capped", faults: []fault{{Status: 429, RetryAfter: "86400"}}, tries: 2,
			check: func(t *testing.T, w waits) {
				if len(w) != 1 || w[0] != 10*time.Minute {
					t.Errorf("waits %v, want the 10m cap", w)
				}
			}},
		{name: "429 without Retry-After", faults: []fault{{Status: 429}, {Status: 429}}, tries: 3,
			check: func(t *testing.T, w waits) {
				if len(w) != 2 || w[0] < 5*time.Millisecond || w[0] > 15*time.Millisecond || w[1] < 10*time.Millisecond || w[1] > 30*time.Millisecond {
					t.Errorf("waits %v, want backoff from a 10ms base", w)
				}
			}},
		{name: "5xx", faults: []fault{{Status: 500}, {Status: 502}, {Status: 503}}, tries: 4,
			check: func(t *testing.T, w waits) {
				if len(w) != 3 || w[2] < 20*time.Millisecond || w[2] > 60*time.Millisecond {
					t.Errorf("waits %v, want exponential backoff capped at 40ms", w)
				}
			}},
		{name: "5xx to the end", faults: []fault{{Status: 503}, {Status: 500}, {Status: 503}, {Status: 502}},
			wantErr: "502 Bad Gateway: <html><head><title>502 Bad Gateway</title>", tries: 4,
			check: func(t *testing.T, w waits) {
				if len(w) != 3 {
					t.Errorf("waits %v, want 3 between 4 tries", w)
				}
			}},
		{name: "404", faults: []fault{{Status: 404, Body: `{"error": {"status": 404, "title": "Not Found", "detail": "Not found."}}`}},
			wantErr: "404 Not Found: Not found: check the measurement id", tries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fake(t)
			c, w := client(t, srv, srv.Key)
			id := create(t, c, kRoot())
			srv.Fail(atlastest.RouteMeasurement, tc.faults...)
			before := len(srv.Requests())
			_, err := c.Measurement(ctx(t), id)
			tries := len(srv.Requests()) - before
			if tries != tc.tries {
				t.Errorf("%d tries, want %d", tries, tc.tries)
			}
			if tc.check != nil {
				tc.check(t, *w)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("the read failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to say %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("reading RIPE Atlas measurement %d: ", id)) {
				t.Errorf("error %q does not say what failed", err)
			}
			if errors.Is(err, ErrKey) != tc.isKey {
				t.Errorf("errors.Is(err, ErrKey) = %v", !tc.isKey)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.faults[len(tc.faults)-1].Status {
				t.Errorf("errors.As(err, *APIError): %+v", apiErr)
			}
		})
	}
}

// TestRefusedKey: the key goes in the header, and a key Atlas refuses, or
// one without the permission, stops at once with an error that names the
// setting to fix and never the key.
func TestRefusedKey(t *testing.T) {
	srv := fake(t)
	reqs := requests(t, kRoot())
	for _, key := range []string{secret, "read-only-key"} {
		c, w := client(t, srv, key)
		_, err := c.Create(ctx(t), reqs[0])
		if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "creating a RIPE Atlas measurement: ") ||
			!strings.Contains(err.Error(), "$CATCHMAP_RIPE_ATLAS_KEY") || strings.Contains(err.Error(), key) || len(*w) != 0 {
			t.Errorf("key %q: %v (waits %v)", key, err, *w)
		}
	}
	c, _ := client(t, srv, "")
	before := len(srv.Requests())
	if _, err := c.Create(ctx(t), reqs[0]); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "no key is set") {
		t.Errorf("no key: %v", err)
	}
	if err := c.Stop(ctx(t), 1); !errors.Is(err, ErrKey) {
		t.Errorf("stopping without a key: %v", err)
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("%d requests sent without the key they need", n)
	}
}

// TestKeyNotEchoed: an error body or a logged retry that repeats the key
// shows the placeholder instead.
func TestKeyNotEchoed(t *testing.T) {
	srv := atlastest.New(t, atlastest.Options{Key: secret})
	var logs bytes.Buffer
	c, err := New(Options{URL: srv.URL, Key: NewKey(secret), Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Retry: Retry{Attempts: 2, Base: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	echo := fmt.Sprintf(`{"error": {"status": 503, "title": "Service Unavailable", "detail": "key %s is throttled", "errors": [{"detail": "%s"}]}}`, secret, secret)
	srv.Fail(atlastest.RouteResults, atlastest.Fault{Status: 503, Body: echo}, atlastest.Fault{Status: 503, Body: echo})
	err = c.Results(ctx(t), 5, time.Time{}, time.Time{}, nil)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "key [REDACTED] is throttled") {
		t.Errorf("error %v", err)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "trying again") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// TestCancelledWhileWaiting: the context bounds the waits between tries.
func TestCancelledWhileWaiting(t *testing.T) {
	srv := fake(t)
	c, err := New(Options{URL: srv.URL, Retry: Retry{Base: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(atlastest.RouteProbes, atlastest.Fault{Status: 503})
	fleettest.CancelWhileWaiting(t, func(s func(context.Context, time.Duration) error) { c.retry.Sleep = s }, func(ctx context.Context) error {
		_, err := c.Probes(ctx, []int64{1001})
		return err
	}, "503")
}

func TestNewURL(t *testing.T) {
	for _, u := range []string{"atlas.ripe.net", "ftp://atlas.ripe.net", "https://", "http://[::1"} {
		if _, err := New(Options{URL: u}); err == nil || !strings.Contains(err.Error(), "give the API's home") {
			t.Errorf("URL %q: %v", u, err)
		}
	}
	c, err := New(Options{})
	if err != nil || c.endpoint("probes") != "https://atlas.ripe.net/api/v2/probes/" {
		t.Errorf("default URL: %v %v", c, err)
	}
}

// TestForeignNext: a "next" link to another host is not followed, so the
// key never leaves the API it was given for.
func TestForeignNext(t *testing.T) {
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere = append(elsewhere, r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"count": 2, "next": %q, "previous": null, "results": []}`, other.URL+"/api/v2/probes/?page=2")
	}))
	t.Cleanup(api.Close)
	c, err := New(Options{URL: api.URL, Key: NewKey(secret)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Probes(ctx(t), []int64{1})
	if err == nil || !strings.Contains(err.Error(), "not following it with the key") || len(elsewhere) != 0 {
		t.Errorf("error %v; requests elsewhere %q", err, elsewhere)
	}
}
