package atlas

import (
	"fmt"
	"log/slog"
	"strings"
)

// hidden is what every printer shows in place of a set key.
const hidden = "[REDACTED]"

// Key is a RIPE Atlas API key. It prints as a placeholder through fmt
// (every verb), slog, JSON, YAML and text encoders, so that a key logged or
// wrapped into an error by mistake does not leak; only the Client reads
// the secret, to put it on the wire.
//
// A struct rather than a string type, so that string(k) does not compile.
type Key struct{ secret string }

// NewKey wraps a key given by a user (config, environment); surrounding
// space is dropped.
func NewKey(s string) Key { return Key{secret: strings.TrimSpace(s)} }

// IsZero reports whether no key is set.
func (k Key) IsZero() bool { return k.secret == "" }

func (k Key) placeholder() string {
	if k.IsZero() {
		return ""
	}
	return hidden
}

// String shows the placeholder.
func (k Key) String() string { return k.placeholder() }

// Format handles every fmt verb, %#v, %x and %q included, which would
// otherwise reach the field.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.placeholder()) }

// LogValue keeps slog output redacted.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.placeholder()) }

// MarshalText writes the placeholder (JSON, YAML and other encoders).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.placeholder()), nil }

// UnmarshalText reads a key from a config file.
func (k *Key) UnmarshalText(b []byte) error {
	*k = NewKey(string(b))
	return nil
}

// scrub removes the key from text that came from elsewhere (an error body
// that echoes the request), before it goes into an error or a log.
func (k Key) scrub(s string) string {
	if k.IsZero() {
		return s
	}
	return strings.ReplaceAll(s, k.secret, hidden)
}
