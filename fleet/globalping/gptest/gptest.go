// Package gptest is a fake of Globalping's public API v1, a service that
// cannot run here: tests send traffic only to loopback, and a real
// measurement would spend the hourly budget of tests. It serves, on an
// httptest server, the routes fleet/globalping uses, with the shapes that
// Globalping's OpenAPI files (public/v1 of jsdelivr/globalping) give them:
//
//	POST /v1/measurements       creation: 202 with id and probesCount, or 400, 401, 422, 429
//	GET  /v1/measurements/{id}  the measurement, in progress, then finished; 404; 429
//
// It replays what the test gives it: the probes online and the result
// each gives, per measurement type (Options.Results, written as a finished
// measurement lists them). A creation is checked as Globalping's schema
// checks it (400 validation_error with a message per parameter), picks
// among those probes by the request's locations and limit (422
// no_probes_found when none fits), and spends tests from an hourly budget
// counted as Globalping counts it: per token, else per client address;
// 250 an hour without a token, 500 with one; the request's most tests
// must be left, the probes found are spent; a creation beyond it is a 429
// with X-RateLimit-Reset. The per-measurement caps are 50 probes without a
// token and 500 with one. A wrong token is 401 everywhere.
//
// A measurement is in progress for its first InProgressReads reads, then
// finished, so that a test waits on reads, not on time. Reading one
// measurement again less than 500 ms after the last read, by Options.Now,
// is a 429 with Retry-After: Globalping's guideline, kept more strictly
// than Globalping's own limiter does.
//
// Faults (401, 429 with X-RateLimit-Reset or Retry-After, 5xx, a proxy's
// 502) are queued per route with Fail (fleet/fleettest's recorder).
package gptest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleettest"
)

// The routes, for Fail and fleettest.Request.
const (
	RouteCreate      fleettest.Route = "create"
	RouteMeasurement fleettest.Route = "measurement"
)

// Globalping's limits.
const (
	AnonymousProbes = 50
	TokenProbes     = 500
	AnonymousTests  = 250
	TokenTests      = 500
	// MinRead is the shortest gap between two reads of one measurement.
	MinRead = 500 * time.Millisecond
)

// Options configure a Server.
type Options struct {
	// Token is the token that authenticates; empty: "test-token".
	Token string
	// Results are, by measurement type (dns, http), the probes online and
	// the result each gives: a JSON array of {"probe": ..., "result": ...}
	// as a finished measurement lists them.
	Results map[string][]byte
	// InProgressReads is how many reads find a measurement in progress:
	// zero is one, a negative number none.
	InProgressReads int
	// Now is the clock for the budget, the reads and the times it writes
	// (default time.Now).
	Now func() time.Time
}

// Server is the fake API.
type Server struct {
	// URL is the API's home, to give the client.
	URL string
	// Token is the token that authenticates.
	Token string
	// Recorder queues faults (Fail) and lists the requests (Requests).
	*fleettest.Recorder

	opt   Options
	items map[string][]item

	mu      sync.Mutex
	nextID  int
	msms    map[string]*measurement
	windows map[string]*window
}

// item is one probe online and the result it gives.
type item struct {
	probe  probe
	raw    json.RawMessage
	result json.RawMessage
}

// probe is what locations are matched against.
type probe struct {
	Continent string   `json:"continent"`
	Region    string   `json:"region"`
	Country   string   `json:"country"`
	State     *string  `json:"state"`
	City      string   `json:"city"`
	ASN       int      `json:"asn"`
	Network   string   `json:"network"`
	Tags      []string `json:"tags"`
}

type measurement struct {
	id, typ, target string
	// asked are the request's locations, limit and options, written back
	// as Globalping does.
	asked   map[string]any
	picked  []item
	reads   int
	created time.Time
	read    time.Time
}

// window counts the tests of one client in its hour.
type window struct {
	used  int
	reset time.Time
}

