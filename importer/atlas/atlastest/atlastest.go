// Package atlastest builds RIPE Atlas DNS results for tests: answers packed
// by miekg/dns as a server would send them, wrapped in the JSON Atlas
// writes, in each of the layouts Atlas uses. Every byte a test reads is
// thereby explained by the code that made it.
package atlastest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// Chaos is the question root servers answer with their site:
// hostname.bind. CH TXT.
var Chaos = dns.Question{Name: "hostname.bind.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}

// Answer is a DNS answer as a server would send it.
type Answer struct {
	Q     dns.Question
	Rcode int
	TXT   []string // raw text (quotes and backslashes are bytes, not escapes), one character-string each
	Owner string   // the TXT record's owner; Q.Name when empty
	NSID  string
}

// Wire packs the answer.
func (a Answer) Wire(t testing.TB) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.Id = 0x1234
	m.Response = true
	m.Rcode = a.Rcode
	m.Question = []dns.Question{a.Q}
	owner := a.Owner
	if owner == "" {
		owner = a.Q.Name
	}
	if len(a.TXT) > 0 {
		// The TXT data goes in as raw bytes (RFC 3597 form), so the test
		// does not depend on the zone-file escaping the importer undoes.
		var rdata []byte
		for _, s := range a.TXT {
			rdata = append(append(rdata, byte(len(s))), s...)
		}
		m.Answer = []dns.RR{&dns.RFC3597{
			Hdr:   dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: a.Q.Qclass},
			Rdata: hex.EncodeToString(rdata),
		}}
	}
	if a.NSID != "" {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString([]byte(a.NSID))})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("packing a test answer: %v", err)
	}
	return b
}

// Abuf is the answer as Atlas stores it: base64 of the wire format.
func (a Answer) Abuf(t testing.TB) string { return base64.StdEncoding.EncodeToString(a.Wire(t)) }

// Qbuf is the query for q as Atlas stores it.
func Qbuf(t testing.TB, q dns.Question) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	m.Question[0].Qclass = q.Qclass
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// HeaderOnly is the abuf of a 12-byte answer with no question section:
// what some servers send with NOTIMP or FORMERR.
func HeaderOnly(rcode int) string {
	h := []byte{0x12, 0x34, 0x80, byte(rcode), 0, 0, 0, 0, 0, 0, 0, 0}
	return base64.StdEncoding.EncodeToString(h)
}

// Measurement says what a built result measured.
type Measurement struct {
	Msm       int64
	DstAddr   string
	DstName   string
	Timestamp int64
}

// K is K-root's built-in hostname.bind measurement, at a fixed time.
var K = Measurement{Msm: 10301, DstAddr: "193.0.14.129", DstName: "k.root-servers.net", Timestamp: 1764000000}

// Result is one result of probe prb running firmware fw, with members
// (such as "result", "error" or "resultset") added or overriding.
func (m Measurement) Result(prb int64, fw int, members map[string]any) map[string]any {
	r := map[string]any{
		"fw": fw, "lts": 30, "msm_id": m.Msm, "prb_id": prb, "timestamp": m.Timestamp,
		"af": 4, "dst_addr": m.DstAddr, "dst_name": m.DstName, "from": "198.51.100.7",
		"src_addr": "192.168.1.20", "proto": "UDP", "type": "dns", "msm_name": "Tdig",
	}
	for k, v := range members {
		r[k] = v
	}
	return r
}

// OK is the members of a result that got answer a after rt milliseconds.
func OK(t testing.TB, a Answer, rt float64) map[string]any {
	return map[string]any{"result": OKResult(t, a, rt)}
}

// OKResult is the "result" member for answer a.
func OKResult(t testing.TB, a Answer, rt float64) map[string]any {
	w := a.Wire(t)
	return map[string]any{"abuf": base64.StdEncoding.EncodeToString(w), "rt": rt, "size": len(w),
		"ID": 0x1234, "ANCOUNT": len(a.TXT), "QDCOUNT": 1, "ARCOUNT": 0, "NSCOUNT": 0}
}

// Timeout is the members of a result that got no answer.
func Timeout() map[string]any { return map[string]any{"error": map[string]any{"timeout": 5000}} }

// NDJSON lays results out one per line, as downloads may.
func NDJSON(t testing.TB, rs ...map[string]any) []byte {
	var b []byte
	for _, r := range rs {
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, j...), '\n')
	}
	return b
}

// Array lays results out as the /results/ endpoint does.
func Array(t testing.TB, rs ...map[string]any) []byte {
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Latest lays results out as the /latest/ endpoint does: by probe id.
func Latest(t testing.TB, rs ...map[string]any) []byte {
	by := map[string][]map[string]any{}
	for _, r := range rs {
		k := fmt.Sprint(r["prb_id"])
		by[k] = append(by[k], r)
	}
	b, err := json.MarshalIndent(by, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
