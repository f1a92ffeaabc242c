// Package gatetest serves the aggregator routes the regression gate uses
// (results as NDJSON, the timeline, annotations) over real HTTP on
// loopback, answering from a fixed record set with the same maps code the
// aggregator uses. It is for tests of gate and of the catchmap command; the
// end-to-end test against the real aggregator is in the lab tests.
package gatetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// Aggregator answers from Records. With Token set, every request must
// bear it, as the aggregator's read and admin routes do.
type Aggregator struct {
	Records []result.Record
	Token   string

	mu    sync.Mutex
	notes []api.Annotation
}

// Notes returns the annotations posted so far.
func (a *Aggregator) Notes() []api.Annotation {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.Annotation(nil), a.notes...)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Error{Error: msg})
}

// window reads from and to as the aggregator does (both required here:
// the gate always sends them).
func window(r *http.Request) (from, to time.Time, err error) {
	from, err1 := time.Parse(time.RFC3339Nano, r.URL.Query().Get("from"))
	to, err2 := time.Parse(time.RFC3339Nano, r.URL.Query().Get("to"))
	return from, to, errors.Join(err1, err2)
}

// Handler is the routes, for httptest or a test's own server.
func (a *Aggregator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.Prefix+"/results", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if f := r.URL.Query().Get("format"); f != "ndjson" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: this stand-in serves ndjson only", f))
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		nw := result.NewNDJSONWriter(w)
		target := r.URL.Query().Get("target")
		for i := range a.Records {
			rec := &a.Records[i]
			if rec.Target == target && !rec.Time.Before(from) && rec.Time.Before(to) {
				if err := nw.Write(rec); err != nil {
					return // the client went away
				}
			}
		}
	})
	mux.HandleFunc("GET "+api.Prefix+"/timeline", func(w http.ResponseWriter, r *http.Request) {
		from, to, err := window(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		step, err := time.ParseDuration(r.URL.Query().Get("step"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		tl, err := maps.ComputeTimeline(a.Records, maps.TimelineOptions{Target: r.URL.Query().Get("target"), From: from, To: to, Step: step})
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tl)
	})
	mux.HandleFunc("POST "+api.Prefix+"/annotations", func(w http.ResponseWriter, r *http.Request) {
		var n api.Annotation
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || n.Text == "" {
			writeError(w, http.StatusBadRequest, "text: empty: say what happened")
			return
		}
		a.mu.Lock()
		n.ID = fmt.Sprintf("note-%d", len(a.notes)+1)
		if n.Time.IsZero() {
			n.Time = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		}
		a.notes = append(a.notes, n)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(n)
	})
	if a.Token == "" {
		return mux
	}
	want := token.Parse(a.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !token.FromHeader(r.Header.Get("Authorization")).Equal(want) {
			writeError(w, http.StatusUnauthorized, "missing or wrong token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Start serves a on 127.0.0.1:0 until the test ends. httptest listens
// before NewServer returns, so the server is ready at once.
func (a *Aggregator) Start(t testing.TB) *httptest.Server {
	s := httptest.NewServer(a.Handler())
	t.Cleanup(s.Close)
	return s
}

// ReadRecords reads an NDJSON results file.
func ReadRecords(t testing.TB, path string) []result.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rs []result.Record
	if err := result.ReadNDJSON(f, func(r *result.Record) error { rs = append(rs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

// ClosedPort returns a loopback address where nothing listens, found by
// listening on a free port and closing it.
func ClosedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Steady makes records of target for five probes each second from 30 s
// before now to a minute after: all on ams, or with flap, all moving
// between ams and fra every second.
func Steady(target string, now time.Time, flap bool) []result.Record {
	var rs []result.Record
	start := now.Truncate(time.Second).Add(-30 * time.Second)
	for s := range 90 {
		t := start.Add(time.Duration(s)*time.Second + 100*time.Millisecond)
		site := "ams"
		if flap && s%2 == 1 {
			site = "fra"
		}
		for p := range 5 {
			rs = append(rs, result.Record{ID: fmt.Sprintf("r%d-%d", s, p), Time: t, Probe: fmt.Sprintf("p%d", p),
				Target: target, Method: result.MethodDNS, Site: site, RTTMs: 5})
		}
	}
	return rs
}
