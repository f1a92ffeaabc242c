package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/sim"
)

type demoCmd struct {
	Listen string  `help:"Address to serve on (host:port; port 0 picks a free one)." default:"127.0.0.1:8080"`
	DB     string  `name:"db" help:"SQLite database file to keep the demo's data in; default: a temporary directory, removed at exit." placeholder:"FILE"`
	Probes int     `help:"Simulated probes." default:"1000"`
	Seed   uint64  `help:"Seed of the simulation: the same seed gives the same fleet and catchment." default:"1"`
	Speed  float64 `help:"Scenario speed: 1 changes the routing every 5 minutes, 10 every 30 s." default:"1"`
	Target string  `help:"Name of the simulated service in the plan and the maps." default:"anycast-sim"`
}

// demoSettings is a demo run; tests build one to run fast.
type demoSettings struct {
	listen, db, target string
	model              sim.Config
	run                sim.DemoOptions
	// ready is called with the UI's base URL once the demo serves data.
	ready func(base string)
}

// demoHealthWait bounds the wait for the demo's own aggregator to answer.
const demoHealthWait = 30 * time.Second

func (c *demoCmd) Run(e *env) error {
	if c.Probes < 1 || c.Probes > 100_000 {
		return usageErrorf("demo: --probes %d: use 1 to 100000", c.Probes)
	}
	if !(c.Speed > 0) || c.Speed > 1000 {
		return usageErrorf("demo: --speed %v: use a factor above 0 and at most 1000, e.g. 10", c.Speed)
	}
	phase := time.Duration(float64(sim.DefaultPhase) / c.Speed)
	return runDemo(e, demoSettings{
		listen: c.Listen, db: c.DB, target: c.Target,
		model: sim.Config{Seed: c.Seed, Probes: c.Probes, Target: c.Target},
		run:   sim.DemoOptions{Scenario: sim.DefaultScenario(phase)},
	})
}

// runDemo runs the whole system in one process: the aggregator as
// `catchmap serve` builds it (app.New over SQLite), and a simulated fleet
// that registers and uploads through its HTTP API on loopback.
func runDemo(e *env, d demoSettings) error {
	db, cleanup, err := demoDB(d.db)
	if err != nil {
		return err
	}
	defer cleanup()
	admin, err := token.New()
	if err != nil {
		return fmt.Errorf("demo: generating the admin token: %w", err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.DB, cfg.AdminToken = d.listen, db, admin
	if err := cfg.Validate(); err != nil {
		return usageErrorf("demo: %v", err)
	}
	st, err := sqlite.Open(e.ctx, db, e.log)
	if err != nil {
		return &exitError{code: exitUsage, msg: "demo: " + err.Error()}
	}
	defer st.Close()
	alog := e.log
	if !e.log.Enabled(e.ctx, slog.LevelDebug) {
		alog = slog.New(minLevel{e.log.Handler(), slog.LevelWarn})
	}
	srv, err := app.New(alog, prometheus.NewRegistry(), st, app.Options{Server: []server.Option{server.WithConfig(cfg)}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("demo: listening on %s: %v (is an aggregator running there? use --listen 127.0.0.1:8081)", d.listen, err)}
	}
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	served, simulated := make(chan error, 1), make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	go func() { simulated <- demoFleet(ctx, e, d, base, db, admin) }()
	// Whichever ends first stops the other.
	var serr, ferr error
	select {
	case serr = <-served:
		cancel()
		ferr = <-simulated
	case ferr = <-simulated:
		cancel()
		serr = <-served
	}
	if e.ctx.Err() != nil {
		ferr = nil // stopped by the user: not a failure
	}
	if err := errors.Join(ferr, serr); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "catchmap demo: stopped")
	return nil
}

// minLevel drops records below min: the demo's aggregator would log each of
// its thousand probe registrations at info.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// demoDB is the database file: --db, or one in a new temporary directory
// that cleanup removes.
func demoDB(flag string) (db string, cleanup func(), err error) {
	if flag != "" {
		return flag, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "catchmap-demo-")
	if err != nil {
		return "", nil, fmt.Errorf("demo: creating a temporary data directory (set TMPDIR or use --db FILE): %w", err)
	}
	return filepath.Join(dir, "catchmap.db"), func() { os.RemoveAll(dir) }, nil
}

// demoFleet sets up the simulated service and fleet at the aggregator at
// base, and runs it until ctx ends.
func demoFleet(ctx context.Context, e *env, d demoSettings, base, db string, admin token.Token) error {
	hc := &http.Client{}
	if err := waitHealthy(ctx, hc, base, demoHealthWait); err != nil {
		return err
	}
	model, err := sim.New(d.model, nil)
	if err != nil {
		return err
	}
	cl, err := sim.NewClient(base, admin, hc)
	if err != nil {
		return err
	}
	if err := cl.PutPlan(ctx, api.Plan{Targets: []api.Target{sim.PlanTarget(model.Target())}}); err != nil {
		return fmt.Errorf("demo: putting the plan: %w", err)
	}
	fmt.Fprintf(e.stdout, "catchmap demo: a SIMULATION (a model of an anycast DNS service with %d sites, not a measurement)\n", len(model.Sites()))
	fmt.Fprintf(e.stdout, "catchmap demo: data in %s; registering %d simulated probes in %d networks...\n", db, len(model.Probes()), model.ASNs())
	start := time.Now()
	fleet, err := sim.Register(ctx, cl, model, 4)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	e.log.Info("demo probes registered", "probes", len(model.Probes()), "took", time.Since(start).Round(time.Millisecond))
	run := d.run
	backfill := run.Backfill
	if backfill == 0 {
		backfill = sim.DefaultBackfill
	}
	fmt.Fprintf(e.stdout, "catchmap demo: uploading the last %s of results, so that the map is full at once...\n", backfill)
	run.Ready = func() {
		u := base + "/?" + url.Values{"target": {model.Target()}}.Encode()
		fmt.Fprintf(e.stdout, "\n    catchmap demo is up: open %s\n\n", u)
		fmt.Fprintf(e.stdout, "catchmap demo: the routing changes every %s (%s withdrawn, %s prepended, restored), each change annotated; Ctrl-C stops\n",
			phaseOf(run), sim.WithdrawSite, sim.PrependSite)
		if d.ready != nil {
			d.ready(base)
		}
	}
	return sim.RunDemo(ctx, e.log, fleet, run)
}

func phaseOf(o sim.DemoOptions) time.Duration {
	if len(o.Scenario) > 0 {
		return o.Scenario[0].Duration
	}
	return sim.DefaultPhase
}

// waitHealthy polls GET /healthz until it answers 200, ctx ends, or wait
// passes.
func waitHealthy(ctx context.Context, hc *http.Client, base string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("demo: the aggregator at %s did not answer /healthz within %s", base, wait)
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
