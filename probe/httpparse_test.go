package probe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe/identify"
)

// checkIdentity fails when an identity breaks what the store and the
// terminal rely on.
func checkIdentity(t *testing.T, what, id string) {
	t.Helper()
	if len(id) > MaxIdentityLen || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 ||
		strings.TrimSpace(id) != id {
		t.Fatalf("%s identity %q: want at most %d bytes of trimmed, valid UTF-8 without control characters",
			what, id, MaxIdentityLen)
	}
}

func TestCleanIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"a\bb":                   "a b",
		"ns1.fra\tbuilt\r\n2024": "ns1.fra built  2024",
		"a\u0085b\x7fc":          "a b c", // C1 NEL and DEL
		"\x00\x01 a \x1b":        "a",
		"a\xffb":                 "ab", // invalid UTF-8 is dropped, not a space
	} {
		if got := cleanIdentity(in); got != want {
			t.Errorf("cleanIdentity(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzHTTPIdentity feeds header values (one per line of header) and a body
// to the extractors, with a real preset-like pattern and with none.
func FuzzHTTPIdentity(f *testing.F) {
	f.Add("cache-iad-kcgs7200076-IAD, cache-fra-eddf8230071-FRA", []byte("fl=1\ncolo=HKG\n"), true)
	f.Add("7bd32409eda7b020-SJC", []byte("colo=hkg\r\ncolo=NRT"), false)
	f.Add("\x00\xff, ,\t", []byte("\xef\xbb\xbfcolo=AMS\x85"), true)
	colo, err := identify.NewMatcher(`(?m)^colo=([A-Z]{3})$`)
	if err != nil {
		f.Fatal(err)
	}
	bare, _ := identify.NewMatcher()
	f.Fuzz(func(t *testing.T, header string, body []byte, last bool) {
		values := strings.Split(header, "\n")
		id := headerIdentity(values, last)
		checkIdentity(t, "header", id)
		// A first value that is already clean is kept whole.
		if v := values[0]; !last && len(v) <= MaxIdentityLen && utf8.ValidString(v) &&
			!strings.ContainsRune(v, utf8.RuneError) && strings.IndexFunc(v, unicode.IsControl) < 0 {
			if want := strings.TrimSpace(v); id != want {
				t.Fatalf("header %q: identity %q, want the clean first value %q", header, id, want)
			}
		}
		for _, m := range []*identify.Matcher{colo, bare} {
			bid := bodyIdentity(body, m)
			checkIdentity(t, "body", bid)
			if bid != "" && m.Site(bid) == "" {
				t.Fatalf("body %q: identity %q names no site", body, bid)
			}
		}
	})
}
