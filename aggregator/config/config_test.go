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
		"unknown_key.bad.yaml":        "config ../testdata/config/unknown_key.bad.yaml: yaml: unmarshal errors:\n  line 2: field lisen not found in type config.Config",
		"retention_type.bad.yaml":     "config ../testdata/config/retention_type.bad.yaml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `forever` into int",
		"retention_negative.bad.yaml": "retention_days: -3 is negative: give a number of days, or 0 to keep every result",
		"listen_noport.bad.yaml":      `listen: "localhost" is not host:port, such as 127.0.0.1:8080`,
		"listen_port.bad.yaml":        `listen: port "http" is not a number from 0 to 65535`,
		"db_empty.bad.yaml":           "db: empty: give the path of the SQLite database file",
		"admin_token_short.bad.yaml":  "admin_token: too short (5 bytes): use at least 16 random characters, such as the output of `openssl rand -base64 32`",
		"read_token_short.bad.yaml":   "read_token: too short (3 bytes): use at least 16 random characters, such as the output of `openssl rand -base64 32`",
		"tls_half.bad.yaml":           "tls_cert, tls_key: give both (HTTPS) or neither (HTTP)",
		"max_batch_zero.bad.yaml":     "max_batch: 0 is out of range 1-1000000",
		"max_body_small.bad.yaml":     "max_body_bytes: 10 is out of range 1024-1073741824",
		"max_future_big.bad.yaml":     "max_future: 48h0m0s is more than 24h0m0s: fix the probes' clocks (NTP) instead",
		"max_future_syntax.bad.yaml":  `config ../testdata/config/max_future_syntax.bad.yaml: bad duration "soon": use a number with a unit, such as 500ms, 30s or 5m`,
		"plan_refresh_small.bad.yaml": "plan_refresh: 10ms is out of range 1s-24h0m0s",
		"syntax.bad.yaml":             "config ../testdata/config/syntax.bad.yaml: yaml: line 1: did not find expected ',' or ']'",
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
		c.AdminToken.Reveal() != "0123456789abcdef0123456789abcdef" || c.GeoIPASN == "" || c.TLSKey == "" {
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
