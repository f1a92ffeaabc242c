package atlas

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
)

// ErrKey is wrapped by every error for a missing key and every refusal of
// the key (401, 403): retrying cannot help, the key or its permissions
// must be fixed. Test with errors.Is.
var ErrKey = errors.New("no usable RIPE Atlas API key")

// APIError is a response that was not the one asked for.
type APIError struct {
	// Op says what the client was doing, e.g. "creating a measurement".
	Op string
	// Status is the HTTP status code.
	Status int
	// Title and Detail are Atlas's words (the documented error object),
	// or the start of a body that was not one.
	Title, Detail string
	// Fields are the errors Atlas attached to parts of the request, such
	// as "/definitions/0/target: This field is required."
	Fields []string
	// RetryAfter is the server's Retry-After; zero when absent.
	RetryAfter time.Duration

	hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: Atlas answered %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		// Atlas's details are sentences; the hint follows after a colon.
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(e.Detail, "."))
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Fields, "; "))
	}
	if e.hint != "" {
		fmt.Fprintf(&b, ": %s", e.hint)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrKey) hold for a refused key.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return ErrKey
	}
	return nil
}

// retryable reports whether the same request may succeed later.
func (e *APIError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// errorBody is the documented error response.
type errorBody struct {
	Error struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Source struct {
				Pointer   string `json:"pointer"`
				Parameter string `json:"parameter"`
			} `json:"source"`
			Detail string `json:"detail"`
		} `json:"errors"`
	} `json:"error"`
}

// decodeError reads an error response. The body may be anything: Atlas's
// error object, or a proxy's HTML page.
func decodeError(op string, status int, header http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Op: op, Status: status, RetryAfter: fleetutil.RetryAfter(header.Get("Retry-After"), now)}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Detail != "" {
		e.Title, e.Detail = eb.Error.Title, eb.Error.Detail
		for _, f := range eb.Error.Errors {
			where := cmp.Or(f.Source.Pointer, f.Source.Parameter)
			if where != "" {
				e.Fields = append(e.Fields, where+": "+f.Detail)
			} else if f.Detail != "" {
				e.Fields = append(e.Fields, f.Detail)
			}
		}
	} else {
		// Not the documented object: a proxy's page, or another shape.
		e.Detail = fleetutil.BodyText(body)
	}
	switch {
	case status == http.StatusUnauthorized:
		e.hint = "check fleets.ripe_atlas.key (or $CATCHMAP_RIPE_ATLAS_KEY): the key is wrong, expired or revoked"
	case status == http.StatusForbidden:
		e.hint = "check fleets.ripe_atlas.key (or $CATCHMAP_RIPE_ATLAS_KEY) and that the key has the permission for this in Atlas's key manager"
	case status == http.StatusTooManyRequests:
		e.hint = "Atlas is rate limiting this key: poll less often"
	case status == http.StatusNotFound:
		e.hint = "check the measurement id"
	case status >= 500:
		e.hint = "Atlas has a problem: try again later"
	}
	return e
}
