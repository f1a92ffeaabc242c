package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// sampleRecords covers every details group, absent groups, zero values that
// must survive a round trip (loss 0, a site at lat 0), and awkward text.
func sampleRecords() []Record {
	t0 := time.Date(2026, 11, 25, 19, 0, 0, 123456789, time.UTC)
	return []Record{
		{
			ID: "0193a0b0-0000-7000-8000-000000000001", Time: t0, Probe: "local",
			Target: "192.0.2.53", Method: MethodDNS, AF: 4, Addr: "192.0.2.53",
			Identity: "ams1.example", Site: "ams", RTTMs: 12.345678,
			Lat: ptr(0.0), Lon: ptr(-0.5), Country: "NL", ASN: 64500,
			DNS: &DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", NSID: "ams1", Size: 77},
		},
		{
			ID: "0193a0b0-0000-7000-8000-000000000002", Time: t0.Add(time.Second), Probe: "p1",
			Target: "https://example.net/", Method: MethodHTTP, AF: 6, Addr: "2001:db8::1",
			Identity: "cache-ams21, cache-fra1\t\"x\"", Site: "fra", RTTMs: 20.5,
			HTTP: &HTTP{Status: 200, ConnectMs: 10.25, TLSMs: 5, FirstByteMs: 20.5, TotalMs: 21, Proto: "HTTP/2.0"},
		},
		{
			ID: "0193a0b0-0000-7000-8000-000000000003", Time: t0, Target: "192.0.2.1",
			Method: MethodICMP, AF: 4, Addr: "192.0.2.1", RTTMs: 0.04,
			Ping: &Ping{Sent: 3, Received: 3, Loss: 0, MinMs: 0.03, AvgMs: 0.04, MaxMs: 0.05, StddevMs: 0.01},
		},
		{
			ID: "0193a0b0-0000-7000-8000-000000000004", Time: t0, Target: "192.0.2.2:53",
			Method: MethodDNS, AF: 4, Addr: "192.0.2.2", Suspect: true,
			Error: "read udp: i/o timeout,\nafter 5s", ErrorKind: KindTimeout,
			DNS: &DNS{QName: "id.server.", QClass: "CH", QType: "TXT", TCP: true},
		},
		{
			ID: "0193a0b0-0000-7000-8000-000000000005", Time: t0, Target: "192.0.2.3",
			Method: MethodTCP, Error: "connection refused", ErrorKind: KindRefused,
			HTTP: &HTTP{}, Ping: &Ping{Sent: 1, Loss: 1},
		},
	}
}

// equalRecords fails the test unless got and want are the same records.
func equalRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if !sameRecords(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("records differ:\n got %s\nwant %s", gj, wj)
	}
}

func collect(t *testing.T, read func(func(*Record) error) error) []Record {
	t.Helper()
	var out []Record
	if err := read(func(r *Record) error { out = append(out, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNDJSONRoundTrip(t *testing.T) {
	want := sampleRecords()
	var buf bytes.Buffer
	nw := NewNDJSONWriter(&buf)
	for i := range want {
		if err := nw.Write(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(want) {
		t.Fatalf("wrote %d lines for %d records:\n%s", n, len(want), buf.String())
	}
	// Blank lines (a hand-edited file, a trailing CR LF) are not records.
	in := "\n" + strings.ReplaceAll(buf.String(), "\n", "\r\n\n")
	got := collect(t, func(fn func(*Record) error) error { return ReadNDJSON(strings.NewReader(in), fn) })
	equalRecords(t, got, want)
}

func TestWriteJSONReadsBack(t *testing.T) {
	want := sampleRecords()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, want); err != nil {
		t.Fatal(err)
	}
	var got []Record
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("WriteJSON output is not a JSON array of records: %v\n%s", err, buf.String())
	}
	equalRecords(t, got, want)

	buf.Reset()
	if err := WriteJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(buf.String()); s != "[]" {
		t.Errorf("no records: got %q, want []", s)
	}
}

func TestReadNDJSONErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", `{"id":"a"}` + "\nhello\n", "line 2 is not a result record"},
		{"wrong type", `{"af":"four"}`, "line 1 is not a result record"},
		{"array", `[{"id":"a"}]`, "line 1 is not a result record"},
		{"too long", `{"id":"` + strings.Repeat("a", MaxLineBytes) + `"}`, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ReadNDJSON(strings.NewReader(tc.in), func(*Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadNDJSONStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ReadNDJSON(strings.NewReader("{}\n{}\n{}\n"), func(*Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("got %v after %d records, want stop after 2", err, n)
	}
}

func TestReadNDJSONIgnoresUnknownFields(t *testing.T) {
	got := collect(t, func(fn func(*Record) error) error {
		return ReadNDJSON(strings.NewReader(`{"id":"a","target":"t","from_the_future":{"x":1}}`), fn)
	})
	if len(got) != 1 || got[0].ID != "a" || got[0].Target != "t" {
		t.Fatalf("got %+v", got)
	}
}

func TestWriteTable(t *testing.T) {
	rs := sampleRecords()
	rs[0].Identity = "ams1\x1b[2Jevil\nline"
	var buf bytes.Buffer
	names := map[string]string{"ams": "Amsterdam"}
	if err := WriteTable(&buf, rs, func(code string) string { return names[code] }); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(rs)+1 {
		t.Fatalf("got %d lines, want header + %d rows:\n%s", len(lines), len(rs), out)
	}
	for _, w := range []string{"TARGET", "SITE NAME", "IDENTITY", "Amsterdam", `ams1\x1b[2Jevil\nline`, "12.3 ms", "timeout: read udp", "refused: connection refused"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\t") {
		t.Errorf("table passes control characters through:\n%q", out)
	}
	// Columns line up: every row starts its ADDR column at the same place.
	col := strings.Index(lines[0], "ADDR")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row not aligned on ADDR at %d: %q", col, l)
		}
	}

	buf.Reset()
	if err := WriteTable(&buf, rs[:1], nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "SITE NAME") {
		t.Errorf("nil siteName should drop the column:\n%s", buf.String())
	}
}
