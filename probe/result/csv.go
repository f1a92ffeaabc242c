package result

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The CSV files' columns are the record's (columns, in result.go). Text is
// written as is: an identity such as "=cmd" is not defused against
// spreadsheet formula injection, because the file is data first. A CR LF
// inside a text cell reads back as LF (encoding/csv's rule).

// CSVHeader returns the CSV column names in order. The slice is a copy.
func CSVHeader() []string {
	h := make([]string, len(columns))
	for i, c := range columns {
		h[i] = c.Name
	}
	return h
}

// CSVWriter writes records as CSV rows under a header line of their
// columns, one record at a time. Rows are buffered: call Flush when done
// (and from time to time in a long stream).
type CSVWriter struct {
	w      *csv.Writer
	cols   []*Column
	header bool
	row    []string
}

// NewCSVWriter returns a CSVWriter on w of every column, in CSVHeader's
// order.
func NewCSVWriter(w io.Writer) *CSVWriter {
	cw, _ := NewCSVWriterOf(w, CSVHeader()) // every name is known
	return cw
}

// NewCSVWriterOf returns a CSVWriter on w of the named columns, in that
// order: an export with a documented column list of its own. A name that
// is no column of CSVHeader is an error.
func NewCSVWriterOf(w io.Writer, names []string) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w), row: make([]string, len(names))}
	for _, n := range names {
		i := slices.IndexFunc(columns, func(c Column) bool { return c.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("CSV column %q: no such column of the record (see result.CSVHeader)", n)
		}
		cw.cols = append(cw.cols, &columns[i])
	}
	return cw, nil
}

func (cw *CSVWriter) writeHeader() error {
	if cw.header {
		return nil
	}
	cw.header = true
	for i, c := range cw.cols {
		cw.row[i] = c.Name
	}
	if err := cw.w.Write(cw.row); err != nil {
		return fmt.Errorf("write CSV header: %w", err)
	}
	return nil
}

// Write writes one record, after the header line if it is the first.
func (cw *CSVWriter) Write(r *Record) error {
	if err := cw.writeHeader(); err != nil {
		return err
	}
	for i, c := range cw.cols {
		cw.row[i] = c.csv(r)
	}
	if err := cw.w.Write(cw.row); err != nil {
		return fmt.Errorf("write CSV result %s: %w", r.ID, err)
	}
	return nil
}

// Flush writes buffered rows to the underlying writer. With no record
// written yet it writes the header, so an empty export is still a valid
// file that tools can open.
func (cw *CSVWriter) Flush() error {
	if err := cw.writeHeader(); err != nil {
		return err
	}
	cw.w.Flush()
	if err := cw.w.Error(); err != nil {
		return fmt.Errorf("write CSV results: %w", err)
	}
	return nil
}

// ReadCSV reads records written by CSVWriter and calls fn for each, in
// order. Columns are found by their header name, so reordered columns read
// fine, unknown columns are ignored (files from a newer catchmap) and
// missing ones leave their fields unset; the header must have a target
// column. It stops at the first bad row (the error names its line) or the
// first error from fn, which it returns as is. Each record is fresh.
func ReadCSV(r io.Reader, fn func(*Record) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("read CSV results: the file is empty: expected a header line with catchmap's columns")
	}
	if err != nil {
		return fmt.Errorf("read CSV results header: %w", err)
	}
	byName := make(map[string]*Column, len(columns))
	for i := range columns {
		byName[columns[i].Name] = &columns[i]
	}
	// cols[i] is the column of field i, nil for unknown ones.
	cols := make([]*Column, len(head))
	seen := make(map[string]bool, len(head))
	for i, h := range head {
		if seen[h] {
			return fmt.Errorf("read CSV results: column %q appears twice in the header", h)
		}
		seen[h] = true
		cols[i] = byName[h]
	}
	if !seen["target"] {
		return fmt.Errorf("read CSV results: the header has no target column: is this a catchmap result file? (want columns %v)", CSVHeader())
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read CSV results: %w", err)
		}
		line, _ := cr.FieldPos(0)
		rec := new(Record)
		for i, v := range row {
			if cols[i] == nil || v == "" {
				continue
			}
			if err := cols[i].set(rec, v); err != nil {
				return fmt.Errorf("read CSV results: line %d, column %s: %w", line, cols[i].Name, err)
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
