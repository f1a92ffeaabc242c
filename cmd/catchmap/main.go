// Command catchmap measures anycast catchments: which site of an anycast
// service answers each part of the world, how fast, and what moved.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/catchmap/catchmap/internal/cliutil"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// Exit statuses shared by every command.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran, and something it measured or checked failed
	exitUsage = cliutil.ExitUsage
)

// exitError carries an exit status out of a command's Run. Its message, when
// set, is printed to stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageErrorf reports bad usage: exit 2 with a message saying what is wrong.
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

// env is what every command gets: no globals, so tests run commands in-process.
type env struct {
	ctx    context.Context
	log    *slog.Logger
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type cli struct {
	cliutil.LogFlags `embed:""`

	Measure  measureCmd  `cmd:"" help:"Measure anycast targets once: which site answers, and how fast."`
	Presets  presetsCmd  `cmd:"" help:"List the built-in site identification presets."`
	Serve    serveCmd    `cmd:"" help:"Run the aggregator: ingest results from probes, hand out plans, serve maps."`
	Probe    probeCmd    `cmd:"" help:"Run the probe agent: fetch the plan, measure, upload (spooling while the aggregator is away)."`
	Map      mapCmd      `cmd:"" help:"Show the catchment map of a target: which site serves each cell."`
	Diff     diffCmd     `cmd:"" help:"Compare the catchment of two time windows: what moved where."`
	Sites    sitesCmd    `cmd:"" help:"Look up site codes: where a site is, from the built-in airport table and your own sites."`
	Import   importCmd   `cmd:"" help:"Import results measured elsewhere (RIPE Atlas) as catchmap results."`
	Snapshot snapshotCmd `cmd:"" help:"Freeze a target's catchment into a baseline file for catchmap check."`
	Check    checkCmd    `cmd:"" help:"CI gate: judge the current catchment against a baseline with rules; exit 0 pass, 1 fail, 2 cannot judge."`
	Annotate annotateCmd `cmd:"" help:"Mark a change (e.g. a BGP prepend) on a target's timeline at the aggregator."`
	Probes   probesCmd   `cmd:"" help:"Manage the aggregator's probes: add (prints the token once), list, revoke."`
	Targets  targetsCmd  `cmd:"" help:"Read or replace the aggregator's measurement plan (targets get, targets put plan.yaml)."`
	BGP      bgpCmd      `cmd:"" name:"bgp" help:"BGP events of the anycast prefixes for the timeline: bgp import FILE... (MRT updates)."`
	Demo     demoCmd     `cmd:"" help:"Run the whole system offline: an aggregator and a SIMULATED anycast service and fleet, with a scripted routing scenario."`
	Sim      simCmd      `cmd:"" help:"Drive an aggregator with a SIMULATED global fleet: a load generator for capacity planning."`
	Lab      labCmd      `cmd:"" help:"Run a small real Internet in network namespaces (root): BGP (BIRD) decides which anycast site each probe reaches."`
	Catch    catchCmd    `cmd:"" help:"Run a site's sweep agent (root or CAP_NET_RAW): catch the echo replies to the anycast address, send a sweep's share when told."`
	Sweep    sweepCmd    `cmd:"" help:"Sweep a hitlist from the anycast address and map which site catches each /24's reply (sweep run)."`
	Hitlist  hitlistCmd  `cmd:"" help:"Check a sweep hitlist without sending anything (hitlist check FILE)."`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run parses args and runs one command, returning the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var c cli
	kctx, code := cliutil.Parse(&c, "catchmap",
		"Anycast catchment measurement: which site answers each part of the world, how fast, and what the last BGP change did to that.",
		args, stdout, stderr, kong.Vars{"methods": strings.Join(result.Methods, ","), "groupings": strings.Join(maps.Groupings(), ",")})
	if kctx == nil {
		return code
	}
	e := &env{ctx: ctx, log: c.Logger(stderr), stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := kctx.Run(e)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "catchmap: %s\n", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "catchmap: %v\n", err)
	return exitFail
}
