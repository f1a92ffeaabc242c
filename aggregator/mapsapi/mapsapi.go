// Package mapsapi serves catchment maps, diffs and timelines over HTTP:
//
//	GET /api/v1/catchment  ?target=&from=&to=&res=&by=&format=json|geojson|csv&min_probes=&dominance=
//	GET /api/v1/diff       ?target=&a_from=&a_to=&b_from=&b_to=&res=&by=&format=json|csv&table=cells|flows
//	GET /api/v1/timeline   ?target=&from=&to=&step=&threshold=
//
// Records stream from the store's Scan into the maps builders, so a window is
// never held in memory: what a request costs in memory grows with the probes
// and cells of the window, not with its results. When the store condenses
// records per probe (store.Summarizer, store.StepSummarizer), catchments, diffs and
// timelines read its summaries instead: the same answer from a few rows per
// probe.
//
// The handler does no authentication; the aggregator mounts its routes behind
// its read-token check.
package mapsapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/jsonx"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// Defaults and limits of the query windows.
const (
	// DefaultWindow is the window when from/to are not given, and the
	// length of each diff window by default.
	DefaultWindow = 15 * time.Minute
	// DefaultMaxWindow bounds a window, so that one request cannot scan the
	// whole store.
	DefaultMaxWindow = 31 * 24 * time.Hour
)

// Output formats.
const (
	FormatJSON    = "json"
	FormatGeoJSON = "geojson"
	FormatCSV     = "csv"
)

// Content types of the formats.
const (
	contentJSON    = "application/json"
	contentGeoJSON = "application/geo+json"
	contentCSV     = "text/csv; charset=utf-8"
)

// Handler serves the maps routes. Use New; it is safe for concurrent use.
type Handler struct {
	log       *slog.Logger
	st        store.Results
	loc       maps.SiteLocator
	now       func() time.Time
	maxWindow time.Duration
	causes    CauseFunc
	plans     store.Plans
}

// CauseFunc lists what may explain a target's shifts in [from, to): BGP
// events and annotations, in time order (see maps.Timeline.LinkCauses).
type CauseFunc func(ctx context.Context, target string, from, to time.Time) ([]maps.Cause, error)

// CauseLookback is how long before a shift a BGP event or annotation may
// be to count as its cause.
const CauseLookback = time.Hour

// Option configures New.
type Option func(*Handler)

// WithClock sets the clock that default windows end at.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithPlan resolves the target a request names through the plan (see
// resolve); without it the name is the records' target as it is.
func WithPlan(plans store.Plans) Option { return func(h *Handler) { h.plans = plans } }

// WithCauses links every timeline shift to its likely cause, from causes.
func WithCauses(causes CauseFunc) Option { return func(h *Handler) { h.causes = causes } }

