package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/sim"
)

// simCmd is a load generator for capacity planning: a simulated fleet (see
// package sim: a model, not measurements) uploading to any aggregator.
type simCmd struct {
	Aggregator string        `help:"Aggregator URL; default $CATCHMAP_AGGREGATOR, else http://127.0.0.1:8080." placeholder:"URL"`
	Token      string        `help:"Admin token, to register the simulated probes; prefer $CATCHMAP_ADMIN_TOKEN, as flags show in ps." placeholder:"TOKEN"`
	Probes     int           `help:"Simulated probes to register (new ones every run)." default:"100"`
	Rate       float64       `help:"Results per second, over the whole fleet." default:"100"`
	Duration   time.Duration `help:"How long to generate results." default:"1m"`
	Seed       uint64        `help:"Seed of the simulation: the same seed gives the same fleet and catchment." default:"1"`
	Target     string        `help:"Target name of the results (the plan is not changed)." default:"anycast-sim"`
	Batch      int           `help:"Most results in one upload." default:"500"`
	Flush      time.Duration `help:"Upload a probe's results when the oldest is this old, even if the batch is not full." default:"5s"`
	Workers    int           `help:"Parallel uploads." default:"8"`
}

func (c *simCmd) Run(e *env) error {
	switch {
	case c.Probes < 1 || c.Probes > 1_000_000:
		return usageErrorf("sim: --probes %d: use 1 to 1000000", c.Probes)
	case !(c.Rate > 0) || c.Rate > 10_000_000:
		return usageErrorf("sim: --rate %v: use results per second above 0, e.g. 1000", c.Rate)
	case c.Duration <= 0:
		return usageErrorf("sim: --duration %s: use a positive duration, e.g. 1m", c.Duration)
	case c.Batch < 1 || c.Batch > 100_000:
		return usageErrorf("sim: --batch %d: use 1 to 100000 (and at most the aggregator's max_batch)", c.Batch)
	case c.Flush <= 0:
		return usageErrorf("sim: --flush %s: use a positive duration, e.g. 5s", c.Flush)
	case c.Workers < 1 || c.Workers > 1024:
		return usageErrorf("sim: --workers %d: use 1 to 1024", c.Workers)
	}
	base := aggregatorURL(e, c.Aggregator)
	tok := adminToken(e, c.Token)
	if tok.IsZero() {
		return usageErrorf("sim: no admin token: set $%s (or --token) to the aggregator's admin token", adminTokenEnv)
	}
	cl, err := sim.NewClient(base, tok, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Workers}})
	if err != nil {
		return usageErrorf("sim: %v", err)
	}
	model, err := sim.New(sim.Config{Seed: c.Seed, Probes: c.Probes, Target: c.Target}, nil)
	if err != nil {
		return usageErrorf("%v", err)
	}
	start := time.Now()
	fleet, err := sim.Register(e.ctx, cl, model, c.Workers)
	if err != nil {
		// Refused (a wrong token) is exit 1; not reached at all is exit 2.
		code := exitUsage
		if se := (*api.StatusError)(nil); errors.As(err, &se) {
			code = exitFail
		}
		return &exitError{code: code, msg: "sim: " + err.Error()}
	}
	fmt.Fprintf(e.stdout, "registered %d simulated probes in %d networks in %s\n", c.Probes, model.ASNs(), time.Since(start).Round(time.Millisecond))
	rep, err := fleet.Load(e.ctx, sim.LoadOptions{Rate: c.Rate, Duration: c.Duration, Batch: c.Batch, Flush: c.Flush, Workers: c.Workers})
	if err != nil {
		return usageErrorf("sim: %v", err)
	}
	fmt.Fprintf(e.stdout, "generated %d results (asked %.0f/s for %s); uploaded %d batches in %s, %d failed\n",
		rep.Generated, c.Rate, c.Duration, rep.Batches, rep.Elapsed.Round(time.Millisecond), rep.Failed)
	fmt.Fprintf(e.stdout, "stored %d results (%d duplicates): %.1f results/s; upload latency p50 %s, p99 %s\n",
		rep.Stored, rep.Duplicate, rep.StoredPerSecond(), rep.Latency(0.5).Round(time.Microsecond), rep.Latency(0.99).Round(time.Microsecond))
	if rep.Failed > 0 {
		return &exitError{code: exitFail, msg: fmt.Sprintf("sim: %d of %d uploads failed; the first: %v", rep.Failed, rep.Batches, rep.FirstErr)}
	}
	return nil
}
