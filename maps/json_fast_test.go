package maps

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/jsonx"
	"github.com/catchmap/catchmap/probe/result"
)

// TestAppendJSONIsMarshal: AppendJSON writes json.Marshal's bytes, on
// catchments built from records and on random ones with every kind of
// string, number and null that the types allow.
func TestAppendJSONIsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var cs []*Catchment
	for i := range 6 {
		o := Options{Res: 1 + i, By: []string{ByH3, ByCountry, ByASN}[i%3]}
		c, err := Compute(randomRecords(rng, 3000, 200), o, testSites)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for range 500 {
		cs = append(cs, randomCatchment(rng))
	}
	cs = append(cs, &Catchment{})
	for i, c := range cs {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("catchment %d: %v", i, err)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("catchment %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
		// As aggregator/mapsapi shadows the cells for its GeoJSON member.
		want, err = json.Marshal(struct {
			*Catchment
			Cells []CellStat `json:"cells,omitempty"`
		}{Catchment: c})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.AppendJSONWithoutCells(nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("catchment %d without cells: %v\n got %s\nwant %s", i, err, got, want)
		}
		for j := range c.Cells {
			want, _ := json.Marshal(c.Cells[j])
			got, err := c.Cells[j].AppendJSONFields([]byte{'{'})
			got = append(got, '}')
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("catchment %d cell %d: %v\n got %s\nwant %s", i, j, err, got, want)
			}
		}
	}
}

// TestAppendJSONNullsNonFinite: a NaN or an infinity, which encoding/json
// refuses, is null in a catchment's JSON, GeoJSON and as an empty CSV cell:
// an encoder never fails on a value (two records of rtt_ms 1e308 once made
// every map of their window answer 500).
func TestAppendJSONNullsNonFinite(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		c := &Catchment{Target: "t", By: ByCountry, RTTP50: &v, Cells: []CellStat{{Cell: "NL", Site: "ams", Share: 1,
			Shares: map[string]float64{"ams": v}, RTTP50: &v, ErrorShare: v}},
			Sites: []SiteStat{{Site: "ams", Share: v, RTTP50: &v}}}
		got, err := c.AppendJSON(nil)
		if err != nil {
			t.Fatalf("AppendJSON of %v: %v", v, err)
		}
		want, err := jsonx.AppendHTML(nil, c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON of %v:\n got %s\nwant %s (%v)", v, got, want, err)
		}
		var back struct {
			RTTP50 *float64 `json:"rtt_p50_ms"`
			Cells  []struct {
				Shares map[string]*float64 `json:"shares"`
			} `json:"cells"`
		}
		if err := json.Unmarshal(got, &back); err != nil || back.RTTP50 != nil || back.Cells[0].Shares["ams"] != nil {
			t.Fatalf("%v: %s: want null, %v", v, got, err)
		}
		if _, err := c.AppendGeoJSON(nil); err != nil {
			t.Errorf("AppendGeoJSON of %v: %v", v, err)
		}
		var csv bytes.Buffer
		if err := WriteCellsCSV(&csv, c); err != nil || strings.Contains(csv.String(), "Inf") || strings.Contains(csv.String(), "NaN") {
			t.Errorf("WriteCellsCSV of %v: %v\n%s", v, err, csv.String())
		}
	}
	c := &Catchment{From: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := c.AppendJSON(nil); err == nil {
		t.Error("AppendJSON took the year 10000")
	}
}

