// Package globalping is a source of catchmap records that runs on
// Globalping (api.globalping.io): a typed client for its public API v1
// (creating a measurement, reading it until it has finished), the limits
// Globalping sets, and the conversion of finished tests into records.
//
// It knows nothing of the aggregator. The fleet runner turns a plan
// entry's spec and locations into a request (NewRequest), creates the
// measurement (Client.Create), waits for it to finish (Client.Wait) and
// stores the records a Converter of the same spec makes of it.
//
// Globalping measures DNS with dig, class IN only (a query takes a type,
// no class), so CHAOS identities are out of reach; IN TXT identity names
// and the NSID, which its dig always asks for and prints, are not. HTTP
// tests come with the response's parsed headers and the first 10 kB of
// its body. Presets says which of catchmap's presets that serves.
//
// Limits are kept here, before anything is sent: a measurement asks for
// at most Limits.ProbesPerMeasurement probes (50 without a token, 500
// with one), and the tests a client creates come out of an hourly budget
// (250 without a token, 500 with one) that Create waits on. Faults are
// handled here too, bounded by the caller's context: a 429 on creation
// waits for the X-RateLimit-Reset Globalping sends, a 429 on reading for
// its Retry-After; a refused token (401) is a permanent error wrapping
// ErrToken; 5xx and network errors back off exponentially. The token is a
// Token, which never prints.
//
// Globalping's probes have no id. A record's probe is gp:<asn>:<city>:<n>,
// n telling apart the probes of one measurement that share an ASN and a
// city, numbered in the order of what else Globalping says of them (their
// network, state, place, resolvers and tags). A probe keeps its id from
// one measurement to the next as long as the same probes of its ASN and
// city take part; one joining or leaving can renumber the others of that
// ASN and city (never those of another), and two that Globalping
// describes alike may swap ids.
package globalping

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
)

// DefaultURL is the public API's home.
const DefaultURL = "https://api.globalping.io"

// Token is a Globalping API token: a secret that prints as a placeholder
// everywhere (fmt, slog, JSON, YAML), so that a token logged or wrapped
// into an error by mistake does not leak.
type Token = fleetutil.Secret

// NewToken wraps a token given by a user (config, environment);
// surrounding space is dropped.
func NewToken(s string) Token { return fleetutil.NewSecret(s) }

// Options configure a Client.
type Options struct {
	// URL is the API's home; empty: DefaultURL.
	URL string
	// Token raises the limits (see Limits); optional.
	Token Token
	// HTTP sends the requests; nil: a client that gives up on a server
	// whose headers do not come within a minute. Bound whole requests
	// with the context.
	HTTP *http.Client
	Log  *slog.Logger
	// Retry bounds how a request is tried again. Zero fields take the
	// defaults: 8 attempts, backoff from 1s up to 1m, and a server's wait
	// (a rate limit's reset, at most an hour away) capped at 61m.
	Retry Retry
	// PollInterval is the pause after each read of a measurement still in
	// progress; zero or less than MinPollInterval is MinPollInterval.
	PollInterval time.Duration
}

// Retry bounds how a request is tried again.
type Retry = fleetutil.Policy

var defaultRetry = Retry{Attempts: 8, Base: time.Second, Max: time.Minute, MaxWait: 61 * time.Minute}

// MinPollInterval is the shortest pause between two reads of one
// measurement: Globalping asks clients to wait 500 ms after each answer,
// and rate limits those that read more often.
const MinPollInterval = 500 * time.Millisecond

// Client talks to one Globalping API. It is safe for concurrent use; the
// fleet runner should share one Client among the plan entries that use
// one token, so that they share its hourly budget.
type Client struct {
	base   *url.URL
	token  Token
	http   *http.Client
	log    *slog.Logger
	retry  *fleetutil.Retrier
	poll   time.Duration
	limits Limits
	budget *budget
	// now and sleep are the clock; tests replace both with a fake one.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New checks opt and returns a Client.
func New(opt Options) (*Client, error) {
	raw := opt.URL
	if raw == "" {
		raw = DefaultURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("the Globalping API URL %q: give the API's home, such as %s", raw, DefaultURL)
	}
	if opt.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = time.Minute
		opt.HTTP = &http.Client{Transport: tr}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{base: base, token: opt.Token, http: opt.HTTP, log: opt.Log,
		poll: max(opt.PollInterval, MinPollInterval), limits: LimitsFor(!opt.Token.IsZero()),
		now: time.Now, sleep: fleetutil.Sleep}
	c.retry = &fleetutil.Retrier{Policy: opt.Retry.Or(defaultRetry), Service: "Globalping", Log: opt.Log,
		Sleep: func(ctx context.Context, d time.Duration) error { return c.sleep(ctx, d) }}
	c.budget = &budget{limit: c.limits.TestsPerHour, now: func() time.Time { return c.now() }}
	return c, nil
}

// Limits are what Globalping allows a client.
type Limits struct {
	// ProbesPerMeasurement caps a measurement's limit, and the sum of its
	// locations' limits.
	ProbesPerMeasurement int
	// TestsPerHour is the hourly budget of tests (one test a probe a
	// measurement).
	TestsPerHour int
	// Token says whether the limits are a token's.
	Token bool
}

// LimitsFor returns Globalping's documented limits with or without a
// token.
func LimitsFor(token bool) Limits {
	if token {
		return Limits{ProbesPerMeasurement: 500, TestsPerHour: 500, Token: true}
	}
	return Limits{ProbesPerMeasurement: 50, TestsPerHour: 250}
}

// String says the limits in a sentence, for help texts and errors.
func (l Limits) String() string {
	if l.Token {
		return fmt.Sprintf("with a token, Globalping allows %d probes per measurement and %d tests per hour", l.ProbesPerMeasurement, l.TestsPerHour)
	}
	return fmt.Sprintf("without a token, Globalping allows %d probes per measurement and %d tests per hour (set fleets.globalping.token or $CATCHMAP_GLOBALPING_TOKEN for %d and %d)",
		l.ProbesPerMeasurement, l.TestsPerHour, LimitsFor(true).ProbesPerMeasurement, LimitsFor(true).TestsPerHour)
}

// Limits returns the limits that apply to c.
func (c *Client) Limits() Limits { return c.limits }

// do sends a request until a 2xx answer, a permanent error, the last
// attempt or the end of ctx; before, when not nil, runs before each try,
// and refused sees each answer other than 2xx. The caller closes the
// body.
func (c *Client) do(ctx context.Context, op, method, rawURL string, body []byte, before func() error, refused func(*http.Response)) (*http.Response, error) {
	return c.retry.Do(ctx, c.http, fleetutil.Call{Op: op, Method: method, URL: rawURL, Body: body,
		Scheme: "Bearer", Secret: c.token, Before: before,
		Decode: func(resp *http.Response, b []byte) *APIError {
			if refused != nil {
				refused(resp)
			}
			return decodeError(op, resp.StatusCode, resp.Header, b, c.now())
		}})
}

// maxBody bounds an answer: a measurement of 500 probes, each with 10 kB
// of HTTP body and its headers, is well below it.
const maxBody = 32 << 20

func (c *Client) endpoint(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return c.base.String() + "/v1/" + strings.Join(parts, "/")
}
