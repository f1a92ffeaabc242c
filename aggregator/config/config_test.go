package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dir = "../testdata/config"

// TestBad checks that each invalid file fails with its exact message, and
// that every *.bad.yaml file has a case (so none is forgotten).
func TestBad(t *testing.T) {
	cases := map[string]string{
		"unknown_key.bad.yaml":         "config ../testdata/config/unknown_key.bad.yaml: yaml: unmarshal errors:\n  line 2: field lisen not found in type config.Config",
		"retention_type.bad.yaml":      "config ../testdata/config/retention_type.bad.yaml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `forever` into int",
		"retention_negative.bad.yaml":  "retention_days: -3 is negative: give a number of days, or 0 to keep every result",
		"listen_noport.bad.yaml":       `listen: "localhost" is not host:port, such as 127.0.0.1:8080`,
		"listen_port.bad.yaml":         `listen: port "http" is not a number from 0 to 65535`,
		"db_empty.bad.yaml":            "db: empty: give the path of the SQLite database file",
		"admin_token_short.bad.yaml":   "admin_token: too short (5 bytes): use at least 16 random characters, such as the output of `openssl rand -base64 32`",
		"read_token_short.bad.yaml":    "read_token: too short (3 bytes): use at least 16 random characters, such as the output of `openssl rand -base64 32`",
		"tls_half.bad.yaml":            "tls_cert, tls_key: give both (HTTPS) or neither (HTTP)",
		"tls_client_ca_plain.bad.yaml": "tls_client_ca: client certificates are checked over HTTPS only: give tls_cert and tls_key too, or remove tls_client_ca",
		"max_batch_zero.bad.yaml":      "max_batch: 0 is out of range 1-1000000",
		"max_body_small.bad.yaml":      "max_body_bytes: 10 is out of range 1024-1073741824",
		"max_future_big.bad.yaml":      "max_future: 48h0m0s is more than 24h0m0s: fix the probes' clocks (NTP) instead",
		"max_future_syntax.bad.yaml":   `config ../testdata/config/max_future_syntax.bad.yaml: bad duration "soon": use a number with a unit, such as 500ms, 30s or 5m`,
		"plan_refresh_small.bad.yaml":  "plan_refresh: 10ms is out of range 1s-24h0m0s",
		"syntax.bad.yaml":              "config ../testdata/config/syntax.bad.yaml: yaml: line 1: did not find expected ',' or ']'",
		"bgp_no_peer.bad.yaml":         "bgp.peer: empty, which turns the listener off, yet other bgp fields are set: give the neighbour's address, or remove the bgp section",
		"bgp_peer.bad.yaml":            `bgp.peer: "router1" is not an IP address: give the BGP neighbour's address, such as 192.0.2.1`,
		"bgp_peer_as.bad.yaml":         "bgp.peer_as: missing: give the neighbour's AS number",
		"bgp_peer_as_type.bad.yaml":    "config ../testdata/config/bgp_peer_as_type.bad.yaml: yaml: unmarshal errors:\n  line 6: cannot unmarshal !!str `AS64501` into uint32",
		"bgp_local_as.bad.yaml":        "bgp.local_as: missing: give catchmap's AS number (a private one, such as 64512, will do)",
		"bgp_router_id.bad.yaml":       `bgp.router_id: "::1" is not an IPv4 address: give one unique among the peer's neighbours, such as the aggregator's IPv4 address`,
		"bgp_listen_address.bad.yaml":  `bgp.listen_address: "localhost" is not an IP address: give one of this host's addresses, or leave it empty for all`,
		"bgp_listen_port.bad.yaml":     "bgp.listen_port: 70000 is out of range 1-65535",
		"bgp_mode.bad.yaml":            `bgp.mode: "eager": use passive (wait for the peer) or active (also connect to it)`,
		"bgp_peer_port.bad.yaml":       "bgp.peer_port: -1 is out of range 1-65535",
		"bgp_prefix.bad.yaml":          `bgp.prefixes[0]: "192.0.2.1/24" is not a CIDR prefix without host bits, such as 192.0.2.0/24`,
		"bgp_prefix_twice.bad.yaml":    `bgp.prefixes[1]: "192.0.2.0/24" is listed twice`,
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := cases[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected message in TestBad", f)
		}
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			err := load(filepath.Join(dir, name))
			if err == nil {
				t.Fatalf("no error, want %q", want)
			}
			if err.Error() != want {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), want)
			}
		})
	}
}

func load(path string) error {
	c, err := Read(path)
	if err != nil {
		return err
	}
	return c.Validate()
}

func TestGood(t *testing.T) {
	c, err := Read(filepath.Join(dir, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9090" || c.RetentionDays != 90 || c.MaxBatch != 5000 ||
		c.MaxBodyBytes != 8<<20 || c.MaxFuture.D() != 2*time.Minute || c.PlanRefresh.D() != 30*time.Second ||
		c.AdminToken.Reveal() != "0123456789abcdef0123456789abcdef" || c.GeoIPASN == "" || c.TLSKey == "" ||
		c.TLSClientCA != "/etc/catchmap/probes-ca.pem" {
		t.Errorf("values not read: %+v", c)
	}
	// The tokens must not show when the config is printed or dumped.
	for _, s := range []string{fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c)} {
		if strings.Contains(s, "0123456789abcdef") || strings.Contains(s, "fedcba98") {
			t.Errorf("printed config shows a token: %s", s)
		}
	}
}

func TestDefaultsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Read(empty)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("empty file: got %+v, want the defaults %+v", got, c)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"good.yaml", "unknown_key.bad.yaml", "syntax.bad.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		if c.Validate() == nil && (c.MaxBatch < 1 || c.Listen == "") {
			t.Errorf("validated a bad config: %+v", c)
		}
	})
}
