package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/result"
)

// requestTimeout bounds one request to the aggregator.
const requestTimeout = time.Minute

// Client drives an aggregator's API the way a fleet and its operator do:
// admin calls with the admin token, uploads with each probe's own token.
type Client struct {
	base  string
	admin *api.Client
	hc    *http.Client
}

// NewClient returns a client of the aggregator at base (http or https URL);
// hc nil means a client of its own.
func NewClient(base string, admin token.Token, hc *http.Client) (*Client, error) {
	if hc == nil {
		hc = &http.Client{}
	}
	c := &Client{hc: hc}
	var err error
	if c.admin, err = c.client(base, admin); err != nil {
		return nil, err
	}
	if admin.IsZero() {
		return nil, errors.New("no admin token: the simulator registers its probes with the aggregator's admin token")
	}
	c.base = c.admin.Base()
	return c, nil
}

func badURL(base string) error {
	return fmt.Errorf("aggregator %q is not an http(s) URL: use e.g. http://127.0.0.1:8080", base)
}

// client is a client of the aggregator with tok.
func (c *Client) client(base string, tok token.Token) (*api.Client, error) {
	cl, err := api.NewClient(base, tok, c.hc)
	if err != nil {
		return nil, badURL(base)
	}
	cl.UserAgent = "catchmap-sim"
	return cl, nil
}

// call runs one request with the request timeout, and says where an
// unreachable aggregator was looked for.
func (c *Client) call(ctx context.Context, method, path string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err := fn(ctx)
	var ne *api.NetError
	var se *api.StatusError
	switch {
	case errors.As(err, &ne):
		return fmt.Errorf("%s %s at %s: %w (is the aggregator running there?)", method, path, c.base, ne.Err)
	case errors.As(err, &se):
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return err
}

// RegisterProbe is POST /api/v1/probes: the new probe's id and token.
func (c *Client) RegisterProbe(ctx context.Context, reg api.ProbeRegistration) (api.ProbeCreated, error) {
	var pc api.ProbeCreated
	err := c.call(ctx, http.MethodPost, "/probes", func(ctx context.Context) (err error) {
		pc, err = c.admin.RegisterProbe(ctx, reg)
		return err
	})
	return pc, err
}

// PutPlan is PUT /api/v1/targets: it replaces the aggregator's plan.
func (c *Client) PutPlan(ctx context.Context, p api.Plan) error {
	return c.call(ctx, http.MethodPut, "/targets", func(ctx context.Context) error {
		_, err := c.admin.PutTargets(ctx, p)
		return err
	})
}

// Annotate is POST /api/v1/annotations.
func (c *Client) Annotate(ctx context.Context, a api.Annotation) (api.Annotation, error) {
	var got api.Annotation
	err := c.call(ctx, http.MethodPost, "/annotations", func(ctx context.Context) (err error) {
		got, err = c.admin.Annotate(ctx, a)
		return err
	})
	return got, err
}

// Upload is POST /api/v1/results with a probe's token.
func (c *Client) Upload(ctx context.Context, probe token.Token, rs []result.Record) (api.IngestResponse, error) {
	pc, err := c.client(c.base, probe)
	if err != nil {
		return api.IngestResponse{}, err
	}
	var ir api.IngestResponse
	err = c.call(ctx, http.MethodPost, "/results", func(ctx context.Context) (err error) {
		ir, err = pc.PostResults(ctx, rs)
		return err
	})
	return ir, err
}
