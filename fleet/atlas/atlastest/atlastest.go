// Package atlastest is a fake of the RIPE Atlas REST API v2, a service
// that cannot run here: tests send traffic only to loopback, and a real
// measurement would spend credits. It serves, on an httptest server, the
// documented routes fleet/atlas uses, with the documented shapes:
//
//	POST   /api/v2/measurements/                creation, checked like Atlas checks it
//	GET    /api/v2/measurements/{id}/           status, which moves on with each read
//	DELETE /api/v2/measurements/{id}/           stopping
//	GET    /api/v2/measurements/{id}/results/   results, filtered by start and stop
//	GET    /api/v2/probes/                      probes by id__in, in pages linked by next
//
// It replays what the test gives it: probe metadata, and results delivered
// when the test says, so that results can arrive late, as Atlas's do. The
// fixtures in fleet/atlas/testdata are written from the documentation.
// Faults (401, 403, 429 with or without Retry-After, 5xx) are queued per
// route with Fail (fleet/fleettest's recorder); a measurement Atlas ends by itself is EndByAtlas.
//
// A measurement's status moves one step each time it is read: Specified,
// Scheduled, Ongoing, and for a one-off then Stopped. That is Atlas's
// order, without its clock, so that a test waits on reads, not on time.
package atlastest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
)

// Route names a route for Fail and Request.
type Route = fleettest.Route

// The routes.
const (
	RouteCreate      Route = "create"
	RouteMeasurement Route = "measurement"
	RouteStop        Route = "stop"
	RouteResults     Route = "results"
	RouteProbes      Route = "probes"
)

// Fault is an answer a route gives instead of its own: Fail queues them.
type Fault = fleettest.Fault

// Request is a request the server received.
type Request = fleettest.Request

// Options configure a Server.
type Options struct {
	// Key may do anything; empty: "test-key".
	Key string
	// ReadOnlyKey may read but not create or stop: those get 403.
	ReadOnlyKey string
	// Probes is a JSON array of probes as /api/v2/probes/ lists them.
	Probes []byte
	// PageSize, when set, overrides the client's page_size, so that a few
	// probes take several pages.
	PageSize int
	// FirstID is the first measurement id (default 100000001).
	FirstID int64
	// Now is the clock for start and status times (default time.Now).
	Now func() time.Time
}

// Server is the fake API.
type Server struct {
	// URL is the API's home, to give the client.
	URL string
	// Key is the key that may do anything.
	Key string
	// Recorder queues faults (Fail) and lists the requests (Requests).
	*fleettest.Recorder

	opt    Options
	probes []probe

	mu     sync.Mutex
	nextID int64
	msms   map[int64]*measurement
}

type probe struct {
	id  int64
	raw json.RawMessage
}

type result struct {
	timestamp int64
	raw       json.RawMessage
}

type measurement struct {
	id      int64
	def     map[string]any
	oneOff  bool
	status  int
	when    int64
	start   int64
	stop    int64
	probes  int
	results []result
}

