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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

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
// defaults in parentheses.
type Retry struct {
	// Attempts is how often a request is sent at most, the first
	// included (8).
	Attempts int
	// Base is the first wait after a failure (1s); it doubles, with
	// jitter, up to Max (2m).
	Base, Max time.Duration
	// MaxRetryAfter caps a server's Retry-After (10m), so that one
	// answer cannot park the client for hours; the context bounds it too.
	MaxRetryAfter time.Duration
}

// Client talks to one RIPE Atlas API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	key   Key
	http  *http.Client
	log   *slog.Logger
	retry Retry
	// sleep waits between tries; tests replace it to see the waits
	// without spending them.
	sleep func(ctx context.Context, d time.Duration) error
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
	r := &opt.Retry
	r.Attempts = positiveOr(r.Attempts, 8)
	r.Base = positiveOr(r.Base, time.Second)
	r.Max = positiveOr(r.Max, 2*time.Minute)
	r.MaxRetryAfter = positiveOr(r.MaxRetryAfter, 10*time.Minute)
	return &Client{base: base, key: opt.Key, http: opt.HTTP, log: opt.Log, retry: opt.Retry,
		sleep: sleepCtx, now: time.Now}, nil
}

// positiveOr is cmp.Or for settings that must be positive: a negative one
// takes the default too.
func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
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
	bo := &backoff.ExponentialBackOff{InitialInterval: c.retry.Base, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: c.retry.Max}
	bo.Reset()
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, method, rawURL, body)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", op, context.Cause(ctx))
		case err != nil:
			err = fmt.Errorf("%s: %w", op, err)
			wait = bo.NextBackOff()
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		default:
			apiErr := c.readError(op, resp)
			if !apiErr.retryable() {
				return nil, apiErr
			}
			err = apiErr
			wait = apiErr.RetryAfter
			if wait == 0 {
				wait = bo.NextBackOff()
			}
			wait = min(wait, c.retry.MaxRetryAfter)
		}
		if attempt >= c.retry.Attempts {
			return nil, fmt.Errorf("%w (gave up after %d tries)", err, attempt)
		}
		c.log.Warn("a RIPE Atlas request failed: trying again", "op", op, "try", attempt, "wait", wait, "err", err)
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (stopped waiting to try again: %w)", err, serr)
		}
	}
}

func (c *Client) send(ctx context.Context, method, rawURL string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "catchmap")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.key.IsZero() {
		req.Header.Set("Authorization", "Key "+c.key.secret)
	}
	return c.http.Do(req)
}

// readError reads and closes an error response.
func (c *Client) readError(op string, resp *http.Response) *APIError {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := decodeError(op, resp.StatusCode, resp.Header, b, c.now())
	e.Title, e.Detail = c.key.scrub(e.Title), c.key.scrub(e.Detail)
	for i := range e.Fields {
		e.Fields[i] = c.key.scrub(e.Fields[i])
	}
	return e
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
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%s: the answer is over %d MiB: is %s the Atlas API?", op, maxBody>>20, c.base)
	}
	return b, nil
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
