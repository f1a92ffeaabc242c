package cliutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Agent is the command line of a static agent binary (catchmap-probe,
// catchmap-catch): LogFlags and the agent's flags embedded in one struct,
// whose Execute runs the agent until ctx ends.
type Agent interface {
	Logger(w io.Writer) *slog.Logger
	Execute(ctx context.Context, log *slog.Logger, stdout io.Writer) error
}

// RunAgent parses args into cli and runs it, returning the exit status:
// 0 after a clean stop, 1 when the agent failed, ExitUsage for bad usage
// or an error that is errConfig.
func RunAgent(ctx context.Context, cli Agent, name, description string, errConfig error, args []string, stdout, stderr io.Writer) int {
	if kctx, code := Parse(cli, name, description, args, stdout, stderr); kctx == nil {
		return code
	}
	if err := cli.Execute(ctx, cli.Logger(stderr), stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if errors.Is(err, errConfig) {
			return ExitUsage
		}
		return 1
	}
	return 0
}

// Main calls run with the process's arguments and streams and a context
// that SIGINT and SIGTERM end, and exits with its status.
func Main(run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
