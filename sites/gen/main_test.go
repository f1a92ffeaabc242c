package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/want.tsv")

func TestRun(t *testing.T) {
	out := t.TempDir()
	if err := run(filepath.Join("testdata", "src"), out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "airports.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "want.tsv")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("airports.tsv differs from %s (go test -update if intended):\n%s", golden, got)
	}
	lic, err := os.ReadFile(filepath.Join(out, "LICENSE.airports"))
	if err != nil || string(lic) != "MIT fixture licence\n" {
		t.Errorf("licence not copied beside the data: %q, %v", lic, err)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "set -src") {
		t.Errorf("missing source: err = %v", err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("airports.csv", "\"iata\",\"name\"\n\"AMS\",\"x\"\n")
	if err := run(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), `no "city" column`) {
		t.Errorf("missing column: err = %v", err)
	}
	write("airports.csv", "iata,name,city,country,lat,lon\nAMS,x,y,NL,north,4\n")
	if err := run(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "airport AMS: bad coordinates") {
		t.Errorf("bad coordinates: err = %v", err)
	}
	write("airports.csv", "iata,name,city,country,lat,lon\nAMS,x,y,NL,52,4\nAMS,x,y,NL,52,4\n")
	if err := run(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "AMS appears twice") {
		t.Errorf("duplicate: err = %v", err)
	}
	write("airports.csv", "iata,name,city,country,lat,lon\nAMS,x,y,NL,52,4\n")
	write("iata_macs.csv", "Country,City Code,City Name,Airport Code\nGB,LON,London,LHR\n")
	if err := run(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "metro LON has no airport") {
		t.Errorf("empty metro: err = %v", err)
	}
}
