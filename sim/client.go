package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/api"
	"github.com/catchmap/catchmap/aggregator/server/token"
	"github.com/catchmap/catchmap/probe/result"
)

// requestTimeout bounds one request to the aggregator.
const requestTimeout = time.Minute

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 1 << 20

// Client drives an aggregator's API the way a fleet and its operator do:
// admin calls with the admin token, uploads with each probe's own token.
type Client struct {
	base  string
	admin token.Token
	hc    *http.Client
}

// NewClient returns a client of the aggregator at base (http or https URL);
// hc nil means a client of its own.
func NewClient(base string, admin token.Token, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("aggregator %q is not an http(s) URL: use e.g. http://127.0.0.1:8080", base)
	}
	if admin.IsZero() {
		return nil, errors.New("no admin token: the simulator registers its probes with the aggregator's admin token")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), admin: admin, hc: hc}, nil
}

// HTTPError is an answer other than the one expected.
type HTTPError struct {
	Status int
	Msg    string // the aggregator's own message
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("the aggregator answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// do sends one request under api.Prefix with tok, and decodes a want
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, tok token.Token, method, path string, body []byte, gzipped bool, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("User-Agent", "catchmap-sim")
	if gzipped {
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Content-Encoding", "gzip")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s at %s: %w (is the aggregator running there?)", method, path, c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var ae api.Error
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			ae.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s %s: %w", method, path, &HTTPError{Status: resp.StatusCode, Msg: ae.Error})
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not what a catchmap aggregator sends: %w", method, path, err)
		}
	}
	return nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Client) admJSON(ctx context.Context, method, path string, in any, want int, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s %s: encoding the body: %w", method, path, err)
	}
	return c.do(ctx, c.admin, method, path, body, false, want, out)
}

// RegisterProbe is POST /api/v1/probes: the new probe's id and token.
func (c *Client) RegisterProbe(ctx context.Context, reg api.ProbeRegistration) (api.ProbeCreated, error) {
	var pc api.ProbeCreated
	err := c.admJSON(ctx, http.MethodPost, "/probes", reg, http.StatusCreated, &pc)
	return pc, err
}

// PutPlan is PUT /api/v1/targets: it replaces the aggregator's plan.
func (c *Client) PutPlan(ctx context.Context, p api.Plan) error {
	return c.admJSON(ctx, http.MethodPut, "/targets", p, http.StatusOK, nil)
}

// Annotate is POST /api/v1/annotations.
func (c *Client) Annotate(ctx context.Context, a api.Annotation) (api.Annotation, error) {
	var got api.Annotation
	err := c.admJSON(ctx, http.MethodPost, "/annotations", a, http.StatusCreated, &got)
	return got, err
}

// Upload is POST /api/v1/results with a probe's token: rs as gzip NDJSON.
func (c *Client) Upload(ctx context.Context, probe token.Token, rs []result.Record) (api.IngestResponse, error) {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	nw := result.NewNDJSONWriter(zw)
	for i := range rs {
		if err := nw.Write(&rs[i]); err != nil {
			return api.IngestResponse{}, fmt.Errorf("encoding an upload: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return api.IngestResponse{}, fmt.Errorf("compressing an upload: %w", err)
	}
	var ir api.IngestResponse
	err := c.do(ctx, probe, http.MethodPost, "/results", body.Bytes(), true, http.StatusOK, &ir)
	return ir, err
}
