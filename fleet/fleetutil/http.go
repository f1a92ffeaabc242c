package fleetutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// newRequest builds a request to a JSON API: body, when not nil, is the
// JSON to send, and auth, when not empty, the Authorization header.
func newRequest(ctx context.Context, method, rawURL string, body []byte, auth string) (*http.Request, error) {
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
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req, nil
}

// ReadBody reads and closes the body of an answer from api, which is over
// when longer than maxBytes: a server that sends more is not the API.
func ReadBody(op string, resp *http.Response, maxBytes int64, api string) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: the answer is over %d MiB: is %s the API?", op, maxBytes>>20, api)
	}
	return b, nil
}

// maxErrorBody bounds how much of an error answer is read and kept.
const maxErrorBody = 4 << 10

// readErrorBody reads at most maxErrorBody bytes of an error answer and
// closes it; what could not be read is left out.
func readErrorBody(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return b
}

// BodyText is the start of a body that is not the service's error object
// (a proxy's page), on one line, for an error message.
func BodyText(b []byte) string {
	return Clip(strings.Join(strings.Fields(string(b)), " "), 200)
}

// Clip cuts s to about n bytes, on a character boundary.
func Clip(s string, n int) string {
	for i := range s {
		if i >= n {
			return s[:i] + "..."
		}
	}
	return s
}
