// Package fleetutil holds what catchmap's clients of measurement platforms
// (fleet/atlas, fleet/globalping) share: a credential that never prints,
// the retry loop with exponential backoff and server-given waits, and the
// plumbing of a JSON API request and its bounded answer.
package fleetutil

import (
	"fmt"
	"log/slog"
	"strings"
)

// hidden is what every printer shows in place of a set secret.
const hidden = "[REDACTED]"

// Secret is a credential (an API key, a token). It prints as a placeholder
// through fmt (every verb), slog, JSON, YAML and text encoders, so that a
// secret logged or wrapped into an error by mistake does not leak; only
// Reveal gives it, for the one place that puts it on the wire.
//
// A struct rather than a string type, so that string(s) does not compile.
type Secret struct{ secret string }

// NewSecret wraps a secret given by a user (config, environment);
// surrounding space is dropped.
func NewSecret(s string) Secret { return Secret{secret: strings.TrimSpace(s)} }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return s.secret == "" }

// Reveal returns the secret itself. Call it only to build the request
// header that carries it.
func (s Secret) Reveal() string { return s.secret }

func (s Secret) placeholder() string {
	if s.IsZero() {
		return ""
	}
	return hidden
}

// String shows the placeholder.
func (s Secret) String() string { return s.placeholder() }

// Format handles every fmt verb, %#v, %x and %q included, which would
// otherwise reach the field.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.placeholder()) }

// LogValue keeps slog output redacted.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.placeholder()) }

// MarshalText writes the placeholder (JSON, YAML and other encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.placeholder()), nil }

// UnmarshalText reads a secret from a config file.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}

// Scrub removes the secret from text that came from elsewhere (an error
// body that echoes the request), before it goes into an error or a log.
func (s Secret) Scrub(text string) string {
	if s.IsZero() {
		return text
	}
	return strings.ReplaceAll(text, s.secret, hidden)
}
