package server

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/result"
)

// Limits of a registration.
const (
	maxNameLen   = 128
	maxLabels    = 32
	maxLabelVal  = 128
	labelKeyHelp = "letters, digits, '_', '.' and '-', at most 63"
)

var labelKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,63}$`)

func validateRegistration(reg *api.ProbeRegistration) error {
	reg.Name = strings.TrimSpace(reg.Name)
	switch {
	case reg.Name == "":
		return fmt.Errorf("name: empty: give the probe a name people recognise, such as ams-home-1")
	case len(reg.Name) > maxNameLen:
		return fmt.Errorf("name: %d bytes, more than %d", len(reg.Name), maxNameLen)
	case strings.IndexFunc(reg.Name, unicode.IsControl) >= 0:
		return fmt.Errorf("name: contains control characters")
	case (reg.Lat == nil) != (reg.Lon == nil):
		return fmt.Errorf("lat, lon: give both or neither")
	case reg.Lat != nil && !(*reg.Lat >= -90 && *reg.Lat <= 90):
		return fmt.Errorf("lat: %v out of range -90 to 90", *reg.Lat)
	case reg.Lon != nil && !(*reg.Lon >= -180 && *reg.Lon <= 180):
		return fmt.Errorf("lon: %v out of range -180 to 180", *reg.Lon)
	case len(reg.Labels) > maxLabels:
		return fmt.Errorf("labels: %d, more than %d", len(reg.Labels), maxLabels)
	}
	for k, v := range reg.Labels {
		if !labelKey.MatchString(k) {
			return fmt.Errorf("labels: key %q: use %s", k, labelKeyHelp)
		}
		if len(v) > maxLabelVal || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fmt.Errorf("labels: value of %q: at most %d bytes, no control characters", k, maxLabelVal)
		}
	}
	return nil
}

// registerProbe is POST /api/v1/probes: the token is shown once, here; the
// store keeps its hash.
func (s *Server) registerProbe(w http.ResponseWriter, r *http.Request) {
	var reg api.ProbeRegistration
	if !decodeBody(w, r, &reg) {
		return
	}
	if err := validateRegistration(&reg); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, err := token.New()
	if err != nil {
		s.log.Error("registering a probe", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "could not generate a token: see the aggregator log")
		return
	}
	p := api.Probe{
		ID:      result.NewID(),
		Name:    reg.Name,
		Lat:     reg.Lat,
		Lon:     reg.Lon,
		Labels:  reg.Labels,
		Created: s.now().UTC(),
	}
	if err := s.st.CreateProbe(r.Context(), p, tok.Hash()); err != nil {
		httpx.StoreError(s.log, w, r, "registering the probe", err)
		return
	}
	s.log.Info("probe registered", "probe", p.ID, "name", p.Name)
	httpx.WriteJSON(w, http.StatusCreated, api.ProbeCreated{ID: p.ID, Token: tok.Reveal()})
}

func (s *Server) listProbes(w http.ResponseWriter, r *http.Request) {
	ps, err := s.st.ListProbes(r.Context())
	if err != nil {
		httpx.StoreError(s.log, w, r, "listing probes", err)
		return
	}
	if ps == nil {
		ps = []api.Probe{}
	}
	// Readers (the web UI's probe table) see names, places and last-seen
	// times; where each probe uploads from is for the admin only.
	if s.cfg.AdminToken.IsZero() || !token.FromHeader(r.Header.Get("Authorization")).Equal(s.cfg.AdminToken) {
		for i := range ps {
			ps[i].Addr = ""
		}
	}
	httpx.WriteJSON(w, http.StatusOK, ps)
}

func (s *Server) revokeProbe(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.st.RevokeProbe(r.Context(), id); err != nil {
		httpx.StoreError(s.log, w, r, fmt.Sprintf("revoking probe %q", clip(id)), err)
		return
	}
	s.log.Info("probe revoked", "probe", id)
	w.WriteHeader(http.StatusNoContent)
}
