package atlas

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
)

// ErrKey is wrapped by every error for a missing key and every refusal of
// the key (401, 403): retrying cannot help, the key or its permissions
// must be fixed. Test with errors.Is.
var ErrKey = errors.New("no usable RIPE Atlas API key")

// APIError is a response that was not the one asked for: Kind and Detail
// are the title and detail of Atlas's documented error object, Fields the
// errors it attached to parts of the request, such as
// "/definitions/0/target: This field is required.", and Wait its
// Retry-After. A refused key (401, 403) unwraps to ErrKey.
type APIError = fleetutil.APIError

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
	e := &APIError{Service: "Atlas", Op: op, Status: status, Wait: fleetutil.RetryAfter(header.Get("Retry-After"), now)}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Detail != "" {
		e.Kind, e.Detail = eb.Error.Title, eb.Error.Detail
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
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		e.Err = ErrKey
	}
	switch {
	case status == http.StatusUnauthorized:
		e.Hint = "check fleets.ripe_atlas.key (or $CATCHMAP_RIPE_ATLAS_KEY): the key is wrong, expired or revoked"
	case status == http.StatusForbidden:
		e.Hint = "check fleets.ripe_atlas.key (or $CATCHMAP_RIPE_ATLAS_KEY) and that the key has the permission for this in Atlas's key manager"
	case status == http.StatusTooManyRequests:
		e.Hint = "Atlas is rate limiting this key: poll less often"
	case status == http.StatusNotFound:
		e.Hint = "check the measurement id"
	case status >= 500:
		e.Hint = "Atlas has a problem: try again later"
	}
	return e
}
