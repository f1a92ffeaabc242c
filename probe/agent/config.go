package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/probe/spool"
)

// ErrConfig wraps every error that says the configuration is wrong: fix the
// flags or the file, retrying cannot help.
var ErrConfig = errors.New("bad probe configuration")

// Defaults for the Config fields left zero.
const (
	DefaultSpoolDir       = "/var/lib/catchmap-probe/spool"
	DefaultMaxRate        = 10.0
	DefaultBatchSize      = 500
	DefaultUploadInterval = 10 * time.Second
	DefaultConcurrency    = 8
	DefaultDrainTimeout   = 5 * time.Second
	// DefaultPlanRefresh applies when the plan says nothing.
	DefaultPlanRefresh = 60 * time.Second
	// DefaultInterval applies to plan entries that set none.
	DefaultInterval = 60 * time.Second
)

// Token is a probe's secret. It prints, logs and marshals as "[redacted]" so
// it cannot leak through a log line, an error or a config dump; Reveal is the
// only way to the secret.
type Token string

const redacted = "[redacted]"

// Reveal returns the secret, for the Authorization header only.
func (t Token) Reveal() string { return string(t) }

// String hides the secret.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString hides the secret from %#v too.
func (t Token) GoString() string { return fmt.Sprintf("agent.Token(%q)", t.String()) }

// LogValue hides the secret from slog.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText hides the secret from JSON, YAML and text encoders.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a token from a flag, the environment or YAML.
func (t *Token) UnmarshalText(b []byte) error {
	*t = Token(strings.TrimSpace(string(b)))
	return nil
}

// Config is the agent's configuration. The YAML file uses the yaml names;
// unknown keys are an error. Zero fields take the Default* values.
type Config struct {
	// Aggregator is the aggregator's base URL, e.g. https://catchmap.example.net.
	Aggregator string `yaml:"aggregator"`
	// Token authenticates the probe; prefer $CATCHMAP_TOKEN to the file.
	Token Token `yaml:"token"`
	// CAFile is the PEM certificate of a private CA that signs the
	// aggregator's certificate, trusted instead of the system's CAs.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key (PEM),
	// for an aggregator that checks them; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Name is stamped on records as their probe field; the host name by default.
	Name string `yaml:"name"`
	// Spool is the directory that keeps results until the aggregator has them.
	Spool string `yaml:"spool"`
	// SpoolMaxBytes bounds the disk space of the spool; the oldest results
	// go first when full.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// Allow lists what plan entries may measure: prefixes (192.0.2.0/24),
	// addresses, host names (dns.example.net) and host suffixes
	// (*.example.net). Empty allows everything. See Allowlist.
	Allow []string `yaml:"allow"`
	// MaxRate caps measurements per second, across all targets.
	MaxRate float64 `yaml:"max_rate"`
	// Burst is how many measurements may start at once within MaxRate;
	// MaxRate rounded up by default.
	Burst int `yaml:"burst"`
	// BatchSize caps the records of one upload.
	BatchSize int `yaml:"batch_size"`
	// UploadInterval is how often spooled results are uploaded.
	UploadInterval time.Duration `yaml:"upload_interval"`
	// Concurrency caps measurements in flight.
	Concurrency int `yaml:"concurrency"`
	// DrainTimeout bounds the last upload when the agent stops.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// MetricsListen, when set, is the address of the /metrics listener.
	MetricsListen string `yaml:"metrics_listen"`
}

// ParseConfig reads a YAML config strictly: unknown keys and trailing
// documents are errors. It does not fill defaults or validate.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file is an empty config
		}
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return c, fmt.Errorf("%w: more than one YAML document: keep one", ErrConfig)
	}
	return c, nil
}

// LoadConfig reads the YAML config file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: read config: %v", ErrConfig, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// SetDefaults fills the zero fields.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Spool == "" {
		c.Spool = DefaultSpoolDir
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = spool.DefaultMaxBytes
	}
	if c.MaxRate == 0 {
		c.MaxRate = DefaultMaxRate
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(c.MaxRate+0.999))
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.UploadInterval == 0 {
		c.UploadInterval = DefaultUploadInterval
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
}

// Validate checks a config with defaults filled; each error names the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Aggregator == "" {
		bad("aggregator: missing: set --aggregator or aggregator: in the config, e.g. https://catchmap.example.net")
	} else if u, err := url.Parse(c.Aggregator); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("aggregator: %q is not an http(s) URL such as https://catchmap.example.net", c.Aggregator)
	} else if u.Scheme == "http" && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		bad("aggregator: %q is plain http, yet --ca-file, --cert-file or --key-file is set: use the aggregator's https URL", c.Aggregator)
	}
	if c.CertFile != "" && c.KeyFile == "" {
		bad("key_file: missing: --cert-file needs --key-file, the private key of the client certificate")
	}
	if c.KeyFile != "" && c.CertFile == "" {
		bad("cert_file: missing: --key-file needs --cert-file, the client certificate of that key")
	}
	if c.Token == "" {
		bad("token: missing: set $CATCHMAP_TOKEN (or --token) to the token the aggregator gave at registration")
	}
	if c.SpoolMaxBytes < 64<<10 {
		bad("spool_max_bytes: %d is below the 65536-byte minimum", c.SpoolMaxBytes)
	}
	if _, err := ParseAllowlist(c.Allow); err != nil {
		bad("allow: %v", err)
	}
	if c.MaxRate < 0 {
		bad("max_rate: %v must be positive", c.MaxRate)
	}
	if c.Burst < 1 {
		bad("burst: %d must be at least 1", c.Burst)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		bad("batch_size: %d out of range 1-100000", c.BatchSize)
	}
	if c.UploadInterval < 0 {
		bad("upload_interval: %v must be positive", c.UploadInterval)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("concurrency: %d out of range 1-1024", c.Concurrency)
	}
	if c.DrainTimeout < 0 {
		bad("drain_timeout: %v must be positive", c.DrainTimeout)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen: %q is not host:port, e.g. 127.0.0.1:9464", c.MetricsListen)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
