package result

import (
	"bytes"
	"reflect"
	"testing"
)

// readAll reads records with read, or reports the error.
func readAll(read func(func(*Record) error) error) ([]Record, error) {
	var out []Record
	err := read(func(r *Record) error { out = append(out, *r); return nil })
	return out, err
}

// sameRecords compares records, times by instant (a parsed time may carry
// a different *Location for the same zone).
func sameRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Time.Equal(y.Time) {
			return false
		}
		x.Time = y.Time
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// FuzzReadNDJSON checks that any input either fails cleanly or yields
// records that survive a write and a second read unchanged.
func FuzzReadNDJSON(f *testing.F) {
	var buf bytes.Buffer
	nw := NewNDJSONWriter(&buf)
	for _, r := range sampleRecords() {
		if err := nw.Write(&r); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := readAll(func(fn func(*Record) error) error { return ReadNDJSON(bytes.NewReader(in), fn) })
		if err != nil {
			return
		}
		var out bytes.Buffer
		nw := NewNDJSONWriter(&out)
		for i := range rs {
			if err := nw.Write(&rs[i]); err != nil {
				// Times outside years 0-9999 read but do not write.
				return
			}
		}
		again, err := readAll(func(fn func(*Record) error) error { return ReadNDJSON(&out, fn) })
		if err != nil {
			t.Fatalf("re-reading our own output: %v\n%s", err, out.String())
		}
		if !sameRecords(rs, again) {
			t.Fatalf("round trip changed records:\n%+v\n%+v", rs, again)
		}
	})
}

// FuzzReadCSV is FuzzReadNDJSON for the CSV form.
func FuzzReadCSV(f *testing.F) {
	var buf bytes.Buffer
	cw := NewCSVWriter(&buf)
	for _, r := range sampleRecords() {
		if err := cw.Write(&r); err != nil {
			f.Fatal(err)
		}
	}
	if err := cw.Flush(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := readAll(func(fn func(*Record) error) error { return ReadCSV(bytes.NewReader(in), fn) })
		if err != nil {
			return
		}
		var out bytes.Buffer
		cw := NewCSVWriter(&out)
		for i := range rs {
			if err := cw.Write(&rs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := readAll(func(fn func(*Record) error) error { return ReadCSV(&out, fn) })
		if err != nil {
			t.Fatalf("re-reading our own output: %v\n%s", err, out.String())
		}
		if !sameRecords(rs, again) {
			t.Fatalf("round trip changed records:\n%+v\n%+v", rs, again)
		}
	})
}
