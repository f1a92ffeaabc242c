// Package httpx holds the answers every aggregator handler writes the same
// way: JSON bodies, api.Error refusals, and the status a failed store call
// gets.
package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/jsonx"
)

// WriteJSON answers v as JSON with code, in jsonx's encoding: text stays as
// it is (the API is not embedded in HTML, and a record's bytes are then the
// same on every path) and a float no JSON number can hold is null.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	b, err := jsonx.Append(nil, v)
	if err != nil {
		// Only a value with no JSON form at all (a channel) gets here: a bug.
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed: see the aggregator log"}`)
	}
	w.WriteHeader(code)
	// The status is sent; a write error now can only be a gone client.
	_, _ = w.Write(append(b, '\n'))
}

// WriteError answers an api.Error. msg must say what was wrong and what to
// do; it must never carry a token.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, api.Error{Error: msg})
}

// StoreError answers for a failed store call op: 503 with Retry-After
// (nothing was changed, a retry may succeed) when the store is unavailable
// or the request's context ended, 404 for store.ErrNotFound, else 500.
func StoreError(log *slog.Logger, w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, op+": not found")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		log.Warn("store unavailable", "op", op, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, op+": store unavailable: nothing was changed, retry later")
	default:
		log.Error("store failed", "op", op, "route", r.Pattern, "err", err)
		WriteError(w, http.StatusInternalServerError, op+": internal store error: see the aggregator log")
	}
}
