// Command catchmap-catch is a site's sweep agent alone, as a static binary
// for the sites of an anycast service: the same agent and flags as
// `catchmap catch`, without the aggregator and its cgo dependencies.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./cmd/catchmap-catch
package main

import (
	"context"
	"io"

	"github.com/catchmap/catchmap/internal/cliutil"
	"github.com/catchmap/catchmap/sweep/catcher"
)

type cli struct {
	cliutil.LogFlags `embed:""`
	catcher.Flags    `embed:""`
}

func main() { cliutil.Main(run) }

// run parses args and runs the agent, returning the exit status: 0 after a
// clean stop, 1 when the agent failed, 2 for bad usage or configuration.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cliutil.RunAgent(ctx, &cli{}, "catchmap-catch",
		"catchmap sweep agent for a site: catch the echo replies to the anycast address, and send a sweep's share when catchmap sweep run says so.",
		catcher.ErrConfig, args, stdout, stderr)
}
