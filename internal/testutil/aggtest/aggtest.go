// Package aggtest serves a real aggregator, as `catchmap serve` builds it,
// over SQLite in a test's temporary directory, on loopback. It is apart
// from testutil because it needs cgo (SQLite) and the aggregator's
// packages, whose own tests cannot import it.
package aggtest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api/token"
)

// Aggregator is one served aggregator; t.Cleanup stops it.
type Aggregator struct {
	URL    string
	Admin  token.Token // its admin token
	Store  store.Store
	Server *httptest.Server
}

// Start serves an aggregator with a fresh admin token until t ends.
func Start(t testing.TB) *Aggregator {
	t.Helper()
	admin, err := token.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "agg.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.AdminToken = admin
	srv, err := app.New(log, prometheus.NewRegistry(), st, app.Options{Server: []server.Option{server.WithConfig(cfg)}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &Aggregator{URL: hs.URL, Admin: admin, Store: st, Server: hs}
}
