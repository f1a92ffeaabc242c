package result

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// The CSV columns, in order. Their names are part of catchmap's public
// interface (README): the top-level record fields, then the method details
// flattened with a dns_, http_ or ping_ prefix.
//
// Empty cells mean "not set": a zero RTT or phase time is written empty, so
// a spreadsheet average over rtt_ms is not dragged down by failures. A
// details group is present when any of its cells is set; dns_tcp,
// http_status and ping_sent are always written in a present group so that
// reading gives back the same record.
//
// Text is written as is: an identity such as "=cmd" is not defused against
// spreadsheet formula injection, because the file is data first. A CR LF
// inside a text cell reads back as LF (encoding/csv's rule).
var csvColumns = []column{
	col("id", top(func(r *Record) *string { return &r.ID }), text, false),
	col("time", top(func(r *Record) *time.Time { return &r.Time }), timeCodec, false),
	col("probe", top(func(r *Record) *string { return &r.Probe }), text, false),
	col("target", top(func(r *Record) *string { return &r.Target }), text, false),
	col("method", top(func(r *Record) *string { return &r.Method }), text, false),
	col("af", top(func(r *Record) *int { return &r.AF }), intCodec, false),
	col("addr", top(func(r *Record) *string { return &r.Addr }), text, false),
	col("identity", top(func(r *Record) *string { return &r.Identity }), text, false),
	col("site", top(func(r *Record) *string { return &r.Site }), text, false),
	col("rtt_ms", top(func(r *Record) *float64 { return &r.RTTMs }), floatCodec, true),
	col("error", top(func(r *Record) *string { return &r.Error }), text, false),
	col("error_kind", top(func(r *Record) *ErrorKind { return &r.ErrorKind }), kindCodec, false),
	col("lat", top(func(r *Record) **float64 { return &r.Lat }), optFloatCodec, true),
	col("lon", top(func(r *Record) **float64 { return &r.Lon }), optFloatCodec, true),
	col("country", top(func(r *Record) *string { return &r.Country }), text, false),
	col("asn", top(func(r *Record) *uint32 { return &r.ASN }), uint32Codec, true),
	col("suspect", top(func(r *Record) *bool { return &r.Suspect }), boolCodec, false),

	col("dns_qname", inDNS(func(d *DNS) *string { return &d.QName }), text, false),
	col("dns_qclass", inDNS(func(d *DNS) *string { return &d.QClass }), text, false),
	col("dns_qtype", inDNS(func(d *DNS) *string { return &d.QType }), text, false),
	col("dns_rcode", inDNS(func(d *DNS) *string { return &d.Rcode }), text, false),
	col("dns_nsid", inDNS(func(d *DNS) *string { return &d.NSID }), text, false),
	col("dns_tcp", inDNS(func(d *DNS) *bool { return &d.TCP }), boolCodec, false),
	col("dns_size", inDNS(func(d *DNS) *int { return &d.Size }), intCodec, true),

	col("http_status", inHTTP(func(h *HTTP) *int { return &h.Status }), intCodec, false),
	col("http_dns_ms", inHTTP(func(h *HTTP) *float64 { return &h.DNSMs }), floatCodec, true),
	col("http_connect_ms", inHTTP(func(h *HTTP) *float64 { return &h.ConnectMs }), floatCodec, true),
	col("http_tls_ms", inHTTP(func(h *HTTP) *float64 { return &h.TLSMs }), floatCodec, true),
	col("http_first_byte_ms", inHTTP(func(h *HTTP) *float64 { return &h.FirstByteMs }), floatCodec, true),
	col("http_total_ms", inHTTP(func(h *HTTP) *float64 { return &h.TotalMs }), floatCodec, true),
	col("http_proto", inHTTP(func(h *HTTP) *string { return &h.Proto }), text, false),

	col("ping_sent", inPing(func(p *Ping) *int { return &p.Sent }), intCodec, false),
	col("ping_received", inPing(func(p *Ping) *int { return &p.Received }), intCodec, false),
	col("ping_loss", inPing(func(p *Ping) *float64 { return &p.Loss }), floatCodec, false),
	col("ping_min_ms", inPing(func(p *Ping) *float64 { return &p.MinMs }), floatCodec, true),
	col("ping_avg_ms", inPing(func(p *Ping) *float64 { return &p.AvgMs }), floatCodec, true),
	col("ping_max_ms", inPing(func(p *Ping) *float64 { return &p.MaxMs }), floatCodec, true),
	col("ping_stddev_ms", inPing(func(p *Ping) *float64 { return &p.StddevMs }), floatCodec, true),
}

