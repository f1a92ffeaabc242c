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
	"unicode"
)

// WriteJSON writes rs as one indented JSON array, for people and for tools
// that want a single document. An empty slice is written as [], not null.
func WriteJSON(w io.Writer, rs []Record) error {
	if rs == nil {
		rs = []Record{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // as NewNDJSONWriter: identities stay readable
	if err := enc.Encode(rs); err != nil {
		return fmt.Errorf("write JSON results: %w", err)
	}
	return nil
}

// NDJSONWriter writes one record per line (newline-delimited JSON), so a
// long export or a probe's spool streams without holding every record.
type NDJSONWriter struct{ enc *json.Encoder }

// NewNDJSONWriter returns a writer that writes records to w.
func NewNDJSONWriter(w io.Writer) *NDJSONWriter {
	enc := json.NewEncoder(w)
	// Identities are text from the network; keep "<" and "&" readable
	// rather than \u003c: NDJSON is not embedded in HTML.
	enc.SetEscapeHTML(false)
	return &NDJSONWriter{enc: enc}
}

// Write writes one record and its newline.
func (nw *NDJSONWriter) Write(r *Record) error {
	if err := nw.enc.Encode(r); err != nil {
		return fmt.Errorf("write NDJSON result %s: %w", r.ID, err)
	}
	return nil
}

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
		rec := new(Record)
		if err := json.Unmarshal(b, rec); err != nil {
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
		row := []string{printable(r.Target), orDash(r.Addr), r.Method, orDash(r.Site)}
		if siteName != nil {
			name := ""
			if r.Site != "" {
				name = siteName(r.Site)
			}
			row = append(row, orDash(printable(name)))
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
		row = append(row, orDash(printable(r.Identity)), rtt, printable(errText))
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

// printable escapes what a terminal would interpret (control characters,
// tabs, newlines) and leaves ordinary text, including non-ASCII, alone.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
