// Package cliutil is what the catchmap and catchmap-probe commands share:
// the command line parser's setup and the logging flags. It stays free of
// cgo, as catchmap-probe is built without it.
package cliutil

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kong"
)

// ExitUsage is the exit status for bad usage, or a command that could not
// run at all.
const ExitUsage = 2

// LogFlags are the logging flags of every command; embed them in the
// command line struct with `embed:""`.
type LogFlags struct {
	LogLevel  slog.Level `help:"Log level: debug, info, warn or error." default:"info" env:"CATCHMAP_LOG_LEVEL"`
	LogFormat string     `help:"Log format: text or json." enum:"text,json" default:"text"`
}

// Logger returns the logger the flags ask for, writing to w.
func (f LogFlags) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: f.LogLevel}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Parse parses args into cli (a kong command line struct) for the command
// name. It returns the parse to run, or nil and the exit status when the
// command is already done: after --help, or with ExitUsage after bad usage,
// with the message and usage on stderr. kong exits nowhere, so tests can
// run commands in-process. opts add to kong's options (such as kong.Vars
// for the ${name}s of help texts and enums).
func Parse(cli any, name, description string, args []string, stdout, stderr io.Writer, opts ...kong.Option) (*kong.Context, int) {
	exited := -1
	parser, err := kong.New(cli, append([]kong.Option{
		kong.Name(name),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited = code }),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}, opts...)...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: internal error building the command line: %v\n", name, err)
		return nil, ExitUsage
	}
	kctx, err := parser.Parse(args)
	if exited >= 0 { // --help
		return nil, exited
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, ExitUsage
	}
	return kctx, 0
}
