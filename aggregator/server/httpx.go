package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/catchmap/catchmap/aggregator/httpx"
)

// maxJSONBody bounds the small JSON bodies of the admin routes.
const maxJSONBody = 4 << 20

// decodeBody reads one JSON value strictly (unknown fields are errors: these
// bodies are written by people, and a typo must not pass silently), of at
// most maxJSONBody bytes. On failure it has answered and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyUpTo(w, r, v, maxJSONBody, "")
}

// decodeBodyUpTo is decodeBody for bodies of up to limit bytes; hint, when
// set, ends every refusal's message.
func decodeBodyUpTo(w http.ResponseWriter, r *http.Request, v any, limit int64, hint string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	if hint != "" {
		hint = ": " + hint
	}
	if errors.As(err, &mbe) {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes%s", mbe.Limit, hint))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	httpx.WriteError(w, http.StatusBadRequest, "bad JSON body: "+err.Error()+hint)
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
