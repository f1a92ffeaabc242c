package fleetutil

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is an answer of a platform's API that was not the one asked
// for, as the platform's client read it.
type APIError struct {
	// Service names the API in the message: "Atlas", "Globalping".
	Service string
	// Op says what the client was doing, e.g. "creating a measurement".
	Op string
	// Status is the HTTP status code.
	Status int
	// Kind is the service's name for the error, when it gives one
	// (Atlas's title, Globalping's type).
	Kind string
	// Detail is the service's words, or the start of a body that was not
	// its error object.
	Detail string
	// Fields are the errors the service attached to parts of the request,
	// such as "limit: must be less than or equal to 50".
	Fields []string
	// Wait is how long the service asked to wait before trying again;
	// zero when it said nothing.
	Wait time.Duration
	// Hint says what to do about it.
	Hint string
	// Err is what errors.Is finds through the error: the service's
	// sentinel for a refused credential, or nil.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s answered %d %s", e.Op, e.Service, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		// Services' details are sentences; the hint follows after a colon.
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(e.Detail, "."))
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Fields, "; "))
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, ": %s", e.Hint)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later: after a
// rate limit or a server's failure.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Scrub removes s from the service's words, which may echo the request.
func (e *APIError) Scrub(s Secret) {
	e.Kind, e.Detail = s.Scrub(e.Kind), s.Scrub(e.Detail)
	for i := range e.Fields {
		e.Fields[i] = s.Scrub(e.Fields[i])
	}
}
