package mapsapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/maps"
)

// maxTarget bounds the target parameter; plan names are far shorter.
const maxTarget = 256

// params reads a request's query parameters, keeping the first problem so
// that a handler checks them all and then answers 400 once, naming the
// parameter and what it accepts.
type params struct {
	q         url.Values
	now       time.Time
	maxWindow time.Duration
	problem   string
}

func (h *Handler) params(r *http.Request) *params {
	return &params{q: r.URL.Query(), now: h.now().UTC(), maxWindow: h.maxWindow}
}

func (p *params) bad(format string, a ...any) {
	if p.problem == "" {
		p.problem = fmt.Sprintf(format, a...)
	}
}

// fail answers 400 when a parameter was bad.
func (p *params) fail(w http.ResponseWriter) bool {
	if p.problem == "" {
		return false
	}
	httpx.WriteError(w, http.StatusBadRequest, p.problem)
	return true
}

// quote shows a user's value in a message: quoted, so that control
// characters cannot forge lines, and clipped.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

func (p *params) target() string {
	t := strings.TrimSpace(p.q.Get("target"))
	switch {
	case t == "":
		p.bad("missing parameter target: give the target's name as in the plan (GET /api/v1/targets lists them)")
	case len(t) > maxTarget:
		p.bad("parameter target is %d bytes long: target names have at most %d", len(t), maxTarget)
	}
	return t
}

// window reads an RFC 3339 [from, to) pair. to defaults to defTo, or now
// when defTo is zero; from defaults to DefaultWindow before to.
func (p *params) window(fromName, toName string, defTo time.Time) (from, to time.Time) {
	to = defTo
	if to.IsZero() {
		to = p.now
	}
	to = p.time(toName, to)
	from = p.time(fromName, to.Add(-DefaultWindow))
	switch {
	case p.problem != "":
	case !from.Before(to):
		p.bad("window %s=%s to %s=%s is empty: %s must be before %s", fromName, from.Format(time.RFC3339),
			toName, to.Format(time.RFC3339), fromName, toName)
	case to.Sub(from) > p.maxWindow:
		p.bad("window %s to %s is %s long: at most %s is allowed, ask for a shorter one", fromName, toName,
			to.Sub(from), p.maxWindow)
	}
	return from, to
}

func (p *params) time(name string, def time.Time) time.Time {
	s := p.q.Get(name)
	if s == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.bad("parameter %s=%s is not an RFC 3339 time: use e.g. 2026-01-02T15:04:05Z", name, quote(s))
		return def
	}
	return t.UTC()
}

func (p *params) enum(name, def string, allowed ...string) string {
	s := p.q.Get(name)
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.bad("parameter %s=%s is not allowed: use one of %s", name, quote(s), strings.Join(allowed, ", "))
	return def
}

// integer reads an integer in [lo, hi].
func (p *params) integer(name string, def, lo, hi int) int {
	s := p.q.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.bad("parameter %s=%s is not allowed: use an integer from %d to %d", name, quote(s), lo, hi)
		return def
	}
	return n
}

// share reads a number in (0, 1].
func (p *params) share(name string, def float64) float64 {
	s := p.q.Get(name)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) {
		p.bad("parameter %s=%s is not allowed: use a share greater than 0 and at most 1, e.g. 0.8", name, quote(s))
		return def
	}
	return f
}

// binning reads res and by.
func (p *params) binning(o *maps.Options) {
	res := p.integer("res", maps.DefaultRes, maps.MinRes, maps.MaxRes)
	o.Res = res
	if res == 0 {
		o.Res = maps.ResBase
	}
	o.By = p.enum("by", maps.ByH3, maps.Groupings()...)
}

// confidence reads min_probes and dominance.
func (p *params) confidence(o *maps.Options) {
	o.MinProbes = p.integer("min_probes", maps.DefaultMinProbes, 1, 1_000_000)
	o.Dominance = p.share("dominance", maps.DefaultDominance)
}

// step reads a timeline step: at least a second, and at most maps.MaxSteps
// of them in window.
func (p *params) step(window time.Duration) time.Duration {
	s := p.q.Get("step")
	if s == "" {
		s = maps.DefaultStep.String()
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil || d < time.Second:
		p.bad("parameter step=%s is not allowed: use a duration of 1s or more, e.g. 30s, 1m, 1h", quote(s))
		return maps.DefaultStep
	case window > 0 && d > window:
		p.bad("parameter step=%s is longer than the window (%s): use a step of at most the window", quote(s), window)
	case window > 0 && maps.StepCount(window, d) > maps.MaxSteps:
		p.bad("parameter step=%s makes %d steps in the window: at most %d are allowed, use a longer step or a shorter window",
			quote(s), maps.StepCount(window, d), maps.MaxSteps)
	}
	return d
}
