package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/probe/identify"
)

func runPresets(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"presets"}, args...), strings.NewReader(""), &out, &errb,
		func(string) string { return "" })
	return code, out.String(), errb.String()
}

func TestPresetsTable(t *testing.T) {
	code, out, stderr := runPresets(t)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if !strings.HasPrefix(out, "NAME ") {
		t.Errorf("no header line:\n%s", out)
	}
	for _, name := range identify.Names() {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("preset %s missing from the table", name)
		}
	}
	for _, want := range []string{
		"CH TXT hostname.bind.", "IN TXT debug.opendns.com.", "header x-served-by (last entry)",
		"body of /cdn-cgi/trace", "sending Pragma: akamai-x-cache-on", "(names no site)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestPresetsJSON(t *testing.T) {
	code, out, stderr := runPresets(t, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var got []presetJSON
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not a JSON list of presets: %v\n%s", err, out)
	}
	if len(got) != len(identify.Names()) {
		t.Fatalf("%d presets in JSON, want %d", len(got), len(identify.Names()))
	}
	for _, p := range got {
		if p.Name == "fastly" && (p.HTTP == nil || !p.HTTP.Last || p.HTTP.Header != "x-served-by") {
			t.Errorf("fastly = %+v", p.HTTP)
		}
		if p.Name == "g-root" && (p.DNS == nil || !p.DNS.NoSite) {
			t.Errorf("g-root = %+v", p.DNS)
		}
	}
	if !strings.Contains(out, `"no_site": true`) || !strings.Contains(out, `"request_headers": [`) {
		t.Errorf("JSON field names changed:\n%s", out)
	}
}

func TestPresetsBadFormat(t *testing.T) {
	code, _, stderr := runPresets(t, "--format", "xml")
	if code != exitUsage || !strings.Contains(stderr, "--format") {
		t.Errorf("exit %d, stderr %q; want exit %d naming --format", code, stderr, exitUsage)
	}
}
