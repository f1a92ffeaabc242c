// Command catchmap-catch is a site's sweep agent alone, as a static binary
// for the sites of an anycast service: the same agent and flags as
// `catchmap catch`, without the aggregator and its cgo dependencies.
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./cmd/catchmap-catch
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/catchmap/catchmap/internal/cliutil"
	"github.com/catchmap/catchmap/sweep/catcher"
)

type cli struct {
	cliutil.LogFlags `embed:""`
	catcher.Flags    `embed:""`
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
	if kctx, code := cliutil.Parse(&c, "catchmap-catch",
		"catchmap sweep agent for a site: catch the echo replies to the anycast address, and send a sweep's share when catchmap sweep run says so.",
		args, stdout, stderr); kctx == nil {
		return code
	}
	if err := c.Flags.Execute(ctx, c.Logger(stderr), stdout); err != nil {
		fmt.Fprintf(stderr, "catchmap-catch: %v\n", err)
		if errors.Is(err, catcher.ErrConfig) {
			return cliutil.ExitUsage
		}
		return 1
	}
	return 0
}
