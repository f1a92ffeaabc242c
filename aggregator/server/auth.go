package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
)

type (
	probeKey struct{}
	adminKey struct{}
)

// ProbeFromContext returns the probe a Probe route's token belongs to.
func ProbeFromContext(ctx context.Context) (api.Probe, bool) {
	p, ok := ctx.Value(probeKey{}).(api.Probe)
	return p, ok
}

func withProbe(ctx context.Context, p api.Probe) context.Context {
	return context.WithValue(ctx, probeKey{}, p)
}

// isAdmin reports whether a ProbeOrAdmin route was called with the admin
// token.
func isAdmin(ctx context.Context) bool {
	v, _ := ctx.Value(adminKey{}).(bool)
	return v
}

// unauthorized answers 401. The message never repeats the token sent.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="catchmap"`)
	httpx.WriteError(w, http.StatusUnauthorized, msg)
}

// authorize wraps h with the check its access level needs.
func (s *Server) authorize(a Access, h http.Handler) http.Handler {
	if a == Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := token.FromHeader(r.Header.Get("Authorization"))
		switch a {
		case Read:
			if !s.cfg.ReadToken.IsZero() && !tok.Equal(s.cfg.ReadToken) && !tok.Equal(s.cfg.AdminToken) {
				unauthorized(w, "reading needs the read token (or the admin token) as Authorization: Bearer <token>")
				return
			}
		case Admin:
			if s.cfg.AdminToken.IsZero() {
				unauthorized(w, "the admin API is off: set CATCHMAP_ADMIN_TOKEN or admin_token and restart the aggregator")
				return
			}
			if !tok.Equal(s.cfg.AdminToken) {
				unauthorized(w, "this route needs the admin token as Authorization: Bearer <token>")
				return
			}
		case Probe, ProbeOrAdmin:
			if a == ProbeOrAdmin && !s.cfg.AdminToken.IsZero() && tok.Equal(s.cfg.AdminToken) {
				r = r.WithContext(context.WithValue(r.Context(), adminKey{}, true))
				break
			}
			if tok.IsZero() {
				unauthorized(w, "this route needs a probe token as Authorization: Bearer <token>")
				return
			}
			p, err := s.st.ProbeByToken(r.Context(), tok.Hash())
			if errors.Is(err, store.ErrNotFound) {
				unauthorized(w, "unknown or revoked probe token: register the probe again (POST /api/v1/probes)")
				return
			}
			if err != nil {
				httpx.StoreError(s.log, w, r, "checking the probe token", err)
				return
			}
			r = r.WithContext(withProbe(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	})
}
