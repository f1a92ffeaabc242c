// Package atlas is a source of catchmap records that runs on RIPE Atlas: a
// typed client for the documented REST API v2 (creating measurements,
// their status, their results, probe metadata, stopping them), the credit
// estimate for a dry run, and the conversion of fetched results into
// records, which reuses the importer's (importer/atlas).
//
// It knows nothing of the aggregator: the fleet runner calls it with what
// a plan entry says and keeps the measurement ids itself.
//
// Faults are handled here, bounded by the caller's context: a refused key
// (401, 403) is a permanent error wrapping ErrKey; 429 waits for the
// server's Retry-After or backs off; 5xx and network errors back off
// exponentially. The key is a Key, which never prints.
package atlas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
	atlasimport "github.com/catchmap/catchmap/importer/atlas"
)

// Options configure a Client.
type Options struct {
	// URL is the API's home; empty: the public RIPE Atlas.
	URL string
	// Key authenticates; reads of public measurements and probes work
	// without one, creating and stopping measurements need one.
	Key Key
	// HTTP sends the requests; nil: a client that gives up on a server
	// whose headers do not come within two minutes. Bound whole requests
	// with the context, not a client timeout: a page of results from
	// thousands of probes can take long to read.
	HTTP  *http.Client
	Log   *slog.Logger
	Retry Retry
}

// Retry bounds how a request is tried again. Zero fields take the
// defaults: 8 attempts, backoff from 1s up to 2m, and a server's
// Retry-After capped at 10m, so that one answer cannot park the client
// for hours.
type Retry = fleetutil.Policy

var defaultRetry = Retry{Attempts: 8, Base: time.Second, Max: 2 * time.Minute, MaxWait: 10 * time.Minute}

// Client talks to one RIPE Atlas API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	key   Key
	http  *http.Client
	retry *fleetutil.Retrier
	now   func() time.Time
}

// New checks opt and returns a Client.
func New(opt Options) (*Client, error) {
	raw := opt.URL
	if raw == "" {
		raw = atlasimport.DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("RIPE Atlas API URL %q: give the API's home, such as %s", raw, atlasimport.DefaultBaseURL)
	}
	if opt.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 2 * time.Minute
		opt.HTTP = &http.Client{Transport: tr}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	retry := &fleetutil.Retrier{Policy: opt.Retry.Or(defaultRetry), Service: "RIPE Atlas", Log: opt.Log, Sleep: fleetutil.Sleep}
	return &Client{base: base, key: opt.Key, http: opt.HTTP, retry: retry, now: time.Now}, nil
}

// endpoint is the URL of an API path below /api/v2/, with the trailing
// slash Atlas's URLs have.
func (c *Client) endpoint(parts ...string) string {
	return c.base.String() + "/api/v2/" + strings.Join(parts, "/") + "/"
}

// sameOrigin reports whether rawURL points at the API the client was
// given, so that the key is never sent elsewhere by a pagination link.
func (c *Client) sameOrigin(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Scheme == c.base.Scheme && u.Host == c.base.Host
}

// do sends a request until a 2xx answer, a permanent error, the last
// attempt or the end of ctx. The caller closes the body.
func (c *Client) do(ctx context.Context, op, method, rawURL string, body []byte) (*http.Response, error) {
	return c.retry.Do(ctx, c.http, fleetutil.Call{Op: op, Method: method, URL: rawURL, Body: body,
		Scheme: "Key", Secret: c.key,
		Decode: func(resp *http.Response, b []byte) *APIError {
			return decodeError(op, resp.StatusCode, resp.Header, b, c.now())
		}})
}

// maxBody bounds a metadata answer (a measurement, a page of probes);
// results are streamed instead.
const maxBody = 16 << 20

// call sends a request and returns the body of its answer.
func (c *Client) call(ctx context.Context, op, method, rawURL string, body []byte) ([]byte, error) {
	resp, err := c.do(ctx, op, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	return fleetutil.ReadBody(op, resp, maxBody, c.base.String())
}

// needKey refuses, before anything is sent, what Atlas refuses without a
// key.
func (c *Client) needKey(op string) error {
	if c.key.IsZero() {
		return fmt.Errorf("%s: %w: no key is set: set fleets.ripe_atlas.key or $CATCHMAP_RIPE_ATLAS_KEY", op, ErrKey)
	}
	return nil
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

var errNoID = errors.New("measurement ids are positive: check the id")
