package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// records makes n valid dns records a millisecond apart.
func records(n int, at time.Time) []Record {
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = Record{ID: NewID(), Time: at.Add(time.Duration(i) * time.Millisecond).UTC(), Probe: "p",
			Target: "k.root-servers.net", Method: MethodDNS, AF: 4, Addr: "192.0.2.1",
			Identity: "ns1.nl-ams.k.ripe.net", Site: "ams", RTTMs: 12.5,
			DNS: &DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", NSID: "x"}}
	}
	return rs
}

// ndjson is rs as encoding/json writes them, a record a line.
func ndjson(rs []Record) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range rs {
		_ = enc.Encode(&rs[i])
	}
	return b.Bytes()
}

// fullRecord sets every field, so that a field the fast decoder forgets
// shows as a difference from encoding/json.
func fullRecord() Record {
	lat, lon := -33.92, 18.42
	return Record{ID: "0196f0c2-7a51-7c1e-9a0b-5f1e2d3c4b5a", Time: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("", 7200)),
		Probe: "atlas-6001", Target: "https://example.com/ü", Method: MethodHTTP, AF: 6, Addr: "2001:db8::1",
		Identity: "cpt1 — Kapstadt", Site: "cpt", RTTMs: 1.25e-3, Error: "x", ErrorKind: KindHTTPStatus,
		Lat: &lat, Lon: &lon, Country: "ZA", ASN: 4294967295, Suspect: true,
		DNS:  &DNS{QName: "a.", QClass: "IN", QType: "TXT", Rcode: "NOERROR", NSID: "n", TCP: true, Size: -1},
		HTTP: &HTTP{Status: 503, DNSMs: 1, ConnectMs: 2, TLSMs: 3, FirstByteMs: 4, TotalMs: 5, Proto: "HTTP/2.0"},
		Ping: &Ping{Sent: 3, Received: 2, Loss: 0.3333333333333333, MinMs: 1, AvgMs: 2, MaxMs: 3, StddevMs: 0.5}}
}

func TestDecodeFast(t *testing.T) {
	full, _ := json.Marshal(fullRecord())
	arr, _ := json.Marshal(records(3, time.Now()))
	for _, c := range []struct {
		name string
		body string
		fast bool // decodeFast must take it
	}{
		{"ndjson", string(ndjson(records(3, time.Now()))), true},
		{"array", " \r\n" + string(arr) + "\n", true},
		{"every field", string(full), true},
		{"no separator", string(full) + string(full), true},
		{"empty object", `{}`, true},
		{"unknown field", `{"id":"a","colour":"blue"}`, false},
		{"escape", `{"id":"a\"b"}`, false},
		{"escaped key", `{"\u0069d":"a"}`, false},
		{"null", `{"id":"a","lat":null}`, false},
		{"case-folded key", `{"ID":"a"}`, false},
		{"repeated key", `{"id":"a","id":"b"}`, false},
		{"repeated object", `{"dns":{"qname":"a"},"dns":{"qtype":"b"}}`, false},
		{"float in int", `{"af":4.0}`, false},
		{"asn too big", `{"asn":4294967296}`, false},
		{"negative asn", `{"asn":-1}`, false},
		{"huge float", `{"rtt_ms":1e999}`, false},
		{"bad number", `{"rtt_ms":01}`, false},
		{"invalid UTF-8", "{\"site\":\"\xff\"}", false},
		{"control char", "{\"site\":\"a\tb\"}", false},
		{"bad time", `{"time":"yesterday"}`, false},
		{"empty array", `[]`, false},
		{"trailing comma", `[{},]`, false},
		{"garbage after", `[{}] x`, false},
		{"not an object", `[1]`, false},
		{"cut", `{"id":"a"`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeFast(c.body, 100)
			if c.fast != (err == nil) {
				t.Fatalf("fast path took it: %v, want %v (err %v)", err == nil, c.fast, err)
			}
			want, werr := decodeSlow(c.body, 100)
			switch {
			case err == nil && (werr != nil || !reflect.DeepEqual(got, want)):
				t.Errorf("fast %+v\nslow %+v (%v)", got, want, werr)
			case err != nil && !errors.Is(err, errSlow) && werr == nil:
				t.Errorf("fast path refused what the slow one takes: %v", err)
			}
		})
	}
}

// FuzzDecodeFast: whatever the fast decoder accepts, encoding/json decodes
// to the same records, and what it refuses on its own, encoding/json (with
// DecodeJSON's UTF-8 check) refuses too.
func FuzzDecodeFast(f *testing.F) {
	full, _ := json.Marshal(fullRecord())
	f.Add(string(full))
	f.Add(string(ndjson(records(2, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))))
	f.Add(`[{"id":"a","af":-0,"rtt_ms":-0.0e+0},{"asn":0,"suspect":false}]`)
	f.Add(`{"lat":1E5,"lon":-1.5e-3,"dns":{},"http":{"status":0},"ping":{"loss":1}}`)
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeFast(body, 20)
		want, werr := decodeSlow(body, 20)
		switch {
		case errors.Is(err, errSlow):
		case err != nil:
			// A refusal of the fast path's own: the slow one refuses too.
			if werr == nil {
				t.Fatalf("fast path refused what encoding/json takes: %v", err)
			}
		case werr != nil:
			t.Fatalf("fast path accepted what encoding/json refuses: %v", werr)
		case !reflect.DeepEqual(got, want):
			t.Fatalf("fast %+v\nslow %+v", got, want)
		}
	})
}
