package server

import (
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe/result"
)

// decodeFast parses the shape probes send, an array or NDJSON of records
// written by encoding/json, without reflection: field values are slices of
// body (one string for the whole upload) rather than one allocation each.
//
// It accepts only a subset whose meaning is plain: exact lower-case keys,
// each once, strings without escapes, integers where the field is an
// integer, no nulls, no unknown fields. Anything else returns errSlow and
// decodeBatch, encoding/json, decides; so an input decodeFast accepts
// decodes to the same records either way (FuzzDecodeFast checks it), and
// the errors and edge cases stay those of encoding/json.
func decodeFast(body string, max int) ([]result.Record, error) {
	d := fastDecoder{s: body}
	d.ws()
	if d.i == len(d.s) {
		return nil, errSlow
	}
	array := d.s[d.i] == '['
	if array {
		d.i++
		d.ws()
	}
	rs := make([]result.Record, 0, min(max, 1+len(body)/256))
	for {
		if len(rs) == max {
			return nil, errSlow
		}
		rs = append(rs, result.Record{})
		if err := d.record(&rs[len(rs)-1]); err != nil {
			return nil, err
		}
		d.ws()
		if array {
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				d.ws()
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == ']' {
				d.i++
				d.ws()
				if d.i != len(d.s) {
					return nil, errSlow
				}
				return rs, nil
			}
			return nil, errSlow
		}
		if d.i == len(d.s) {
			return rs, nil
		}
	}
}

// errSlow sends an upload to encoding/json.
var errSlow = errors.New("outside the fast decoder's subset")

type fastDecoder struct {
	s string
	i int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// object parses {"key": value, ...}, calling field for each key with the
// decoder at its value. seen catches repeated keys: encoding/json merges a
// repeated object into the first, which is not worth copying here.
func (d *fastDecoder) object(field func(key string) (bit uint32, err error)) error {
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return errSlow
	}
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return nil
	}
	var seen uint32
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return errSlow
		}
		d.i++
		d.ws()
		bit, err := field(key)
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return errSlow
		}
		seen |= bit
		d.ws()
		if d.i >= len(d.s) {
			return errSlow
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			return nil
		default:
			return errSlow
		}
	}
}

// str parses a string with no escapes; non-ASCII bytes must be valid UTF-8
// (encoding/json would replace invalid ones).
func (d *fastDecoder) str() (string, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", errSlow
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			v := d.s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", errSlow
			}
			return v, nil
		case c == '\\' || c < 0x20:
			return "", errSlow
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", errSlow
}

// number returns the text of a JSON number, checked against the JSON
// grammar (strconv alone would also take "inf", "0x1p3" or "1_0").
func (d *fastDecoder) number() (string, error) {
	start, s, j := d.i, d.s, d.i
	digits := func() bool {
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case !digits():
		return "", errSlow
	}
	if j < len(s) && s[j] == '.' {
		j++
		if !digits() {
			return "", errSlow
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if !digits() {
			return "", errSlow
		}
	}
	d.i = j
	return s[start:j], nil
}

func (d *fastDecoder) float() (float64, error) {
	n, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return 0, errSlow
	}
	return f, nil
}

func (d *fastDecoder) int() (int, error) {
	n, err := d.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(n, 10, strconv.IntSize)
	if err != nil {
		return 0, errSlow
	}
	return int(v), nil
}

func (d *fastDecoder) bool() (bool, error) {
	switch {
	case len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return true, nil
	case len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return false, nil
	}
	return false, errSlow
}

