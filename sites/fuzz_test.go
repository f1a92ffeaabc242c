package sites

import (
	"strings"
	"testing"
)

func FuzzParseFile(f *testing.F) {
	f.Add([]byte("sites:\n  - code: fra\n    lat: 50\n    lon: 8\n"))
	f.Add([]byte("sites:\n  - {code: x, lat: 1, lon: 2, colour: red}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseFile("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, s := range got {
			if s.Code == "" || s.Code != strings.ToLower(s.Code) || !validLatLon(s.Lat, s.Lon) || s.Kind == "" {
				t.Fatalf("accepted a bad site %+v", s)
			}
		}
	})
}

func FuzzParseTable(f *testing.F) {
	f.Add([]byte("# c\na\tAMS\tSchiphol\tAmsterdam\tNL\t52.3\t4.7\nm\tLON\tLondon\tLondon\tGB\t51.5\t-0.1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parseTable(data)
		if err != nil {
			return
		}
		for _, m := range []map[string]Site{tab.airports, tab.metros} {
			for k, s := range m {
				if k != s.Code || !validLatLon(s.Lat, s.Lon) {
					t.Fatalf("accepted a bad row %+v", s)
				}
			}
		}
	})
}

func FuzzLookup(f *testing.F) {
	for _, s := range []string{"ams", "LON", "fi-hel", "us-ams", "", "zz-zzz"} {
		f.Add(s)
	}
	tab := Default()
	f.Fuzz(func(t *testing.T, code string) {
		s, ok := tab.Lookup(code)
		if ok && (s.Code != strings.ToLower(strings.TrimSpace(code)) || !validLatLon(s.Lat, s.Lon)) {
			t.Fatalf("Lookup(%q) = %+v", code, s)
		}
	})
}
