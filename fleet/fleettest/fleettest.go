// Package fleettest holds what the fakes of measurement platforms' APIs
// (fleet/atlas/atlastest, fleet/globalping/gptest) and the tests of their
// clients share: the faults a test queues per route, the log of the
// requests received, a clock that a test moves instead of waiting, and
// helpers to serve, ask and check them.
package fleettest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// Route names a fake's route, for Fail and Request.
type Route string

// Fault is an answer a route gives instead of its own.
type Fault struct {
	Status int
	// RetryAfter is the Retry-After header; empty: none.
	RetryAfter string
	// Header holds other headers to send, such as a rate limit's.
	Header map[string]string
	// Body replaces the service's error object; a 502 without one gets
	// an HTML page, as a proxy in front of the service would send.
	Body string
}

// Request is a request a fake received.
type Request struct {
	Route  Route
	Method string
	Path   string
	Query  url.Values
	// Auth is the Authorization header.
	Auth string
	Body []byte
}

// Handler answers a request that no fault answered; body is the
// request's body, read.
type Handler func(w http.ResponseWriter, r *http.Request, body []byte)

// Recorder records the requests a fake receives and replays the faults
// queued for its routes. It is safe for concurrent use.
type Recorder struct {
	// WriteError writes the service's own error object, for a fault
	// without a Body and for a request whose body cannot be read.
	WriteError func(w http.ResponseWriter, status int)

	mu       sync.Mutex
	faults   map[Route][]Fault
	requests []Request
}

// Fail queues faults on route: its next requests get them, in order,
// before it answers normally again.
func (rec *Recorder) Fail(route Route, faults ...Fault) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.faults == nil {
		rec.faults = map[Route][]Fault{}
	}
	rec.faults[route] = append(rec.faults[route], faults...)
}

// Requests returns the requests received so far.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.requests)
}

// Route wraps h as the handler of route name: each request is recorded,
// and the route's next queued fault, if any, answers in h's place.
func (rec *Recorder) Route(name Route, h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			rec.WriteError(w, http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.requests = append(rec.requests, Request{Route: name, Method: r.Method, Path: r.URL.Path,
			Query: r.URL.Query(), Auth: r.Header.Get("Authorization"), Body: body})
		var fault *Fault
		if q := rec.faults[name]; len(q) > 0 {
			fault, rec.faults[name] = &q[0], q[1:]
		}
		rec.mu.Unlock()
		if fault == nil {
			h(w, r, body)
			return
		}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		for k, v := range fault.Header {
			w.Header().Set(k, v)
		}
		switch {
		case fault.Body != "":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fault.Status)
			fmt.Fprint(w, fault.Body)
		case fault.Status == http.StatusBadGateway:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(fault.Status)
			fmt.Fprint(w, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n")
		default:
			rec.WriteError(w, fault.Status)
		}
	}
}

// Serve starts h on a loopback server that t closes, and returns its URL.
func Serve(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// WriteJSON writes v as the JSON body of an answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Clock is a fake clock for a client and a fake that share it: Sleep moves
// it on at once instead of waiting, so that a client's waits cost no time
// and the fake sees them pass. It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// NewClock returns a clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock on by d and records d, unless ctx has ended.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// Advance moves the clock on by d, as time passing outside the client.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Slept returns the waits Sleep was asked for so far.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}
