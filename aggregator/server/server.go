// Package server is the aggregator's HTTP API (see ../openapi.yaml): probes
// register and upload results with their tokens, admins manage probes and
// the plan, and anyone allowed to read queries results, annotations and BGP
// events. Other packages mount more routes (the maps) with WithRoutes.
//
// Every route is a Go 1.22 ServeMux pattern on the server's own mux, wrapped
// by one authorisation check per route and by request metrics labelled with
// the pattern (a fixed set).
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/tlsfiles"
)

// Access says who may call a route.
type Access int

const (
	// Public routes need no token (health checks).
	Public Access = iota
	// Read routes are open unless a read token is configured; then they
	// need it or the admin token.
	Read
	// Probe routes need a live probe's token; the handler finds the probe
	// with ProbeFromContext.
	Probe
	// Admin routes need the admin token, and are off when none is set.
	Admin
	// ProbeOrAdmin routes take a probe's token, or the admin token to act
	// for any probe (imports); the handler tells them apart with
	// ProbeFromContext.
	ProbeOrAdmin
)

// Route is one endpoint mounted on the server.
type Route struct {
	// Pattern is a ServeMux pattern with a method and a path under
	// api.Prefix, such as "GET /api/v1/catchment".
	Pattern string
	Access  Access
	Handler http.Handler
}

// Locator places an address; *geo.DB is one.
type Locator interface {
	Lookup(netip.Addr) (geo.Location, error)
}

// Option configures New.
type Option func(*Server)

// WithConfig sets the limits, tokens, plan refresh, retention and TLS files
// from a configuration; config.Default() otherwise.
func WithConfig(c config.Config) Option { return func(s *Server) { s.cfg = c } }

// WithGeo places probes registered without a location by their address.
func WithGeo(l Locator) Option { return func(s *Server) { s.geo = l } }

// WithClock sets the clock used for defaults, validation and retention.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithRoutes mounts more routes, such as the maps endpoints. A pattern that
// clashes with another makes New fail.
func WithRoutes(rs ...Route) Option { return func(s *Server) { s.extra = append(s.extra, rs...) } }

// Server is the aggregator's HTTP API. Use New.
type Server struct {
	log      *slog.Logger
	st       store.Store
	cfg      config.Config
	geo      Locator
	now      func() time.Time
	extra    []Route
	m        *metrics
	commits  *committer
	mux      *http.ServeMux
	handler  http.Handler
	patterns []string
}

// New builds the server on st, registering its metrics with reg, which must
// also be a prometheus.Gatherer (a *prometheus.Registry) since /metrics
// serves what it gathers.
func New(log *slog.Logger, reg prometheus.Registerer, st store.Store, opts ...Option) (s *Server, err error) {
	s = &Server{log: log, st: st, cfg: config.Default(), now: time.Now, commits: newCommitter(st, log)}
	for _, o := range opts {
		o(s)
	}
	if err := s.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server configuration: %w", err)
	}
	g, ok := reg.(prometheus.Gatherer)
	if !ok {
		return nil, fmt.Errorf("server metrics: the registerer (%T) is not a prometheus.Gatherer: pass a *prometheus.Registry", reg)
	}
	if s.m, err = newMetrics(reg); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	defer func() {
		// ServeMux panics on a bad or clashing pattern: a WithRoutes mistake.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("server routes: %v", r)
		}
	}()
	routes := []Route{
		{"GET /healthz", Public, http.HandlerFunc(s.healthz)},
		{"GET /metrics", Read, promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})},
		{"POST " + api.Prefix + "/probes", Admin, http.HandlerFunc(s.registerProbe)},
		{"GET " + api.Prefix + "/probes", Read, http.HandlerFunc(s.listProbes)},
		{"DELETE " + api.Prefix + "/probes/{id}", Admin, http.HandlerFunc(s.revokeProbe)},
		{"PUT " + api.Prefix + "/targets", Admin, http.HandlerFunc(s.putTargets)},
		{"GET " + api.Prefix + "/targets", Read, http.HandlerFunc(s.getTargets)},
		{"GET " + api.Prefix + "/plan", Probe, http.HandlerFunc(s.plan)},
		{"POST " + api.Prefix + "/results", ProbeOrAdmin, http.HandlerFunc(s.ingest)},
		{"GET " + api.Prefix + "/results", Read, http.HandlerFunc(s.queryResults)},
		{"POST " + api.Prefix + "/annotations", Admin, http.HandlerFunc(s.addAnnotation)},
		{"GET " + api.Prefix + "/annotations", Read, http.HandlerFunc(s.annotations)},
		{"GET " + api.Prefix + "/events", Read, http.HandlerFunc(s.events)},
		{"POST " + api.Prefix + "/events", Admin, http.HandlerFunc(s.postEvents)},
	}
	for _, rt := range append(routes, s.extra...) {
		if rt.Handler == nil {
			return nil, fmt.Errorf("server routes: %q has no handler", rt.Pattern)
		}
		s.mux.Handle(rt.Pattern, s.authorize(rt.Access, rt.Handler))
		s.patterns = append(s.patterns, rt.Pattern)
	}
	s.handler = s.instrument(http.HandlerFunc(s.route))
	return s, nil
}

// Handler is the whole API, for Serve or httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Patterns lists the mux patterns served, in registration order.
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }

// Timeouts of the HTTP server: headers must come quickly (slowloris), bodies
// may be large uploads, and results queries stream for a while.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 20 * time.Second
)

// Serve answers on ln (over TLS when the configuration names a
// certificate: it reads the TLS files first, and fails on a wrong one
// before it answers) and runs retention and compaction, until ctx ends;
// then it shuts down gracefully, letting running requests finish for a
// while. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.TLSCert != "" {
		cert, err := tlsfiles.KeyPair("tls_cert (--tls-cert)", s.cfg.TLSCert, "tls_key (--tls-key)", s.cfg.TLSKey)
		if err != nil {
			return err
		}
		var clientCAs *x509.CertPool
		if s.cfg.TLSClientCA != "" {
			if clientCAs, err = tlsfiles.Pool("tls_client_ca (--tls-client-ca)", s.cfg.TLSClientCA); err != nil {
				return err
			}
		}
		hs.TLSConfig = tlsfiles.Server(cert, clientCAs)
	}

	mctx, stopMaintenance := context.WithCancel(ctx)
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		s.maintain(mctx)
	}()
	defer func() {
		stopMaintenance()
		<-maintained
	}()

	served := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			served <- hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		served <- hs.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing running requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w (some requests were cut off)", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