// record parses one result.Record. Each case sets one field; the bit is
// the field's for repeated-key detection.
func (d *fastDecoder) record(r *result.Record) error {
	return d.object(func(key string) (uint32, error) {
		var err error
		switch key {
		case "id":
			r.ID, err = d.str()
			return 1 << 0, err
		case "time":
			start := d.i
			if _, err = d.str(); err == nil {
				// The quoted text, so that the parse is time.Time's own.
				err = r.Time.UnmarshalJSON([]byte(d.s[start:d.i]))
			}
			return 1 << 1, slow(err)
		case "probe":
			r.Probe, err = d.str()
			return 1 << 2, err
		case "target":
			r.Target, err = d.str()
			return 1 << 3, err
		case "method":
			r.Method, err = d.str()
			return 1 << 4, err
		case "af":
			r.AF, err = d.int()
			return 1 << 5, err
		case "addr":
			r.Addr, err = d.str()
			return 1 << 6, err
		case "identity":
			r.Identity, err = d.str()
			return 1 << 7, err
		case "site":
			r.Site, err = d.str()
			return 1 << 8, err
		case "rtt_ms":
			r.RTTMs, err = d.float()
			return 1 << 9, err
		case "error":
			r.Error, err = d.str()
			return 1 << 10, err
		case "error_kind":
			var k string
			k, err = d.str()
			r.ErrorKind = result.ErrorKind(k)
			return 1 << 11, err
		case "lat":
			var f float64
			f, err = d.float()
			r.Lat = &f
			return 1 << 12, err
		case "lon":
			var f float64
			f, err = d.float()
			r.Lon = &f
			return 1 << 13, err
		case "country":
			r.Country, err = d.str()
			return 1 << 14, err
		case "asn":
			var n string
			if n, err = d.number(); err == nil {
				var v uint64
				v, err = strconv.ParseUint(n, 10, 32)
				r.ASN = uint32(v)
			}
			return 1 << 15, slow(err)
		case "suspect":
			r.Suspect, err = d.bool()
			return 1 << 16, err
		case "dns":
			r.DNS = &result.DNS{}
			return 1 << 17, d.dns(r.DNS)
		case "http":
			r.HTTP = &result.HTTP{}
			return 1 << 18, d.http(r.HTTP)
		case "ping":
			r.Ping = &result.Ping{}
			return 1 << 19, d.ping(r.Ping)
		}
		return 0, errSlow
	})
}

func (d *fastDecoder) dns(v *result.DNS) error {
	return d.object(func(key string) (uint32, error) {
		var err error
		switch key {
		case "qname":
			v.QName, err = d.str()
			return 1 << 0, err
		case "qclass":
			v.QClass, err = d.str()
			return 1 << 1, err
		case "qtype":
			v.QType, err = d.str()
			return 1 << 2, err
		case "rcode":
			v.Rcode, err = d.str()
			return 1 << 3, err
		case "nsid":
			v.NSID, err = d.str()
			return 1 << 4, err
		case "tcp":
			v.TCP, err = d.bool()
			return 1 << 5, err
		case "size":
			v.Size, err = d.int()
			return 1 << 6, err
		}
		return 0, errSlow
	})
}

func (d *fastDecoder) http(v *result.HTTP) error {
	return d.object(func(key string) (uint32, error) {
		var err error
		switch key {
		case "status":
			v.Status, err = d.int()
			return 1 << 0, err
		case "dns_ms":
			v.DNSMs, err = d.float()
			return 1 << 1, err
		case "connect_ms":
			v.ConnectMs, err = d.float()
			return 1 << 2, err
		case "tls_ms":
			v.TLSMs, err = d.float()
			return 1 << 3, err
		case "first_byte_ms":
			v.FirstByteMs, err = d.float()
			return 1 << 4, err
		case "total_ms":
			v.TotalMs, err = d.float()
			return 1 << 5, err
		case "proto":
			v.Proto, err = d.str()
			return 1 << 6, err
		}
		return 0, errSlow
	})
}

func (d *fastDecoder) ping(v *result.Ping) error {
	return d.object(func(key string) (uint32, error) {
		var err error
		switch key {
		case "sent":
			v.Sent, err = d.int()
			return 1 << 0, err
		case "received":
			v.Received, err = d.int()
			return 1 << 1, err
		case "loss":
			v.Loss, err = d.float()
			return 1 << 2, err
		case "min_ms":
			v.MinMs, err = d.float()
			return 1 << 3, err
		case "avg_ms":
			v.AvgMs, err = d.float()
			return 1 << 4, err
		case "max_ms":
			v.MaxMs, err = d.float()
			return 1 << 5, err
		case "stddev_ms":
			v.StddevMs, err = d.float()
			return 1 << 6, err
		}
		return 0, errSlow
	})
}

// slow turns any error into errSlow, for parses whose own errors
// encoding/json reports in its words.
func slow(err error) error {
	if err != nil {
		return errSlow
	}
	return nil
}
