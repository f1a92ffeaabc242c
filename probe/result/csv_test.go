package result

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCSVRoundTrip(t *testing.T) {
	want := sampleRecords()
	var buf bytes.Buffer
	cw := NewCSVWriter(&buf)
	for i := range want {
		if err := cw.Write(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(buf.String(), "\n")
	if head != strings.Join(CSVHeader(), ",") {
		t.Fatalf("first line %q is not the header", head)
	}
	got := collect(t, func(fn func(*Record) error) error { return ReadCSV(&buf, fn) })
	equalRecords(t, got, want)
}

// The column names are a public interface: a rename breaks users' scripts,
// so new columns go at the end.
func TestCSVHeaderIsStable(t *testing.T) {
	const want = "id,time,probe,target,method,af,addr,identity,site,rtt_ms,error,error_kind,lat,lon,country,asn,suspect," +
		"dns_qname,dns_qclass,dns_qtype,dns_rcode,dns_nsid,dns_tcp,dns_size," +
		"http_status,http_dns_ms,http_connect_ms,http_tls_ms,http_first_byte_ms,http_total_ms,http_proto," +
		"ping_sent,ping_received,ping_loss,ping_min_ms,ping_avg_ms,ping_max_ms,ping_stddev_ms,source"
	if got := strings.Join(CSVHeader(), ","); got != want {
		t.Fatalf("CSV header changed:\n got %s\nwant %s", got, want)
	}
	h := CSVHeader()
	h[0] = "changed"
	if CSVHeader()[0] != "id" {
		t.Fatal("CSVHeader returns the package's own slice")
	}
}

func TestCSVEmptyExportHasHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := NewCSVWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != strings.Join(CSVHeader(), ",") {
		t.Fatalf("empty export: got %q, want the header", got)
	}
	if got := collect(t, func(fn func(*Record) error) error { return ReadCSV(&buf, fn) }); len(got) != 0 {
		t.Fatalf("read %d records from a header-only file", len(got))
	}
}

// A failed measurement leaves rtt_ms empty, not 0, so spreadsheet averages
// are not skewed by failures.
func TestCSVZeroRTTIsEmpty(t *testing.T) {
	var buf bytes.Buffer
	cw := NewCSVWriter(&buf)
	if err := cw.Write(&Record{ID: "x", Target: "t", Method: MethodTCP, ErrorKind: KindRefused}); err != nil {
		t.Fatal(err)
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	_, row, _ := strings.Cut(strings.TrimSpace(buf.String()), "\n")
	cells := strings.Split(row, ",")
	idx := map[string]int{}
	for i, h := range CSVHeader() {
		idx[h] = i
	}
	if c := cells[idx["rtt_ms"]]; c != "" {
		t.Errorf("rtt_ms = %q, want empty", c)
	}
	if c := cells[idx["error_kind"]]; c != "refused" {
		t.Errorf("error_kind = %q, want refused", c)
	}
}

func TestReadCSVReorderedAndUnknownColumns(t *testing.T) {
	in := "extra,target,site,rtt_ms,id,ping_loss\n" +
		"zzz,192.0.2.1,ams,1.5,a,0\n"
	got := collect(t, func(fn func(*Record) error) error { return ReadCSV(strings.NewReader(in), fn) })
	if len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
	r := got[0]
	if r.ID != "a" || r.Target != "192.0.2.1" || r.Site != "ams" || r.RTTMs != 1.5 || r.Ping == nil || r.Ping.Loss != 0 {
		t.Fatalf("got %+v", r)
	}
	if r.DNS != nil || r.HTTP != nil {
		t.Fatalf("absent groups were created: %+v", r)
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "the file is empty"},
		{"no target column", "id,site\na,b\n", "no target column"},
		{"duplicate column", "target,site,site\na,b,c\n", `column "site" appears twice`},
		{"bad number", "target,rtt_ms\na,1.5\nb,fast\n", `line 3, column rtt_ms: "fast" is not a finite number`},
		{"nan", "target,rtt_ms\na,NaN\n", "not a finite number"},
		{"bad time", "target,time\na,yesterday\n", "not an RFC 3339 time"},
		{"bad bool", "target,suspect\na,maybe\n", "not true or false"},
		{"bad asn", "target,asn\na,4294967296\n", "not a number from 0 to 4294967295"},
		{"ragged row", "target,site\na\n", "wrong number of fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ReadCSV(strings.NewReader(tc.in), func(*Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadCSVStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	err := ReadCSV(strings.NewReader("target\na\nb\n"), func(*Record) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("got %v, want stop", err)
	}
}
