package probe

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// IdentifyDNS reads answers measured elsewhere as measureDNS reads its own.
func TestIdentifyDNS(t *testing.T) {
	id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, Preset: "k-root"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := id.DNSQuestion()
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "hostname.bind." || q.Qclass != dns.ClassCHAOS || q.Qtype != dns.TypeTXT {
		t.Fatalf("k-root question %v", q)
	}
	txt := func(owner string, qq dns.Question, text string) *dns.Msg {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Question: []dns.Question{qq}}
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: qq.Qclass}, Txt: []string{text}}}
		return m
	}
	version := dns.Question{Name: "version.bind.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}
	other := dns.Question{Name: "id.server.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}
	cases := []struct {
		name     string
		q        dns.Question
		m        *dns.Msg
		identity string
		site     string
		kind     result.ErrorKind
		suspect  bool
	}{
		{"site", q, txt(q.Name, q, "ns1.de-fra.k.ripe.net"), "ns1.de-fra.k.ripe.net", "de-fra", result.KindNone, false},
		{"escaped text", q, txt(q.Name, q, `a\"b\\c`), `a"b\c`, "", result.KindNone, false},
		{"notimp without question", q, &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: dns.RcodeNotImplemented}}, "", "", result.KindNotimp, false},
		{"version is never a site", version, txt(version.Name, version, "ns1.de-fra.k.ripe.net"), "ns1.de-fra.k.ripe.net", "", result.KindNone, false},
		{"intercepted", q, txt(other.Name, other, "ns1.de-fra.k.ripe.net"), "ns1.de-fra.k.ripe.net", "", result.KindMismatch, true},
		{"middlebox", q, txt(q.Name, q, "router.lan"), "router.lan", "", result.KindNone, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r result.Record
			err := IdentifyDNS(id, tc.q, tc.m, &r)
			if r.Identity != tc.identity || r.Site != tc.site || r.ErrorKind != tc.kind || r.Suspect != tc.suspect {
				t.Errorf("identity %q site %q kind %q suspect %v; want %q %q %q %v",
					r.Identity, r.Site, r.ErrorKind, r.Suspect, tc.identity, tc.site, tc.kind, tc.suspect)
			}
			if (err == nil) != (tc.kind == result.KindNone) || (err != nil && r.Error != err.Error()) {
				t.Errorf("error %v, record error %q", err, r.Error)
			}
			if r.DNS == nil || r.DNS.QName != tc.q.Name || r.DNS.QClass != "CH" || r.DNS.QType != "TXT" {
				t.Errorf("dns details %+v", r.DNS)
			}
		})
	}
}