// New starts a server that t closes.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Key == "" {
		opt.Key = "test-key"
	}
	if opt.FirstID == 0 {
		opt.FirstID = 100000001
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{Key: opt.Key, Recorder: &fleettest.Recorder{WriteError: writeStatus},
		opt: opt, nextID: opt.FirstID, msms: map[int64]*measurement{}}
	if len(opt.Probes) > 0 {
		var raws []json.RawMessage
		if err := json.Unmarshal(opt.Probes, &raws); err != nil {
			t.Fatalf("atlastest: the probes are not a JSON array: %v", err)
		}
		for i, raw := range raws {
			var p struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.ID <= 0 {
				t.Fatalf("atlastest: probe %d has no id: %v", i+1, err)
			}
			s.probes = append(s.probes, probe{p.ID, raw})
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/measurements/{$}", s.route(RouteCreate, true, s.create))
	mux.HandleFunc("GET /api/v2/measurements/{id}/{$}", s.route(RouteMeasurement, false, s.status))
	mux.HandleFunc("DELETE /api/v2/measurements/{id}/{$}", s.route(RouteStop, true, s.stopMsm))
	mux.HandleFunc("GET /api/v2/measurements/{id}/results/{$}", s.route(RouteResults, false, s.results))
	mux.HandleFunc("GET /api/v2/probes/{$}", s.route(RouteProbes, false, s.probeList))
	s.URL = fleettest.Serve(t, mux)
	return s
}

// Created is a measurement as it was created.
type Created struct {
	ID int64
	// Definition is the definition it was created from, as sent.
	Definition map[string]any
	OneOff     bool
	Status     int
}

// Measurements returns the measurements created so far, by id.
func (s *Server) Measurements() []Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Created
	for _, m := range s.msms {
		out = append(out, Created{ID: m.id, Definition: m.def, OneOff: m.oneOff, Status: m.status})
	}
	slices.SortFunc(out, func(a, b Created) int { return int(a.ID - b.ID) })
	return out
}

// Deliver makes results (a JSON array of Atlas results) available from
// measurement id; their msm_id is set to id. Results with timestamps
// before ones delivered earlier are late results.
func (s *Server) Deliver(t testing.TB, id int64, results []byte) {
	t.Helper()
	var raws []map[string]any
	if err := json.Unmarshal(results, &raws); err != nil {
		t.Fatalf("atlastest: the results are not a JSON array of objects: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.must(t, id)
	for i, r := range raws {
		ts, ok := r["timestamp"].(float64)
		if !ok {
			t.Fatalf("atlastest: result %d has no timestamp", i+1)
		}
		r["msm_id"] = id
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		m.results = append(m.results, result{int64(ts), raw})
	}
}

// EndByAtlas ends measurement id as Atlas does by itself, with status 5
// (Forced to stop), 6 (No suitable probes), 7 (Failed), 8 (Denied) or 9
// (Canceled).
func (s *Server) EndByAtlas(t testing.TB, id int64, status int) {
	t.Helper()
	if statusNames[status] == "" || status <= 4 {
		t.Fatalf("atlastest: status %d is not one Atlas ends a measurement with", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.must(t, id).set(status, s.opt.Now())
}

// must returns measurement id, which the test says exists; s.mu is held.
func (s *Server) must(t testing.TB, id int64) *measurement {
	m, ok := s.msms[id]
	if !ok {
		t.Fatalf("atlastest: no measurement %d", id)
	}
	return m
}

// set moves m to status; the end statuses (4 and up) stop it.
func (m *measurement) set(status int, now time.Time) {
	m.status, m.when = status, now.Unix()
	if status >= 4 {
		m.stop = m.when
	}
}

var statusNames = map[int]string{0: "Specified", 1: "Scheduled", 2: "Ongoing", 4: "Stopped",
	5: "Forced to stop", 6: "No suitable probes", 7: "Failed", 8: "Denied", 9: "Canceled"}

// route checks the key before h, behind the recorder's faults: a wrong
// key is 401 everywhere; writes need a key (401 without one) that may
// write (403 for the read-only key).
func (s *Server) route(name Route, write bool, h fleettest.Handler) http.HandlerFunc {
	return s.Route(name, func(w http.ResponseWriter, r *http.Request, body []byte) {
		auth := r.Header.Get("Authorization")
		key, hasKey := strings.CutPrefix(auth, "Key ")
		switch {
		case auth != "" && (!hasKey || (key != s.opt.Key && (s.opt.ReadOnlyKey == "" || key != s.opt.ReadOnlyKey))):
			writeError(w, http.StatusUnauthorized, "The API key is not valid.", nil)
			return
		case write && auth == "":
			writeError(w, http.StatusUnauthorized, "Authentication credentials were not provided.", nil)
			return
		case write && key != s.opt.Key:
			writeError(w, http.StatusForbidden, "The API key does not have the permission for this.", nil)
			return
		}
		h(w, r, body)
	})
}

// writeStatus writes the error object Atlas sends with status.
func writeStatus(w http.ResponseWriter, status int) {
	detail := map[int]string{
		http.StatusBadRequest:          "The request body could not be read.",
		http.StatusUnauthorized:        "The API key is not valid.",
		http.StatusForbidden:           "The API key does not have the permission for this.",
		http.StatusTooManyRequests:     "Request was throttled.",
		http.StatusInternalServerError: "A server error occurred.",
		http.StatusServiceUnavailable:  "The service is temporarily unavailable.",
	}[status]
	writeError(w, status, detail, nil)
}

// fieldError is one entry of the documented error object's "errors".
type fieldError struct {
	Source map[string]string `json:"source"`
	Detail string            `json:"detail"`
}

// writeError writes the documented error object.
func writeError(w http.ResponseWriter, status int, detail string, errs []fieldError) {
	body := map[string]any{"status": status, "title": http.StatusText(status), "detail": detail}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	fleettest.WriteJSON(w, status, map[string]any{"error": body})
}

func pointer(p, detail string) fieldError {
	return fieldError{Source: map[string]string{"pointer": p}, Detail: detail}
}

func parameter(p, detail string) fieldError {
	return fieldError{Source: map[string]string{"parameter": p}, Detail: detail}
}

var (
	measurementTypes = []string{"ping", "traceroute", "dns", "sslcert", "ntp", "http"}
	selectionTypes   = []string{"area", "country", "prefix", "asn", "probes", "msm"}
)

// create checks a creation as the documentation says Atlas does (type,
// af and description required; target, or query_argument for dns; each
// probe selection with type, value and requested) and answers 201 with
// one id per definition.
func (s *Server) create(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		Definitions []map[string]any `json:"definitions"`
		Probes      []map[string]any `json:"probes"`
		IsOneoff    bool             `json:"is_oneoff"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "JSON parse error: "+err.Error(), nil)
		return
	}
	var errs []fieldError
	if len(req.Definitions) == 0 {
		errs = append(errs, pointer("/definitions", "At least one definition is required."))
	}
	for i, d := range req.Definitions {
		at := fmt.Sprintf("/definitions/%d/", i)
		typ, _ := d["type"].(string)
		if !slices.Contains(measurementTypes, typ) {
			errs = append(errs, pointer(at+"type", "This field is required: one of "+strings.Join(measurementTypes, ", ")+"."))
		}
		if af, _ := d["af"].(float64); af != 4 && af != 6 {
			errs = append(errs, pointer(at+"af", "This field is required: 4 or 6."))
		}
		if desc, _ := d["description"].(string); desc == "" {
			errs = append(errs, pointer(at+"description", "This field is required."))
		}
		need := "target"
		if typ == "dns" {
			need = "query_argument"
		}
		if v, _ := d[need].(string); v == "" {
			errs = append(errs, pointer(at+need, "This field is required."))
		}
	}
	if len(req.Probes) == 0 {
		errs = append(errs, pointer("/probes", "At least one probe selection is required."))
	}
	probes := 0
	for i, p := range req.Probes {
		at := fmt.Sprintf("/probes/%d/", i)
		if typ, _ := p["type"].(string); !slices.Contains(selectionTypes, typ) {
			errs = append(errs, pointer(at+"type", "This field is required: one of "+strings.Join(selectionTypes, ", ")+"."))
		}
		if v, _ := p["value"].(string); v == "" {
			errs = append(errs, pointer(at+"value", "This field is required."))
		}
		n, _ := p["requested"].(float64)
		if n < 1 {
			errs = append(errs, pointer(at+"requested", "Ensure this value is greater than or equal to 1."))
		}
		probes += int(n)
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "There were problems with your request", errs)
		return
	}
	s.mu.Lock()
	var ids []int64
	now := s.opt.Now().Unix()
	for _, d := range req.Definitions {
		oneOff := req.IsOneoff
		if v, ok := d["is_oneoff"].(bool); ok {
			oneOff = v
		}
		m := &measurement{id: s.nextID, def: d, oneOff: oneOff, when: now, start: now, probes: probes}
		s.msms[m.id] = m
		ids = append(ids, m.id)
		s.nextID++
	}
	s.mu.Unlock()
	fleettest.WriteJSON(w, http.StatusCreated, map[string]any{"measurements": ids})
}

// lookup finds the measurement of the request's path, or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *measurement {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m := s.msms[id]
	if err != nil || m == nil {
		writeError(w, http.StatusNotFound, "No Measurement matches the given query.", nil)
		return nil
	}
	return m
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	out := map[string]any{}
	for k, v := range m.def {
		out[k] = v
	}
	var interval any
	if !m.oneOff {
		interval = m.def["interval"]
	}
	var stop any
	if m.stop != 0 {
		stop = m.stop
	}
	scheduled := 0
	if m.status > 0 {
		scheduled = min(m.probes, max(len(s.probes), 1))
	}
	participants := 0
	if m.status >= 2 {
		participants = scheduled
	}
	for k, v := range map[string]any{
		"id": m.id, "type": m.def["type"], "is_oneoff": m.oneOff, "interval": interval,
		"start_time": m.start, "stop_time": stop, "creation_time": m.start, "is_public": true,
		"status":           map[string]any{"id": m.status, "name": statusNames[m.status], "when": m.when},
		"probes_requested": m.probes, "probes_scheduled": scheduled, "participant_count": participants,
		"result": s.URL + "/api/v2/measurements/" + strconv.FormatInt(m.id, 10) + "/results/",
	} {
		out[k] = v
	}
	fleettest.WriteJSON(w, http.StatusOK, out)
	// The read moves the measurement on, after answering with the status
	// it had.
	next := map[int]int{0: 1, 1: 2}[m.status]
	if m.status == 2 && m.oneOff {
		next = 4
	}
	if next != 0 {
		m.set(next, s.opt.Now())
	}
}

func (s *Server) stopMsm(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	if m.status <= 2 {
		m.set(4, s.opt.Now())
	}
	w.WriteHeader(http.StatusNoContent)
}

// results answers the results whose timestamp is in [start, stop], by
// timestamp: Atlas filters on when the probe measured, not when the
// result arrived.
func (s *Server) results(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	bound := func(name string, def int64) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "There were problems with your request",
				[]fieldError{parameter(name, "Enter a valid Unix timestamp.")})
			return 0, false
		}
		return n, true
	}
	start, ok := bound("start", 0)
	if !ok {
		return
	}
	stop, ok := bound("stop", 1<<62)
	if !ok {
		return
	}
	if f := q.Get("format"); f != "" && f != "json" {
		writeError(w, http.StatusBadRequest, "There were problems with your request",
			[]fieldError{parameter("format", "This fake serves json only.")})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	var sel []result
	for _, res := range m.results {
		if res.timestamp >= start && res.timestamp <= stop {
			sel = append(sel, res)
		}
	}
	slices.SortStableFunc(sel, func(a, b result) int { return int(a.timestamp - b.timestamp) })
	raws := make([]json.RawMessage, len(sel))
	for i, res := range sel {
		raws[i] = res.raw
	}
	fleettest.WriteJSON(w, http.StatusOK, raws)
}

// probeList answers a page of the probes named by id__in (all of them
// without it), linking the next page by an absolute URL as Atlas does.
func (s *Server) probeList(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	var want map[int64]bool
	if v := q.Get("id__in"); v != "" {
		want = map[int64]bool{}
		for f := range strings.SplitSeq(v, ",") {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "There were problems with your request",
					[]fieldError{parameter("id__in", "Enter a comma-separated list of probe ids.")})
				return
			}
			want[id] = true
		}
	}
	size := 50
	if n, err := strconv.Atoi(q.Get("page_size")); err == nil {
		size = n
	}
	if s.opt.PageSize > 0 {
		size = s.opt.PageSize
	}
	size = min(max(size, 1), 500)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	sel := []json.RawMessage{}
	for _, p := range s.probes {
		if want == nil || want[p.id] {
			sel = append(sel, p.raw)
		}
	}
	from := min((page-1)*size, len(sel))
	to := min(from+size, len(sel))
	var next, prev any
	link := func(p int) string {
		lq := url.Values{}
		for k, v := range q {
			lq[k] = v
		}
		lq.Set("page", strconv.Itoa(p))
		return s.URL + r.URL.Path + "?" + lq.Encode()
	}
	if to < len(sel) {
		next = link(page + 1)
	}
	if page > 1 {
		prev = link(page - 1)
	}
	fleettest.WriteJSON(w, http.StatusOK, map[string]any{"count": len(sel), "next": next, "previous": prev, "results": sel[from:to]})
}
