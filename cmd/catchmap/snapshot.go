package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/gate"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// readTokenEnv names the environment variable with the aggregator's read
// token; flags show in process listings, the environment does not.
const readTokenEnv = "CATCHMAP_TOKEN"

// fetchTimeout bounds one fetch of a window's results.
const fetchTimeout = 5 * time.Minute

// sourceFlags say where a catchment's records come from: an aggregator's
// API or a results file.
type sourceFlags struct {
	Aggregator string        `help:"Aggregator URL to fetch results from, e.g. https://catchmap.example:8080." placeholder:"URL"`
	Input      string        `help:"Read results from this NDJSON file ('-': stdin) instead of an aggregator; every record of the target counts, whatever --window." placeholder:"FILE"`
	Target     string        `help:"Target (the plan entry's name) to judge; with --input, may be left out when the file has one target." placeholder:"NAME"`
	Window     time.Duration `help:"With --aggregator: the window of results, ending now." default:"15m"`
	Token      string        `help:"Read token of the aggregator; prefer $CATCHMAP_TOKEN, as flags show in ps." placeholder:"TOKEN"`
	tlsFlags   `embed:""`
}

func (s *sourceFlags) token(e *env) token.Token {
	if s.Token != "" {
		return token.Parse(s.Token)
	}
	return token.Parse(e.getenv(readTokenEnv))
}

func (s *sourceFlags) client(e *env) (*gate.Client, error) {
	hc, err := s.httpClient("--aggregator", 0)
	if err != nil {
		return nil, err
	}
	cl, err := gate.NewClient(s.Aggregator, s.token(e), hc)
	if err != nil {
		return nil, usageErrorf("--aggregator: %v", err)
	}
	return cl, nil
}

// take computes the snapshot of the source's records at H3 resolution res.
// Failures to reach or read the source are exit 2: nothing was judged.
func (s *sourceFlags) take(e *env, cmd string, res int) (*gate.Snapshot, error) {
	opts := maps.Options{Target: s.Target, Res: res}
	if res == 0 {
		opts.Res = maps.ResBase
	}
	var each func(fn func(*result.Record) error) error
	var from string
	switch {
	case s.Input != "":
		f, name, err := openInput(e, s.Input)
		if err != nil {
			return nil, usageErrorf("%s: --input: %v", cmd, err)
		}
		defer f.Close()
		from = name
		each = func(fn func(*result.Record) error) error { return result.ReadNDJSON(f, fn) }
	default:
		if s.Target == "" {
			return nil, usageErrorf("%s: --aggregator needs --target: name the plan entry to judge", cmd)
		}
		if s.Window <= 0 {
			return nil, usageErrorf("%s: --window %s: use a duration above 0, such as 15m", cmd, s.Window)
		}
		cl, err := s.client(e)
		if err != nil {
			return nil, err
		}
		to := time.Now().UTC()
		opts.From, opts.To = to.Add(-s.Window), to
		from = s.Aggregator
		ctx, cancel := context.WithTimeout(e.ctx, fetchTimeout)
		defer cancel()
		each = func(fn func(*result.Record) error) error {
			return cl.Results(ctx, s.Target, opts.From, opts.To, fn)
		}
	}
	snap, err := gate.Take(opts, each)
	if err != nil {
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %s: %v", cmd, from, err)}
	}
	return snap, nil
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

// openInput opens a file, or stdin for "-".
func openInput(e *env, path string) (io.ReadCloser, string, error) {
	if path == "-" {
		return nopCloser{e.stdin}, "stdin", nil
	}
	f, err := os.Open(path)
	return f, path, err
}

// writeOutput writes with fn to path ("-": stdout), through a temporary
// file and a rename, so that a failed run leaves no half-written file.
func writeOutput(e *env, path string, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(e.stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = fn(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

type snapshotCmd struct {
	sourceFlags `embed:""`
	Res         int    `help:"H3 resolution of the cells, 0 to 7." default:"3"`
	Output      string `short:"o" help:"Write the snapshot here ('-': stdout)." default:"-" placeholder:"FILE"`
}

func (c *snapshotCmd) Run(e *env) error {
	if (c.Aggregator == "") == (c.Input == "") {
		return usageErrorf("snapshot: give one of --aggregator or --input")
	}
	if c.Res < maps.MinRes || c.Res > maps.MaxRes {
		return usageErrorf("snapshot: --res %d: use %d to %d", c.Res, maps.MinRes, maps.MaxRes)
	}
	snap, err := c.take(e, "snapshot", c.Res)
	if err != nil {
		return err
	}
	if err := writeOutput(e, c.Output, snap.Write); err != nil {
		return errors.New("snapshot: " + err.Error())
	}
	if c.Output != "-" {
		fmt.Fprintf(e.stderr, "snapshot of %s: %d probes, %d sites, %s to %s, written to %s\n", snap.Target, snap.ProbeCount,
			len(snap.Sites), snap.From.Format(time.RFC3339), snap.To.Format(time.RFC3339), c.Output)
	}
	return nil
}
