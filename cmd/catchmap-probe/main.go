// Command catchmap-probe is the probe agent alone, as a static binary for
// VPSes: the same agent and flags as `catchmap probe`, without the
// aggregator and its cgo dependencies.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./cmd/catchmap-probe
package main

import (
	"context"
	"io"

	"github.com/catchmap/catchmap/internal/cliutil"
	"github.com/catchmap/catchmap/probe/agent"
)

type cli struct {
	cliutil.LogFlags `embed:""`
	agent.Flags      `embed:""`
}

func main() { cliutil.Main(run) }

// run parses args and runs the agent, returning the exit status: 0 after a
// clean stop, 1 when the agent failed, 2 for bad usage or configuration.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cliutil.RunAgent(ctx, &cli{}, "catchmap-probe",
		"catchmap probe agent: fetch the aggregator's plan, measure, upload; results wait in a spool while the aggregator is away.",
		agent.ErrConfig, args, stdout, stderr)
}
