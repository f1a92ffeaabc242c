package catcher

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/payload"
	"github.com/catchmap/catchmap/sweep/rawsock/rawsocktest"
)

const token = "catch-test-token-0123456789"

func serve(t *testing.T, a *Agent) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(quiet, a, token, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	return srv
}

// TestAPI drives a sweep through the control API as sweep run does.
func TestAPI(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, func(c *Config) { c.MaxRate = 20_000 })
	srv := serve(t, a)
	c := control.NewClient(srv.URL+"/", token, srv.Client())
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Site != "ams" || st.Anycast != anycastAddr.String() || st.MaxRate != 20_000 {
		t.Errorf("status %+v", st)
	}
	id := payload.NewID()
	o := order(id, payload.NewKey(), 10_000, targets("10.7.0.1", 50))
	if err := c.Order(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitSweep(t, a, id, "50 caught", func(s control.SweepStatus) bool { return s.Done() && s.Replies[control.Caught] == 50 })
	ss, err := c.Sweep(ctx, id)
	if err != nil || ss.Sent != 50 || ss.State != control.StateSent {
		t.Fatalf("sweep %+v, %v", ss, err)
	}
	var got []control.Reply
	if err := c.Replies(ctx, id, func(r control.Reply) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 || got[0].Catcher != "ams" || got[0].Class != control.Caught {
		t.Errorf("%d replies, first %+v", len(got), got[0])
	}
	if err := c.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, id); err != nil {
		t.Errorf("forgetting an unknown sweep: %v", err)
	}
	if _, err := c.Sweep(ctx, id); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("a forgotten sweep: %v", err)
	}
}

// TestAPIErrors: each refusal is a 4xx with the reason, and sends nothing.
func TestAPIErrors(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, func(c *Config) { c.MaxRate = 20_000 })
	srv := serve(t, a)
	ctx := context.Background()
	c := control.NewClient(srv.URL, token, srv.Client())
	status := func(err error) int {
		var ae *control.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("not an API error: %v", err)
		}
		return ae.Status
	}
	if _, err := control.NewClient(srv.URL, "wrong", srv.Client()).Status(ctx); status(err) != http.StatusUnauthorized {
		t.Errorf("wrong token: %v", err)
	}
	fast := order(payload.NewID(), payload.NewKey(), 20_001, targets("10.8.0.1", 5))
	if err := c.Order(ctx, fast); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "cap of 20000") {
		t.Errorf("rate above the cap: %v", err)
	}
	empty := order(payload.NewID(), payload.NewKey(), 100, nil)
	empty.Send = &control.SendOrder{Rate: 100, WithinMillis: 1000}
	if err := c.Order(ctx, empty); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "no hitlist") {
		t.Errorf("empty share: %v", err)
	}
	if err := c.Start(ctx, payload.NewID()); status(err) != http.StatusNotFound {
		t.Errorf("unknown sweep: %v", err)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/v1/sweeps/xyz", ""},
		{"PUT", "/v1/sweeps/0000000000000001", `{"id":"0000000000000002"}`},
		{"PUT", "/v1/sweeps/0000000000000001", `{"id":"0000000000000001","extra":1}`},
		{"PUT", "/v1/sweeps/0000000000000001", `not json`},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader(req.body))
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s %s: %s, want 400", req.method, req.path, req.body, resp.Status)
		}
	}
	if got := len(n.Probes()); got != 0 {
		t.Errorf("%d probes sent by refused requests", got)
	}
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics without a token: %v %v", resp, err)
	}
	resp.Body.Close()
}
