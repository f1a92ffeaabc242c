package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
)

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status is sent; an encoding error now can only be a gone client.
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers an api.Error. msg must say what was wrong and what to
// do; it must never carry a token.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, api.Error{Error: msg})
}

// storeError answers for a failed store call: 503 (retry) when the store is
// unavailable or the request's context ended, 404 for ErrNotFound, else 500.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, op+": not found")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("store unavailable", "op", op, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "5")
		WriteError(w, http.StatusServiceUnavailable, op+": store unavailable: nothing was changed, retry later")
	default:
		s.log.Error("store failed", "op", op, "route", r.Pattern, "err", err)
		WriteError(w, http.StatusInternalServerError, op+": internal store error: see the aggregator log")
	}
}

// maxJSONBody bounds the small JSON bodies of the admin routes.
const maxJSONBody = 4 << 20

// decodeBody reads one JSON value strictly (unknown fields are errors: these
// bodies are written by people, and a typo must not pass silently). On
// failure it has answered and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", mbe.Limit))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	WriteError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
	return false
}

// timeLayoutHelp is what a bad time parameter's message suggests.
const timeLayoutHelp = "use RFC 3339, such as 2026-01-02T15:04:05Z"

// ParseWindow reads the from and to query parameters (RFC 3339). to
// defaults to now, from to def before to. The error names the bad
// parameter; answer it with 400.
func ParseWindow(q url.Values, now time.Time, def time.Duration) (from, to time.Time, err error) {
	to = now
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, fmt.Errorf("bad to %q: %s", v, timeLayoutHelp)
		}
	}
	from = to.Add(-def)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, fmt.Errorf("bad from %q: %s", v, timeLayoutHelp)
		}
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("bad from %s: it is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}
