package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSites(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"sites"}, args...), strings.NewReader(""), &out, &errb,
		func(string) string { return "" })
	return code, out.String(), errb.String()
}

func TestSitesLookup(t *testing.T) {
	code, out, stderr := runSites(t, "AMS", "lon", "fi-hel")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"ams ", "airport", "Amsterdam Airport Schiphol", "lon ", "metro", "fi-hel ", "locode", "Helsinki"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSitesUnknown(t *testing.T) {
	code, out, stderr := runSites(t, "ams", "qfra3")
	if code != exitFail || !strings.Contains(stderr, "unknown code(s) qfra3") || !strings.Contains(out, "Schiphol") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, ams printed and qfra3 named", code, out, stderr, exitFail)
	}
}

func TestSitesUserFileJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte("sites:\n  - {code: QFRA3, country: de, lat: 0, lon: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runSites(t, "--sites", path, "--format", "json", "qfra3", "nope")
	if code != exitFail {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	var got []siteJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 2 || !got[0].Found || got[0].Country != "DE" || got[0].Lat == nil || *got[0].Lat != 0 ||
		got[1].Found || got[1].Lat != nil {
		t.Errorf("got %s", out)
	}
}

func TestSitesBadUserFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte("sites:\n  - {code: x, lat: 91, lon: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runSites(t, "--sites", path, "ams")
	if code != exitUsage || !strings.Contains(stderr, "line 2: sites[0].lat: 91 is out of range") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
