package spec

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequestHeaders(t *testing.T) {
	tests := []struct {
		line    string
		name    string
		value   string
		wantErr string
	}{
		{line: "Pragma: akamai-x-cache-on", name: "Pragma", value: "akamai-x-cache-on"},
		{line: "x-debug:1", name: "X-Debug", value: "1"},
		{line: "X-Empty:", name: "X-Empty", value: ""},
		{line: "X-Tab: a\tb", name: "X-Tab", value: "a\tb"},
		{line: "no colon", wantErr: `"Name: value"`},
		{line: ": value", wantErr: `"Name: value"`},
		{line: "Bad Name: v", wantErr: "may hold only"},
		{line: "X-Inject: a\r\nHost: evil", wantErr: "control character"},
		{line: "X-Del: \x7f", wantErr: "control character"},
		{line: "host: www.example.org", wantErr: "put the name in the target URL"},
		{line: "Connection: keep-alive", wantErr: "set by the HTTP client"},
	}
	for _, tt := range tests {
		h, err := ParseRequestHeaders([]string{tt.line})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want one containing %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if vs := h.Values(tt.name); len(vs) != 1 || vs[0] != tt.value {
			t.Errorf("%q: %s = %q, want %q", tt.line, tt.name, vs, tt.value)
		}
	}
}

// FuzzHTTPRequestHeaders checks that a header line the parser accepts goes
// onto the wire as exactly one header with the same name and value.
func FuzzHTTPRequestHeaders(f *testing.F) {
	f.Add("Pragma: akamai-x-cache-on")
	f.Add("X-A: b\r\nHost: evil")
	f.Add(" x-tab :\ta\tb ")
	f.Add("Bad Name: v")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseRequestHeaders([]string{line})
		if err != nil {
			return
		}
		if len(h) != 1 {
			t.Fatalf("%q parsed into %d headers", line, len(h))
		}
		req, err := http.NewRequest(http.MethodGet, "http://www.example.test/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = http.Header(h)
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Fatalf("%q: accepted, but the request cannot be written: %v", line, err)
		}
		back, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Fatalf("%q: accepted, but the request on the wire does not parse: %v\n%s", line, err, wire.Bytes())
		}
		for name, vs := range h {
			if got := back.Header.Values(name); len(got) != 1 || got[0] != vs[0] {
				t.Fatalf("%q: %s went out as %q, want %q", line, name, got, vs)
			}
		}
		if back.Host != "www.example.test" {
			t.Fatalf("%q: changed Host to %q", line, back.Host)
		}
	})
}