// New starts a server that t closes.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Token == "" {
		opt.Token = "test-token"
	}
	if opt.InProgressReads == 0 {
		opt.InProgressReads = 1
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{Token: opt.Token, Recorder: &fleettest.Recorder{WriteError: writeStatus}, opt: opt,
		items: map[string][]item{}, msms: map[string]*measurement{}, windows: map[string]*window{}}
	for typ, raw := range opt.Results {
		var items []struct {
			Probe  json.RawMessage `json:"probe"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			t.Fatalf("gptest: the %s results are not a JSON array of {probe, result}: %v", typ, err)
		}
		for i, it := range items {
			var p probe
			if err := json.Unmarshal(it.Probe, &p); err != nil || len(it.Result) == 0 {
				t.Fatalf("gptest: %s result %d has no probe or no result: %v", typ, i+1, err)
			}
			s.items[typ] = append(s.items[typ], item{probe: p, raw: it.Probe, result: it.Result})
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/measurements", s.Route(RouteCreate, s.create))
	mux.HandleFunc("GET /v1/measurements/{id}", s.Route(RouteMeasurement, s.measurement))
	s.URL = fleettest.Serve(t, mux)
	return s
}

// Created is a measurement as it was created.
type Created struct {
	ID string
	// Request is the body it was created from, as sent.
	Request     map[string]any
	ProbesCount int
}

// Measurements returns the measurements created so far, in order.
func (s *Server) Measurements() []Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Created
	for _, m := range s.msms {
		req := map[string]any{"type": m.typ, "target": m.target}
		for k, v := range m.asked {
			req[k] = v
		}
		out = append(out, Created{ID: m.id, Request: req, ProbesCount: len(m.picked)})
	}
	slices.SortFunc(out, func(a, b Created) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Spent returns the tests spent in the current hour by the holder of
// token, or by the clients without one when token is empty.
func (s *Server) Spent(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, w := range s.windows {
		if (token != "" && key == "token:"+token) || (token == "" && strings.HasPrefix(key, "ip:")) {
			if s.opt.Now().Before(w.reset) {
				return w.used
			}
		}
	}
	return 0
}

const docs = "https://globalping.io/docs/api.globalping.io"

// writeError writes the documented error object.
func writeError(w http.ResponseWriter, status int, typ, message string, params map[string]string) {
	e := map[string]any{"type": typ, "message": message}
	if len(params) > 0 {
		e["params"] = params
	}
	fleettest.WriteJSON(w, status, map[string]any{"error": e, "links": map[string]string{"documentation": docs}})
}

// writeStatus writes the error object Globalping sends with status alone.
func writeStatus(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		writeError(w, status, "too_many_requests", "Too many requests. Please retry in 4 seconds.", nil)
	case http.StatusInternalServerError:
		writeError(w, status, "api_error", "Internal Server Error.", nil)
	default:
		text := http.StatusText(status)
		writeError(w, status, strings.ReplaceAll(strings.ToLower(text), " ", "_"), text+".", nil)
	}
}

// client is who the request counts against, and whether it holds the
// token; ok is false, and a 401 written, for a wrong Authorization.
func (s *Server) client(w http.ResponseWriter, r *http.Request) (key string, token, ok bool) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return "ip:" + host, false, true
	}
	parts := strings.Split(auth, " ")
	if len(parts) != 2 || parts[0] != "Bearer" || parts[1] != s.Token {
		writeStatus(w, http.StatusUnauthorized)
		return "", false, false
	}
	return "token:" + parts[1], true, true
}

var (
	types        = []string{"ping", "traceroute", "dns", "mtr", "http"}
	dnsTypes     = []string{"A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NS", "NSEC", "PTR", "RRSIG", "SOA", "TXT", "SRV", "SVCB"}
	locationKeys = []string{"continent", "region", "country", "state", "city", "asn", "network", "tags", "magic"}
	topKeys      = []string{"type", "target", "inProgressUpdates", "locations", "limit", "timeout", "measurementOptions"}
)

// create checks a creation as Globalping's schema does, then its rate
// limit, picks the probes and answers 202.
func (s *Server) create(w http.ResponseWriter, r *http.Request, body []byte) {
	key, token, ok := s.client(w, r)
	if !ok {
		return
	}
	maxProbes := AnonymousProbes
	if token {
		maxProbes = TokenProbes
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		writeError(w, http.StatusBadRequest, "validation_error", "Parameter validation failed.",
			map[string]string{"body": "the body is not a JSON object"})
		return
	}
	v := validation{}
	for k := range req {
		if !slices.Contains(topKeys, k) {
			v.add(k, fmt.Sprintf("%q is not allowed", k))
		}
	}
	typ, _ := req["type"].(string)
	typ = strings.ToLower(typ)
	if !slices.Contains(types, typ) {
		v.add("type", `"type" must be one of [ping, traceroute, dns, mtr, http]`)
	}
	target, _ := req["target"].(string)
	if strings.TrimSpace(target) == "" {
		v.add("target", `"target" is required`)
	}
	limit, hasLimit := v.integer(req, "limit", "limit", maxProbes)
	locs := v.locations(req["locations"], hasLimit, maxProbes)
	v.options(typ, target, req["measurementOptions"])
	if len(v) > 0 {
		writeError(w, http.StatusBadRequest, "validation_error", "Parameter validation failed.", v)
		return
	}
	// Globalping counts the most the request can spend before looking
	// for probes: the locations' limits when one has one, else the limit.
	cost := limit
	if !hasLimit {
		cost = max(len(locs), 1)
	}
	if slices.ContainsFunc(locs, func(l location) bool { return l.limit > 0 }) {
		cost = 0
		for _, l := range locs {
			cost += max(l.limit, 1)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opt.Now()
	win := s.window(key, now)
	points := AnonymousTests
	if token {
		points = TokenTests
	}
	w.Header().Set("X-Request-Cost", strconv.Itoa(cost))
	if points-win.used < cost {
		s.rateHeaders(w, win, points, 0, now)
		if token {
			writeError(w, http.StatusTooManyRequests, "insufficient_credits", "Not enough credits to run this measurement.", nil)
		} else {
			writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "This measurement exceeds the remaining hourly rate limit for your IP address.", nil)
		}
		return
	}
	picked := s.pick(typ, locs, limit, hasLimit)
	if len(picked) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "no_probes_found", "No matching IPv4 probes available.", nil)
		return
	}
	if win.used == 0 {
		win.reset = now.Add(time.Hour)
	}
	win.used += len(picked)
	s.rateHeaders(w, win, points, len(picked), now)
	s.nextID++
	m := &measurement{id: fmt.Sprintf("gpfake%010d", s.nextID), typ: typ, target: target, asked: map[string]any{},
		picked: picked, created: now}
	for _, k := range []string{"locations", "limit", "measurementOptions"} {
		if v, ok := req[k]; ok {
			m.asked[k] = v
		}
	}
	s.msms[m.id] = m
	w.Header().Set("Location", s.URL+"/v1/measurements/"+m.id)
	fleettest.WriteJSON(w, http.StatusAccepted, map[string]any{"id": m.id, "probesCount": len(picked)})
}

// window returns key's window as of now, a new one after the hour;
// s.mu is held.
func (s *Server) window(key string, now time.Time) *window {
	win := s.windows[key]
	if win == nil || !now.Before(win.reset) {
		win = &window{}
		s.windows[key] = win
	}
	return win
}

func (s *Server) rateHeaders(w http.ResponseWriter, win *window, points, consumed int, now time.Time) {
	reset := 0
	if win.used > 0 {
		reset = int(win.reset.Sub(now).Round(time.Second) / time.Second)
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(points))
	h.Set("X-RateLimit-Consumed", strconv.Itoa(consumed))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(points-win.used, 0)))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
}

// validation collects Globalping's messages by parameter path.
type validation map[string]string

func (v validation) add(path, msg string) {
	if _, ok := v[path]; !ok {
		v[path] = msg
	}
}

// integer reads an optional integer parameter in [1, most].
func (v validation) integer(obj map[string]any, key, path string, most int) (int, bool) {
	raw, ok := obj[key]
	if !ok {
		return 0, false
	}
	f, isNum := raw.(float64)
	switch {
	case !isNum || f != float64(int(f)):
		v.add(path, fmt.Sprintf("%q must be an integer", path))
	case f < 1:
		v.add(path, fmt.Sprintf("%q must be greater than or equal to 1", path))
	case f > float64(most):
		v.add(path, fmt.Sprintf("%q must be less than or equal to %d", path, most))
	}
	return int(f), true
}

// location is a location of a request, as the fake matches it.
type location struct {
	fields map[string]any
	limit  int
}

func (v validation) locations(raw any, hasLimit bool, maxProbes int) []location {
	if raw == nil {
		return nil
	}
	arr, ok := raw.([]any)
	if !ok {
		v.add("locations", `"locations" must be an array (this fake does not reuse a measurement's probes)`)
		return nil
	}
	if len(arr) > 128 {
		v.add("locations", `"locations" must contain less than or equal to 128 items`)
	}
	var out []location
	sum := 0
	for i, e := range arr {
		path := fmt.Sprintf("locations[%d]", i)
		obj, ok := e.(map[string]any)
		if !ok {
			v.add(path, fmt.Sprintf("%q must be of type object", path))
			continue
		}
		l := location{fields: map[string]any{}}
		for k, val := range obj {
			switch {
			case k == "limit":
				if hasLimit {
					v.add(path+".limit", fmt.Sprintf(`"%s.limit" is not allowed when a global limit is set`, path))
				}
				l.limit, _ = v.integer(obj, "limit", path+".limit", maxProbes)
			case slices.Contains(locationKeys, k):
				l.fields[k] = val
			default:
				v.add(path+"."+k, fmt.Sprintf(`"%s.%s" is not allowed`, path, k))
			}
		}
		if magic, _ := l.fields["magic"].(string); strings.Count(magic, "+") >= 4 {
			v.add(path+".magic", fmt.Sprintf(`"%s.magic" must contain at most 4 combined filters`, path))
		}
		if len(l.fields) == 0 {
			v.add(path, fmt.Sprintf("%q must contain at least one of [continent, region, country, state, city, network, asn, magic, tags]", path))
		}
		sum += max(l.limit, 1)
		out = append(out, l)
	}
	if !hasLimit && sum > maxProbes {
		v.add("locations", fmt.Sprintf("the sum of limits must be less than or equal to %d", maxProbes))
	}
	return out
}

// options checks measurementOptions for the types the fake answers.
func (v validation) options(typ, target string, raw any) {
	if raw == nil {
		return
	}
	o, ok := raw.(map[string]any)
	if !ok {
		v.add("measurementOptions", `"measurementOptions" must be of type object`)
		return
	}
	isIP := func(s string) bool { return net.ParseIP(strings.Trim(s, "[]")) != nil }
	oneOf := func(key string, allowed ...string) {
		if val, ok := o[key]; ok {
			if s, _ := val.(string); !slices.Contains(allowed, strings.ToUpper(s)) {
				v.add("measurementOptions."+key, fmt.Sprintf(`"measurementOptions.%s" must be one of [%s]`, key, strings.Join(allowed, ", ")))
			}
		}
	}
	ipVersion := func(host, what string) {
		if _, ok := o["ipVersion"]; ok && isIP(host) {
			v.add("measurementOptions.ipVersion", fmt.Sprintf(`"measurementOptions.ipVersion" is not allowed when %s is not a domain`, what))
		} else if ok {
			if f, _ := o["ipVersion"].(float64); f != 4 && f != 6 {
				v.add("measurementOptions.ipVersion", `"measurementOptions.ipVersion" must be either 4 or 6`)
			}
		}
	}
	switch typ {
	case "dns":
		q, _ := o["query"].(map[string]any)
		if t, ok := q["type"]; ok {
			if s, _ := t.(string); !slices.Contains(dnsTypes, strings.ToUpper(s)) {
				v.add("measurementOptions.query.type", `"measurementOptions.query.type" must be one of [`+strings.Join(dnsTypes, ", ")+"]")
			}
		}
		if _, ok := q["class"]; ok {
			v.add("measurementOptions.query.class", `"measurementOptions.query.class" is not allowed`)
		}
		oneOf("protocol", "UDP", "TCP")
		resolver, _ := o["resolver"].(string)
		ipVersion(resolver, "resolver")
	case "http":
		req, _ := o["request"].(map[string]any)
		if m, ok := req["method"]; ok {
			if s, _ := m.(string); !slices.Contains([]string{"GET", "HEAD", "OPTIONS"}, strings.ToUpper(s)) {
				v.add("measurementOptions.request.method", `"measurementOptions.request.method" must be one of [GET, HEAD, OPTIONS]`)
			}
		}
		if h, ok := req["headers"].(map[string]any); ok {
			for name, val := range h {
				if _, isStr := val.(string); !isStr {
					v.add("measurementOptions.request.headers."+name, fmt.Sprintf(`"measurementOptions.request.headers.%s" must be a string`, name))
				}
			}
		}
		oneOf("protocol", "HTTP", "HTTPS", "HTTP2")
		ipVersion(target, "target")
	}
}

// pick chooses the probes of a creation, in the fixture's order: each
// location its limit (one by default), or, with a limit for the whole
// request, the locations in turn until it is reached; anywhere without
// locations. s.mu is held.
func (s *Server) pick(typ string, locs []location, limit int, hasLimit bool) []item {
	all := s.items[typ]
	taken := make([]bool, len(all))
	var out []item
	take := func(l *location) bool {
		for i, it := range all {
			if !taken[i] && (l == nil || l.matches(it.probe)) {
				taken[i] = true
				out = append(out, it)
				return true
			}
		}
		return false
	}
	total := limit
	if !hasLimit {
		total = 1
	}
	switch {
	case len(locs) == 0:
		for len(out) < total && take(nil) {
		}
	case hasLimit:
		for progress := true; progress && len(out) < total; {
			progress = false
			for i := range locs {
				if len(out) < total && take(&locs[i]) {
					progress = true
				}
			}
		}
	default:
		for i := range locs {
			for n := 0; n < max(locs[i].limit, 1) && take(&locs[i]); n++ {
			}
		}
	}
	return out
}

// matches reports whether p is in l: every field given holds. Magic is
// matched more simply than Globalping's fuzzy search: each part joined by
// + must equal one of the probe's codes or names, "AS<asn>", "US-<state>"
// or a tag, or be part of its network's name.
func (l *location) matches(p probe) bool {
	state := ""
	if p.State != nil {
		state = *p.State
	}
	eq := func(want any, have string) bool { s, _ := want.(string); return strings.EqualFold(s, have) }
	for k, want := range l.fields {
		var ok bool
		switch k {
		case "continent":
			ok = eq(want, p.Continent)
		case "region":
			ok = eq(want, p.Region)
		case "country":
			ok = eq(want, p.Country)
		case "state":
			ok = eq(want, state)
		case "city":
			ok = eq(want, p.City)
		case "network":
			ok = eq(want, p.Network)
		case "asn":
			f, _ := want.(float64)
			ok = int(f) == p.ASN
		case "tags":
			tags, _ := want.([]any)
			ok = true
			for _, t := range tags {
				ok = ok && slices.ContainsFunc(p.Tags, func(have string) bool { return eq(t, have) })
			}
		case "magic":
			magic, _ := want.(string)
			ok = true
			for part := range strings.SplitSeq(magic, "+") {
				part = strings.TrimSpace(part)
				names := append([]string{p.Continent, p.Region, p.Country, state, "US-" + state, p.City,
					"AS" + strconv.Itoa(p.ASN)}, p.Tags...)
				ok = ok && (slices.ContainsFunc(names, func(n string) bool { return n != "" && strings.EqualFold(n, part) }) ||
					(part != "" && strings.Contains(strings.ToLower(p.Network), strings.ToLower(part))))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// measurement answers a read: in progress for the first reads, then the
// results the picked probes give.
func (s *Server) measurement(w http.ResponseWriter, r *http.Request, _ []byte) {
	if _, _, ok := s.client(w, r); !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msms[r.PathValue("id")]
	if m == nil {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find the requested item.", nil)
		return
	}
	now := s.opt.Now()
	if !m.read.IsZero() && now.Sub(m.read) < MinRead {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too_many_requests", "Too many requests. Please retry in 1 second.", nil)
		return
	}
	m.read = now
	m.reads++
	status := "finished"
	if m.reads <= s.opt.InProgressReads {
		status = "in-progress"
	}
	results := make([]map[string]any, len(m.picked))
	for i, it := range m.picked {
		res := it.result
		if status == "in-progress" {
			res = json.RawMessage(`{"status": "in-progress", "rawOutput": ""}`)
		}
		results[i] = map[string]any{"probe": it.raw, "result": res}
	}
	out := map[string]any{
		"id": m.id, "type": m.typ, "status": status, "target": m.target, "probesCount": len(m.picked),
		"createdAt": m.created.UTC().Format("2006-01-02T15:04:05.000Z"),
		"updatedAt": now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"results":   results,
	}
	for k, v := range m.asked {
		out[k] = v
	}
	fleettest.WriteJSON(w, http.StatusOK, out)
}
