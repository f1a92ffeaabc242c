// Command catchmap-probe is the probe agent alone, as a static binary for
// VPSes: the same agent and flags as `catchmap probe`, without the
// aggregator and its cgo dependencies.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./cmd/catchmap-probe
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/catchmap/catchmap/probe/agent"
)

type cli struct {
	LogLevel  slog.Level `help:"Log level: debug, info, warn or error." default:"info" env:"CATCHMAP_LOG_LEVEL"`
	LogFormat string     `help:"Log format: text or json." enum:"text,json" default:"text"`

	agent.Flags `embed:""`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args and runs the agent, returning the exit status: 0 after a
// clean stop, 1 when the agent failed, 2 for bad usage or configuration.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	exited := -1
	parser, err := kong.New(&c,
		kong.Name("catchmap-probe"),
		kong.Description("catchmap probe agent: fetch the aggregator's plan, measure, upload; results wait in a spool while the aggregator is away."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited = code }),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "catchmap-probe: internal error building the command line: %v\n", err)
		return 2
	}
	_, err = parser.Parse(args)
	if exited >= 0 { // --help
		return exited
	}
	if err != nil {
		fmt.Fprintf(stderr, "catchmap-probe: %v\n", err)
		return 2
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel})
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel})
	}
	if err := c.Flags.Execute(ctx, slog.New(h), stdout); err != nil {
		fmt.Fprintf(stderr, "catchmap-probe: %v\n", err)
		if errors.Is(err, agent.ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}
