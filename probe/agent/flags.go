package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Flags are the command-line flags of `catchmap probe` and `catchmap-probe`:
// both embed this struct (kong tags), so the two cannot drift apart. A flag
// left unset keeps the config file's value, then the default.
type Flags struct {
	Config         string        `help:"YAML config file; flags override it." type:"path" placeholder:"FILE" env:"CATCHMAP_PROBE_CONFIG"`
	Check          bool          `help:"Check the configuration and exit."`
	Aggregator     string        `help:"Aggregator base URL, e.g. https://catchmap.example.net." placeholder:"URL" env:"CATCHMAP_AGGREGATOR"`
	Token          Token         `help:"Probe token from the aggregator's registration. Prefer the environment variable: flags show in ps." placeholder:"TOKEN" env:"CATCHMAP_TOKEN"`
	CAFile         string        `name:"ca-file" help:"PEM certificate of the private CA that signs the aggregator's certificate, trusted instead of the system's CAs. Read at start-up: restart after replacing it." type:"path" placeholder:"FILE"`
	CertFile       string        `name:"cert-file" help:"Client certificate (PEM), for an aggregator that checks them (serve --tls-client-ca); needs --key-file. Read at start-up: restart after renewing it." type:"path" placeholder:"FILE"`
	KeyFile        string        `name:"key-file" help:"Private key (PEM) of --cert-file." type:"path" placeholder:"FILE"`
	Name           string        `help:"Probe name stamped on records (default: the host name)."`
	Spool          string        `help:"Directory that keeps results until the aggregator has them (default /var/lib/catchmap-probe/spool)." type:"path" placeholder:"DIR"`
	SpoolMaxBytes  int64         `help:"Disk space the spool may take, in bytes; when full the oldest results go first (default 268435456)." placeholder:"BYTES"`
	Allow          []string      `help:"What the plan may measure: prefixes (192.0.2.0/24), addresses, host names, *.suffixes. Repeat or comma-separate. Unset allows everything." placeholder:"PREFIX|HOST"`
	MaxRate        float64       `help:"Most measurements per second (default 10)." placeholder:"N"`
	Burst          int           `help:"Measurements that may start at once within --max-rate (default: --max-rate rounded up)." placeholder:"N"`
	BatchSize      int           `help:"Most records per upload (default 500)." placeholder:"N"`
	UploadInterval time.Duration `help:"How often to upload spooled results (default 10s)." placeholder:"DURATION"`
	Concurrency    int           `help:"Most measurements in flight (default 8)." placeholder:"N"`
	DrainTimeout   time.Duration `help:"On SIGTERM, how long the last upload may take (default 5s)." placeholder:"DURATION"`
	MetricsListen  string        `help:"Serve Prometheus /metrics on this address, e.g. 127.0.0.1:9464 (off when unset)." placeholder:"ADDR"`
}

// Load builds the config: the file (when --config is set), then the flags
// that are set, then defaults; and validates it.
func (f *Flags) Load() (Config, error) {
	var c Config
	if f.Config != "" {
		var err error
		if c, err = LoadConfig(f.Config); err != nil {
			return c, err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Aggregator, f.Aggregator)
	set(&c.Name, f.Name)
	set(&c.Spool, f.Spool)
	set(&c.MetricsListen, f.MetricsListen)
	set(&c.CAFile, f.CAFile)
	set(&c.CertFile, f.CertFile)
	set(&c.KeyFile, f.KeyFile)
	if f.Token != "" {
		c.Token = f.Token
	}
	if f.SpoolMaxBytes != 0 {
		c.SpoolMaxBytes = f.SpoolMaxBytes
	}
	if len(f.Allow) > 0 {
		c.Allow = f.Allow
	}
	if f.MaxRate != 0 {
		c.MaxRate = f.MaxRate
	}
	if f.Burst != 0 {
		c.Burst = f.Burst
	}
	if f.BatchSize != 0 {
		c.BatchSize = f.BatchSize
	}
	if f.UploadInterval != 0 {
		c.UploadInterval = f.UploadInterval
	}
	if f.Concurrency != 0 {
		c.Concurrency = f.Concurrency
	}
	if f.DrainTimeout != 0 {
		c.DrainTimeout = f.DrainTimeout
	}
	c.SetDefaults()
	return c, c.Validate()
}

// Execute runs the agent as the commands do: load the config (with --check,
// report and stop), serve /metrics when asked, run until ctx ends. Errors
// wrapping ErrConfig are the user's to fix.
func (f *Flags) Execute(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
	cfg, err := f.Load()
	if err != nil {
		return err
	}
	if f.Check {
		if _, err := cfg.TLS(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "config OK: aggregator %s, spool %s, allow %d entries\n", cfg.Aggregator, cfg.Spool, len(cfg.Allow))
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := New(log, reg, cfg)
	if err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("%w: metrics listener: %v (is --metrics-listen in use?)", ErrConfig, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
		log.Info("serving metrics", "addr", ln.Addr().String())
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	return a.Run(ctx)
}
