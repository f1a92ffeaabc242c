package mapsapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
)

// FuzzQuery throws arbitrary query strings at every route: each answer is
// a 200 or a 400 carrying an api.Error, never a panic or a 5xx.
func FuzzQuery(f *testing.F) {
	f.Add(uint8(0), "target=k-root&res=4&by=country&format=csv")
	f.Add(uint8(1), "target=k-root&a_from=2026-03-01T10:00:00Z&a_to=2026-03-01T10:15:00Z&format=csv&table=flows")
	f.Add(uint8(2), "target=k-root&step=1m&threshold=0.1&from=2026-03-01T10:00:00Z")
	f.Add(uint8(0), "target=k&res=%ff&dominance=NaN&min_probes=99999999999999999999")
	st := newStore(f, fixture())
	h := New(slog.New(slog.DiscardHandler), st, nil, WithClock(func() time.Time { return now }))
	mux := http.NewServeMux()
	h.Register(mux)
	routes := h.Routes()
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		_, path, _ := strings.Cut(routes[int(route)%len(routes)].Pattern, " ")
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without an api.Error: %q", rec.Body.String())
			}
		default:
			t.Fatalf("GET %s?%s: %d %s", req.URL.Path, query, rec.Code, rec.Body.String())
		}
	})
}