// New returns a handler reading results from st and placing site codes
// with loc (nil locates nothing: no site distances or inflation).
func New(log *slog.Logger, st store.Results, loc maps.SiteLocator, opts ...Option) *Handler {
	h := &Handler{log: log, st: st, loc: loc, now: time.Now, maxWindow: DefaultMaxWindow}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Route is one endpoint: a ServeMux pattern with its method, and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes lists the endpoints, for a server that mounts routes itself (with
// its own access checks).
func (h *Handler) Routes() []Route {
	return []Route{
		{"GET " + api.Prefix + "/catchment", http.HandlerFunc(h.catchment)},
		{"GET " + api.Prefix + "/diff", http.HandlerFunc(h.diff)},
		{"GET " + api.Prefix + "/timeline", http.HandlerFunc(h.timeline)},
	}
}

// Register mounts every route on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, r := range h.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
}

// catchment is GET /api/v1/catchment.
func (h *Handler) catchment(w http.ResponseWriter, r *http.Request) {
	p := h.params(r)
	target := p.target()
	from, to := p.window("from", "to", time.Time{})
	opts := maps.Options{Target: target, From: from, To: to}
	p.binning(&opts)
	p.confidence(&opts)
	format := p.enum("format", FormatJSON, FormatJSON, FormatGeoJSON, FormatCSV)
	if p.fail(w) {
		return
	}
	target, ok := h.resolve(w, r, target)
	if !ok {
		return
	}
	opts.Target = target
	b, err := maps.NewBuilder(opts, h.loc)
	if err != nil {
		// params checked everything NewBuilder checks; a gap between the
		// two is a bug, but still the request's parameters.
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !h.fill(w, r, store.Query{Target: target, From: from, To: to}, b) {
		return
	}
	c := b.Build()
	name := filename("catchment", target, from)
	switch format {
	case FormatGeoJSON:
		h.write(w, r, contentGeoJSON, name+".geojson", func(buf *bytes.Buffer) error { return writeGeoJSON(buf, c) })
	case FormatCSV:
		h.write(w, r, contentCSV, name+".csv", func(buf *bytes.Buffer) error { return maps.WriteCellsCSV(buf, c) })
	default:
		h.write(w, r, contentJSON, "", func(buf *bytes.Buffer) error { return writeCatchmentJSON(buf, c) })
	}
}

// diff is GET /api/v1/diff. Window B defaults to the last DefaultWindow and
// window A to the DefaultWindow before B.
func (h *Handler) diff(w http.ResponseWriter, r *http.Request) {
	p := h.params(r)
	target := p.target()
	fromB, toB := p.window("b_from", "b_to", time.Time{})
	fromA, toA := p.window("a_from", "a_to", fromB)
	var opts maps.Options
	p.binning(&opts)
	p.confidence(&opts)
	format := p.enum("format", FormatJSON, FormatJSON, FormatCSV)
	table := p.enum("table", "cells", "cells", "flows")
	if p.fail(w) {
		return
	}
	target, ok := h.resolve(w, r, target)
	if !ok {
		return
	}
	var cs [2]*maps.Catchment
	for i, win := range [2][2]time.Time{{fromA, toA}, {fromB, toB}} {
		o := opts
		o.Target, o.From, o.To = target, win[0], win[1]
		b, err := maps.NewBuilder(o, h.loc)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if !h.fill(w, r, store.Query{Target: target, From: win[0], To: win[1]}, b) {
			return
		}
		cs[i] = b.Build()
	}
	d, err := maps.Compare(cs[0], cs[1])
	if err != nil {
		h.log.Error("compare catchments", "target", target, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "diff: internal error comparing the windows: see the aggregator log")
		return
	}
	name := filename("diff", target, fromB)
	switch {
	case format == FormatCSV && table == "flows":
		h.write(w, r, contentCSV, name+"-flows.csv", func(buf *bytes.Buffer) error { return maps.WriteFlowsCSV(buf, d) })
	case format == FormatCSV:
		h.write(w, r, contentCSV, name+".csv", func(buf *bytes.Buffer) error { return maps.WriteDiffCSV(buf, d) })
	default:
		h.write(w, r, contentJSON, "", func(buf *bytes.Buffer) error { return encodeJSON(buf, d) })
	}
}

// timeline is GET /api/v1/timeline.
func (h *Handler) timeline(w http.ResponseWriter, r *http.Request) {
	p := h.params(r)
	target := p.target()
	from, to := p.window("from", "to", time.Time{})
	opts := maps.TimelineOptions{Target: target, From: from, To: to}
	opts.Step = p.step(to.Sub(from))
	opts.Threshold = p.share("threshold", maps.DefaultThreshold)
	if p.fail(w) {
		return
	}
	target, ok := h.resolve(w, r, target)
	if !ok {
		return
	}
	opts.Target = target
	b, err := maps.NewTimelineBuilder(opts)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !h.fillTimeline(w, r, store.Query{Target: target, From: from, To: to}, opts.Step, b) {
		return
	}
	tl := b.Build()
	if h.causes != nil && len(tl.Shifts) > 0 {
		cs, err := h.causes(r.Context(), target, from.Add(-CauseLookback), to.Add(opts.Step))
		if err != nil {
			// The timeline stands without them.
			h.log.Warn("timeline: shifts not linked to causes", "target", target, "err", err)
		}
		tl.LinkCauses(cs, CauseLookback)
	}
	h.write(w, r, contentJSON, "", func(buf *bytes.Buffer) error { return encodeJSON(buf, tl) })
}

// resolve finds the records' target for the name a request gives: a plan
// entry's name, else the address of exactly one plan entry, else a target
// with stored results. Else it answers 404, naming the targets it knows,
// and returns false.
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	if h.plans == nil {
		return name, true
	}
	p, err := h.plans.Plan(r.Context())
	if err != nil {
		httpx.StoreError(h.log, w, r, "reading the plan", err)
		return "", false
	}
	if t, ok := p.Lookup(name); ok {
		return t.Name, true
	}
	stored, err := h.st.Targets(r.Context(), time.Time{}, time.Time{})
	if err != nil {
		httpx.StoreError(h.log, w, r, "listing targets", err)
		return "", false
	}
	if slices.Contains(stored, name) {
		return name, true
	}
	known := stored
	for _, t := range p.Targets {
		known = append(known, t.Name)
	}
	httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("target %q is no plan entry's name, no address of exactly one entry, and has no results: %s",
		clipName(name), knownTargets(known)))
	return "", false
}

