package sites

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookupKnown(t *testing.T) {
	tab := Default()
	for _, tc := range []struct {
		code, wantCode, country, kind, city string
		lat, lon                            float64
	}{
		{"ams", "ams", "NL", KindAirport, "Amsterdam", 52.31, 4.76},
		{"LHR", "lhr", "GB", KindAirport, "London", 51.47, -0.46},
		{"fra", "fra", "DE", KindAirport, "Frankfurt am Main", 50.03, 8.54},
		{"Sin", "sin", "SG", KindAirport, "Singapore", 1.36, 103.99},
		{"yul", "yul", "CA", KindAirport, "Dorval", 45.47, -73.74},
		{"nrt", "nrt", "JP", KindAirport, "Tokyo", 35.76, 140.39},
		{" lon ", "lon", "GB", KindMetro, "London", 51.58, -0.15},
		{"TYO", "tyo", "JP", KindMetro, "Tokyo", 35.66, 140.08},
		// A metro whose code is also an airport resolves to the airport.
		{"dxb", "dxb", "AE", KindAirport, "Dubai", 25.25, 55.36},
		{"fi-hel", "fi-hel", "FI", KindLocode, "Helsinki", 60.32, 24.96},
		{"NL-AMS", "nl-ams", "NL", KindLocode, "Amsterdam", 52.31, 4.76},
		{"jp-tyo", "jp-tyo", "JP", KindLocode, "Tokyo", 35.66, 140.08},
		{"de-ham", "de-ham", "DE", KindLocode, "Hamburg", 53.63, 9.99},
		{"by-gme", "by-gme", "BY", KindLocode, "Gomel", 52.53, 31.02},
		{"gb-lon", "gb-lon", "GB", KindLocode, "London", 51.58, -0.15},
	} {
		s, ok := tab.Lookup(tc.code)
		if !ok {
			t.Errorf("Lookup(%q): not found", tc.code)
			continue
		}
		if s.Code != tc.wantCode || s.Country != tc.country || s.Kind != tc.kind || s.City != tc.city {
			t.Errorf("Lookup(%q) = %+v, want code %s country %s kind %s city %s", tc.code, s, tc.wantCode, tc.country, tc.kind, tc.city)
		}
		if math.Abs(s.Lat-tc.lat) > 0.01 || math.Abs(s.Lon-tc.lon) > 0.01 {
			t.Errorf("Lookup(%q) at %v,%v, want about %v,%v", tc.code, s.Lat, s.Lon, tc.lat, tc.lon)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	tab := Default()
	for _, code := range []string{
		"", "zzz9", "qfra3", "xx-ams", // no such country
		"us-ams", // AMS is in NL: a place in another country is another place
		"sg-sg",  // D-root's country+city style is not supported
		"fi-hel-x", "fihel", "ams ix",
	} {
		if s, ok := tab.Lookup(code); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", code, s)
		}
	}
}

func TestEmbeddedTable(t *testing.T) {
	tab := Default()
	if tab != Default() {
		t.Fatal("Default() parsed the table twice")
	}
	// airportsdata has 7,884 IATA codes and 37 metro codes without an
	// airport of the same name; a much smaller table means a broken generator.
	if n := len(tab.airports); n < 7800 {
		t.Errorf("embedded table has %d airports, want about 7,884", n)
	}
	if n := len(tab.metros); n < 40 {
		t.Errorf("embedded table has %d metros, want about 45", n)
	}
	if _, err := os.Stat("LICENSE.airports"); err != nil {
		t.Errorf("the MIT notice must travel with the data: %v", err)
	}
}

func TestWithUserSites(t *testing.T) {
	user, err := LoadFile(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := Default()
	tab := base.With(user)

	s, ok := tab.Lookup("QFRA3")
	if !ok || s.Name != "Quad9 Frankfurt 3" || s.Country != "DE" || s.Kind != "pop" || s.Code != "qfra3" {
		t.Errorf("user site qfra3 = %+v, %v", s, ok)
	}
	s, ok = tab.Lookup("ams")
	if !ok || s.Name != "Amsterdam city" || s.Kind != KindUser || s.Lat != 52.37 {
		t.Errorf("user override of ams = %+v, %v", s, ok)
	}
	if s, ok := tab.Lookup("zero"); !ok || s.Lat != 0 || s.Lon != 0 {
		t.Errorf("a site at 0,0 is a real place: %+v, %v", s, ok)
	}
	// The user's own place code serves country-place codes too.
	if s, ok := tab.Lookup("nl-ams"); !ok || s.Name != "Amsterdam city" || s.Code != "nl-ams" {
		t.Errorf("nl-ams with user ams = %+v, %v", s, ok)
	}
	// The base table is unchanged.
	if s, _ := base.Lookup("ams"); s.Kind != KindAirport {
		t.Errorf("With changed its receiver: ams = %+v", s)
	}
	if _, ok := base.Lookup("qfra3"); ok {
		t.Error("With changed its receiver: qfra3 found")
	}
	// Later With calls win over earlier ones.
	again := tab.With([]Site{{Code: "QFRA3", Name: "moved", Lat: 1, Lon: 2}})
	if s, _ := again.Lookup("qfra3"); s.Name != "moved" || s.Kind != KindUser {
		t.Errorf("second override = %+v", s)
	}
	if s, _ := again.Lookup("ams"); s.Name != "Amsterdam city" {
		t.Errorf("second With lost the first's sites: ams = %+v", s)
	}
}

// TestBadFiles replays testdata/*.bad.yaml; each says on its first line,
// "# want: ...", a part of the error it must produce.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("first line must be `# want: <part of the error>`, got %q", first)
			}
			_, err = LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile succeeded, want an error containing %q", want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q\nwant it to start with the file name and contain %q", err, want)
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "reading sites file") {
		t.Errorf("err = %v", err)
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\tAMS\tx\ty\tNL\t1\n", "fields, want 7"},
		{"a\tAMS\tx\ty\tNL\t91\t0\n", "bad coordinates"},
		{"a\tAMS\tx\ty\tNL\tNaN\t0\n", "bad coordinates"},
		{"a\t\tx\ty\tNL\t1\t0\n", "empty code"},
		{"z\tAMS\tx\ty\tNL\t1\t0\n", "unknown kind"},
	} {
		if _, err := parseTable([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTable(%q) err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func BenchmarkDefaultParse(b *testing.B) {
	for b.Loop() {
		if _, err := parseTable(airportsTSV); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tab := Default()
	codes := []string{"ams", "LON", "fi-hel", "zzz9"}
	for i := 0; b.Loop(); i++ {
		tab.Lookup(codes[i%len(codes)])
	}
}
