package fleetutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const secret = "5eb2c1a0-0000-4000-8000-00000000cafe"

func TestSecretRedacted(t *testing.T) {
	k := NewSecret("  " + secret + "\n")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", k, "in", struct{ K Secret }{k})
	js, err := json.Marshal(struct{ K Secret }{k})
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(map[string]Secret{"key": k})
	if err != nil {
		t.Fatal(err)
	}
	shown := []string{logs.String(), string(js), string(ym), fmt.Errorf("wrapped: %w", errors.New(k.String())).Error()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		shown = append(shown, fmt.Sprintf(verb, k), fmt.Sprintf(verb, struct{ K Secret }{k}), fmt.Sprintf(verb, &k))
	}
	for _, s := range shown {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) || !strings.Contains(s, "REDACTED") {
			t.Errorf("the secret shows, or no placeholder does: %s", s)
		}
	}
	var cfg struct {
		Key Secret `yaml:"key"`
	}
	if err := yaml.Unmarshal([]byte("key: "+secret+"\n"), &cfg); err != nil || cfg.Key != NewSecret(secret) || cfg.Key.Reveal() != secret {
		t.Errorf("reading the secret from YAML: %v", err)
	}
	if NewSecret(" ").IsZero() != true || fmt.Sprint(Secret{}) != "" {
		t.Error("an empty secret should be zero and print as nothing")
	}
	if got := k.Scrub("token " + secret + " refused"); got != "token [REDACTED] refused" {
		t.Errorf("Scrub: %q", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "120": 2 * time.Minute, "-5": 0, "soon": 0,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second, "Wed, 31 Dec 2025 23:00:00 GMT": 0,
	} {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestPolicyOr(t *testing.T) {
	def := Policy{Attempts: 8, Base: time.Second, Max: time.Minute, MaxWait: time.Hour}
	got := Policy{Attempts: -1, Base: time.Millisecond}.Or(def)
	if want := (Policy{Attempts: 8, Base: time.Millisecond, Max: time.Minute, MaxWait: time.Hour}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestClip(t *testing.T) {
	if got := BodyText([]byte("<html>\n  <body>  héllo  </body>\n</html>")); got != "<html> <body> héllo </body> </html>" {
		t.Errorf("BodyText: %q", got)
	}
	if got := Clip("ééé", 3); got != "éé..." {
		t.Errorf("Clip: %q", got)
	}
}
