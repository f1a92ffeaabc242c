// Package config reads the aggregator's YAML configuration strictly (unknown
// keys are errors), and holds its defaults and validation in one place.
// Command-line flags override file values; call Validate after applying them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/spec"
)

// MinTokenLen is the shortest admin or read token accepted: shorter ones can
// be guessed.
const MinTokenLen = 16

// Config is the aggregator's configuration. YAML keys are the field tags.
type Config struct {
	// Listen is the address to serve on, host:port.
	Listen string `yaml:"listen"`
	// DB is the SQLite database file.
	DB string `yaml:"db"`
	// AdminToken guards probe registration, the plan and annotations; the
	// admin API is off when it is empty. CATCHMAP_ADMIN_TOKEN overrides it.
	AdminToken token.Token `yaml:"admin_token"`
	// ReadToken, when set, is required to read results, maps and metrics;
	// reads are open otherwise.
	ReadToken token.Token `yaml:"read_token"`
	// TLSCert and TLSKey turn on HTTPS; both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSClientCA, when set, holds the CA certificates (PEM) that sign the
	// probes' client certificates: the HTTPS handshake then fails for any
	// client without one. Tokens are still required.
	TLSClientCA string `yaml:"tls_client_ca"`
	// RetentionDays drops results older than this many days; 0 keeps all.
	RetentionDays int `yaml:"retention_days"`
	// GeoIPCity and GeoIPASN are MaxMind (or compatible) mmdb files used to
	// place probes registered without a location; optional.
	GeoIPCity string `yaml:"geoip_city"`
	GeoIPASN  string `yaml:"geoip_asn"`
	// MaxBatch is the most records one upload may carry.
	MaxBatch int `yaml:"max_batch"`
	// MaxBodyBytes bounds an upload, both as sent and after gzip decoding.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxFuture is how far ahead of the aggregator's clock a result's time
	// may be (probe clock skew) before the upload is refused.
	MaxFuture spec.Duration `yaml:"max_future"`
	// PlanRefresh tells probes how often to fetch the plan again.
	PlanRefresh spec.Duration `yaml:"plan_refresh"`
	// BGP is the BGP listener recording events of the anycast prefixes
	// (see bgp.go); off unless bgp.peer is set. A pointer keeps Config
	// comparable.
	BGP *BGP `yaml:"bgp"`
}

// Default returns the configuration used where neither file nor flag says
// otherwise.
func Default() Config {
	return Config{
		Listen:       "127.0.0.1:8080",
		DB:           "./catchmap.db",
		MaxBatch:     10000,
		MaxBodyBytes: 16 << 20,
		MaxFuture:    spec.Duration(5 * time.Minute),
		PlanRefresh:  spec.Duration(time.Minute),
	}
}

// Limits on values, so that a typo (an extra zero) is caught rather than
// served.
const (
	maxBatchLimit     = 1_000_000
	minBodyBytes      = 1 << 10
	maxBodyBytesLimit = 1 << 30
	maxFutureLimit    = 24 * time.Hour
	minPlanRefresh    = time.Second
	maxPlanRefresh    = 24 * time.Hour
)

// Read returns the defaults overlaid with the YAML file at path. It rejects
// unknown keys and bad types but does not Validate, so that flags can
// override first.
func Read(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(bytes.NewReader(b))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is Read for YAML already open.
func Parse(r io.Reader) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) { // an empty file: all defaults
			return c, nil
		}
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field; the error names the first bad one by its
// YAML key and says what to do.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("listen: empty: give host:port, such as 127.0.0.1:8080")
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port, such as 127.0.0.1:8080", c.Listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("listen: port %q is not a number from 0 to 65535", port)
	}
	if c.DB == "" {
		return errors.New("db: empty: give the path of the SQLite database file")
	}
	if !c.AdminToken.IsZero() && c.AdminToken.Len() < MinTokenLen {
		return fmt.Errorf("admin_token: too short (%d bytes): use at least %d random characters, such as the output of `openssl rand -base64 32`", c.AdminToken.Len(), MinTokenLen)
	}
	if !c.ReadToken.IsZero() && c.ReadToken.Len() < MinTokenLen {
		return fmt.Errorf("read_token: too short (%d bytes): use at least %d random characters, such as the output of `openssl rand -base64 32`", c.ReadToken.Len(), MinTokenLen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert, tls_key: give both (HTTPS) or neither (HTTP)")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("tls_client_ca: client certificates are checked over HTTPS only: give tls_cert and tls_key too, or remove tls_client_ca")
	}
	if c.RetentionDays < 0 {
		return fmt.Errorf("retention_days: %d is negative: give a number of days, or 0 to keep every result", c.RetentionDays)
	}
	if c.MaxBatch < 1 || c.MaxBatch > maxBatchLimit {
		return fmt.Errorf("max_batch: %d is out of range 1-%d", c.MaxBatch, maxBatchLimit)
	}
	if c.MaxBodyBytes < minBodyBytes || c.MaxBodyBytes > maxBodyBytesLimit {
		return fmt.Errorf("max_body_bytes: %d is out of range %d-%d", c.MaxBodyBytes, minBodyBytes, maxBodyBytesLimit)
	}
	if c.MaxFuture.D() > maxFutureLimit {
		return fmt.Errorf("max_future: %s is more than %s: fix the probes' clocks (NTP) instead", c.MaxFuture.D(), maxFutureLimit)
	}
	if r := c.PlanRefresh.D(); r < minPlanRefresh || r > maxPlanRefresh {
		return fmt.Errorf("plan_refresh: %s is out of range %s-%s", r, minPlanRefresh, maxPlanRefresh)
	}
	if err := c.BGP.validate(); err != nil {
		return err
	}
	return nil
}
