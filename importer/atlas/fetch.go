package atlas

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/api/token"
)

// DefaultBaseURL is the RIPE Atlas API's home.
const DefaultBaseURL = "https://atlas.ripe.net"

// ResultsURL is the address of measurement msm's results under base (an
// Atlas API such as DefaultBaseURL): the /latest/ ones, or those in
// [start, stop] (zero: open) from /results/.
func ResultsURL(base string, msm int64, start, stop time.Time, latest bool) string {
	u := strings.TrimRight(base, "/") + "/api/v2/measurements/" + strconv.FormatInt(msm, 10)
	if latest {
		return u + "/latest/"
	}
	q := url.Values{}
	if !start.IsZero() {
		q.Set("start", strconv.FormatInt(start.Unix(), 10))
	}
	if !stop.IsZero() {
		q.Set("stop", strconv.FormatInt(stop.Unix(), 10))
	}
	u += "/results/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Fetch GETs rawURL and returns its body and size (-1 when unknown). A key,
// when set, goes as "Authorization: Key <key>", as Atlas wants it.
func Fetch(ctx context.Context, c *http.Client, rawURL string, key token.Token) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching Atlas results: bad URL %q: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	if !key.IsZero() {
		req.Header.Set("Authorization", "Key "+key.Reveal())
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching Atlas results from %s: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = ": the measurement may be private: give an Atlas API key with --atlas-key"
		case http.StatusNotFound:
			hint = ": check the measurement id"
		}
		return nil, 0, fmt.Errorf("fetching Atlas results from %s: %s%s (%s)", rawURL, resp.Status, hint, strings.TrimSpace(string(body)))
	}
	return resp.Body, resp.ContentLength, nil
}