// knownTargets lists targets for a message, sorted, at most 20.
func knownTargets(ts []string) string {
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if len(ts) == 0 {
		return "no target is known yet: put a plan (catchmap targets put)"
	}
	more := ""
	if len(ts) > 20 {
		more = fmt.Sprintf(" and %d more", len(ts)-20)
		ts = ts[:20]
	}
	return "known targets are " + strings.Join(ts, ", ") + more
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// fillTimeline feeds the query's records to a timeline builder: as
// summaries per step when the store makes them, else record by record. It
// answers the request itself and returns false when the store fails.
func (h *Handler) fillTimeline(w http.ResponseWriter, r *http.Request, q store.Query, step time.Duration, b *maps.TimelineBuilder) bool {
	sm, ok := h.st.(store.StepSummarizer)
	if !ok {
		return h.scan(w, r, q, b.Add)
	}
	return h.readOK(w, r, q, sm.ScanStepSummaries(r.Context(), q, step, b.AddSummary))
}

// fill feeds the query's records to a catchment builder: as summaries when
// the store keeps them (a few rows per probe instead of every record, with
// the same outcome), else record by record. It answers the request itself
// and returns false when the store fails.
func (h *Handler) fill(w http.ResponseWriter, r *http.Request, q store.Query, b *maps.Builder) bool {
	sm, ok := h.st.(store.Summarizer)
	if !ok {
		return h.scan(w, r, q, b.Add)
	}
	return h.readOK(w, r, q, sm.ScanSummaries(r.Context(), q, b.AddSummary))
}

// scan streams the query's records into add. It answers the request itself
// and returns false when the store fails.
func (h *Handler) scan(w http.ResponseWriter, r *http.Request, q store.Query, add func(*result.Record)) bool {
	return h.readOK(w, r, q, h.st.Scan(r.Context(), q, func(rec *result.Record) error {
		add(rec)
		return nil
	}))
}

// readOK reports whether reading the store succeeded, and answers the
// request itself when it did not.
func (h *Handler) readOK(w http.ResponseWriter, r *http.Request, q store.Query, err error) bool {
	if err == nil {
		return true
	}
	httpx.StoreError(h.log.With("target", q.Target), w, r, "reading results", err)
	return false
}

// write renders the body into a buffer first, so that a rendering error
// still gets a clean 500 rather than half a document under a 200.
// attachment, when set, is the download's file name.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, contentType, attachment string, render func(*bytes.Buffer) error) {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		h.log.Error("render map", "route", r.Pattern, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "rendering the answer failed: see the aggregator log")
		return
	}
	w.Header().Set("Content-Type", contentType)
	if attachment != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+attachment+`"`)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// encodeJSON is the JSON of a map document: json.Marshal's, as the
// catchment's fast writer gives it, with null for a float that is not a
// number rather than a failed answer.
func encodeJSON(buf *bytes.Buffer, v any) error {
	b, err := jsonx.AppendHTML(buf.AvailableBuffer(), v)
	if err != nil {
		return err
	}
	buf.Write(append(b, '\n'))
	return nil
}

// filename builds a download name from the target and the window's start,
// keeping only characters that are safe in a header and a file system.
func filename(kind, target string, from time.Time) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, target)
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return fmt.Sprintf("%s-%s-%s", kind, safe, from.UTC().Format("20060102T150405Z"))
}

// Sites adapts a site table to the locator maps wants.
func Sites(t *sites.Table) maps.SiteLocator {
	return maps.SiteLocatorFunc(func(code string) (maps.Site, bool) {
		s, ok := t.Lookup(code)
		if !ok {
			return maps.Site{}, false
		}
		return maps.Site{Code: s.Code, Name: s.Name, Lat: s.Lat, Lon: s.Lon}, true
	})
}
