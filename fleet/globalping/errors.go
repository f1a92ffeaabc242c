package globalping

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
)

// ErrToken is wrapped by every refusal of the token (401): retrying
// cannot help, the token must be fixed. Test with errors.Is.
var ErrToken = errors.New("the API token was refused by Globalping")

// ErrLimit is wrapped by every error for a request beyond Globalping's
// limits that the client refuses before sending it.
var ErrLimit = errors.New("beyond Globalping's limits")

// APIError is a response that was not the one asked for: Kind and Detail
// are the type and message of Globalping's documented error object
// (validation_error, rate_limit_exceeded, no_probes_found...), Fields
// the messages it attached to parameters, such as "limit: \"limit\" must
// be less than or equal to 50", sorted, and Wait how long it asked to
// wait: its X-RateLimit-Reset on a creation, its Retry-After otherwise. A
// refused token (401) unwraps to ErrToken.
type APIError = fleetutil.APIError

// errorBody is the documented error response.
type errorBody struct {
	Error struct {
		Type    string            `json:"type"`
		Message string            `json:"message"`
		Params  map[string]string `json:"params"`
	} `json:"error"`
}

// decodeError reads an error response. The body may be anything:
// Globalping's error object, or a proxy's HTML page.
func decodeError(op string, status int, header http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Service: "Globalping", Op: op, Status: status, Wait: fleetutil.RetryAfter(header.Get("Retry-After"), now)}
	if reset, ok := headerInt(header, "X-RateLimit-Reset"); ok && status == http.StatusTooManyRequests && e.Wait == 0 {
		// A second more, as the budget counts: Globalping rounds the
		// reset to the second.
		e.Wait = time.Duration(min(reset, maxReset)+1) * time.Second
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && (eb.Error.Message != "" || eb.Error.Type != "") {
		e.Kind, e.Detail = eb.Error.Type, eb.Error.Message
		for k, v := range eb.Error.Params {
			e.Fields = append(e.Fields, k+": "+v)
		}
		slices.Sort(e.Fields)
	} else {
		// Not the documented object: a proxy's page, or another shape.
		e.Detail = fleetutil.BodyText(body)
	}
	if status == http.StatusUnauthorized {
		e.Err = ErrToken
	}
	switch {
	case status == http.StatusUnauthorized:
		e.Hint = "check fleets.globalping.token (or $CATCHMAP_GLOBALPING_TOKEN): the token is wrong, expired or revoked; without one, Globalping allows fewer tests"
	case status == http.StatusTooManyRequests && e.Kind == "insufficient_credits":
		e.Hint = "the token's free tests for this hour and its credits are spent: wait for the hour to end, or ask for fewer probes"
	case status == http.StatusTooManyRequests:
		e.Hint = "Globalping is rate limiting this client: wait for the limit to reset, ask for fewer probes, or set a token"
	case status == http.StatusUnprocessableEntity:
		e.Hint = "no probe fits the locations: widen them"
	case status == http.StatusBadRequest:
		e.Hint = "Globalping refused the request: fix what the parameters above name"
	case status == http.StatusNotFound:
		e.Hint = "check the measurement id: Globalping keeps measurements for about 7 days"
	case status >= 500:
		e.Hint = "Globalping has a problem: try again later"
	}
	return e
}

// maxReset bounds X-RateLimit-Reset, in seconds: the window is an hour,
// so a larger reset is not Globalping's.
const maxReset = 3600
