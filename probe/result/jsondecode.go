package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DecodeJSON reads an upload: a JSON array of records, or NDJSON (one
// record per line), told apart by the first non-space byte. Unknown fields
// are accepted, so that a newer probe can upload to an older aggregator;
// type errors, bytes that are not UTF-8 and more than max records are not.
// An error about a record is a *DecodeError, which names it and, where it
// can, its field.
//
// Records written by encoding/json, as every catchmap writer's are, take a
// fast path without reflection (decodeFast); anything else goes to
// encoding/json, which stays the definition: FuzzDecodeFast holds the two
// together.
func DecodeJSON(body string, max int) ([]Record, error) {
	rs, err := decodeFast(body, max)
	if errors.Is(err, errSlow) {
		return decodeSlow(body, max)
	}
	return rs, err
}

// DecodeError is a record of a batch that does not decode.
type DecodeError struct {
	Record int // 0-based, in the order of the batch
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("record %d: %v", e.Record, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

// Errors of DecodeJSON about the batch as a whole.
var (
	ErrTooMany = errors.New("more records than the batch may hold: send smaller batches")
	ErrNoBatch = errors.New("send a JSON array of records or NDJSON (one record object per line)")
)

// decodeSlow is DecodeJSON by encoding/json.
func decodeSlow(body string, max int) ([]Record, error) {
	i := strings.IndexFunc(body, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' })
	if i < 0 {
		return nil, fmt.Errorf("empty body: %w", ErrNoBatch)
	}
	first := body[i]
	dec := json.NewDecoder(strings.NewReader(body))
	var rs []Record
	// next decodes one record; false at the end of the NDJSON stream.
	next := func() (bool, error) {
		start := dec.InputOffset()
		var rec Record
		err := dec.Decode(&rec)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, recordError(len(rs), body, start, err)
		}
		// encoding/json turns bytes that are not UTF-8 into U+FFFD, and
		// two ids would then meet: refuse them instead.
		if raw := body[start:dec.InputOffset()]; !utf8.ValidString(raw) {
			return false, &DecodeError{Record: len(rs), Err: &FieldError{Field: fieldAt(raw, invalidUTF8(raw)), Msg: "not valid UTF-8"}}
		}
		if len(rs) == max {
			return false, fmt.Errorf("%w (at most %d)", ErrTooMany, max)
		}
		rs = append(rs, rec)
		return true, nil
	}
	switch first {
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, recordError(0, body, 0, err)
		}
		for dec.More() {
			more, err := next()
			if err != nil {
				return nil, err
			}
			if !more { // EOF after a comma
				return nil, recordError(len(rs), body, dec.InputOffset(), io.ErrUnexpectedEOF)
			}
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return nil, recordError(len(rs), body, dec.InputOffset(), err)
		}
		switch _, err := dec.Token(); {
		case err == nil:
			return nil, fmt.Errorf("data after the closing ] of the array: %w, one array", ErrNoBatch)
		case err != io.EOF:
			return nil, recordError(len(rs), body, dec.InputOffset(), err)
		}
	case '{':
		for {
			more, err := next()
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
	default:
		return nil, fmt.Errorf("the body starts with %q: %w", first, ErrNoBatch)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no records in the body: %w", ErrNoBatch)
	}
	return rs, nil
}

// recordError describes encoding/json's failure to decode record i, which
// starts at body[start:], naming the field where the error tells it.
func recordError(i int, body string, start int64, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return &DecodeError{Record: i, Err: fmt.Errorf("bad JSON: %w", &FieldError{Field: te.Field, Msg: fmt.Sprintf("a JSON %s, not a %s", te.Value, jsonKind(te.Type.String()))})}
	case errors.As(err, &pe):
		return &DecodeError{Record: i, Err: &FieldError{Field: "time", Msg: badTime(pe.Value)}}
	case errors.As(err, &se):
		off := int(se.Offset)
		field := ""
		if off > int(start) && off <= len(body) {
			field = fieldAt(body[start:off], off-int(start))
		}
		if field != "" {
			return &DecodeError{Record: i, Err: fmt.Errorf("bad JSON: %w", &FieldError{Field: field, Msg: se.Error()})}
		}
		return &DecodeError{Record: i, Err: fmt.Errorf("bad JSON: %v", se)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Record: i, Err: errors.New("the body ends in the middle of a JSON value")}
	}
	return &DecodeError{Record: i, Err: err}
}

// jsonKind names a Go type as a JSON reader knows it.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "whole number"
	case strings.Contains(goType, "float"):
		return "number"
	case goType == "string", strings.HasSuffix(goType, "ErrorKind"):
		return "string"
	case goType == "bool":
		return "true or false"
	}
	return goType
}

// badTime is the message of a time that does not parse.
func badTime(v string) string {
	return fmt.Sprintf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", clip(v))
}