func randomCatchment(rng *rand.Rand) *Catchment {
	c := &Catchment{Target: randomString(rng), By: randomString(rng), Resolution: rng.IntN(20) - 5,
		Probes: rng.IntN(1e6), Results: rng.IntN(1e9), Unlocated: -rng.IntN(3), Unserved: rng.IntN(10),
		From: time.Unix(rng.Int64N(1e10), rng.Int64N(1e9)).In(time.FixedZone("x", 3600*(rng.IntN(25)-12))),
		To:   time.Unix(rng.Int64N(1e10), 0).UTC(), RTTP50: randomOpt(rng), NotNearestShare: randomOpt(rng)}
	if rng.IntN(5) > 0 {
		c.Cells = []CellStat{}
		for range rng.IntN(6) {
			c.Cells = append(c.Cells, CellStat{Cell: randomString(rng), Site: randomString(rng), Share: randomFloat(rng),
				Probes: rng.IntN(100), Results: rng.IntN(1000), Sites: randomMap(rng, func() int { return rng.IntN(1e6) - 10 }),
				Shares: randomMap(rng, func() float64 { return randomFloat(rng) }), RTTP50: randomOpt(rng), RTTP90: randomOpt(rng),
				ErrorShare: randomFloat(rng), Confidence: randomString(rng), Lat: randomOpt(rng), Lon: randomOpt(rng),
				SiteDistanceKm: randomOpt(rng), NearestSite: randomString(rng), NearestDistanceKm: randomOpt(rng),
				Inflation: randomOpt(rng), NotNearestShare: randomOpt(rng)})
		}
	}
	if rng.IntN(5) > 0 {
		c.Sites = []SiteStat{}
		for range rng.IntN(4) {
			c.Sites = append(c.Sites, SiteStat{Site: randomString(rng), Probes: rng.IntN(10), Share: randomFloat(rng),
				Cells: rng.IntN(10), RTTP50: randomOpt(rng), Lat: randomOpt(rng), Lon: randomOpt(rng), Name: randomString(rng)})
		}
	}
	if rng.IntN(5) > 0 {
		c.Flips = []Flip{}
		for range rng.IntN(4) {
			c.Flips = append(c.Flips, Flip{Probe: randomString(rng), Site: randomString(rng),
				Sites: randomMap(rng, func() int { return rng.IntN(100) })})
		}
	}
	// Build sets a place whole or not at all, and GeoJSON relies on it.
	for i := range c.Cells {
		if c.Cells[i].Lat == nil || c.Cells[i].Lon == nil {
			c.Cells[i].Lat, c.Cells[i].Lon = nil, nil
		}
	}
	for i := range c.Sites {
		if c.Sites[i].Lat == nil || c.Sites[i].Lon == nil {
			c.Sites[i].Lat, c.Sites[i].Lon = nil, nil
		}
	}
	if rng.IntN(5) > 0 {
		c.LocationSuspects = []LocationSuspect{}
		for range rng.IntN(3) {
			c.LocationSuspects = append(c.LocationSuspects, LocationSuspect{Probe: randomString(rng), Site: randomString(rng),
				Lat: randomFloat(rng), Lon: randomFloat(rng), MinRTT: randomFloat(rng), DistanceKm: randomFloat(rng), BoundMs: randomFloat(rng)})
		}
	}
	return c
}

// randomString draws from what JSON escapes: quotes, backslashes, control
// bytes, HTML, U+2028/9, invalid UTF-8, and plain text.
func randomString(rng *rand.Rand) string {
	parts := []string{"", "ams", "\"", "\\", "\n", "\t", "\r", "\b", "\f", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"\u2028", "\u2029", "é", "日本", "\xff", "\xe2\x80", "🙂", "AS64500", "831f8dfffffffff", " ", "/"}
	var b []byte
	for range rng.IntN(6) {
		b = append(b, parts[rng.IntN(len(parts))]...)
	}
	return string(b)
}

func randomFloat(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(0x7ff))<<52) // any finite
	case 3:
		return (rng.Float64() - 0.5) * 1e-6 * math.Pow(10, float64(-rng.IntN(10)))
	case 4:
		return (rng.Float64() - 0.5) * 1e21 * math.Pow(10, float64(rng.IntN(3)))
	case 5:
		return roundTo((rng.Float64()-0.5)*400, rng.IntN(7))
	default:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
	}
}

func randomOpt(rng *rand.Rand) *float64 {
	if rng.IntN(3) == 0 {
		return nil
	}
	return ptr(randomFloat(rng))
}

func randomMap[V any](rng *rand.Rand, v func() V) map[string]V {
	if rng.IntN(6) == 0 {
		return nil
	}
	m := map[string]V{}
	for range rng.IntN(10) {
		m[randomString(rng)] = v()
	}
	return m
}

