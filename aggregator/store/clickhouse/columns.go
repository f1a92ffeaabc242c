package clickhouse

import (
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/catchmap/catchmap/probe/result"
)

// resultColumn binds one column of the results table to the record, both
// ways. The columns are the record's own (result.Columns), so that a field
// added to the record is stored with no change here: Open adds the columns
// the table lacks (ensureColumns). A details group has a UInt8 column of its
// own, named as the group, saying whether the record has the details.
type resultColumn struct {
	name   string
	typ    string // ClickHouse type, checked against the table by a test
	group  int    // index into resultGroups; -1 for the record's own fields
	flag   bool   // the group's presence column
	writer func(n int) colWriter
	reader func() colReader
}

// colWriter gathers one column of a batch, appended to the INSERT column-wise:
// one typed slice per column costs the driver no reflection per value.
type colWriter interface {
	add(*result.Record)
	send(driver.Batch, int) error
}

// colReader is the Scan destination of one column and copies it into a row.
type colReader interface {
	dest() any
	apply(*row)
}

// row is the record a Scan hands out, one reused for every record of a
// scan, and which of its details groups the current row has.
type row struct {
	rec     result.Record
	present []bool
}

type writer[T any] struct {
	get  func(*result.Record) T
	vals []T
}

func (w *writer[T]) add(r *result.Record) { w.vals = append(w.vals, w.get(r)) }

func (w *writer[T]) send(b driver.Batch, i int) error {
	err := b.Column(i).Append(w.vals)
	w.vals = w.vals[:0]
	return err
}

type reader[T any] struct {
	v   T
	set func(*row, T)
}

func (r *reader[T]) dest() any { return &r.v }

func (r *reader[T]) apply(w *row) { r.set(w, r.v) }

func col[T any](name, typ string, get func(*result.Record) T, set func(*row, T)) resultColumn {
	return resultColumn{name: name, typ: typ, group: -1,
		writer: func(n int) colWriter { return &writer[T]{get: get, vals: make([]T, 0, n)} },
		reader: func() colReader { return &reader[T]{set: set} },
	}
}

// typed is the column of c: its ClickHouse type and both ways to the
// record. The details' columns of a group the row lacks are not applied,
// so that the record gets no details it did not have.
func typed(c result.Column, gi int) resultColumn {
	var rc resultColumn
	switch c.Kind {
	case result.KindString:
		get, set := c.Strings()
		rc = col(c.Name, "String", get, func(w *row, v string) { set(&w.rec, v) })
	case result.KindInt:
		get, set := c.Ints()
		rc = col(c.Name, "Int64", get, func(w *row, v int64) { set(&w.rec, v) })
	case result.KindUint32:
		get, set := c.Uint32s()
		rc = col(c.Name, "UInt32", get, func(w *row, v uint32) { set(&w.rec, v) })
	case result.KindFloat:
		get, set := c.Floats()
		rc = col(c.Name, "Float64", get, func(w *row, v float64) { set(&w.rec, v) })
	case result.KindOptFloat:
		// The driver allocates each non-NULL value, so the pointer can
		// go into the record as it is.
		get, set := c.OptFloats()
		rc = col(c.Name, "Nullable(Float64)", get, func(w *row, v *float64) { set(&w.rec, v) })
	case result.KindBool:
		get, set := c.Bools()
		rc = col(c.Name, "UInt8", func(r *result.Record) uint8 { return b2u(get(r)) },
			func(w *row, v uint8) { set(&w.rec, v != 0) })
	case result.KindTime:
		get, set := c.Times()
		rc = col(c.Name, "UInt64", func(r *result.Record) uint64 { return uint64(get(r).UnixMicro()) },
			func(w *row, v uint64) { set(&w.rec, time.UnixMicro(int64(v)).UTC()) })
	default:
		panic(fmt.Sprintf("clickhouse store: column %s of unknown kind %d", c.Name, c.Kind))
	}
	if gi >= 0 {
		rc.group = gi
		read := rc.reader
		rc.reader = func() colReader { return onlyPresent{read(), gi} }
	}
	return rc
}

// onlyPresent applies a details column when the row has its group.
type onlyPresent struct {
	colReader
	group int
}

func (o onlyPresent) apply(w *row) {
	if w.present[o.group] {
		o.colReader.apply(w)
	}
}

// flag is the 0/1 column of group g, number gi. Reading it drops the
// group's details, which its columns make again when the row has them.
func flag(g *result.Group, gi int, drop func(*result.Record)) resultColumn {
	rc := col(g.Name, "UInt8", func(r *result.Record) uint8 { return b2u(g.Present(r)) },
		func(w *row, v uint8) {
			w.present[gi] = v != 0
			drop(&w.rec)
		})
	rc.group, rc.flag = gi, true
	return rc
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

var resultGroups = result.Groups()

// resultColumns is the results table, in its order: the record's columns,
// each group's flag before its columns.
var resultColumns = func() []resultColumn {
	var cols []resultColumn
	gi := -1
	for _, c := range result.Columns() {
		if c.Group != nil && (gi < 0 || resultGroups[gi] != c.Group) {
			gi++
			cols = append(cols, flag(c.Group, gi, c.Group.Drop))
		}
		g := -1
		if c.Group != nil {
			g = gi
		}
		cols = append(cols, typed(c, g))
	}
	return cols
}()

// resultColumnList is the column list for SELECT and INSERT.
var resultColumnList = func() string {
	names := make([]string, len(resultColumns))
	for i, c := range resultColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}()
