// Package sites maps the site codes that anycast services reveal (IATA
// airport and metro codes, K- and L-root's country-place codes) to names and
// coordinates, from an embedded airport table that users extend with their
// own sites.
package sites

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

//go:generate go run ./gen -src ../../shared/data/airports -out .

// airportsTSV is written by ./gen from the airportsdata project (MIT); its
// licence travels beside it as LICENSE.airports.
//
//go:embed airports.tsv
var airportsTSV []byte

// Kinds of site.
const (
	KindAirport = "airport" // an IATA airport code
	KindMetro   = "metro"   // an IATA metropolitan-area code (LON, NYC, TYO)
	KindLocode  = "locode"  // a country-place code as K- and L-root use it ("fi-hel")
	KindUser    = "user"    // from the user's sites file, unless it names a kind
)

// Site is where a site code points. Code is lower case, as package identify
// emits site codes; Country is an ISO 3166 alpha-2 code, upper case.
type Site struct {
	Code    string
	Name    string
	City    string
	Country string
	Lat     float64
	Lon     float64
	Kind    string
}

// Table resolves site codes. It is immutable: With returns a new Table, so a
// Table can be shared between goroutines.
type Table struct {
	airports map[string]Site
	metros   map[string]Site
	user     map[string]Site
}

var defaultTable = sync.OnceValue(func() *Table {
	t, err := parseTable(airportsTSV)
	if err != nil {
		// The table is generated and tested; this is a broken build.
		panic(fmt.Sprintf("sites: embedded airports.tsv is corrupt (run go generate ./sites): %v", err))
	}
	return t
})

// Default returns the built-in table. It is parsed on first use, not at
// start-up, so commands that never look up a site do not pay for it.
func Default() *Table { return defaultTable() }

// parseTable reads the generator's TSV: kind, code, name, city, country, lat, lon.
func parseTable(data []byte) (*Table, error) {
	t := &Table{airports: map[string]Site{}, metros: map[string]Site{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("line %d: %d fields, want 7", n, len(f))
		}
		lat, err1 := strconv.ParseFloat(f[5], 64)
		lon, err2 := strconv.ParseFloat(f[6], 64)
		if err1 != nil || err2 != nil || !validLatLon(lat, lon) {
			return nil, fmt.Errorf("line %d: bad coordinates %q, %q", n, f[5], f[6])
		}
		s := Site{Code: strings.ToLower(f[1]), Name: f[2], City: f[3], Country: f[4], Lat: lat, Lon: lon}
		if s.Code == "" {
			return nil, fmt.Errorf("line %d: empty code", n)
		}
		switch f[0] {
		case "a":
			s.Kind = KindAirport
			t.airports[s.Code] = s
		case "m":
			s.Kind = KindMetro
			t.metros[s.Code] = s
		default:
			return nil, fmt.Errorf("line %d: unknown kind %q, want a or m", n, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// The range checks are written so that NaN fails them too.
func validLat(lat float64) bool         { return lat >= -90 && lat <= 90 }
func validLon(lon float64) bool         { return lon >= -180 && lon <= 180 }
func validLatLon(lat, lon float64) bool { return validLat(lat) && validLon(lon) }

// countryPlace is K- and L-root's UN/LOCODE-style code: "fi-hel", "jp-tyo".
var countryPlace = regexp.MustCompile(`^([a-z]{2})-([a-z]{3})$`)

// Lookup resolves a site code, ignoring case. The user's sites win; then
// IATA airports, IATA metro codes, and country-place codes, whose place is
// looked up among that country's metro and airport codes (a place in another
// country is a different place, so it does not match).
func (t *Table) Lookup(code string) (Site, bool) {
	code = strings.ToLower(strings.TrimSpace(code))
	if s, ok := t.user[code]; ok {
		return s, true
	}
	if s, ok := t.airports[code]; ok {
		return s, true
	}
	if s, ok := t.metros[code]; ok {
		return s, true
	}
	m := countryPlace.FindStringSubmatch(code)
	if m == nil {
		return Site{}, false
	}
	country, place := strings.ToUpper(m[1]), m[2]
	for _, tab := range []map[string]Site{t.user, t.metros, t.airports} {
		if s, ok := tab[place]; ok && strings.EqualFold(s.Country, country) {
			s.Code, s.Kind = code, KindLocode
			return s, true
		}
	}
	return Site{}, false
}

// With returns a table where the user's sites are added and win over
// built-in ones with the same code. t is not changed.
func (t *Table) With(user []Site) *Table {
	n := &Table{airports: t.airports, metros: t.metros, user: make(map[string]Site, len(t.user)+len(user))}
	for k, v := range t.user {
		n.user[k] = v
	}
	for _, s := range user {
		s.Code = strings.ToLower(strings.TrimSpace(s.Code))
		if s.Kind == "" {
			s.Kind = KindUser
		}
		n.user[s.Code] = s
	}
	return n
}
