package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/catchmap/catchmap/gate"
)

type checkCmd struct {
	Baseline    string `help:"Baseline snapshot (from catchmap snapshot) to judge against." required:"" placeholder:"FILE"`
	sourceFlags `embed:""`
	Current     string        `help:"Current snapshot file, instead of --aggregator or --input." placeholder:"FILE"`
	Rules       string        `help:"Rules file (YAML); without it: at most 5% of probes move, p50 RTT rises at most 10 ms, at most 5% of results fail." placeholder:"FILE"`
	JUnit       string        `name:"junit" help:"Also write the verdict as JUnit XML here, one test case per rule." placeholder:"FILE"`
	Markdown    string        `help:"Also write the verdict as Markdown here, e.g. $GITHUB_STEP_SUMMARY." placeholder:"FILE"`
	JSON        string        `name:"json" help:"Also write the verdict as JSON here." placeholder:"FILE"`
	WaitStable  time.Duration `help:"With --aggregator: first wait until the catchment has not shifted for this long (polling the aggregator's timeline), then judge the last --window; keep --window within it." placeholder:"DURATION"`
	StableStep  time.Duration `help:"Timeline step for --wait-stable: the catchment must show no shift in wait-stable/step consecutive steps." default:"1m"`
	Poll        time.Duration `help:"How often --wait-stable looks at the timeline." default:"15s"`
	Timeout     time.Duration `help:"Give up (exit 2) when --wait-stable has not seen the catchment settle in this long." default:"10m"`
}

func (c *checkCmd) Run(e *env) error {
	sources := 0
	for _, s := range []string{c.Aggregator, c.Input, c.Current} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return usageErrorf("check: give one of --aggregator, --input or --current for the current catchment")
	}
	if c.WaitStable > 0 && c.Aggregator == "" {
		return usageErrorf("check: --wait-stable needs --aggregator: only a live aggregator can settle")
	}
	if c.WaitStable < 0 || c.Timeout <= 0 {
		return usageErrorf("check: --wait-stable %s and --timeout %s: use durations above 0", c.WaitStable, c.Timeout)
	}

	rules := gate.DefaultRules()
	if c.Rules != "" {
		var err error
		if rules, err = gate.ReadRules(c.Rules); err != nil {
			return usageErrorf("check: %v", err)
		}
	}
	base, err := readSnapshot(e, c.Baseline)
	if err != nil {
		return usageErrorf("check: --baseline %v", err)
	}
	if c.Target == "" {
		c.Target = base.Target
	}

	if c.WaitStable > 0 {
		if err := c.waitStable(e); err != nil {
			return err
		}
	}
	var cur *gate.Snapshot
	if c.Current != "" {
		if cur, err = readSnapshot(e, c.Current); err != nil {
			return usageErrorf("check: --current %v", err)
		}
	} else if cur, err = c.take(e, "check", base.Resolution); err != nil {
		return err
	}
	if cur.Target != base.Target {
		return usageErrorf("check: the baseline is of target %q but the current catchment of %q: compare the same target", base.Target, cur.Target)
	}

	rep := gate.Evaluate(base, cur, rules)
	if err := rep.WriteText(e.stdout); err != nil {
		return err
	}
	for _, o := range []struct {
		path  string
		write func(io.Writer) error
	}{{c.JUnit, rep.WriteJUnit}, {c.Markdown, rep.WriteMarkdown}, {c.JSON, rep.WriteJSON}} {
		if o.path == "" {
			continue
		}
		if err := writeOutput(e, o.path, o.write); err != nil {
			return &exitError{code: exitUsage, msg: "check: " + err.Error()}
		}
	}
	switch rep.Status {
	case gate.Pass:
		return nil
	case gate.Fail:
		return &exitError{code: exitFail} // the report on stdout says why
	}
	var why []string
	for _, o := range rep.Failed(gate.Error) {
		why = append(why, o.Rule+": "+o.Detail)
	}
	return &exitError{code: exitUsage, msg: "check: could not judge the change: " + strings.Join(why, "; ")}
}

func (c *checkCmd) waitStable(e *env) error {
	cl, err := c.client(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	defer cancel()
	e.log.Info("waiting for the catchment to settle", "target", c.Target, "stable", c.WaitStable, "timeout", c.Timeout)
	err = cl.WaitStable(ctx, c.Target, gate.Settling{Stable: c.WaitStable, Step: c.StableStep, Poll: c.Poll})
	switch {
	case errors.Is(err, gate.ErrNotSettled):
		why := strings.TrimPrefix(err.Error(), gate.ErrNotSettled.Error()+" ")
		return &exitError{code: exitUsage, msg: fmt.Sprintf("check: catchment did not settle within %s %s", c.Timeout, why)}
	case err != nil:
		return &exitError{code: exitUsage, msg: fmt.Sprintf("check: --wait-stable: %v", err)}
	}
	return nil
}

func readSnapshot(e *env, path string) (*gate.Snapshot, error) {
	f, name, err := openInput(e, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := gate.ReadSnapshot(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}
