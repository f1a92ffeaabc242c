package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/gate"
)

// annotateTimeout bounds the one request annotate makes.
const annotateTimeout = 30 * time.Second

type annotateCmd struct {
	Aggregator string   `help:"Aggregator URL, e.g. https://catchmap.example:8080." required:"" placeholder:"URL"`
	Target     string   `help:"Target (plan entry name) the note is about; empty: every target." placeholder:"NAME"`
	Time       string   `help:"When it happened (RFC 3339, e.g. 2026-11-25T19:30:00Z); default: now, by the aggregator's clock." placeholder:"TIME"`
	Token      string   `help:"Admin token; prefer $CATCHMAP_ADMIN_TOKEN (or $CATCHMAP_TOKEN), as flags show in ps." placeholder:"TOKEN"`
	Text       []string `arg:"" help:"What changed, e.g. \"prepend ams x3\"."`
	tlsFlags   `embed:""`
}

// Run posts the note: exit 0 when stored, 1 when the aggregator refused it,
// 2 on bad usage or when the aggregator could not be reached.
func (c *annotateCmd) Run(e *env) error {
	a := api.Annotation{Target: c.Target, Text: strings.TrimSpace(strings.Join(c.Text, " "))}
	if a.Text == "" {
		return usageErrorf("annotate: empty text: say what changed, such as \"prepend ams x3\"")
	}
	if c.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, c.Time)
		if err != nil {
			return usageErrorf("annotate: --time %q: use RFC 3339, such as 2026-11-25T19:30:00Z", c.Time)
		}
		a.Time = t.UTC()
	}
	tok := token.Parse(c.Token)
	for _, name := range []string{adminTokenEnv, readTokenEnv} {
		if tok.IsZero() {
			tok = token.Parse(e.getenv(name))
		}
	}
	if tok.IsZero() {
		return usageErrorf("annotate: no admin token: set $%s (or --token)", adminTokenEnv)
	}
	hc, err := c.httpClient("annotate", 0)
	if err != nil {
		return err
	}
	cl, err := gate.NewClient(c.Aggregator, tok, hc)
	if err != nil {
		return usageErrorf("annotate: --aggregator: %v", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, annotateTimeout)
	defer cancel()
	got, err := cl.Annotate(ctx, a)
	var he *gate.HTTPError
	switch {
	case errors.As(err, &he):
		return &exitError{code: exitFail, msg: "annotate: " + err.Error()}
	case err != nil:
		return &exitError{code: exitUsage, msg: "annotate: " + err.Error()}
	}
	target := got.Target
	if target == "" {
		target = "every target"
	}
	fmt.Fprintf(e.stdout, "annotation %s at %s on %s: %s\n", got.ID, got.Time.UTC().Format(time.RFC3339), target, got.Text)
	return nil
}
