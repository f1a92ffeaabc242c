package catcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/catchmap/catchmap/probe/agent"
	"github.com/catchmap/catchmap/sweep/hitlist"
)

// ErrConfig marks a configuration that cannot run: exit status 2.
var ErrConfig = errors.New("bad configuration")

// Flags are the command-line flags of `catchmap catch` and
// `catchmap-catch`: both embed this struct, so the two cannot drift apart.
type Flags struct {
	Listen     string      `help:"Address of the control API that catchmap sweep run drives, e.g. 10.0.0.5:8100; also serves /metrics and /healthz." required:"" placeholder:"ADDR"`
	Site       string      `help:"This site's code (e.g. ams), stamped on every probe it sends and reply it catches." required:""`
	Anycast    string      `help:"The anycast address: probes leave from it and replies come back to it; it must be on this host (lo)." required:"" placeholder:"ADDR"`
	Token      agent.Token `help:"Token the driver must send (Authorization: Bearer). Prefer the environment variable: flags show in ps." env:"CATCHMAP_CATCH_TOKEN" placeholder:"TOKEN"`
	MaxRate    int         `help:"Hard cap on the rate of any sweep this site sends, in packets/s (default 100000); a faster order is refused." default:"100000" placeholder:"PPS"`
	Allow      []string    `help:"Prefixes this site may probe, all others never (unset: anywhere a hitlist says). Repeat or comma-separate." placeholder:"PREFIX"`
	Block      []string    `help:"Prefixes this site never probes, besides a sweep's own opt-out list. Repeat or comma-separate." placeholder:"PREFIX"`
	BlockFile  string      `help:"File of prefixes this site never probes, one per line (plain or compressed)." type:"path" placeholder:"FILE"`
	ReadBuffer int         `help:"Receive buffer of the catching socket, in bytes: room for bursts of replies (default 64 MiB)." default:"67108864" placeholder:"BYTES"`
	MaxReplies int         `help:"Without --spool: most replies kept in memory until the driver collects them (default 4194304, about 200 MB)." default:"4194304" placeholder:"N"`
	Spool      string      `help:"Directory to keep caught replies in until the driver collects them, in the agents' segment spool: they survive a restart. Unset: in memory, lost on a restart." type:"path" placeholder:"DIR"`
	SpoolBytes int64       `name:"spool-max-bytes" help:"Disk space one sweep's replies may take in --spool (default 1 GiB); past it the oldest are dropped and counted." default:"1073741824" placeholder:"BYTES"`
	MaxSweeps  int         `help:"Most sweeps known at once (default 8)." default:"8" placeholder:"N"`
}

// Config turns the flags into a Config; a spool logs to log.
func (f *Flags) Config(log *slog.Logger) (Config, error) {
	c := Config{Site: f.Site, MaxRate: f.MaxRate, ReadBuffer: f.ReadBuffer, MaxSweeps: f.MaxSweeps}
	a, err := netip.ParseAddr(f.Anycast)
	if err != nil {
		return c, fmt.Errorf("%w: --anycast %q: not an IP address", ErrConfig, f.Anycast)
	}
	c.Anycast = a
	if f.Token == "" {
		return c, fmt.Errorf("%w: no token: set CATCHMAP_CATCH_TOKEN (or --token) to a secret the driver also has, e.g. $(openssl rand -hex 32)", ErrConfig)
	}
	if f.MaxRate < 1 || f.ReadBuffer < 1 || f.MaxReplies < 1 || f.MaxSweeps < 1 {
		return c, fmt.Errorf("%w: --max-rate, --read-buffer, --max-replies and --max-sweeps must be positive", ErrConfig)
	}
	if len(f.Allow) > 0 {
		if c.Allow, err = hitlist.ParseSet(f.Allow); err != nil {
			return c, fmt.Errorf("%w: --allow: %v", ErrConfig, err)
		}
	}
	if c.Block, err = hitlist.ParseSet(f.Block); err != nil {
		return c, fmt.Errorf("%w: --block: %v", ErrConfig, err)
	}
	if f.BlockFile != "" {
		more, err := hitlist.ReadSetFile(f.BlockFile)
		if err != nil {
			return c, fmt.Errorf("%w: --block-file: %v", ErrConfig, err)
		}
		c.Block = c.Block.Union(more)
	}
	c.Store = NewMemStore(f.MaxReplies)
	if f.Spool != "" {
		if f.SpoolBytes < 1 {
			return c, fmt.Errorf("%w: --spool-max-bytes must be positive", ErrConfig)
		}
		if c.Store, err = NewSpoolStore(log, f.Spool, f.SpoolBytes); err != nil {
			return c, fmt.Errorf("%w: --spool: %v", ErrConfig, err)
		}
	}
	if err := c.fill(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, nil
}

// Execute runs the catcher until ctx ends: it opens the catching socket,
// serves the control API on --listen and catches.
func (f *Flags) Execute(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
	cfg, err := f.Config(log)
	if err != nil {
		return err
	}
	if c, ok := cfg.Store.(io.Closer); ok {
		defer c.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := New(log, reg, cfg)
	if err != nil {
		// Most often a missing privilege or an anycast address not on
		// this host: the command cannot run as configured.
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		a.sock.Close()
		return fmt.Errorf("%w: --listen %s: %v", ErrConfig, f.Listen, err)
	}
	srv := &http.Server{Handler: NewHandler(log, a, f.Token, reg), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("catching", "site", cfg.Site, "anycast", cfg.Anycast, "listen", ln.Addr().String(), "max_rate", cfg.MaxRate,
		"read_buffer", a.sock.ReadBuffer())
	fmt.Fprintf(stdout, "catchmap catch: site %s catching replies to %s; control API on http://%s\n", cfg.Site, cfg.Anycast, ln.Addr())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx) }()
	select {
	case err = <-ran:
	case err = <-served:
		err = fmt.Errorf("control API stopped: %w", err)
		cancel()
		<-ran
	case <-ctx.Done():
		err = <-ran
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	log.Info("catcher stopped")
	return err
}
