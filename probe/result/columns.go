package result

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/catchmap/catchmap/internal/jsonx"
)

// A Column is one field of the record, flattened: the CSV files, and the
// stores' tables, are made from the column list (Columns), so that a field
// added to the record and its list reaches them all. Method details live in
// a Group, a struct the record has or not.
type Column struct {
	Name string
	Kind Kind
	// Group is the details group the column is part of; nil for the
	// record's own fields.
	Group *Group
	// OmitZero: the CSV leaves the zero value empty ("not set").
	OmitZero bool

	acc any // the field[T] of Kind
	csv func(*Record) string
	set func(*Record, string) error
}

// Kind is a column's type, as the stores hold it.
type Kind int

// The kinds. An ErrorKind column is a KindString.
const (
	KindString   Kind = iota
	KindInt           // int, held as int64
	KindUint32        // the ASN
	KindFloat         // float64
	KindOptFloat      // *float64: nil is NULL (the place: 0,0 is a real one)
	KindBool
	KindTime // time.Time
)

// Group is a method's details: a struct the record points at, or nil.
type Group struct {
	Name     string // the JSON key of the struct, and the prefix of its columns
	has      func(*Record) bool
	drop     func(*Record)
	newCodec func() DetailsCodec
}

// NewCodec returns a codec of the group's details as one JSON document (a
// store that keeps each group in a column of its own). Each codec
// remembers the values it met: a target's answers repeat a few (one per
// server), and a map lookup costs a tenth of encoding/json. Use one codec
// per goroutine.
func (g *Group) NewCodec() DetailsCodec { return g.newCodec() }

// DetailsCodec writes and reads a group's details as JSON.
type DetailsCodec interface {
	// Encode is the JSON of r's details; ok false when r has none.
	Encode(r *Record) (json string, ok bool, err error)
	// Decode sets r's details from their JSON, into a struct the codec
	// reuses: r's details are valid until the next Decode.
	Decode(r *Record, json []byte) error
}

// detailsCodec is a DetailsCodec of details struct D.
type detailsCodec[D comparable] struct {
	ptr func(*Record) **D
	enc map[D]string
	dec map[string]D
	buf D
}

// detailsCacheSize bounds a codec's memory; when full it starts over.
const detailsCacheSize = 256

func (c *detailsCodec[D]) Encode(r *Record) (string, bool, error) {
	p := *c.ptr(r)
	if p == nil {
		return "", false, nil
	}
	if j, ok := c.enc[*p]; ok {
		return j, true, nil
	}
	b, err := jsonx.Marshal(p)
	if err != nil {
		return "", false, err
	}
	if len(c.enc) >= detailsCacheSize {
		clear(c.enc)
	}
	c.enc[*p] = string(b)
	return string(b), true, nil
}

func (c *detailsCodec[D]) Decode(r *Record, b []byte) error {
	v, ok := c.dec[string(b)]
	if !ok {
		var d D
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		if len(c.dec) >= detailsCacheSize {
			clear(c.dec)
		}
		c.dec[string(b)] = d
		v = d
	}
	c.buf = v
	*c.ptr(r) = &c.buf
	return nil
}

// Present reports whether r has the group's struct.
func (g *Group) Present(r *Record) bool { return g.has(r) }

// Drop takes the group's struct out of r; setting one of its columns
// makes a new one.
func (g *Group) Drop(r *Record) { g.drop(r) }

// Columns lists the record's columns in their order (CSVHeader's).
func Columns() []Column { return append([]Column(nil), columns...) }

