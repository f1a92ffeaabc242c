package maps

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/catchmap/catchmap/internal/jsonx"
)

// AppendJSON appends the JSON of c to b: the bytes json.Marshal(c) gives
// (jsonx.AppendHTML, with null for a float that is not a number), which the
// API serves, written directly. encoding/json reaches each of a
// large catchment's fields by reflection and sorts every cell's maps
// through it, which took longer than computing the catchment. The types
// keep their json tags, so encoding/json stays the definition;
// TestAppendJSONIsMarshal holds the two together.
func (c *Catchment) AppendJSON(b []byte) ([]byte, error) { return c.appendJSON(b, true) }

// AppendJSONWithoutCells appends the JSON of c less its "cells" member: a
// summary for writers that give the cells in another form.
func (c *Catchment) AppendJSONWithoutCells(b []byte) ([]byte, error) { return c.appendJSON(b, false) }

func (c *Catchment) appendJSON(b []byte, cells bool) ([]byte, error) {
	e := jsonWriter{b: b}
	e.str(`{"target":`, c.Target)
	e.time(`,"from":`, c.From)
	e.time(`,"to":`, c.To)
	e.int(`,"resolution":`, c.Resolution)
	e.str(`,"by":`, c.By)
	e.int(`,"probes":`, c.Probes)
	e.int(`,"results":`, c.Results)
	e.int(`,"unlocated":`, c.Unlocated)
	e.int(`,"unserved":`, c.Unserved)
	e.optNum(`,"rtt_p50_ms":`, c.RTTP50)
	switch {
	case !cells:
	case c.Cells == nil:
		e.b = append(e.b, `,"cells":null`...)
	default:
		e.b = append(e.b, `,"cells":[`...)
		for i := range c.Cells {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.cellStat(&c.Cells[i])
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, `,"sites":`...)
	if c.Sites == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range c.Sites {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.siteStat(&c.Sites[i])
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, `,"flips":`...)
	if c.Flips == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i, f := range c.Flips {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(`{"probe":`, f.Probe)
			e.str(`,"site":`, f.Site)
			e.b = append(e.b, `,"sites":`...)
			e.intMap(f.Sites)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, `,"location_suspects":`...)
	if c.LocationSuspects == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i, s := range c.LocationSuspects {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(`{"probe":`, s.Probe)
			e.str(`,"site":`, s.Site)
			e.num(`,"lat":`, s.Lat)
			e.num(`,"lon":`, s.Lon)
			e.num(`,"min_rtt_ms":`, s.MinRTT)
			e.num(`,"distance_km":`, s.DistanceKm)
			e.num(`,"bound_ms":`, s.BoundMs)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.optNum(`,"not_nearest_share":`, c.NotNearestShare)
	e.b = append(e.b, '}')
	return e.b, e.err
}

// AppendJSONFields appends the JSON of cs, as json.Marshal(cs) gives it,
// without its braces: the members of its object, for writers that add
// members of their own.
func (cs *CellStat) AppendJSONFields(b []byte) ([]byte, error) {
	e := jsonWriter{b: b}
	e.cellFields(cs)
	return e.b, e.err
}

// jsonWriter appends JSON as encoding/json writes it (HTML-safe strings,
// ES6 numbers, sorted map keys), with null for NaN and infinities, keeping
// the first error (a time beyond year 9999).
type jsonWriter struct {
	b   []byte
	err error
	// Scratch for sorting maps.
	ints   []kv[int]
	floats []kv[float64]
}

func (e *jsonWriter) cellStat(cs *CellStat) {
	e.b = append(e.b, '{')
	e.cellFields(cs)
	e.b = append(e.b, '}')
}

func (e *jsonWriter) cellFields(cs *CellStat) {
	e.str(`"cell":`, cs.Cell)
	e.str(`,"site":`, cs.Site)
	e.num(`,"share":`, cs.Share)
	e.int(`,"probes":`, cs.Probes)
	e.int(`,"results":`, cs.Results)
	e.b = append(e.b, `,"sites":`...)
	e.intMap(cs.Sites)
	e.b = append(e.b, `,"shares":`...)
	e.floatMap(cs.Shares)
	e.optNum(`,"rtt_p50_ms":`, cs.RTTP50)
	e.optNum(`,"rtt_p90_ms":`, cs.RTTP90)
	e.num(`,"error_share":`, cs.ErrorShare)
	e.str(`,"confidence":`, cs.Confidence)
	e.optNum(`,"lat":`, cs.Lat)
	e.optNum(`,"lon":`, cs.Lon)
	e.optNum(`,"site_distance_km":`, cs.SiteDistanceKm)
	e.str(`,"nearest_site":`, cs.NearestSite)
	e.optNum(`,"nearest_distance_km":`, cs.NearestDistanceKm)
	e.optNum(`,"inflation_ms":`, cs.Inflation)
	e.optNum(`,"not_nearest_share":`, cs.NotNearestShare)
}

func (e *jsonWriter) siteStat(s *SiteStat) {
	e.str(`{"site":`, s.Site)
	e.int(`,"probes":`, s.Probes)
	e.num(`,"share":`, s.Share)
	e.int(`,"cells":`, s.Cells)
	e.optNum(`,"rtt_p50_ms":`, s.RTTP50)
	e.optNum(`,"lat":`, s.Lat)
	e.optNum(`,"lon":`, s.Lon)
	e.str(`,"name":`, s.Name)
	e.b = append(e.b, '}')
}

func (e *jsonWriter) str(key, s string) {
	e.b = appendJSONString(append(e.b, key...), s)
}

func (e *jsonWriter) int(key string, v int) {
	e.b = strconv.AppendInt(append(e.b, key...), int64(v), 10)
}

func (e *jsonWriter) num(key string, v float64) {
	e.b = append(e.b, key...)
	e.float(v)
}

func (e *jsonWriter) optNum(key string, v *float64) {
	e.b = append(e.b, key...)
	if v == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.float(*v)
}

func (e *jsonWriter) time(key string, t time.Time) {
	e.b = append(e.b, key...)
	j, err := t.MarshalJSON()
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err)
	}
	e.b = append(e.b, j...)
}

