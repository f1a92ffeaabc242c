package spec

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

var chaosQ = dns.Question{Name: "hostname.bind.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}

func TestDNSQuestion(t *testing.T) {
	for _, tc := range []struct {
		name, class, typ string
		want             dns.Question
		bad              bool
	}{
		{name: "hostname.bind", class: "CH", typ: "TXT", want: chaosQ},
		{name: "id.server.", class: "chaos", typ: "txt", want: dns.Question{Name: "id.server.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}},
		{name: ".", class: "in", typ: "soa", want: dns.Question{Name: ".", Qclass: dns.ClassINET, Qtype: dns.TypeSOA}},
		{name: "a.b", class: "CLASS3", typ: "TYPE16", want: dns.Question{Name: "a.b.", Qclass: 3, Qtype: 16}},
		{name: "a.b", class: "CLASS70000", typ: "TXT", bad: true},
		{name: "a.b", class: "IN", typ: "TYPEx", bad: true},
		{name: "a..b", class: "IN", typ: "TXT", bad: true},
		{name: "a.b", class: "", typ: "TXT", bad: true},
		// The backslash escapes the dot that makes the name absolute.
		{name: `hostname.bind\`, class: "CH", typ: "TXT", bad: true},
		{name: `a\\`, class: "CH", typ: "TXT", want: dns.Question{Name: `a\\.`, Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}},
	} {
		got, err := dnsQuestion(tc.name, tc.class, tc.typ)
		if (err != nil) != tc.bad || !tc.bad && got != tc.want {
			t.Errorf("dnsQuestion(%q, %q, %q) = %v, %v", tc.name, tc.class, tc.typ, got, err)
		}
	}
}

// FuzzDNSQuestion parses arbitrary question text: never a panic, and a
// question it accepts packs into a query (the wire form survives a round
// trip), and reads back the same from its own names.
func FuzzDNSQuestion(f *testing.F) {
	f.Add("hostname.bind.", "CH", "TXT")
	f.Add(".", "in", "TYPE6")
	f.Add("a\\.b", "CLASS65535", "soa")
	f.Fuzz(func(t *testing.T, name, class, typ string) {
		q, err := dnsQuestion(name, class, typ)
		if err != nil {
			return
		}
		m := &dns.Msg{Question: []dns.Question{q}}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("%v does not pack: %v", q, err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatalf("%v packs into a query that does not unpack: %v", q, err)
		}
		if again, err := back.Pack(); err != nil || !bytes.Equal(again, wire) {
			t.Fatalf("%v packs as %x, and unpacked as %v packs as %x, %v", q, wire, back.Question, again, err)
		}
		again, err := dnsQuestion(q.Name, ClassName(q.Qclass), TypeName(q.Qtype))
		if err != nil || again != q {
			t.Fatalf("%v read back as %v, %v", q, again, err)
		}
	})
}
