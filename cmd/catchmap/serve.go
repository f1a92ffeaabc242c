package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/clickhouse"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api/token"
)

// Flags have no kong defaults: an unset flag must not override the config
// file, so the defaults live in config.Default and the help names them.
type serveCmd struct {
	Config        string `help:"YAML configuration file (see aggregator/testdata/config/good.yaml); flags override it." placeholder:"FILE"`
	Check         bool   `help:"Validate the configuration and exit: 0 when good, 2 when not."`
	Listen        string `help:"Address to serve on (default 127.0.0.1:8080)." placeholder:"HOST:PORT"`
	DB            string `name:"db" help:"SQLite database file (default ./catchmap.db)." placeholder:"FILE"`
	Store         string `name:"store" help:"Store DSN, overrides --db: clickhouse://user:pass@host:9000/db (native protocol; several instances may share it) or sqlite:///path/file.db." placeholder:"DSN"`
	TLSCert       string `name:"tls-cert" help:"TLS certificate (PEM) to serve HTTPS; needs --tls-key. Read at start-up: restart after renewing it." placeholder:"FILE"`
	TLSKey        string `name:"tls-key" help:"TLS private key (PEM)." placeholder:"FILE"`
	TLSClientCA   string `name:"tls-client-ca" help:"CA certificates (PEM) that sign the probes' client certificates: HTTPS then refuses every client without one (admin tools, scrapers and health checks too); tokens are still required. Needs --tls-cert. Read at start-up: restart after changing it." placeholder:"FILE"`
	RetentionDays *int   `name:"retention-days" help:"Delete results older than this many days (default 0: keep all)." placeholder:"DAYS"`
	GeoIPCity     string `name:"geoip-city" help:"GeoLite2/GeoIP2 City mmdb, to place probes registered without a location." placeholder:"FILE"`
	GeoIPASN      string `name:"geoip-asn" help:"GeoLite2 ASN mmdb, to fill the probes' ASN." placeholder:"FILE"`

	BGP serveBGPFlags `embed:"" prefix:"bgp-"` // the BGP listener (bgp.go)
}

// adminTokenEnv names the environment variable holding the admin token; it
// keeps the secret out of config files and process listings.
const adminTokenEnv = "CATCHMAP_ADMIN_TOKEN"

// config builds the configuration: defaults, then the file, then the
// environment, then flags; validated once at the end.
func (c *serveCmd) config(e *env) (config.Config, error) {
	cfg := config.Default()
	if c.Config != "" {
		var err error
		if cfg, err = config.Read(c.Config); err != nil {
			return cfg, err
		}
	}
	if v := e.getenv(adminTokenEnv); v != "" {
		cfg.AdminToken = token.Parse(v)
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{
		{c.Listen, &cfg.Listen}, {c.DB, &cfg.DB}, {c.TLSCert, &cfg.TLSCert}, {c.TLSKey, &cfg.TLSKey},
		{c.TLSClientCA, &cfg.TLSClientCA},
		{c.GeoIPCity, &cfg.GeoIPCity}, {c.GeoIPASN, &cfg.GeoIPASN},
	} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if c.RetentionDays != nil {
		cfg.RetentionDays = *c.RetentionDays
	}
	c.BGP.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		if c.Config != "" {
			return cfg, fmt.Errorf("config %s (with flags and %s applied): %w", c.Config, adminTokenEnv, err)
		}
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

func (c *serveCmd) Run(e *env) error {
	cfg, err := c.config(e)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if c.Check {
		fmt.Fprintln(e.stdout, "configuration ok")
		return nil
	}
	if cfg.AdminToken.IsZero() {
		e.log.Warn("no admin token: the admin API (probe registration, plan, annotations) is off; set " + adminTokenEnv)
	}

	var opts []server.Option
	if cfg.GeoIPCity != "" || cfg.GeoIPASN != "" {
		db, err := geo.Open(cfg.GeoIPCity, cfg.GeoIPASN)
		if err != nil {
			return &exitError{code: exitUsage, msg: err.Error()}
		}
		defer db.Close()
		opts = append(opts, server.WithGeo(db))
	}
	var st store.Store
	switch {
	case c.Store == "":
		st, err = sqlite.Open(e.ctx, cfg.DB, e.log)
	case strings.HasPrefix(c.Store, "sqlite://"):
		st, err = sqlite.Open(e.ctx, strings.TrimPrefix(c.Store, "sqlite://"), e.log)
	default: // clickhouse.Open explains what is wrong with http:// and other schemes
		st, err = clickhouse.Open(e.ctx, c.Store, e.log)
	}
	if err != nil {
		return &exitError{code: exitUsage, msg: err.Error()}
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := app.New(e.log, reg, st, app.Options{Server: append(opts, server.WithConfig(cfg)), Gauges: &app.GaugeOptions{}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("listening on %s: %v (is another aggregator running? use --listen)", cfg.Listen, err)}
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	e.log.Info("aggregator serving", "url", scheme+"://"+ln.Addr().String(), "db", cfg.DB,
		"retention_days", cfg.RetentionDays, "read_token", !cfg.ReadToken.IsZero(), "client_certificates", cfg.TLSClientCA != "")
	if err := serveWithBGP(e, cfg.BGP, st, srv, ln); err != nil {
		return err
	}
	e.log.Info("aggregator stopped")
	return nil
}
