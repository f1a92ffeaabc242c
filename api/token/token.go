// Package token holds the aggregator's bearer secrets (probe, admin and read
// tokens) in a type that never shows them: fmt, slog, JSON, YAML and text
// encoders all print a placeholder, so a token logged or wrapped into an error
// by mistake does not leak. The only way to the secret is Reveal.
//
// It is stdlib-only so that config, server and CLI code can share it.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
)

// Prefix marks catchmap tokens, so that secret scanners and people can
// recognise one.
const Prefix = "cm_"

// redacted is what every printer shows in place of a set token.
const redacted = "[REDACTED]"

// Token is a bearer secret. The zero value is "no token".
//
// It is a struct rather than a string type so that a plain conversion
// (string(t)) cannot reveal it by accident.
type Token struct{ secret string }

// New returns a fresh random token: Prefix and 32 bytes from crypto/rand in
// unpadded base64url (256 bits, more than any guessing can reach).
func New() (Token, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, fmt.Errorf("generating a token: reading random bytes: %w", err)
	}
	return Token{secret: Prefix + base64.RawURLEncoding.EncodeToString(b[:])}, nil
}

// Parse wraps a secret given by a user (a header, an environment variable,
// a config file). Surrounding space is dropped.
func Parse(s string) Token { return Token{secret: strings.TrimSpace(s)} }

// FromHeader reads an "Authorization: Bearer <token>" header value; the zero
// Token when the header is absent or has another scheme.
func FromHeader(h string) Token {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}
	}
	return Parse(rest)
}

// IsZero reports whether no token is set.
func (t Token) IsZero() bool { return t.secret == "" }

// Len is the secret's length in bytes, for validation messages.
func (t Token) Len() int { return len(t.secret) }

// Reveal returns the secret. Call it only to hand the token to its owner
// (once, on registration) or to put it on the wire.
func (t Token) Reveal() string { return t.secret }

// Hash is the SHA-256 of the secret: what the store keeps instead of it.
func (t Token) Hash() []byte {
	h := sha256.Sum256([]byte(t.secret))
	return h[:]
}

// Equal compares two tokens in constant time. Hashing first makes the time
// independent of the lengths too. Two zero tokens are not equal: an unset
// secret must never authenticate anyone.
func (t Token) Equal(u Token) bool {
	if t.IsZero() || u.IsZero() {
		return false
	}
	return subtle.ConstantTimeCompare(t.Hash(), u.Hash()) == 1
}

func (t Token) shown() string {
	if t.IsZero() {
		return ""
	}
	return redacted
}

// String shows a placeholder, never the secret.
func (t Token) String() string { return t.shown() }

// GoString keeps %#v redacted too.
func (t Token) GoString() string { return fmt.Sprintf("token.Token(%q)", t.shown()) }

// Format handles every fmt verb (%x and %q included, which would otherwise
// bypass String for some types).
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, t.GoString())
		return
	}
	fmt.Fprint(f, t.shown())
}

// LogValue keeps slog output redacted.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.shown()) }

// MarshalJSON writes the placeholder.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.shown() + `"`), nil }

// MarshalText writes the placeholder (YAML and other text encoders).
func (t Token) MarshalText() ([]byte, error) { return []byte(t.shown()), nil }

// UnmarshalText reads a secret, from YAML config or JSON.
func (t *Token) UnmarshalText(b []byte) error {
	*t = Parse(string(b))
	return nil
}
