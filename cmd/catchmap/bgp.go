package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/bgp"
)

type bgpCmd struct {
	Import bgpImportCmd `cmd:"" help:"Import BGP updates from MRT files (BGP4MP, e.g. RIS or RouteViews updates.*.gz/.bz2) as timeline events of the anycast prefixes."`
}

type bgpImportCmd struct {
	Files  []string `arg:"" name:"file" help:"MRT update files: plain, gzip or bzip2." type:"existingfile"`
	Prefix []string `help:"Anycast prefix to keep updates of (the prefix or more specific); repeat for more. Default: every prefix of the plan at --db or --aggregator." placeholder:"CIDR"`

	DB         string `name:"db" help:"Store the events in this SQLite database." placeholder:"FILE" xor:"dest"`
	Aggregator string `help:"Upload the events to this aggregator (POST /api/v1/events; needs its admin token)." placeholder:"URL" xor:"dest"`
	Token      string `help:"The aggregator's admin token; prefer $CATCHMAP_ADMIN_TOKEN, as flags show in ps." placeholder:"TOKEN"`
	tlsFlags   `embed:""`
}

// eventSink takes the events of one batch.
type eventSink func(ctx context.Context, es []api.Event) error

// Run imports every file in turn: exit 0 when all are imported, 1 when a
// file is broken or the aggregator refused, 2 on bad usage or when the
// aggregator or database cannot be reached. Without --db or --aggregator
// the events go to stdout as JSON lines.
func (c *bgpImportCmd) Run(e *env) error {
	const cmd = "bgp import"
	var (
		sink     eventSink
		prefixes []string
		report   = e.stdout
	)
	switch {
	case c.DB != "":
		st, err := sqlite.Open(e.ctx, c.DB, e.log)
		if err != nil {
			return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %v", cmd, err)}
		}
		defer st.Close()
		sink = st.AddEvents
		if len(c.Prefix) == 0 {
			p, err := st.Plan(e.ctx)
			if err != nil {
				return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: reading the plan of %s: %v", cmd, c.DB, err)}
			}
			prefixes = p.Prefixes()
		}
	case c.Aggregator != "":
		cl, err := (&adminFlags{Aggregator: c.Aggregator, Token: c.Token, tlsFlags: c.tlsFlags}).client(e, cmd, true)
		if err != nil {
			return err
		}
		sink = func(ctx context.Context, es []api.Event) error {
			return cl.call(ctx, func(ctx context.Context, ac *api.Client) error { return ac.PostEvents(ctx, es) })
		}
		if len(c.Prefix) == 0 {
			p, err := cl.targets(e.ctx)
			if err != nil {
				return err
			}
			prefixes = p.Prefixes()
		}
	default:
		report = e.stderr
		enc := json.NewEncoder(e.stdout)
		sink = func(_ context.Context, es []api.Event) error {
			for _, ev := range es {
				if err := enc.Encode(ev); err != nil {
					return fmt.Errorf("writing events: %w", err)
				}
			}
			return nil
		}
		if len(c.Prefix) == 0 {
			return usageErrorf("%s: no prefixes: give --prefix CIDR, or --db / --aggregator to use the plan's", cmd)
		}
	}
	if len(c.Prefix) > 0 {
		prefixes = c.Prefix
	}
	ps, err := bgp.ParsePrefixes(prefixes)
	if err != nil {
		return usageErrorf("%s: %v", cmd, err)
	}
	if ps.Len() == 0 {
		return usageErrorf("%s: the plan lists no prefixes for its targets: give --prefix CIDR", cmd)
	}
	for _, f := range c.Files {
		if err := importMRT(e.ctx, f, ps, sink, report); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				return err
			}
			return &exitError{code: exitFail, msg: fmt.Sprintf("%s: %s: %v", cmd, f, err)}
		}
	}
	return nil
}

// importMRT streams one file into sink in batches the aggregator accepts.
func importMRT(ctx context.Context, path string, ps *bgp.Prefixes, sink eventSink, report io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	batch := make([]api.Event, 0, api.MaxEvents/2)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := sink(ctx, batch)
		batch = batch[:0]
		return err
	}
	st, err := bgp.ReadMRT(ctx, f, ps, func(ev api.Event) error {
		batch = append(batch, ev)
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	fmt.Fprintf(report, "%s: %d records, %d updates, %d events stored", path, st.Records, st.Updates, st.Events)
	if st.Malformed > 0 {
		fmt.Fprintf(report, ", %d malformed records skipped (first: %s)", st.Malformed, st.FirstMalformed)
	}
	fmt.Fprintln(report)
	return err
}

// serveBGPFlags override the bgp section of the configuration.
type serveBGPFlags struct {
	Peer       string `help:"BGP listener: the neighbour's address (turns the listener on; see bgp in the config)." placeholder:"IP"`
	PeerAS     uint32 `name:"peer-as" help:"BGP listener: the neighbour's AS number." placeholder:"ASN"`
	LocalAS    uint32 `name:"local-as" help:"BGP listener: catchmap's AS number." placeholder:"ASN"`
	RouterID   string `name:"router-id" help:"BGP listener: catchmap's router id (an IPv4 address)." placeholder:"IPV4"`
	ListenPort int    `name:"listen-port" help:"BGP listener: port to accept the session on (default 179, which needs root)." placeholder:"PORT"`
}

// apply overlays the flags that are set on cfg.BGP.
func (f serveBGPFlags) apply(cfg *config.Config) {
	if f == (serveBGPFlags{}) {
		return
	}
	b := config.BGP{}
	if cfg.BGP != nil {
		b = *cfg.BGP
	}
	if f.Peer != "" {
		b.Peer = f.Peer
	}
	if f.PeerAS != 0 {
		b.PeerAS = f.PeerAS
	}
	if f.LocalAS != 0 {
		b.LocalAS = f.LocalAS
	}
	if f.RouterID != "" {
		b.RouterID = f.RouterID
	}
	if f.ListenPort != 0 {
		b.ListenPort = f.ListenPort
	}
	cfg.BGP = &b
}

// serveWithBGP serves the API and, when configured, runs the BGP listener
// beside it; when either fails, both stop.
func serveWithBGP(e *env, c *config.BGP, st store.Store, srv *server.Server, ln net.Listener) error {
	if !c.Enabled() {
		return srv.Serve(e.ctx, ln)
	}
	g, ctx := errgroup.WithContext(e.ctx)
	g.Go(func() error { return srv.Serve(ctx, ln) })
	g.Go(func() error {
		if err := app.RunBGP(ctx, e.log, st, c); err != nil {
			return &exitError{code: exitUsage, msg: err.Error()}
		}
		return nil
	})
	return g.Wait()
}
