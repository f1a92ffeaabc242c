package clickhouse

import (
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/catchmap/catchmap/probe/result"
)

// resultColumn binds one column of the results table to the record, both
// ways, so that the column list, the insert and the scan come from one table
// and cannot drift apart.
type resultColumn struct {
	name   string
	typ    string // ClickHouse type, checked against the table by a test
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

// row is the record a Scan hands out, with the details its pointers point
// into; one row is reused for every record of a scan.
type row struct {
	rec  result.Record
	dns  result.DNS
	http result.HTTP
	ping result.Ping
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
	return resultColumn{name: name, typ: typ,
		writer: func(n int) colWriter { return &writer[T]{get: get, vals: make([]T, 0, n)} },
		reader: func() colReader { return &reader[T]{set: set} },
	}
}

// field is a column stored as the record's field itself.
func field[T any](name, typ string, f func(*result.Record) *T) resultColumn {
	return col(name, typ, func(r *result.Record) T { return *f(r) }, func(w *row, v T) { *f(&w.rec) = v })
}

// detail is a column of a details struct (DNS, HTTP, Ping): zero when the
// record has none, and read into the row's own struct, which the detail's
// flag column links to the record or not.
func detail[D, T any](name, typ string, of func(*result.Record) *D, in func(*row) *D, f func(*D) *T) resultColumn {
	return col(name, typ,
		func(r *result.Record) T {
			if d := of(r); d != nil {
				return *f(d)
			}
			var zero T
			return zero
		},
		func(w *row, v T) { *f(in(w)) = v })
}

// detailInt is an int detail, stored as Int64.
func detailInt[D any](name string, of func(*result.Record) *D, in func(*row) *D, f func(*D) *int) resultColumn {
	return col(name, "Int64",
		func(r *result.Record) int64 {
			if d := of(r); d != nil {
				return int64(*f(d))
			}
			return 0
		},
		func(w *row, v int64) { *f(in(w)) = int(v) })
}

// detailBool is a bool detail, stored as UInt8.
func detailBool[D any](name string, of func(*result.Record) *D, in func(*row) *D, f func(*D) *bool) resultColumn {
	return col(name, "UInt8",
		func(r *result.Record) uint8 {
			d := of(r)
			return b2u(d != nil && *f(d))
		},
		func(w *row, v uint8) { *f(in(w)) = v != 0 })
}

// flag is the 0/1 column saying whether the record has a details struct.
func flag[D any](name string, of func(*result.Record) *D, link func(*row, bool)) resultColumn {
	return col(name, "UInt8",
		func(r *result.Record) uint8 { return b2u(of(r) != nil) },
		func(w *row, v uint8) { link(w, v != 0) })
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func recDNS(r *result.Record) *result.DNS   { return r.DNS }
func recHTTP(r *result.Record) *result.HTTP { return r.HTTP }
func recPing(r *result.Record) *result.Ping { return r.Ping }
func rowDNS(w *row) *result.DNS             { return &w.dns }
func rowHTTP(w *row) *result.HTTP           { return &w.http }
func rowPing(w *row) *result.Ping           { return &w.ping }

// resultColumns is the results table, in its order.
var resultColumns = []resultColumn{
	field("id", "String", func(r *result.Record) *string { return &r.ID }),
	col("time", "UInt64", func(r *result.Record) uint64 { return uint64(r.Time.UnixMicro()) },
		func(w *row, v uint64) { w.rec.Time = time.UnixMicro(int64(v)).UTC() }),
	field("probe", "String", func(r *result.Record) *string { return &r.Probe }),
	field("target", "String", func(r *result.Record) *string { return &r.Target }),
	field("method", "String", func(r *result.Record) *string { return &r.Method }),
	col("af", "Int64", func(r *result.Record) int64 { return int64(r.AF) }, func(w *row, v int64) { w.rec.AF = int(v) }),
	field("addr", "String", func(r *result.Record) *string { return &r.Addr }),
	field("identity", "String", func(r *result.Record) *string { return &r.Identity }),
	field("site", "String", func(r *result.Record) *string { return &r.Site }),
	field("rtt_ms", "Float64", func(r *result.Record) *float64 { return &r.RTTMs }),
	field("error", "String", func(r *result.Record) *string { return &r.Error }),
	col("error_kind", "String", func(r *result.Record) string { return string(r.ErrorKind) },
		func(w *row, v string) { w.rec.ErrorKind = result.ErrorKind(v) }),
	// The driver allocates each non-NULL value, so the pointer can go into
	// the record as it is.
	field("lat", "Nullable(Float64)", func(r *result.Record) **float64 { return &r.Lat }),
	field("lon", "Nullable(Float64)", func(r *result.Record) **float64 { return &r.Lon }),
	field("country", "String", func(r *result.Record) *string { return &r.Country }),
	field("asn", "UInt32", func(r *result.Record) *uint32 { return &r.ASN }),
	col("suspect", "UInt8", func(r *result.Record) uint8 { return b2u(r.Suspect) }, func(w *row, v uint8) { w.rec.Suspect = v != 0 }),

	flag("dns", recDNS, func(w *row, on bool) { link(on, &w.rec.DNS, &w.dns) }),
	detail("dns_qname", "String", recDNS, rowDNS, func(d *result.DNS) *string { return &d.QName }),
	detail("dns_qclass", "String", recDNS, rowDNS, func(d *result.DNS) *string { return &d.QClass }),
	detail("dns_qtype", "String", recDNS, rowDNS, func(d *result.DNS) *string { return &d.QType }),
	detail("dns_rcode", "String", recDNS, rowDNS, func(d *result.DNS) *string { return &d.Rcode }),
	detail("dns_nsid", "String", recDNS, rowDNS, func(d *result.DNS) *string { return &d.NSID }),
	detailBool("dns_tcp", recDNS, rowDNS, func(d *result.DNS) *bool { return &d.TCP }),
	detailInt("dns_size", recDNS, rowDNS, func(d *result.DNS) *int { return &d.Size }),

	flag("http", recHTTP, func(w *row, on bool) { link(on, &w.rec.HTTP, &w.http) }),
	detailInt("http_status", recHTTP, rowHTTP, func(d *result.HTTP) *int { return &d.Status }),
	detail("http_dns_ms", "Float64", recHTTP, rowHTTP, func(d *result.HTTP) *float64 { return &d.DNSMs }),
	detail("http_connect_ms", "Float64", recHTTP, rowHTTP, func(d *result.HTTP) *float64 { return &d.ConnectMs }),
	detail("http_tls_ms", "Float64", recHTTP, rowHTTP, func(d *result.HTTP) *float64 { return &d.TLSMs }),
	detail("http_first_byte_ms", "Float64", recHTTP, rowHTTP, func(d *result.HTTP) *float64 { return &d.FirstByteMs }),
	detail("http_total_ms", "Float64", recHTTP, rowHTTP, func(d *result.HTTP) *float64 { return &d.TotalMs }),
	detail("http_proto", "String", recHTTP, rowHTTP, func(d *result.HTTP) *string { return &d.Proto }),

	flag("ping", recPing, func(w *row, on bool) { link(on, &w.rec.Ping, &w.ping) }),
	detailInt("ping_sent", recPing, rowPing, func(d *result.Ping) *int { return &d.Sent }),
	detailInt("ping_received", recPing, rowPing, func(d *result.Ping) *int { return &d.Received }),
	detail("ping_loss", "Float64", recPing, rowPing, func(d *result.Ping) *float64 { return &d.Loss }),
	detail("ping_min_ms", "Float64", recPing, rowPing, func(d *result.Ping) *float64 { return &d.MinMs }),
	detail("ping_avg_ms", "Float64", recPing, rowPing, func(d *result.Ping) *float64 { return &d.AvgMs }),
	detail("ping_max_ms", "Float64", recPing, rowPing, func(d *result.Ping) *float64 { return &d.MaxMs }),
	detail("ping_stddev_ms", "Float64", recPing, rowPing, func(d *result.Ping) *float64 { return &d.StddevMs }),
}

// link points the record's details at the row's struct, or at nothing.
func link[D any](on bool, dst **D, d *D) {
	*dst = nil
	if on {
		*dst = d
	}
}

// resultColumnList is the column list for SELECT and INSERT.
var resultColumnList = func() string {
	names := make([]string, len(resultColumns))
	for i, c := range resultColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}()
