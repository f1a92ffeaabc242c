// Package jsonx is catchmap's JSON encoding: encoding/json, but one that
// never fails on a value: a float that is NaN or infinite, which
// encoding/json refuses, is written as null. Values with no such float get
// encoding/json's bytes exactly. Append writes text as it is (records and
// API answers: nothing is embedded in HTML, and a record must be the same
// bytes on every path); AppendHTML escapes <, > and & as json.Marshal does
// (the map documents, whose fast writers are held to json.Marshal).
package jsonx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Append appends the JSON of v to b, without a trailing newline.
func Append(b []byte, v any) ([]byte, error) { return appendJSON(b, v, false) }

// AppendHTML is Append with json.Marshal's escaping of <, > and &.
func AppendHTML(b []byte, v any) ([]byte, error) { return appendJSON(b, v, true) }

func appendJSON(b []byte, v any, html bool) ([]byte, error) {
	var e Encoder
	e.init(html)
	return e.Append(b, v)
}

// Encoder is Append for a writer of many values: it keeps encoding/json's
// encoder and buffer from one value to the next. The zero value is ready.
type Encoder struct {
	buf  bytes.Buffer
	enc  *json.Encoder
	html bool
}

func (e *Encoder) init(html bool) {
	e.enc, e.html = json.NewEncoder(&e.buf), html
	e.enc.SetEscapeHTML(html)
}

// Append is the package's Append.
func (e *Encoder) Append(b []byte, v any) ([]byte, error) {
	if e.enc == nil {
		e.init(false)
	}
	e.buf.Reset()
	err := e.enc.Encode(v)
	if err == nil {
		return append(b, bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'})...), nil
	}
	var uv *json.UnsupportedValueError
	if !errors.As(err, &uv) {
		return b, err
	}
	// Rare: encoding/json met a NaN or an infinity.
	return nullable{e.html}.append(b, reflect.ValueOf(v))
}

// Marshal is Append to a new slice.
func Marshal(v any) ([]byte, error) { return Append(nil, v) }

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// nullable is encoding/json's encoding, with null for every float that is
// NaN or infinite.
type nullable struct{ html bool }

func (n nullable) append(b []byte, v reflect.Value) ([]byte, error) {
	if !v.IsValid() {
		return append(b, "null"...), nil
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer && v.IsNil() {
		return append(b, "null"...), nil
	}
	switch {
	case t.Implements(marshalerType):
		return n.appendMarshaler(b, v)
	case t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(marshalerType) && v.CanAddr():
		return n.appendMarshaler(b, v.Addr())
	case t.Implements(textMarshalerType) && t.Kind() != reflect.Pointer:
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return b, err
		}
		return n.appendString(b, string(text)), nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return AppendFloat(b, v.Float(), t.Bits()), nil
	case reflect.String:
		return n.appendString(b, v.String()), nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		return n.append(b, v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			j, err := json.Marshal(v.Interface()) // base64, never a float
			return append(b, j...), err
		}
		fallthrough
	case reflect.Array:
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = n.append(b, v.Index(i)); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case reflect.Map:
		return n.appendMap(b, v)
	case reflect.Struct:
		return n.appendStruct(b, v)
	}
	return b, fmt.Errorf("jsonx: cannot encode a %s", t)
}

func (n nullable) appendMarshaler(b []byte, v reflect.Value) ([]byte, error) {
	j, err := v.Interface().(json.Marshaler).MarshalJSON()
	if err != nil {
		return b, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, j); err != nil {
		return b, err
	}
	if n.html {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, buf.Bytes())
		return append(b, esc.Bytes()...), nil
	}
	return append(b, buf.Bytes()...), nil
}

func (n nullable) appendMap(b []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(b, "null"...), nil
	}
	type entry struct {
		key string
		val reflect.Value
	}
	es := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k := it.Key()
		var key string
		switch {
		case k.Kind() == reflect.String:
			key = k.String()
		case k.Type().Implements(textMarshalerType):
			text, err := k.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return b, err
			}
			key = string(text)
		case k.CanInt():
			key = strconv.FormatInt(k.Int(), 10)
		case k.CanUint():
			key = strconv.FormatUint(k.Uint(), 10)
		default:
			return b, fmt.Errorf("jsonx: cannot encode a map keyed by %s", k.Type())
		}
		es = append(es, entry{key, it.Value()})
	}
	slices.SortFunc(es, func(a, c entry) int { return strings.Compare(a.key, c.key) })
	b = append(b, '{')
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(n.appendString(b, e.key), ':')
		var err error
		if b, err = n.append(b, e.val); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func (n nullable) appendStruct(b []byte, v reflect.Value) ([]byte, error) {
	b = append(b, '{')
	first := true
	var err error
	b, err = n.appendFields(b, v, &first)
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendFields writes v's fields; an embedded struct without a name of its
// own in JSON lends its fields, as encoding/json's simple case does.
func (n nullable) appendFields(b []byte, v reflect.Value, first *bool) ([]byte, error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				ft, fv = ft.Elem(), fv.Elem()
			}
			if ft.Kind() == reflect.Struct {
				var err error
				if b, err = n.appendFields(b, fv, first); err != nil {
					return b, err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.Contains(","+opts+",", ",omitempty,") && isEmpty(fv) {
			continue
		}
		if !*first {
			b = append(b, ',')
		}
		*first = false
		b = append(n.appendString(b, name), ':')
		var err error
		if b, err = n.append(b, fv); err != nil {
			return b, err
		}
	}
	return b, nil
}

// isEmpty is omitempty's test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// appendString is encoding/json's string.
func (n nullable) appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(n.html)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// AppendFloat is encoding/json's number for f of the given bits (32 or
// 64), and null for NaN and infinities.
func AppendFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
