package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// The results table holds the record's columns (result.Columns), so that a
// field added to the record is stored with no change here: Open adds the
// columns the table lacks (ensureColumns). The record's own fields are
// columns of their own; each details group is one column, named as the
// group, holding its JSON or NULL. One value to bind per group rather than
// one per detail keeps a row's cgo calls few: binding is most of Append.
type sqlColumn struct {
	name  string
	typ   string // for ALTER TABLE ADD COLUMN
	group int    // index into resultGroups for a group's column, else -1
	arg   func(*result.Record) any
	dest  func() scanDest
}

// scanDest is a column's Scan destination, reused for every row, and how
// its value goes into the record.
type scanDest interface {
	ptr() any
	apply(*result.Record)
}

type dest[T any] struct {
	v   T
	set func(*result.Record, T)
}

func (d *dest[T]) ptr() any               { return &d.v }
func (d *dest[T]) apply(r *result.Record) { d.set(r, d.v) }

func newDest[T any](set func(*result.Record, T)) func() scanDest {
	return func() scanDest { return &dest[T]{set: set} }
}

var resultGroups = result.Groups()

// resultTable is the column list of the results table: the record's own
// fields, then a column per group; resultColumns names them for SELECT and
// INSERT.
var resultTable, resultColumns = func() ([]sqlColumn, string) {
	var cols []sqlColumn
	for _, c := range result.Columns() {
		if c.Group != nil {
			continue
		}
		sc := sqlColumn{name: c.Name, group: -1}
		sc.typ, sc.arg, sc.dest = columnCodec(c)
		cols = append(cols, sc)
	}
	for i, g := range resultGroups {
		cols = append(cols, sqlColumn{name: g.Name, typ: "TEXT", group: i})
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return cols, strings.Join(names, ", ")
}()

// columnCodec is c's SQLite type, its INSERT argument and its Scan
// destination. A column ensureColumns added is NULL in older rows, which
// read as the zero value.
func columnCodec(c result.Column) (string, func(*result.Record) any, func() scanDest) {
	switch c.Kind {
	case result.KindString:
		get, set := c.Strings()
		return "TEXT", func(r *result.Record) any { return get(r) },
			newDest(func(r *result.Record, v sql.NullString) { set(r, v.String) })
	case result.KindInt:
		get, set := c.Ints()
		return "INTEGER", func(r *result.Record) any { return get(r) },
			newDest(func(r *result.Record, v sql.NullInt64) { set(r, v.Int64) })
	case result.KindUint32:
		get, set := c.Uint32s()
		return "INTEGER", func(r *result.Record) any { return int64(get(r)) },
			newDest(func(r *result.Record, v sql.NullInt64) { set(r, uint32(v.Int64)) })
	case result.KindFloat:
		get, set := c.Floats()
		return "REAL", func(r *result.Record) any { return get(r) },
			newDest(func(r *result.Record, v sql.NullFloat64) { set(r, v.Float64) })
	case result.KindOptFloat:
		get, set := c.OptFloats()
		return "REAL", func(r *result.Record) any { return floatArg(get(r)) },
			newDest(func(r *result.Record, v sql.NullFloat64) {
				if v.Valid {
					f := v.Float64
					set(r, &f)
				}
			})
	case result.KindBool:
		get, set := c.Bools()
		return "INTEGER", func(r *result.Record) any { return get(r) },
			newDest(func(r *result.Record, v sql.NullBool) { set(r, v.Bool) })
	case result.KindTime:
		get, set := c.Times()
		return "INTEGER", func(r *result.Record) any { return get(r).UnixMicro() },
			newDest(func(r *result.Record, v sql.NullInt64) { set(r, time.UnixMicro(v.Int64).UTC()) })
	}
	panic(fmt.Sprintf("sqlite store: column %s of unknown kind %d", c.Name, c.Kind))
}

// resultArgs is the number of arguments of one row.
var resultArgs = len(resultTable)

// insertResult stores one row, keeping the first of an id.
var insertResult = `INSERT OR IGNORE INTO results (` + resultColumns + `) VALUES (` + placeholders() + `)`

func placeholders() string { return strings.TrimSuffix(strings.Repeat("?,", resultArgs), ",") }

// insertRows is insertResult for n rows.
func insertRows(n int) string {
	return insertResult + strings.Repeat(",("+placeholders()+")", n-1)
}

// detailCodecs are the groups' JSON codecs of one Append or Scan.
type detailCodecs []result.DetailsCodec

func newDetailCodecs() detailCodecs {
	cs := make(detailCodecs, len(resultGroups))
	for i, g := range resultGroups {
		cs[i] = g.NewCodec()
	}
	return cs
}

// recordArgs fills args in the order of resultTable.
func recordArgs(r *result.Record, args []any, codecs detailCodecs) error {
	for i := range resultTable {
		c := &resultTable[i]
		if c.group < 0 {
			args[i] = c.arg(r)
			continue
		}
		j, ok, err := codecs[c.group].Encode(r)
		switch {
		case err != nil:
			return fmt.Errorf("sqlite store: append: record %s: %s details: %w", r.ID, c.name, err)
		case ok:
			args[i] = j
		default:
			args[i] = nil
		}
	}
	return nil
}

// rowReader reads rows of resultColumns into one reused record.
type rowReader struct {
	rec    result.Record
	dests  []scanDest
	groups []sql.RawBytes
	ptrs   []any
	codecs detailCodecs
}

func newRowReader() *rowReader {
	x := &rowReader{dests: make([]scanDest, len(resultTable)), groups: make([]sql.RawBytes, len(resultGroups)),
		ptrs: make([]any, len(resultTable)), codecs: newDetailCodecs()}
	for i := range resultTable {
		if c := &resultTable[i]; c.group >= 0 {
			x.ptrs[i] = &x.groups[c.group]
		} else {
			x.dests[i] = c.dest()
			x.ptrs[i] = x.dests[i].ptr()
		}
	}
	return x
}

// scan reads the current row; the record is valid until the next call.
func (x *rowReader) scan(rows *sql.Rows) (*result.Record, error) {
	if err := rows.Scan(x.ptrs...); err != nil {
		return nil, err
	}
	x.rec = result.Record{}
	for _, d := range x.dests {
		if d != nil {
			d.apply(&x.rec)
		}
	}
	for i, b := range x.groups {
		if b == nil {
			continue
		}
		if err := x.codecs[i].Decode(&x.rec, b); err != nil {
			return nil, fmt.Errorf("record %s: %s details: %w", x.rec.ID, resultGroups[i].Name, err)
		}
	}
	return &x.rec, nil
}

// ensureColumns adds the record's columns that the results table lacks, as
// NULL in the rows it holds: a field or a group added to the record needs
// no migration of its own.
func (s *Store) ensureColumns(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT name FROM pragma_table_info('results')`)
	if err != nil {
		return s.wrap(ctx, "read the results table's columns", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return s.wrap(ctx, "read the results table's columns", err)
		}
		have[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "read the results table's columns", err)
	}
	for _, c := range resultTable {
		if have[c.name] {
			continue
		}
		if _, err := s.w.ExecContext(ctx, `ALTER TABLE results ADD COLUMN `+c.name+` `+c.typ); err != nil {
			return s.wrap(ctx, "add column "+c.name+" to results", err)
		}
		s.log.Info("sqlite store: results column added", "column", c.name)
	}
	return nil
}
