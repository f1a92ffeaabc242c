package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/catchmap/catchmap/sweep/payload"
)

// Client talks to one catcher.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the catcher at base (http://host:port),
// with the bearer token and hc (http.DefaultClient when nil).
func NewClient(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}
}

// Base is the catcher's URL.
func (c *Client) Base() string { return c.base }

// APIError is an error answer of a catcher.
type APIError struct {
	URL    string
	Status int
	Msg    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("catcher %s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Msg)
}

// Is makes a 404 match ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// do sends a request and decodes a JSON answer into out (when not nil);
// with stream set, it hands the body to stream instead.
func (c *Client) do(ctx context.Context, method, path string, body, out any, stream func(io.Reader) error) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("catcher %s: %w", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("catcher %s: %w (is catchmap catch running there?)", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e Error
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &APIError{URL: c.base + path, Status: resp.StatusCode, Msg: msg}
	}
	switch {
	case stream != nil:
		return stream(resp.Body)
	case out != nil:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("catcher %s: bad answer to %s %s: %w", c.base, method, path, err)
		}
	}
	return nil
}

// Status asks the catcher who it is.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s, nil)
}

// Order gives the catcher a sweep.
func (c *Client) Order(ctx context.Context, o Order) error {
	return c.do(ctx, http.MethodPut, "/v1/sweeps/"+o.ID.String(), o, nil, nil)
}

// Start has a sender start sending.
func (c *Client) Start(ctx context.Context, id payload.ID) error {
	return c.do(ctx, http.MethodPost, "/v1/sweeps/"+id.String()+"/start", nil, nil, nil)
}

// Sweep returns the sweep's progress at the catcher.
func (c *Client) Sweep(ctx context.Context, id payload.ID) (SweepStatus, error) {
	var s SweepStatus
	return s, c.do(ctx, http.MethodGet, "/v1/sweeps/"+id.String(), nil, &s, nil)
}

// Replies calls fn with each reply the catcher kept for the sweep.
func (c *Client) Replies(ctx context.Context, id payload.ID, fn func(Reply) error) error {
	path := "/v1/sweeps/" + id.String() + "/replies"
	return c.do(ctx, http.MethodGet, path, nil, nil, func(body io.Reader) error {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 4<<10), 64<<10)
		for sc.Scan() {
			var r Reply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("catcher %s: bad reply line %q: %w", c.base, sc.Text(), err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("catcher %s: reading %s: %w", c.base, path, err)
		}
		return nil
	})
}

// Forget has the catcher stop and forget the sweep; a sweep it does not
// know is forgotten already.
func (c *Client) Forget(ctx context.Context, id payload.ID) error {
	err := c.do(ctx, http.MethodDelete, "/v1/sweeps/"+id.String(), nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
