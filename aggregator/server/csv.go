package server

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// CSVColumns are the header of the CSV export: the record's JSON names, with
// method details flattened as <detail>_<field>. They are part of the API:
// add columns at the end only.
var CSVColumns = []string{
	"id", "time", "probe", "target", "method", "af", "addr", "identity", "site", "rtt_ms",
	"error", "error_kind", "lat", "lon", "country", "asn", "suspect",
	"dns_qname", "dns_qclass", "dns_qtype", "dns_rcode", "dns_nsid", "dns_tcp", "dns_size",
	"http_status", "http_proto", "http_total_ms",
	"ping_sent", "ping_received", "ping_loss", "ping_min_ms", "ping_avg_ms", "ping_max_ms",
}

// CSVWriter writes records as CSV rows under CSVColumns.
type CSVWriter struct {
	w      *csv.Writer
	header bool
	row    []string
}

// NewCSVWriter writes to w; the header goes out with the first row or at
// Close.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), row: make([]string, 0, len(CSVColumns))}
}

// Write writes one record.
func (c *CSVWriter) Write(r *result.Record) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return f(*v)
	}
	row := append(c.row[:0],
		r.ID, r.Time.UTC().Format(time.RFC3339Nano), r.Probe, r.Target, r.Method, strconv.Itoa(r.AF), r.Addr,
		r.Identity, r.Site, f(r.RTTMs), r.Error, string(r.ErrorKind), opt(r.Lat), opt(r.Lon), r.Country,
		strconv.FormatUint(uint64(r.ASN), 10), strconv.FormatBool(r.Suspect))
	var d result.DNS
	if r.DNS != nil {
		d = *r.DNS
	}
	row = append(row, d.QName, d.QClass, d.QType, d.Rcode, d.NSID, strconv.FormatBool(d.TCP), strconv.Itoa(d.Size))
	var h result.HTTP
	if r.HTTP != nil {
		h = *r.HTTP
	}
	row = append(row, strconv.Itoa(h.Status), h.Proto, f(h.TotalMs))
	var p result.Ping
	if r.Ping != nil {
		p = *r.Ping
	}
	row = append(row, strconv.Itoa(p.Sent), strconv.Itoa(p.Received), f(p.Loss), f(p.MinMs), f(p.AvgMs), f(p.MaxMs))
	c.row = row
	return c.w.Write(row)
}

// Close writes the header if no row did, and flushes.
func (c *CSVWriter) Close() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(CSVColumns)
}
