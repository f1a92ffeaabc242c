package probe

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
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

// TestHTTPIdentityPresets reads responses as another fleet hands them over
// (parsed headers, a body) with the presets' identifiers.
func TestHTTPIdentityPresets(t *testing.T) {
	for _, tc := range []struct {
		preset          string
		header          http.Header
		body            string
		identity, site  string
		missingContains string
	}{
		{preset: "cloudflare", header: http.Header{"Cf-Ray": {"7e6bdb9999778a57-NRT"}}, identity: "7e6bdb9999778a57-NRT", site: "nrt"},
		{preset: "fastly", header: http.Header{"X-Served-By": {"cache-fra-eddf8230065-FRA, cache-yyz4549-YYZ"}}, identity: "cache-yyz4549-YYZ", site: "yyz"},
		{preset: "cloudflare-trace", body: "fl=1\nh=example.net\ncolo=AMS\n", identity: "colo=AMS", site: "ams"},
		{preset: "cloudflare", header: http.Header{"Server": {"cloudflare"}}, missingContains: "no cf-ray header"},
		{preset: "cloudflare-trace", body: "fl=1\n", missingContains: "no line of the body"},
	} {
		id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodHTTP, Preset: tc.preset})
		if err != nil {
			t.Fatal(err)
		}
		identity, missing := HTTPIdentity(id, tc.header, []byte(tc.body))
		if identity != tc.identity || id.Site(identity) != tc.site || (tc.missingContains == "") != (missing == "") ||
			!strings.Contains(missing, tc.missingContains) {
			t.Errorf("%s: identity %q (site %q), missing %q", tc.preset, identity, id.Site(identity), missing)
		}
	}
	none, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if identity, missing := HTTPIdentity(none, http.Header{"Cf-Ray": {"x-AMS"}}, nil); identity != "" || missing != "" {
		t.Errorf("timing only: %q, %q", identity, missing)
	}
}