// fieldAt guesses the key whose value holds raw[off]: the last "key": before
// it. It is for error messages only.
func fieldAt(raw string, off int) string {
	before := raw[:min(off, len(raw))]
	for {
		k := strings.LastIndex(before, `":`)
		if k < 0 {
			return ""
		}
		q := strings.LastIndexByte(before[:k], '"')
		if q >= 0 && q < k {
			return before[q+1 : k]
		}
		before = before[:k]
	}
}

// invalidUTF8 is the offset of the first byte of s that is not UTF-8.
func invalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// DecodeRecord reads one record's JSON (an NDJSON line), as DecodeJSON
// reads each of a batch.
func DecodeRecord(line []byte) (*Record, error) {
	line = bytes.TrimSpace(line)
	if len(line) > 0 && line[0] == '{' {
		rs, err := decodeFast(string(line), 1)
		if err == nil {
			return &rs[0], nil
		}
		if !errors.Is(err, errSlow) {
			return nil, unwrapRecord(err)
		}
	}
	if !utf8.Valid(line) {
		return nil, &FieldError{Field: fieldAt(string(line), invalidUTF8(string(line))), Msg: "not valid UTF-8"}
	}
	rec := new(Record)
	if err := json.Unmarshal(line, rec); err != nil {
		return nil, unwrapRecord(recordError(0, string(line), 0, err))
	}
	return rec, nil
}

// unwrapRecord drops the record number of a one-record decode.
func unwrapRecord(err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Err
	}
	return err
}

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
func decodeFast(body string, max int) ([]Record, error) {
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
	rs := make([]Record, 0, min(max, 1+len(body)/256))
	for {
		if len(rs) == max {
			return nil, errSlow
		}
		rs = append(rs, Record{})
		if err := d.record(&rs[len(rs)-1]); err != nil {
			if errors.Is(err, errSlow) {
				return nil, err
			}
			return nil, &DecodeError{Record: len(rs) - 1, Err: err}
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
// repeated object into the first, which is not worth copying here. An
// error that is not errSlow is one encoding/json makes too (or, for bytes
// that are not UTF-8, one DecodeJSON adds): it is named after prefix+key.
func (d *fastDecoder) object(prefix string, field func(key string) (bit uint32, err error)) error {
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
			return fieldError(prefix+key, err)
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

// errNotUTF8 is a string with bytes that are not UTF-8, which encoding/json
// would turn into U+FFFD and DecodeJSON refuses.
var errNotUTF8 = errors.New("not valid UTF-8")

// fieldError names key in err, unless it is errSlow or names a field
// already. It is apart from object so that object's hot path allocates
// nothing for it.
func fieldError(key string, err error) error {
	var fe *FieldError
	if errors.Is(err, errSlow) || errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: key, Msg: err.Error()}
}

// str parses a string with no escapes; non-ASCII bytes must be valid UTF-8.
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
				return "", errNotUTF8
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
		return 0, fmt.Errorf("%s is out of range for a number", clip(n))
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
		return 0, fmt.Errorf("%s is not a whole number in range", clip(n))
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

// record parses one Record. Each case sets one field; the bit is
// the field's for repeated-key detection.
func (d *fastDecoder) record(r *Record) error {
	return d.object("", func(key string) (uint32, error) {
		var err error
		switch key {
		case "id":
			r.ID, err = d.str()
			return 1 << 0, err
		case "time":
			var v string
			if v, err = d.str(); err == nil && r.Time.UnmarshalJSON([]byte(d.s[d.i-len(v)-2:d.i])) != nil {
				// The quoted text was parsed, so that the parse is
				// time.Time's own, as encoding/json's is.
				err = errors.New(badTime(v))
			}
			return 1 << 1, err
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
			r.ErrorKind = ErrorKind(k)
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
				v, perr := strconv.ParseUint(n, 10, 32)
				if perr != nil {
					err = fmt.Errorf("%s is not an AS number (0 to 4294967295)", clip(n))
				}
				r.ASN = uint32(v)
			}
			return 1 << 15, err
		case "suspect":
			r.Suspect, err = d.bool()
			return 1 << 16, err
		case "dns":
			r.DNS = &DNS{}
			return 1 << 17, d.dns(r.DNS)
		case "http":
			r.HTTP = &HTTP{}
			return 1 << 18, d.http(r.HTTP)
		case "ping":
			r.Ping = &Ping{}
			return 1 << 19, d.ping(r.Ping)
		}
		return 0, errSlow
	})
}

func (d *fastDecoder) dns(v *DNS) error {
	return d.object("dns.", func(key string) (uint32, error) {
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

func (d *fastDecoder) http(v *HTTP) error {
	return d.object("http.", func(key string) (uint32, error) {
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

func (d *fastDecoder) ping(v *Ping) error {
	return d.object("ping.", func(key string) (uint32, error) {
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
