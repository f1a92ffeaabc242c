package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestNew(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New()
	if a.Equal(b) || !a.Equal(Parse(a.Reveal())) {
		t.Error("Equal is wrong")
	}
	if !strings.HasPrefix(a.Reveal(), Prefix) || a.Len() != len(Prefix)+43 {
		t.Errorf("token %d bytes, want cm_ and 43 base64url characters", a.Len())
	}
	if (Token{}).Equal(Token{}) {
		t.Error("two empty tokens must not be equal: an unset secret authenticates nobody")
	}
	if len(a.Hash()) != 32 {
		t.Error("hash is not SHA-256")
	}
}

func TestFromHeader(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer cm_abc":   "cm_abc",
		"bearer  cm_abc ": "cm_abc",
		"Basic cm_abc":    "",
		"cm_abc":          "",
		"":                "",
	} {
		if got := FromHeader(h).Reveal(); got != want {
			t.Errorf("FromHeader(%q) = %q, want %q", h, got, want)
		}
	}
}

// TestRedacted prints a token every way Go code might, and checks that the
// secret never shows.
func TestRedacted(t *testing.T) {
	tok, err := New()
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Reveal()
	type holder struct {
		Admin Token
		Ptr   *Token
	}
	h := holder{Admin: tok, Ptr: &tok}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		out = append(out, fmt.Sprintf(verb, tok), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &tok))
	}
	out = append(out, tok.String(), fmt.Sprint(tok), fmt.Sprintln(tok), fmt.Errorf("auth with %v: %w", tok, errors.New("x")).Error())
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(y))
	var buf bytes.Buffer
	for _, lg := range []*slog.Logger{slog.New(slog.NewTextHandler(&buf, nil)), slog.New(slog.NewJSONHandler(&buf, nil))} {
		lg.Info("registered", "token", tok, "holder", h, "ptr", &tok, slog.Any("any", tok))
	}
	out = append(out, buf.String())
	for _, s := range out {
		if strings.Contains(s, secret) || strings.Contains(s, secret[len(Prefix):]) {
			t.Errorf("secret shown in %q", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("no placeholder in %q", s)
		}
	}
	if (Token{}).String() != "" {
		t.Error("an unset token should print empty, so that 'not set' is visible")
	}
}

func TestUnmarshal(t *testing.T) {
	var c struct {
		Admin Token `yaml:"admin" json:"admin"`
	}
	if err := yaml.Unmarshal([]byte("admin: s3cret-s3cret-s3cret\n"), &c); err != nil || c.Admin.Reveal() != "s3cret-s3cret-s3cret" {
		t.Errorf("yaml: %q, %v", c.Admin.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`{"admin":" abc "}`), &c); err != nil || c.Admin.Reveal() != "abc" {
		t.Errorf("json: %q, %v", c.Admin.Reveal(), err)
	}
}
