package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// Client talks to an aggregator's API. Use NewClient.
type Client struct {
	api *api.Client
}

// NewClient returns a client for the aggregator at base (http or https).
// tok may be zero where the aggregator needs none; hc nil means
// http.DefaultClient. Deadlines come from each call's context.
func NewClient(base string, tok token.Token, hc *http.Client) (*Client, error) {
	ac, err := api.NewClient(base, tok, hc)
	if err != nil {
		return nil, fmt.Errorf("aggregator URL %q: give an http or https URL, such as https://catchmap.example:8080", base)
	}
	ac.MaxAnswer = MaxTimelineBytes
	return &Client{api: ac}, nil
}

// HTTPError is an answer with an error status: the aggregator was reached
// and refused.
type HTTPError = api.StatusError

// explain puts an error of the API client in the gate's words, which say
// what to check.
func (c *Client) explain(method, path string, err error) error {
	var ne *api.NetError
	var he *HTTPError
	switch {
	case errors.As(err, &ne):
		return fmt.Errorf("aggregator %s unreachable (%s %s): %w: check --aggregator and that the aggregator runs", c.api.Host(), method, path, ne.Err)
	case errors.As(err, &he) && he.Auth():
		return fmt.Errorf("%w: check the token (--token or the environment)", err)
	}
	return err
}

// Results streams the target's records in [from, to) from GET
// /api/v1/results, calling fn for each as it arrives.
func (c *Client) Results(ctx context.Context, target string, from, to time.Time, fn func(*result.Record) error) error {
	err := c.api.Results(ctx, target, from, to, fn)
	var ae *api.AnswerError
	if errors.As(err, &ae) {
		return fmt.Errorf("reading results from the aggregator: %w", ae.Err)
	}
	return c.explain(http.MethodGet, api.Prefix+"/results", err)
}

// MaxTimelineBytes bounds a timeline answer.
const MaxTimelineBytes = 64 << 20

// Timeline fetches GET /api/v1/timeline for the target.
func (c *Client) Timeline(ctx context.Context, target string, from, to time.Time, step time.Duration) (*maps.Timeline, error) {
	q := api.WindowQuery(from, to)
	q.Set("target", target)
	q.Set("step", step.String())
	tl := new(maps.Timeline)
	err := c.api.GetJSON(ctx, api.Prefix+"/timeline", q, tl)
	var ae *api.AnswerError
	if errors.As(err, &ae) {
		return nil, fmt.Errorf("reading the timeline from the aggregator: %w", ae.Err)
	}
	if err != nil {
		return nil, c.explain(http.MethodGet, api.Prefix+"/timeline", err)
	}
	return tl, nil
}

// Annotate posts a to POST /api/v1/annotations (an admin route) and returns
// what the aggregator stored.
func (c *Client) Annotate(ctx context.Context, a api.Annotation) (api.Annotation, error) {
	got, err := c.api.Annotate(ctx, a)
	var ae *api.AnswerError
	if errors.As(err, &ae) {
		return a, fmt.Errorf("reading the aggregator's answer to the annotation: %w", ae.Err)
	}
	if err != nil {
		return a, c.explain(http.MethodPost, api.Prefix+"/annotations", err)
	}
	return got, nil
}

// Settling is how WaitStable watches a target's catchment.
type Settling struct {
	// Stable is how long the catchment must go without a shift.
	Stable time.Duration
	// Step is the timeline step: Stable/Step consecutive steps, each with
	// data, must show no shift.
	Step time.Duration
	// Poll is the time between two looks at the timeline.
	Poll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrNotSettled is returned by WaitStable when ctx ends before the
// catchment settles.
var ErrNotSettled = errors.New("catchment did not settle")

// WaitStable polls the target's timeline until its last Stable/Step
// complete steps all have data and none of them is a shift, or until ctx
// ends; then it returns an error wrapping ErrNotSettled that tells the last
// thing seen. Errors from the aggregator end the wait at once.
func (c *Client) WaitStable(ctx context.Context, target string, s Settling) error {
	if s.Step < time.Second || s.Stable < s.Step || s.Poll <= 0 {
		return fmt.Errorf("settling: step %s, stable %s and poll %s: use a step of 1s or more, stable at least one step, and a poll above 0",
			s.Step, s.Stable, s.Poll)
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	steps := int((s.Stable + s.Step - 1) / s.Step)
	last := "no timeline yet"
	for {
		// Only complete steps count, and one more step before them gives
		// the first a step to compare with.
		to := now().Truncate(s.Step)
		from := to.Add(-time.Duration(steps+1) * s.Step)
		tl, err := c.Timeline(ctx, target, from, to, s.Step)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w (%s)", ErrNotSettled, last)
			}
			return err
		}
		var settled bool
		settled, last = settledIn(tl, to.Add(-time.Duration(steps)*s.Step))
		if settled {
			return nil
		}
		t := time.NewTimer(s.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%s)", ErrNotSettled, last)
		case <-t.C:
		}
	}
}

// settledIn reports whether every step of tl from since on has probes and
// none is a shift; why says what was last wrong.
func settledIn(tl *maps.Timeline, since time.Time) (ok bool, why string) {
	n := 0
	for _, st := range tl.Steps {
		if st.Time.Before(since) {
			continue
		}
		n++
		if st.Probes == 0 {
			return false, "no served probe in the step at " + st.Time.UTC().Format(time.RFC3339)
		}
	}
	if n == 0 {
		return false, "the timeline has no step since " + since.UTC().Format(time.RFC3339)
	}
	for i := len(tl.Shifts) - 1; i >= 0; i-- {
		sh := tl.Shifts[i]
		if !sh.Time.Before(since) {
			return false, fmt.Sprintf("last shift at %s moved %s of probes", sh.Time.UTC().Format(time.RFC3339), pct(sh.MovedShare))
		}
	}
	return true, ""
}
