package fleetutil

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy bounds how a request is tried again. Zero fields take the
// service's defaults (see Or).
type Policy struct {
	// Attempts is how often a request is sent at most, the first
	// included.
	Attempts int
	// Base is the first wait after a failure; it doubles, with jitter, up
	// to Max.
	Base, Max time.Duration
	// MaxWait caps a wait the server asks for (Retry-After, a rate
	// limit's reset), so that one answer cannot park the client for
	// longer; the context bounds it too.
	MaxWait time.Duration
}

// Or fills the fields of p that are zero or negative from def.
func (p Policy) Or(def Policy) Policy {
	p.Attempts = PositiveOr(p.Attempts, def.Attempts)
	p.Base = PositiveOr(p.Base, def.Base)
	p.Max = PositiveOr(p.Max, def.Max)
	p.MaxWait = PositiveOr(p.MaxWait, def.MaxWait)
	return p
}

// PositiveOr is cmp.Or for settings that must be positive: a negative one
// takes the default too.
func PositiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Retrier sends a request until it succeeds, fails for good, runs out of
// attempts or its context ends. It is safe for concurrent use.
type Retrier struct {
	Policy Policy
	// Service names the API in logs, e.g. "RIPE Atlas".
	Service string
	Log     *slog.Logger
	// Sleep waits between tries; tests replace it to see the waits
	// without spending them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Call is one request to a JSON API.
type Call struct {
	// Op says what the request does, for errors and logs.
	Op          string
	Method, URL string
	// Body is the JSON to send; nil: none.
	Body []byte
	// Secret, when set, goes in the Authorization header after Scheme
	// ("Bearer", "Key"), and is scrubbed from what error answers say.
	Scheme string
	Secret Secret
	// Before, when set, runs before each try; an error from it ends the
	// call with that error.
	Before func() error
	// Decode reads an answer other than 2xx, given the start of its body.
	Decode func(resp *http.Response, body []byte) *APIError
}

// Do sends c through hc until a 2xx answer, which the caller closes. A
// network error backs off; another answer is tried again when its
// APIError is Retryable, after its Wait or else a backoff, capped by
// MaxWait.
func (r *Retrier) Do(ctx context.Context, hc *http.Client, c Call) (*http.Response, error) {
	bo := &backoff.ExponentialBackOff{InitialInterval: r.Policy.Base, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: r.Policy.Max}
	bo.Reset()
	for attempt := 1; ; attempt++ {
		if c.Before != nil {
			if err := c.Before(); err != nil {
				return nil, fmt.Errorf("%s: %w", c.Op, err)
			}
		}
		resp, err := r.send(ctx, hc, &c)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", c.Op, context.Cause(ctx))
		case err != nil:
			err = fmt.Errorf("%s: %w", c.Op, err)
			wait = bo.NextBackOff()
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		default:
			e := c.Decode(resp, readErrorBody(resp))
			e.Scrub(c.Secret)
			if !e.Retryable() {
				return nil, e
			}
			err, wait = e, e.Wait
			if wait == 0 {
				wait = bo.NextBackOff()
			}
			wait = min(wait, r.Policy.MaxWait)
		}
		if attempt >= r.Policy.Attempts {
			return nil, fmt.Errorf("%w (gave up after %d tries)", err, attempt)
		}
		r.Log.Warn("a "+r.Service+" request failed: trying again", "op", c.Op, "try", attempt, "wait", wait, "err", err)
		if serr := r.Sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (stopped waiting to try again: %w)", err, serr)
		}
	}
}

func (r *Retrier) send(ctx context.Context, hc *http.Client, c *Call) (*http.Response, error) {
	auth := ""
	if !c.Secret.IsZero() {
		auth = c.Scheme + " " + c.Secret.Reveal()
	}
	req, err := newRequest(ctx, c.Method, c.URL, c.Body, auth)
	if err != nil {
		return nil, err
	}
	return hc.Do(req)
}

// Sleep waits for d or the end of ctx, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// RetryAfter reads a Retry-After header: seconds or an HTTP date.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
