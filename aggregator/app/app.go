// Package app assembles a whole aggregator from its parts: the API server,
// the maps routes and the web UI, over one store. `catchmap serve`, the demo
// and the end-to-end tests all build the aggregator here, so they serve the
// same thing.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/mapsapi"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/sites"
	"github.com/catchmap/catchmap/web"
)

// Options for New. Zero values take defaults: the embedded site table and the
// wall clock.
type Options struct {
	Sites *sites.Table
	Now   func() time.Time
	// Server options (config, GeoIP...) passed through to server.New.
	Server []server.Option
	// Gauges, when set, registers the catchment gauges for alerting (see
	// GaugeOptions in gauges.go).
	Gauges *GaugeOptions
}

// New returns the aggregator: API, maps and web UI over st.
func New(log *slog.Logger, reg prometheus.Registerer, st store.Store, o Options) (*server.Server, error) {
	if o.Sites == nil {
		o.Sites = sites.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Timeline shifts are linked to the BGP events and annotations before them.
	causes := func(ctx context.Context, target string, from, to time.Time) ([]maps.Cause, error) {
		return causesOf(ctx, st, target, from, to)
	}
	mh := mapsapi.New(log, st, mapsapi.Sites(o.Sites), mapsapi.WithClock(o.Now), mapsapi.WithCauses(causes), mapsapi.WithPlan(st))
	var routes []server.Route
	for _, r := range mh.Routes() {
		routes = append(routes, server.Route{Pattern: r.Pattern, Access: server.Read, Handler: r.Handler})
	}
	if o.Gauges != nil {
		if err := reg.Register(newCatchmentGauges(log, st, *o.Gauges, o.Now)); err != nil {
			return nil, fmt.Errorf("registering the catchment gauges: %w", err)
		}
	}
	// The page and its files are public: they hold no data, and the page
	// sends the read token (when one is required) with its API calls.
	ui := web.Handler()
	for _, p := range []string{"GET /{$}", "GET /static/", "GET /vendor/"} {
		routes = append(routes, server.Route{Pattern: p, Access: server.Public, Handler: ui})
	}
	opts := append([]server.Option{server.WithClock(o.Now), server.WithRoutes(routes...)}, o.Server...)
	return server.New(log, reg, st, opts...)
}