// float is encoding/json's float64 encoding (ES6 number to string), and
// null for NaN and infinities, as jsonx writes them: a map is never refused
// for a value.
func (e *jsonWriter) float(f float64) {
	if b, ok := appendShortDecimal(e.b, f); ok {
		e.b = b
		return
	}
	e.b = jsonx.AppendFloat(e.b, f, 64)
}

// appendShortDecimal appends f as strconv.AppendFloat(b, f, 'f', -1, 64)
// does when f is a decimal of at most 6 places and 15 digits, as the
// rounded figures of a catchment are (degrees, km, ms), and reports whether
// it did. Such a decimal is f's shortest form: no other decimal of 15
// digits or fewer is read as the same float64 (DBL_DIG is 15), so the
// shortest one is it, less its trailing zeros. Printing it from an integer
// is several times quicker than finding it.
func appendShortDecimal(b []byte, f float64) ([]byte, bool) {
	const scale = 1e6
	m := math.Round(f * scale)
	if f == 0 || !(math.Abs(m) < 1e15) || m/scale != f {
		return b, false
	}
	if m < 0 {
		b = append(b, '-')
		m = -m
	}
	n, places := uint64(m), 6
	for places > 0 && n%10 == 0 {
		n /= 10
		places--
	}
	start := len(b)
	b = strconv.AppendUint(b, n, 10)
	if places == 0 {
		return b, true
	}
	if digits := len(b) - start; digits <= places {
		// 0.000ddd: make room for "0." and the zeros before the digits.
		pad := places - digits + 2
		b = append(b, make([]byte, pad)...)
		copy(b[start+pad:], b[start:start+digits])
		b[start], b[start+1] = '0', '.'
		for i := start + 2; i < start+pad; i++ {
			b[i] = '0'
		}
		return b, true
	}
	point := len(b) - places
	b = append(b, 0)
	copy(b[point+1:], b[point:len(b)-1])
	b[point] = '.'
	return b, true
}

// kv is a map entry, for writing a map sorted by key.
type kv[V any] struct {
	k string
	v V
}

// sortedEntries appends m's entries to dst sorted by key, as encoding/json
// orders them, without looking each key up again.
func sortedEntries[V any](dst []kv[V], m map[string]V) []kv[V] {
	for k, v := range m {
		dst = append(dst, kv[V]{k, v})
	}
	if len(dst) > 1 {
		slices.SortFunc(dst, func(a, b kv[V]) int { return strings.Compare(a.k, b.k) })
	}
	return dst
}

func (e *jsonWriter) intMap(m map[string]int) {
	if m == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '{')
	e.ints = sortedEntries(e.ints[:0], m)
	for i, x := range e.ints {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(appendJSONString(e.b, x.k), ':')
		e.b = strconv.AppendInt(e.b, int64(x.v), 10)
	}
	e.b = append(e.b, '}')
}

func (e *jsonWriter) floatMap(m map[string]float64) {
	if m == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '{')
	e.floats = sortedEntries(e.floats[:0], m)
	for i, x := range e.floats {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(appendJSONString(e.b, x.k), ':')
		e.float(x.v)
	}
	e.b = append(e.b, '}')
}

// jsonSafe marks the ASCII bytes encoding/json writes as they are, with
// HTML escaping on (the default of json.Marshal and json.Encoder).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendJSONString is encoding/json's string encoding with HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
