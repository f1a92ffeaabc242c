package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/spec"
)

// Plan entry limits.
const (
	defaultInterval = time.Minute
	minInterval     = time.Second
	maxTargets      = 10000
	selectAll       = "all"
)

// validatePlan checks every entry and fills defaults (method, name,
// interval); the error names the entry.
func validatePlan(p *api.Plan) error {
	if len(p.Targets) > maxTargets {
		return fmt.Errorf("targets: %d entries, more than %d", len(p.Targets), maxTargets)
	}
	names := make(map[string]int, len(p.Targets))
	for i := range p.Targets {
		t := &p.Targets[i]
		if err := validateTarget(t); err != nil {
			return fmt.Errorf("targets[%d] (%q): %w", i, t.Target, err)
		}
		if j, dup := names[t.Name]; dup {
			return fmt.Errorf("targets[%d] (%q): name %q is also the name of targets[%d]: give each entry its own name", i, t.Target, t.Name, j)
		}
		names[t.Name] = i
	}
	return nil
}

func validateTarget(t *api.Target) error {
	if err := t.Spec.Validate(); err != nil {
		return err
	}
	if t.Name == "" {
		t.Name = t.Target
	}
	switch d := t.Interval.D(); {
	case d == 0:
		t.Interval = spec.Duration(defaultInterval)
	case d < minInterval:
		return fmt.Errorf("interval %s is shorter than %s", d, minInterval)
	}
	for _, sel := range t.Probes {
		if k, _, ok := strings.Cut(sel, "="); sel != selectAll && (!ok || !labelKey.MatchString(k)) {
			return fmt.Errorf("probes: %q: use %q or key=value (key: %s)", sel, selectAll, labelKeyHelp)
		}
	}
	for j, s := range t.Prefixes {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("prefixes: %q is not a prefix such as 192.0.2.0/24 or 2001:db8::/32", s)
		}
		t.Prefixes[j] = pfx.Masked().String()
	}
	return nil
}

// version is a short hash of what a plan says, so that agents can tell
// whether it changed.
func version(targets []api.Target, refresh spec.Duration) string {
	b, err := json.Marshal(struct {
		T []api.Target
		R spec.Duration
	}{targets, refresh})
	if err != nil { // plain structs always marshal
		panic(fmt.Sprintf("marshalling a plan: %v", err))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// selects reports whether the entry is for a probe with these labels.
func selects(t *api.Target, labels map[string]string) bool {
	if len(t.Probes) == 0 {
		return true
	}
	for _, sel := range t.Probes {
		if sel == selectAll {
			return true
		}
		k, v, _ := strings.Cut(sel, "=")
		if lv, ok := labels[k]; ok && lv == v {
			return true
		}
	}
	return false
}

func (s *Server) putTargets(w http.ResponseWriter, r *http.Request) {
	var p api.Plan
	if !decodeBody(w, r, &p) {
		return
	}
	if p.Targets == nil {
		httpx.WriteError(w, http.StatusBadRequest, `targets: missing: send {"targets": [...]} (an empty list clears the plan)`)
		return
	}
	if err := validatePlan(&p); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error()+"; the plan was not changed")
		return
	}
	p.Refresh = 0 // the aggregator's setting, added to each probe's plan
	p.Version = version(p.Targets, 0)
	if err := s.st.PutPlan(r.Context(), p); err != nil {
		httpx.StoreError(s.log, w, r, "storing the plan", err)
		return
	}
	s.log.Info("plan replaced", "targets", len(p.Targets), "version", p.Version)
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (s *Server) getTargets(w http.ResponseWriter, r *http.Request) {
	p, err := s.st.Plan(r.Context())
	if err != nil {
		httpx.StoreError(s.log, w, r, "reading the plan", err)
		return
	}
	if p.Targets == nil {
		p.Targets = []api.Target{}
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// plan is GET /api/v1/plan: the entries for the calling probe, with an ETag
// so that an unchanged plan costs a 304.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	pr, _ := ProbeFromContext(r.Context())
	all, err := s.st.Plan(r.Context())
	if err != nil {
		httpx.StoreError(s.log, w, r, "reading the plan", err)
		return
	}
	p := api.Plan{Targets: []api.Target{}, Refresh: s.cfg.PlanRefresh}
	for i := range all.Targets {
		if selects(&all.Targets[i], pr.Labels) {
			p.Targets = append(p.Targets, all.Targets[i])
		}
	}
	p.Version = version(p.Targets, p.Refresh)
	etag := `"` + p.Version + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}
