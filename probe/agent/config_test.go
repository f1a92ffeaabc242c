package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/spec"
	"go.yaml.in/yaml/v3"
)

func TestTokenRedacted(t *testing.T) {
	const secret = "hunter2-very-secret"
	tok := Token(secret)
	cfg := Config{Aggregator: "https://a.example", Token: tok}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("x", "token", tok, "cfg", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", tok)
	j, _ := json.Marshal(cfg)
	y, _ := yaml.Marshal(cfg)
	for name, s := range map[string]string{
		//lint:ignore S1025 the point is to try every verb
		"%v": fmt.Sprintf("%v", tok), "%s": fmt.Sprintf("%s", tok), "%q": fmt.Sprintf("%q", tok),
		"%#v": fmt.Sprintf("%#v", tok), "%x": fmt.Sprintf("%x", tok), "%+v cfg": fmt.Sprintf("%+v", cfg),
		"%#v cfg": fmt.Sprintf("%#v", cfg), "String": tok.String(), "error": fmt.Errorf("bad %v", tok).Error(),
		"slog": logs.String(), "json": string(j), "yaml": string(y),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Errorf("%s shows the token: %s", name, s)
		}
	}
	if tok.Reveal() != secret {
		t.Fatal("Reveal lost the token")
	}
	var back Token
	if err := back.UnmarshalText([]byte(" " + secret + "\n")); err != nil || back.Reveal() != secret {
		t.Fatalf("UnmarshalText = %q, %v", back.Reveal(), err)
	}
}

