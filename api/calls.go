package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// The typed calls below are the API's routes as the agent, the simulator,
// importers, the gate and the CLI use them. Errors are those of Do: a
// *NetError, a *StatusError or an *AnswerError, for the caller to put in its
// own words.

// EncodeResults is the body PostEncodedResults sends: rs as gzip NDJSON,
// written by the record's one NDJSON encoder.
func EncodeResults(rs []result.Record) ([]byte, error) {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	nw := result.NewNDJSONWriter(zw)
	for i := range rs {
		if err := nw.Write(&rs[i]); err != nil {
			return nil, fmt.Errorf("encoding an upload: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing an upload: %w", err)
	}
	return body.Bytes(), nil
}

// PostResults is POST /api/v1/results: it uploads rs and returns what the
// aggregator made of them. A nil error means the batch is durably stored.
func (c *Client) PostResults(ctx context.Context, rs []result.Record) (IngestResponse, error) {
	body, err := EncodeResults(rs)
	if err != nil {
		return IngestResponse{}, err
	}
	return c.PostEncodedResults(ctx, body)
}

// PostEncodedResults is PostResults for a body EncodeResults made, for
// callers that send one body more than once or time the upload alone.
func (c *Client) PostEncodedResults(ctx context.Context, body []byte) (IngestResponse, error) {
	var ir IngestResponse
	_, err := c.exchange(ctx, http.MethodPost, Prefix+"/results", nil, body, NDJSONGzip(), &ir)
	return ir, err
}

// Results is GET /api/v1/results as NDJSON: it calls fn for each record of
// target in [from, to) as it arrives, in time order.
func (c *Client) Results(ctx context.Context, target string, from, to time.Time, fn func(*result.Record) error) error {
	q := WindowQuery(from, to)
	q.Set("target", target)
	q.Set("format", "ndjson")
	resp, err := c.Do(ctx, http.MethodGet, Prefix+"/results", q, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := result.ReadNDJSON(resp.Body, fn); err != nil {
		return &AnswerError{Method: http.MethodGet, Path: Prefix + "/results", Err: err}
	}
	return nil
}

// WindowQuery is the from and to parameters of a window, as every route
// that takes one reads them.
func WindowQuery(from, to time.Time) url.Values {
	return url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
}

// AgentPlan is GET /api/v1/plan, the plan as a probe sees it, with the
// answer's bytes, which an agent caches for a restart without the
// aggregator.
func (c *Client) AgentPlan(ctx context.Context) (Plan, []byte, error) {
	var p Plan
	body, err := c.exchange(ctx, http.MethodGet, Prefix+"/plan", nil, nil, nil, &p)
	return p, body, err
}

// Targets is GET /api/v1/targets: the whole measurement plan.
func (c *Client) Targets(ctx context.Context) (Plan, error) {
	var p Plan
	err := c.JSON(ctx, http.MethodGet, Prefix+"/targets", nil, nil, &p)
	return p, err
}

// PutTargets is PUT /api/v1/targets: it replaces the plan and returns it
// as the aggregator stored it (defaults filled, with its version).
func (c *Client) PutTargets(ctx context.Context, p Plan) (Plan, error) {
	var got Plan
	err := c.JSON(ctx, http.MethodPut, Prefix+"/targets", nil, p, &got)
	return got, err
}

// RegisterProbe is POST /api/v1/probes: the new probe's id and its token,
// which the aggregator shows only this once.
func (c *Client) RegisterProbe(ctx context.Context, reg ProbeRegistration) (ProbeCreated, error) {
	var pc ProbeCreated
	err := c.JSON(ctx, http.MethodPost, Prefix+"/probes", nil, reg, &pc)
	return pc, err
}

// Probes is GET /api/v1/probes.
func (c *Client) Probes(ctx context.Context) ([]Probe, error) {
	var ps []Probe
	err := c.JSON(ctx, http.MethodGet, Prefix+"/probes", nil, nil, &ps)
	return ps, err
}

// RevokeProbe is DELETE /api/v1/probes/{id}.
func (c *Client) RevokeProbe(ctx context.Context, id string) error {
	return c.JSON(ctx, http.MethodDelete, Prefix+"/probes/"+url.PathEscape(id), nil, nil, nil)
}

// Annotate is POST /api/v1/annotations; it returns the annotation as
// stored, with its id.
func (c *Client) Annotate(ctx context.Context, a Annotation) (Annotation, error) {
	var got Annotation
	err := c.JSON(ctx, http.MethodPost, Prefix+"/annotations", nil, a, &got)
	return got, err
}

// PostEvents is POST /api/v1/events: BGP events for the timelines.
func (c *Client) PostEvents(ctx context.Context, es []Event) error {
	return c.JSON(ctx, http.MethodPost, Prefix+"/events", nil, es, nil)
}
