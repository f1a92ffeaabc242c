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
// columns the table lacks (ensureColumns). A details group has a column of
// its own, named as the group: NULL when the record has no such details,
// else 1; the group's columns are NULL when it is absent.
type sqlColumn struct {
	name  string
	typ   string // for ALTER TABLE ADD COLUMN
	group int    // index into resultGroups, -1 for the record's own fields
	flag  bool   // the group's presence column
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

// resultTable is the column list of the results table, flags first in each
// group; resultColumns names them for SELECT and INSERT.
var resultTable, resultColumns = func() ([]sqlColumn, string) {
	var cols []sqlColumn
	gi := -1
	for _, c := range result.Columns() {
		sc := sqlColumn{name: c.Name, group: -1}
		if c.Group != nil {
			if gi < 0 || resultGroups[gi] != c.Group {
				gi++
				g := c.Group
				cols = append(cols, sqlColumn{name: g.Name, typ: "TEXT", group: gi, flag: true,
					arg: func(r *result.Record) any {
						if g.Present(r) {
							return 1
						}
						return nil
					},
					dest: func() scanDest { return &dest[sql.RawBytes]{set: func(*result.Record, sql.RawBytes) {}} }})
			}
			sc.group = gi
		}
		sc.typ, sc.arg, sc.dest = columnCodec(c)
		if sc.group >= 0 {
			sc.arg = presentOnly(resultGroups[sc.group], sc.arg)
		}
		cols = append(cols, sc)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return cols, strings.Join(names, ", ")
}()

// presentOnly is arg for a column of group g: NULL when g is absent.
func presentOnly(g *result.Group, arg func(*result.Record) any) func(*result.Record) any {
	return func(r *result.Record) any {
		if !g.Present(r) {
			return nil
		}
		return arg(r)
	}
}

// columnCodec is c's SQLite type, its INSERT argument and its Scan
// destination. A group's columns may be NULL, and read as the zero value.
func columnCodec(c result.Column) (string, func(*result.Record) any, func() scanDest) {
	switch c.Kind {
	case result.KindString:
		return "TEXT", func(r *result.Record) any { return c.String(r) },
			newDest(func(r *result.Record, v sql.NullString) { c.SetString(r, v.String) })
	case result.KindInt:
		return "INTEGER", func(r *result.Record) any { return c.Int(r) },
			newDest(func(r *result.Record, v sql.NullInt64) { c.SetInt(r, v.Int64) })
	case result.KindUint32:
		return "INTEGER", func(r *result.Record) any { return int64(c.Uint32(r)) },
			newDest(func(r *result.Record, v sql.NullInt64) { c.SetUint32(r, uint32(v.Int64)) })
	case result.KindFloat:
		return "REAL", func(r *result.Record) any { return c.Float(r) },
			newDest(func(r *result.Record, v sql.NullFloat64) { c.SetFloat(r, v.Float64) })
	case result.KindOptFloat:
		return "REAL", func(r *result.Record) any { return floatArg(c.OptFloat(r)) },
			newDest(func(r *result.Record, v sql.NullFloat64) {
				if v.Valid {
					f := v.Float64
					c.SetOptFloat(r, &f)
				}
			})
	case result.KindBool:
		return "INTEGER", func(r *result.Record) any { return c.Bool(r) },
			newDest(func(r *result.Record, v sql.NullBool) { c.SetBool(r, v.Bool) })
	case result.KindTime:
		return "INTEGER", func(r *result.Record) any { return c.Time(r).UnixMicro() },
			newDest(func(r *result.Record, v int64) { c.SetTime(r, time.UnixMicro(v).UTC()) })
	}
	panic(fmt.Sprintf("sqlite store: column %s of unknown kind %d", c.Name, c.Kind))
}

// resultArgs is the number of arguments of one row.
var resultArgs = len(resultTable)

// insertResult stores one row, keeping the first of an id.
var insertResult = `INSERT OR IGNORE INTO results (` + resultColumns + `) VALUES (` +
	strings.TrimSuffix(strings.Repeat("?,", resultArgs), ",") + `)`

// insertRows is insertResult for n rows.
func insertRows(n int) string {
	row := ",(" + strings.TrimSuffix(strings.Repeat("?,", resultArgs), ",") + ")"
	return insertResult + strings.Repeat(row, n-1)
}

// recordArgs fills args in the order of resultTable.
func recordArgs(r *result.Record, args []any) {
	for i := range resultTable {
		args[i] = resultTable[i].arg(r)
	}
}

// rowReader reads rows of resultColumns into one reused record.
type rowReader struct {
	rec     result.Record
	dests   []scanDest
	ptrs    []any
	present []bool
}

func newRowReader() *rowReader {
	x := &rowReader{dests: make([]scanDest, len(resultTable)), ptrs: make([]any, len(resultTable)),
		present: make([]bool, len(resultGroups))}
	for i := range resultTable {
		x.dests[i] = resultTable[i].dest()
		x.ptrs[i] = x.dests[i].ptr()
	}
	return x
}

// scan reads the current row; the record is valid until the next call.
func (x *rowReader) scan(rows *sql.Rows) (*result.Record, error) {
	if err := rows.Scan(x.ptrs...); err != nil {
		return nil, err
	}
	x.rec = result.Record{}
	for i := range resultTable {
		c := &resultTable[i]
		switch {
		case c.flag:
			x.present[c.group] = x.dests[i].(*dest[sql.RawBytes]).v != nil
		case c.group < 0 || x.present[c.group]:
			x.dests[i].apply(&x.rec)
		}
	}
	return &x.rec, nil
}

// ensureColumns adds the record's columns that the results table lacks, as
// NULL in the rows it holds: a field added to the record needs no migration
// of its own.
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
