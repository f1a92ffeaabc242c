package result

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/catchmap/catchmap/internal/jsonx"
	"github.com/catchmap/catchmap/internal/termtext"
)

// The record's JSON is jsonx's: encoding/json's bytes, with text as it is
// ("<" and "&" stay readable: identities are text from the network, and
// nothing here is embedded in HTML) and null for a float no JSON number can
// hold. Every writer below, and the aggregator's answers, write it so.

// WriteJSON writes rs as one indented JSON array, for people and for tools
// that want a single document. An empty slice is written as [], not null.
func WriteJSON(w io.Writer, rs []Record) error {
	aw := &JSONArrayWriter{w: w, indent: true}
	for i := range rs {
		if err := aw.Write(&rs[i]); err != nil {
			return err
		}
	}
	return aw.Close()
}

// JSONArrayWriter streams records as one JSON array, a record a line.
type JSONArrayWriter struct {
	w      io.Writer
	indent bool
	n      int
	buf    []byte
	enc    jsonx.Encoder
}

// NewJSONArrayWriter returns a writer of one array to w; Close ends it.
func NewJSONArrayWriter(w io.Writer) *JSONArrayWriter { return &JSONArrayWriter{w: w} }

// Write writes one record.
func (aw *JSONArrayWriter) Write(r *Record) error {
	b := append(aw.buf[:0], ",\n"...)
	if aw.n == 0 {
		b = append(b[:0], "[\n"...)
	}
	if aw.indent {
		b = append(b, "  "...)
	}
	if !aw.indent {
		var err error
		if aw.buf, err = aw.enc.Append(b, r); err != nil {
			return fmt.Errorf("write JSON result %s: %w", r.ID, err)
		}
	} else {
		rec, err := aw.enc.Append(nil, r)
		if err != nil {
			return fmt.Errorf("write JSON result %s: %w", r.ID, err)
		}
		ind := bytes.NewBuffer(b)
		_ = json.Indent(ind, rec, "  ", "  ") // rec is valid JSON
		aw.buf = ind.Bytes()
	}
	aw.n++
	if _, err := aw.w.Write(aw.buf); err != nil {
		return fmt.Errorf("write JSON results: %w", err)
	}
	return nil
}

// Close ends the array: [] when no record was written.
func (aw *JSONArrayWriter) Close() error {
	end := "\n]\n"
	if aw.n == 0 {
		end = "[]\n"
	}
	if _, err := io.WriteString(aw.w, end); err != nil {
		return fmt.Errorf("write JSON results: %w", err)
	}
	return nil
}

// NDJSONWriter writes one record per line (newline-delimited JSON), so a
// long export or a probe's spool streams without holding every record.
type NDJSONWriter struct {
	w   io.Writer
	buf []byte
	enc jsonx.Encoder
}

// NewNDJSONWriter returns a writer that writes records to w.
func NewNDJSONWriter(w io.Writer) *NDJSONWriter { return &NDJSONWriter{w: w} }

// Write writes one record and its newline.
func (nw *NDJSONWriter) Write(r *Record) error {
	b, err := nw.enc.Append(nw.buf[:0], r)
	if err != nil {
		return fmt.Errorf("write NDJSON result %s: %w", r.ID, err)
	}
	nw.buf = append(b, '\n')
	if _, err := nw.w.Write(nw.buf); err != nil {
		return fmt.Errorf("write NDJSON result %s: %w", r.ID, err)
	}
	return nil
}

// AppendJSON appends the record's JSON, without a newline: what each
// writer above writes of it.
func (r *Record) AppendJSON(b []byte) ([]byte, error) { return jsonx.Append(b, r) }

// MaxLineBytes bounds one NDJSON line on reading, so a corrupt or hostile
// file cannot make a reader hold an unbounded line in memory. Real records
// are well under 4 KiB.
const MaxLineBytes = 1 << 20

// ReadNDJSON reads newline-delimited JSON records from r and calls fn for
// each, in order. Blank lines are skipped. Unknown fields are ignored so
// that files written by a newer catchmap still read. It stops at the first
// bad line (the error names its number) or at the first error from fn,
// which it returns as is. The record passed to fn is fresh for every call:
// fn may keep it.
func ReadNDJSON(r io.Reader, fn func(*Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, err := DecodeRecord(b)
		if err != nil {
			return fmt.Errorf("NDJSON line %d is not a result record: %w", line, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("NDJSON line %d is longer than %d bytes: is this a result file?", line+1, MaxLineBytes)
		}
		return fmt.Errorf("read NDJSON results: %w", err)
	}
	return nil
}

// WriteTable writes rs as an aligned table for a terminal. siteName turns a
// site code into a place name; with nil, the site name column is left out.
// Text from the network (identity, error) is escaped so that control
// characters cannot break the layout or drive the terminal.
func WriteTable(w io.Writer, rs []Record, siteName func(code string) string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cols := []string{"TARGET", "ADDR", "METHOD", "SITE"}
	if siteName != nil {
		cols = append(cols, "SITE NAME")
	}
	cols = append(cols, "IDENTITY", "RTT", "ERROR")
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for i := range rs {
		r := &rs[i]
		row := []string{termtext.Printable(r.Target), orDash(r.Addr), r.Method, orDash(r.Site)}
		if siteName != nil {
			name := ""
			if r.Site != "" {
				name = siteName(r.Site)
			}
			row = append(row, orDash(termtext.Printable(name)))
		}
		rtt := "-"
		if r.RTTMs > 0 {
			// Loopback and same-city RTTs are well under a millisecond.
			prec := 1
			if r.RTTMs < 1 {
				prec = 3
			}
			rtt = strconv.FormatFloat(r.RTTMs, 'f', prec, 64) + " ms"
		}
		errText := "-"
		if r.Error != "" || r.ErrorKind != KindNone {
			errText = string(r.ErrorKind)
			if r.Error != "" {
				errText += ": " + r.Error
			}
		}
		row = append(row, orDash(termtext.Printable(r.Identity)), rtt, termtext.Printable(errText))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write result table: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