// Groups lists the details groups, in the order of their columns.
func Groups() []*Group {
	var gs []*Group
	for i := range columns {
		if g := columns[i].Group; g != nil && (len(gs) == 0 || gs[len(gs)-1] != g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// The accessors of a column's value, by its kind: a getter (the zero
// value when the column's group is absent) and a setter (which creates
// the group). Each is made once, for a store's writers and readers to call
// for every row.

// Strings is the getter and setter of a KindString column.
func (c *Column) Strings() (func(*Record) string, func(*Record, string)) {
	switch f := c.acc.(type) {
	case field[string]:
		return getter(f), setter(f)
	case field[ErrorKind]:
		get, set := getter(f), setter(f)
		return func(r *Record) string { return string(get(r)) }, func(r *Record, v string) { set(r, ErrorKind(v)) }
	}
	panic(c.Name + " is not a string column")
}

// Ints is the getter and setter of a KindInt column.
func (c *Column) Ints() (func(*Record) int64, func(*Record, int64)) {
	get, set := getter(c.acc.(field[int])), setter(c.acc.(field[int]))
	return func(r *Record) int64 { return int64(get(r)) }, func(r *Record, v int64) { set(r, int(v)) }
}

// Uint32s is the getter and setter of a KindUint32 column.
func (c *Column) Uint32s() (func(*Record) uint32, func(*Record, uint32)) {
	return getter(c.acc.(field[uint32])), setter(c.acc.(field[uint32]))
}

// Floats is the getter and setter of a KindFloat column.
func (c *Column) Floats() (func(*Record) float64, func(*Record, float64)) {
	return getter(c.acc.(field[float64])), setter(c.acc.(field[float64]))
}

// OptFloats is the getter and setter of a KindOptFloat column.
func (c *Column) OptFloats() (func(*Record) *float64, func(*Record, *float64)) {
	return getter(c.acc.(field[*float64])), setter(c.acc.(field[*float64]))
}

// Bools is the getter and setter of a KindBool column.
func (c *Column) Bools() (func(*Record) bool, func(*Record, bool)) {
	return getter(c.acc.(field[bool])), setter(c.acc.(field[bool]))
}

// Times is the getter and setter of a KindTime column.
func (c *Column) Times() (func(*Record) time.Time, func(*Record, time.Time)) {
	return getter(c.acc.(field[time.Time])), setter(c.acc.(field[time.Time]))
}

func getter[T any](f field[T]) func(*Record) T {
	return func(r *Record) T {
		if p := f(r, false); p != nil {
			return *p
		}
		var zero T
		return zero
	}
}

func setter[T any](f field[T]) func(*Record, T) { return func(r *Record, v T) { *f(r, true) = v } }

// field finds a value in a record. With alloc false it returns nil when the
// value lives in an absent details group; with alloc true it creates the
// group.
type field[T any] func(r *Record, alloc bool) *T

// ref is a field and the group it is part of (nil: the record's own).
type ref[T any] struct {
	get   field[T]
	group *Group
}

// top is a field of the record itself.
func top[T any](get func(*Record) *T) ref[T] {
	return ref[T]{get: func(r *Record, _ bool) *T { return get(r) }}
}

// details is the group of the details struct D that ptr points at.
type details[D comparable] struct {
	*Group
	ptr func(*Record) **D
}

// newDetails is the group of details struct D, which ptr points at. D is
// flat (comparable): its fields are columns of their own.
func newDetails[D comparable](name string, ptr func(*Record) **D) details[D] {
	return details[D]{Group: &Group{Name: name,
		has:  func(r *Record) bool { return *ptr(r) != nil },
		drop: func(r *Record) { *ptr(r) = nil },
		newCodec: func() DetailsCodec {
			return &detailsCodec[D]{ptr: ptr, enc: map[D]string{}, dec: map[string]D{}}
		}}, ptr: ptr}
}

// in is a field of the details struct of g.
func in[D comparable, T any](g details[D], get func(*D) *T) ref[T] {
	return ref[T]{get: func(r *Record, alloc bool) *T {
		p := g.ptr(r)
		if *p == nil {
			if !alloc {
				return nil
			}
			*p = new(D)
		}
		return get(*p)
	}, group: g.Group}
}

// codec turns a field's value into a CSV cell and back.
type codec[T any] struct {
	kind   Kind
	format func(T) string
	parse  func(string) (T, error)
}

// col builds a column of the field fr with codec c. omitZero writes the
// zero value as an empty cell.
func col[T comparable](name string, fr ref[T], c codec[T], omitZero bool) Column {
	var zero T
	f := fr.get
	return Column{
		Name: name, Kind: c.kind, Group: fr.group, OmitZero: omitZero, acc: f,
		csv: func(r *Record) string {
			p := f(r, false)
			if p == nil || omitZero && *p == zero {
				return ""
			}
			return c.format(*p)
		},
		set: func(r *Record, s string) error {
			v, err := c.parse(s)
			if err != nil {
				return err
			}
			*f(r, true) = v
			return nil
		},
	}
}

var (
	text = codec[string]{
		kind:   KindString,
		format: func(s string) string { return s },
		parse:  func(s string) (string, error) { return s, nil },
	}
	kindCodec = codec[ErrorKind]{
		kind:   KindString,
		format: func(k ErrorKind) string { return string(k) },
		parse:  func(s string) (ErrorKind, error) { return ErrorKind(s), nil },
	}
	intCodec = codec[int]{
		kind:   KindInt,
		format: strconv.Itoa,
		parse: func(s string) (int, error) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, fmt.Errorf("%q is not a whole number", s)
			}
			return n, nil
		},
	}
	uint32Codec = codec[uint32]{
		kind:   KindUint32,
		format: func(n uint32) string { return strconv.FormatUint(uint64(n), 10) },
		parse: func(s string) (uint32, error) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%q is not a number from 0 to %d", s, uint32(math.MaxUint32))
			}
			return uint32(n), nil
		},
	}
	boolCodec = codec[bool]{
		kind:   KindBool,
		format: strconv.FormatBool,
		parse: func(s string) (bool, error) {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return false, fmt.Errorf("%q is not true or false", s)
			}
			return b, nil
		},
	}
	floatCodec = codec[float64]{
		kind:   KindFloat,
		format: formatFloat,
		parse:  parseFloat,
	}
	optFloatCodec = codec[*float64]{
		kind:   KindOptFloat,
		format: func(f *float64) string { return formatFloat(*f) },
		parse: func(s string) (*float64, error) {
			f, err := parseFloat(s)
			return &f, err
		},
	}
	timeCodec = codec[time.Time]{
		kind:   KindTime,
		format: func(t time.Time) string { return t.Format(time.RFC3339Nano) },
		parse: func(s string) (time.Time, error) {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
			}
			return t, nil
		},
	}
)

// formatFloat is the shortest text that reads back to the same float ('f'
// with -1 precision: no rounding on a round trip), and empty for NaN and
// infinities, which no number in a spreadsheet can hold.
func formatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parseFloat refuses NaN and infinities: JSON cannot carry them, so a CSV
// row holding one could not be stored or exported again.
func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return f, nil
}
