package termtext

import (
	"strings"
	"testing"
	"unicode"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"ams":                   "ams",
		"Zürich — 東京":           "Zürich — 東京",
		"a\x1b[2Jb":             `a\x1b[2Jb`,
		"a\u0085b\u009bc":       `a\u0085b\u009bc`, // C1: NEL, CSI
		"evil\u202etxt.exe":     `evil\u202etxt.exe`,
		"x\u2066y\u2069":        `x\u2066y\u2069`,
		"tab\tnew\nline\r":      `tab\tnew\nline\r`,
		"quote\"and\\backslash": "quote\"and\\backslash",
		"q\"\x1b":               `q\"\x1b`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("a\x1b[31mb\u202e\u0085")
	f.Fuzz(func(t *testing.T, s string) {
		out := Printable(s)
		if i := strings.IndexFunc(out, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
			t.Fatalf("Printable(%q) = %q keeps a control at %d", s, out, i)
		}
	})
}