// CSVHeader returns the CSV column names in order. The slice is a copy.
func CSVHeader() []string {
	h := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		h[i] = c.name
	}
	return h
}

// CSVWriter writes records as CSV rows under a header line of their
// columns, one record at a time. Rows are buffered: call Flush when done
// (and from time to time in a long stream).
type CSVWriter struct {
	w      *csv.Writer
	cols   []*column
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
		i := slices.IndexFunc(csvColumns, func(c column) bool { return c.name == n })
		if i < 0 {
			return nil, fmt.Errorf("CSV column %q: no such column of the record (see result.CSVHeader)", n)
		}
		cw.cols = append(cw.cols, &csvColumns[i])
	}
	return cw, nil
}

func (cw *CSVWriter) writeHeader() error {
	if cw.header {
		return nil
	}
	cw.header = true
	for i, c := range cw.cols {
		cw.row[i] = c.name
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
		cw.row[i] = c.get(r)
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
	byName := make(map[string]*column, len(csvColumns))
	for i := range csvColumns {
		byName[csvColumns[i].name] = &csvColumns[i]
	}
	// cols[i] is the column of field i, nil for unknown ones.
	cols := make([]*column, len(head))
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
				return fmt.Errorf("read CSV results: line %d, column %s: %w", line, cols[i].name, err)
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// column maps one CSV column to a record field. set is only called with a
// non-empty value.
type column struct {
	name string
	get  func(*Record) string
	set  func(*Record, string) error
}

// field finds a value in a record. With alloc false it returns nil when the
// value lives in an absent details group; with alloc true it creates the
// group.
type field[T any] func(r *Record, alloc bool) *T

// codec turns a field's value into a cell and back.
type codec[T any] struct {
	format func(T) string
	parse  func(string) (T, error)
}

// col builds a column. omitZero writes the zero value as an empty cell.
func col[T comparable](name string, f field[T], c codec[T], omitZero bool) column {
	var zero T
	return column{
		name: name,
		get: func(r *Record) string {
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

func top[T any](get func(*Record) *T) field[T] {
	return func(r *Record, _ bool) *T { return get(r) }
}

func inDNS[T any](get func(*DNS) *T) field[T] {
	return func(r *Record, alloc bool) *T {
		if r.DNS == nil {
			if !alloc {
				return nil
			}
			r.DNS = new(DNS)
		}
		return get(r.DNS)
	}
}

func inHTTP[T any](get func(*HTTP) *T) field[T] {
	return func(r *Record, alloc bool) *T {
		if r.HTTP == nil {
			if !alloc {
				return nil
			}
			r.HTTP = new(HTTP)
		}
		return get(r.HTTP)
	}
}

func inPing[T any](get func(*Ping) *T) field[T] {
	return func(r *Record, alloc bool) *T {
		if r.Ping == nil {
			if !alloc {
				return nil
			}
			r.Ping = new(Ping)
		}
		return get(r.Ping)
	}
}

var (
	text = codec[string]{
		format: func(s string) string { return s },
		parse:  func(s string) (string, error) { return s, nil },
	}
	kindCodec = codec[ErrorKind]{
		format: func(k ErrorKind) string { return string(k) },
		parse:  func(s string) (ErrorKind, error) { return ErrorKind(s), nil },
	}
	intCodec = codec[int]{
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
		format: formatFloat,
		parse:  parseFloat,
	}
	optFloatCodec = codec[*float64]{
		format: func(f *float64) string { return formatFloat(*f) },
		parse: func(s string) (*float64, error) {
			f, err := parseFloat(s)
			return &f, err
		},
	}
	timeCodec = codec[time.Time]{
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
