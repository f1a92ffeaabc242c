package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/catchmap/catchmap/api/token"
)

// Content types of request bodies.
const (
	ContentJSON   = "application/json"
	ContentNDJSON = "application/x-ndjson"
)

// DefaultMaxAnswer bounds the JSON answers a client decodes unless
// MaxAnswer says otherwise.
const DefaultMaxAnswer = 1 << 20

// maxMessage bounds the refusal message kept from an answer's body.
const maxMessage = 512

// ErrBadURL is New's error for a base that is not an http or https URL.
var ErrBadURL = errors.New("not an http or https URL")

// Client calls one aggregator with one token. Use New.
type Client struct {
	base string // without a trailing slash
	host string
	tok  token.Token
	hc   *http.Client

	// UserAgent, when set, is sent with every request.
	UserAgent string
	// MaxAnswer bounds a JSON answer; 0 means DefaultMaxAnswer.
	MaxAnswer int64
}

// New returns a client of the aggregator at base (an http or https URL).
// tok may be zero where the aggregator needs none; hc nil means
// http.DefaultClient. Deadlines come from each call's context.
func NewClient(base string, tok token.Token, hc *http.Client) (*Client, error) {
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("aggregator %q: %w", base, ErrBadURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: base, host: u.Host, tok: tok, hc: hc}, nil
}

// Base is the aggregator's URL, without a trailing slash.
func (c *Client) Base() string { return c.base }

// Host is the host[:port] of the aggregator's URL.
func (c *Client) Host() string { return c.host }

// NetError is a request that got no answer: the aggregator was not
// reached, or the context ended first.
type NetError struct {
	Method, Path string
	Err          error // the cause, without net/url's repetition of the URL
}

func (e *NetError) Error() string {
	return fmt.Sprintf("%s %s: no answer from the aggregator: %v", e.Method, e.Path, e.Err)
}

func (e *NetError) Unwrap() error { return e.Err }

// AnswerError is a 2xx answer that is not what a catchmap aggregator
// sends: JSON that does not decode, or too large.
type AnswerError struct {
	Method, Path string
	Err          error
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("%s %s: the answer is not what a catchmap aggregator sends: %v", e.Method, e.Path, e.Err)
}

func (e *AnswerError) Unwrap() error { return e.Err }

// StatusError is an answer with an error status: the aggregator was
// reached and refused.
type StatusError struct {
	Status  int
	Message string // the aggregator's Error text, else its body, else the status text
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("aggregator answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Auth reports a refused token (401, 403).
func (e *StatusError) Auth() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Rejected reports a request refused for what it carries (400, 413, 422):
// sending it again cannot help.
func (e *StatusError) Rejected() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge ||
		e.Status == http.StatusUnprocessableEntity
}

// Throttled reports an aggregator that asks to come back later (408, 429).
func (e *StatusError) Throttled() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// Retryable reports an answer that a later retry may turn around: the
// aggregator failed (5xx) or throttled.
func (e *StatusError) Retryable() bool {
	return e.Status >= 500 || e.Throttled()
}

// Retryable reports whether err, from this package, is worth a retry: no
// answer at all, or a StatusError that says so.
func Retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	var ne *NetError
	return errors.As(err, &ne)
}

// CheckStatus returns nil for a 2xx answer, and else a *StatusError with
// the message of its body, which it reads (up to 64 KiB) but does not
// close.
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(data))
	var ae Error
	if json.Unmarshal(data, &ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &StatusError{Status: resp.StatusCode, Message: msg}
}

// Do sends one request for path (below the base URL, such as
// Prefix+"/targets") and returns a 2xx answer, whose body the caller
// closes. body may be nil; header adds to the request's headers. Errors
// are a *NetError or a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body []byte, header http.Header) (*http.Response, error) {
	resp, err := c.Send(ctx, method, path, q, body, header)
	if err != nil {
		return nil, err
	}
	if err := CheckStatus(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// Send is Do for callers that judge the status themselves: it returns any
// answer, and an error (a *NetError) only when there is none.
func (c *Client) Send(ctx context.Context, method, path string, q url.Values, body []byte, header http.Header) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if !c.tok.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.tok.Reveal())
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is long and says nothing new
		}
		return nil, &NetError{Method: method, Path: path, Err: err}
	}
	return resp, nil
}

// NDJSONGzip is the header of a gzip-compressed NDJSON body.
func NDJSONGzip() http.Header {
	return http.Header{"Content-Type": {ContentNDJSON}, "Content-Encoding": {"gzip"}}
}

// GetJSON GETs path and decodes its JSON answer into out.
func (c *Client) GetJSON(ctx context.Context, path string, q url.Values, out any) error {
	return c.JSON(ctx, http.MethodGet, path, q, nil, out)
}

// JSON sends in (none when nil) as JSON and decodes the answer into out
// (when not nil).
func (c *Client) JSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	var header http.Header
	if in != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(in); err != nil {
			return fmt.Errorf("%s %s: encoding the body: %w", method, path, err)
		}
		body = buf.Bytes()
		header = http.Header{"Content-Type": {ContentJSON}}
	}
	_, err := c.exchange(ctx, method, path, q, body, header, out)
	return err
}

// exchange sends one request, decodes a 2xx answer's JSON into out (when
// not nil) and returns the answer's bytes.
func (c *Client) exchange(ctx context.Context, method, path string, q url.Values, body []byte, header http.Header, out any) ([]byte, error) {
	resp, err := c.Do(ctx, method, path, q, body, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.decode(resp, method, path, out)
}

func (c *Client) decode(resp *http.Response, method, path string, out any) ([]byte, error) {
	if out == nil {
		return nil, nil
	}
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &NetError{Method: method, Path: path, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if int64(len(data)) > limit {
		return nil, &AnswerError{Method: method, Path: path, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, &AnswerError{Method: method, Path: path, Err: err}
	}
	return data, nil
}