// TestNearestIsBruteForce: the latitude-pruned search finds what trying
// every site finds, ties included, near the poles and across 180°.
func TestNearestIsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 300 {
		var codes []string
		table := map[string]Site{}
		n := 1 + rng.IntN(60)
		for i := range n {
			code := string(rune('a'+i/26)) + string(rune('a'+i%26))
			codes = append(codes, code)
			s := Site{Code: code, Lat: rng.Float64()*180 - 90, Lon: rng.Float64()*360 - 180}
			switch rng.IntN(6) {
			case 0: // duplicates make ties
				if i > 0 {
					s.Lat, s.Lon = table[codes[i-1]].Lat, table[codes[i-1]].Lon
				}
			case 1:
				s.Lat = []float64{90, -90, 89.9999, -89.9999}[rng.IntN(4)]
			case 2:
				s.Lon = []float64{180, -180, 179.9999, -179.9999}[rng.IntN(4)]
			case 3:
				s.Lat = 1000 // not a place: left out
			}
			table[code] = s
		}
		codes = append(codes, "zz-unknown")
		ix := newSiteIndex(SiteLocatorFunc(func(c string) (Site, bool) { s, ok := table[c]; return s, ok }), codes)
		for range 200 {
			lat, lon := rng.Float64()*180-90, rng.Float64()*360-180
			switch rng.IntN(5) {
			case 0:
				lat = []float64{90, -90, 89.99999, -89.99999}[rng.IntN(4)]
			case 1:
				lon = []float64{180, -180, 179.99999, -179.99999}[rng.IntN(4)]
			case 2: // on a site, or its antipode
				s := table[codes[rng.IntN(n)]]
				if result.ValidLatLon(s.Lat, s.Lon) == nil {
					lat, lon = s.Lat, s.Lon
					if rng.IntN(2) == 0 {
						lat, lon = -lat, lon-math.Copysign(180, lon)
					}
				}
			}
			want, wantD := "", math.Inf(1)
			for _, c := range codes {
				s, ok := table[c]
				if !ok || result.ValidLatLon(s.Lat, s.Lon) != nil {
					continue
				}
				if d := distanceKm(lat, lon, s.Lat, s.Lon); d < wantD {
					want, wantD = c, d
				}
			}
			k, d, ok := ix.nearest(lat, lon, math.Cos(lat*rad))
			got := ""
			if ok {
				got = ix.codes[k]
			}
			if got != want || d != wantD && !(math.IsInf(d, 1) && math.IsInf(wantD, 1)) {
				t.Fatalf("trial %d at %v,%v: nearest %q %v km, every site gives %q %v km", trial, lat, lon, got, d, want, wantD)
			}
		}
	}
}

// TestShortDecimalIsAppendFloat: the fast path for rounded figures writes
// what strconv writes, and declines what it cannot write exactly.
func TestShortDecimalIsAppendFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	check := func(f float64) {
		got, ok := appendShortDecimal([]byte("x"), f)
		if !ok {
			return
		}
		if want := strconv.AppendFloat([]byte("x"), f, 'f', -1, 64); !bytes.Equal(got, want) {
			t.Fatalf("%v (%x): got %s, want %s", f, math.Float64bits(f), got, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-6, -1e-6, 1e-7, 123456.789, 999999999.999999,
		9.99999999999999e8, 1e15, 1e15 - 1, 999999999999999, 1e21, 0.1 + 0.2, 52.37, -33.94, 174.79, math.MaxFloat64,
		math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1)} {
		check(f)
		check(-f)
	}
	for range 2_000_000 {
		var f float64
		switch rng.IntN(5) {
		case 0:
			f = roundTo((rng.Float64()-0.5)*math.Pow(10, float64(rng.IntN(20))), rng.IntN(8))
		case 1:
			f = float64(rng.Int64N(2e15) - 1e15)
		case 2:
			f = float64(rng.Int64N(2e15)-1e15) / math.Pow(10, float64(rng.IntN(10)))
		case 3:
			f = math.Float64frombits(rng.Uint64())
		default:
			f = rng.NormFloat64() * 1000
		}
		check(f)
	}
}

// FuzzEncoders holds the direct encoders to the library ones on any
// string and float: JSON strings and numbers, and CSV fields.
func FuzzEncoders(f *testing.F) {
	f.Add("ams", 52.37)
	f.Add("<a href=\"x\">\u2028\xff</a>", math.Copysign(0, -1))
	f.Add(" ,\r\n\"", 1e-7)
	f.Add(`\.`, 1e21)
	f.Fuzz(func(t *testing.T, s string, v float64) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("JSON string %q: got %s, want %s", s, got, want)
		}
		e := jsonWriter{}
		e.float(v)
		if want, err := json.Marshal(v); (err != nil) != (e.err != nil) || err == nil && !bytes.Equal(e.b, want) {
			t.Fatalf("JSON number %v: got %s (%v), want %s (%v)", v, e.b, e.err, want, err)
		}
		if got := appendNum(nil, v); string(got) != strconv.FormatFloat(v, 'f', -1, 64) {
			t.Fatalf("CSV number %v: got %s", v, got)
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.Write([]string{s}); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if got := append(appendCSVField(nil, s), '\n'); !bytes.Equal(got, buf.Bytes()) {
			t.Fatalf("CSV field %q: got %q, want %q", s, got, buf.Bytes())
		}
	})
}