func TestConfigFiles(t *testing.T) {
	c, err := LoadConfig("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = "x"
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.UploadInterval != 30*time.Second || c.MaxRate != 5 || len(c.Allow) != 3 || c.Burst != 5 || c.DrainTimeout != 3*time.Second {
		t.Fatalf("good.yaml read as %+v", c)
	}

	bad, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(bad) == 0 {
		t.Fatal("no bad configs")
	}
	for _, path := range bad {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if err == nil {
				c.Token = "x"
				c.SetDefaults()
				err = c.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
				t.Errorf("error %q does not say %q", err, strings.TrimSpace(string(want)))
			}
		})
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	f := Flags{Config: "testdata/good.yaml", Token: "tok", MaxRate: 2, Allow: []string{"10.0.0.0/8"}, Spool: "/tmp/s"}
	c, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxRate != 2 || c.Burst != 2 || len(c.Allow) != 1 || c.Spool != "/tmp/s" || c.BatchSize != 200 || c.Aggregator != "https://catchmap.example.net" {
		t.Fatalf("flags over file: %+v", c)
	}
	if _, err := (&Flags{Aggregator: "https://a.example"}).Load(); err == nil || !strings.Contains(err.Error(), "CATCHMAP_TOKEN") {
		t.Fatalf("missing token: err = %v, want a hint at $CATCHMAP_TOKEN", err)
	}
	if _, err := (&Flags{Config: "testdata/nonexistent.yaml"}).Load(); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestAllowlist(t *testing.T) {
	a, err := ParseAllowlist([]string{"192.0.2.0/24, 2001:db8::/32", "198.51.100.7", "dns.example.net.", "*.Example.ORG"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true}, {"192.0.3.1", false}, {"2001:db8::53", true}, {"2001:db9::53", false},
		{"198.51.100.7", true}, {"198.51.100.8", false}, {"::ffff:192.0.2.9", true}, {"127.0.0.1", false},
	} {
		if got := a.AllowsAddr(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("AllowsAddr(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		want bool
	}{
		{"dns.example.net", true}, {"DNS.Example.Net.", true}, {"x.dns.example.net", false},
		{"a.example.org", true}, {"a.b.example.org", true}, {"example.org", false}, {"evilexample.org", false},
	} {
		if got := a.AllowsName(c.name); got != c.want {
			t.Errorf("AllowsName(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	empty, _ := ParseAllowlist(nil)
	if !empty.Empty() || !empty.AllowsName("anything") || !empty.AllowsAddr(netip.MustParseAddr("203.0.113.1")) {
		t.Fatal("an empty allowlist must allow everything")
	}
	for _, bad := range []string{"192.0.2.0/33", "*.", "exa mple.net", "a..b", "*.*.example.net", "http://x"} {
		if _, err := ParseAllowlist([]string{bad}); err == nil {
			t.Errorf("ParseAllowlist(%q) accepted", bad)
		}
	}
}

func TestDialHostAndPinned(t *testing.T) {
	for _, c := range []struct {
		spec       string // method target connect_to
		host, pin  string
		port       int
		pinnedWhat string
	}{
		{"tcp 192.0.2.1:443 -", "192.0.2.1", "", 443, ""},
		{"dns ns.example.net -", "ns.example.net", "192.0.2.1", 0, "target"},
		{"dns [2001:db8::1]:53 -", "2001:db8::1", "", 53, ""},
		{"http https://www.example.net:8443/x -", "www.example.net", "192.0.2.1:8443", 8443, "connect_to"},
		{"http www.example.net 192.0.2.9:443", "192.0.2.9", "", 443, ""},
		{"tcp a.example.net:80 -", "a.example.net", "192.0.2.1:80", 80, "target"},
	} {
		f := strings.Fields(c.spec)
		s := specOf(f[0], f[1], f[2])
		host, port, err := dialHost(s)
		if err != nil || host != c.host || port != c.port {
			t.Errorf("dialHost(%s) = %q, %d, %v; want %q, %d", c.spec, host, port, err, c.host, c.port)
		}
		if c.pin == "" {
			continue
		}
		p := pinned(s, netip.MustParseAddr("192.0.2.1"), port)
		got := p.Target
		if c.pinnedWhat == "connect_to" {
			got = p.ConnectTo
			if p.Target != s.Target {
				t.Errorf("pinning %s changed the http target (Host, SNI) to %s", c.spec, p.Target)
			}
		}
		if got != c.pin || p.AF != 4 {
			t.Errorf("pinned(%s) %s = %q af %d, want %q af 4", c.spec, c.pinnedWhat, got, p.AF, c.pin)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("pinned(%s) does not validate: %v", c.spec, err)
		}
	}
}

func FuzzParseAllowlist(f *testing.F) {
	f.Add("192.0.2.0/24,*.example.net")
	f.Add("2001:db8::1")
	f.Add("[::1]")
	f.Add("dns.example.net.")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAllowlist([]string{s})
		if err != nil {
			return
		}
		// What parses must list back to something that parses the same.
		b, err := ParseAllowlist([]string{a.String()})
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", s, a.String(), err)
		}
		if a.Empty() != b.Empty() || len(a.prefixes) != len(b.prefixes) || len(a.names) != len(b.names) || len(a.suffixes) != len(b.suffixes) {
			t.Fatalf("%q: round trip through %q changed the allowlist", s, a.String())
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	good, _ := os.ReadFile("testdata/good.yaml")
	f.Add(good)
	f.Add([]byte("aggregator: [1, 2]\n"))
	f.Add([]byte("upload_interval: 10\n"))
	f.Add([]byte("token: &a x\nname: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %v", err)
			}
			return
		}
		c.SetDefaults()
		_ = c.Validate() // must not panic, whatever the values
	})
}

func specOf(method, target, connectTo string) spec.Spec {
	s := spec.Spec{Method: method, Target: target}
	if connectTo != "-" {
		s.ConnectTo = connectTo
	}
	return s
}

func TestStatusKinds(t *testing.T) {
	for status, want := range map[int]string{
		400: kindRejected, 413: kindRejected, 422: kindRejected, 401: kindUnauthorized, 403: kindUnauthorized,
		408: kindThrottled, 429: kindThrottled, 500: kindServer, 503: kindServer, 404: kindStatus, 409: kindStatus,
	} {
		rec := httptest.NewRecorder()
		fail(rec, status, "why")
		err := apiError(api.CheckStatus(rec.Result()))
		if got := errorKind(err); got != want {
			t.Errorf("%d: kind %s, want %s", status, got, want)
		}
		if !strings.Contains(err.Error(), "why") || !strings.Contains(err.Error(), fmt.Sprint(status)) {
			t.Errorf("%d: error %q lacks the status or the aggregator's message", status, err)
		}
	}
}
