package probe

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

var chaosQ = dns.Question{Name: "hostname.bind.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}

func txtRR(name string, class uint16, txt ...string) dns.RR {
	return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: class}, Txt: txt}
}

// reply builds an answer to q with rcode and answer records, and an NSID
// when nsid is not empty.
func reply(q dns.Question, rcode int, nsid string, answer ...dns.RR) *dns.Msg {
	m := &dns.Msg{Question: []dns.Question{q}, Answer: answer}
	m.Response, m.Rcode = true, rcode
	if nsid != "" {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString([]byte(nsid))}}
	}
	return m
}

func TestReadDNSAnswer(t *testing.T) {
	soaQ := dns.Question{Name: ".", Qclass: dns.ClassINET, Qtype: dns.TypeSOA}
	quad9Q := dns.Question{Name: "id.server.on.quad9.net.", Qclass: dns.ClassINET, Qtype: dns.TypeTXT}
	fraRE := identifier(t, spec.Spec{SiteRegex: `^ns\d+\.([a-z]{3})$`})
	classIN := identifier(t, spec.Spec{AllowClassIN: true})
	for _, tc := range []struct {
		name     string
		q        dns.Question
		id       *spec.Identifier
		m        *dns.Msg
		kind     result.ErrorKind
		identity string
		nsid     string
		rcode    string
		says     string // in the error
	}{
		{name: "txt", q: chaosQ, m: reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, "ns1.fra")),
			identity: "ns1.fra", rcode: "NOERROR"},
		{name: "txt keeps quotes, joins strings", q: chaosQ,
			m:        reply(chaosQ, 0, "", txtRR("HOSTNAME.bind.", dns.ClassCHAOS, `say \"hi\" \\ `, `then\032bye\195\169`)),
			identity: `say "hi" \ then byeé`, rcode: "NOERROR"},
		{name: "first matching txt of several", q: quad9Q,
			m: reply(quad9Q, 0, "",
				txtRR("other.example.", dns.ClassINET, "not me"),
				txtRR("id.server.on.quad9.net.", dns.ClassINET, "res120.qyul1.on.quad9.net"),
				txtRR("id.server.on.quad9.net.", dns.ClassINET, "second")),
			identity: "res120.qyul1.on.quad9.net", rcode: "NOERROR"},
		{name: "several txt: the first in bytewise order", q: chaosQ,
			m: reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, "ns3.sto"),
				txtRR("hostname.bind.", dns.ClassCHAOS, "ns1.fra"), txtRR("hostname.bind.", dns.ClassCHAOS, "ns2.ams")),
			identity: "ns1.fra", rcode: "NOERROR"},
		{name: "several txt: the first in bytewise order that the pattern matches", q: chaosQ, id: fraRE,
			m: reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, "ns9.sto"),
				txtRR("hostname.bind.", dns.ClassCHAOS, "built 2024-01-01"), txtRR("hostname.bind.", dns.ClassCHAOS, "ns2.ams")),
			identity: "ns2.ams", rcode: "NOERROR"},
		{name: "several txt: none matches", q: chaosQ, id: fraRE,
			m:        reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, "zz"), txtRR("hostname.bind.", dns.ClassCHAOS, "yy")),
			identity: "yy", rcode: "NOERROR"},
		{name: "several txt: an empty one is no identity", q: chaosQ,
			m:        reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, ""), txtRR("hostname.bind.", dns.ClassCHAOS, "b")),
			identity: "b", rcode: "NOERROR"},
		{name: "txt behind a cname", q: quad9Q,
			m: reply(quad9Q, 0, "",
				&dns.CNAME{Hdr: dns.RR_Header{Name: "id.server.on.quad9.net.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "a.example."},
				txtRR("a.example.", dns.ClassINET, "res1.ams")),
			identity: "res1.ams", rcode: "NOERROR"},
		{name: "txt wins over nsid", q: chaosQ, m: reply(chaosQ, 0, "nsid", txtRR("hostname.bind.", dns.ClassCHAOS, "txt")),
			identity: "txt", nsid: "nsid", rcode: "NOERROR"},
		{name: "nsid only", q: soaQ, m: reply(soaQ, 0, "k3.ams-ix.k.ripe.net"),
			identity: "k3.ams-ix.k.ripe.net", nsid: "k3.ams-ix.k.ripe.net", rcode: "NOERROR"},
		{name: "nsid beside an soa", q: soaQ,
			m:        reply(soaQ, 0, "b4", &dns.SOA{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "a.", Mbox: "b."}),
			identity: "b4", nsid: "b4", rcode: "NOERROR"},
		{name: "empty txt and no nsid", q: chaosQ, m: reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassCHAOS, "  ")),
			kind: result.KindNoIdentity, rcode: "NOERROR"},
		{name: "no answer", q: chaosQ, m: reply(chaosQ, 0, ""), kind: result.KindNoIdentity, rcode: "NOERROR"},
		{name: "refused", q: chaosQ, m: reply(chaosQ, dns.RcodeRefused, ""), kind: result.KindRefused, rcode: "REFUSED"},
		{name: "refused keeps nsid as identity", q: chaosQ, m: reply(chaosQ, dns.RcodeRefused, "n1"),
			kind: result.KindRefused, rcode: "REFUSED", identity: "n1", nsid: "n1"},
		{name: "servfail", q: chaosQ, m: reply(chaosQ, dns.RcodeServerFailure, ""), kind: result.KindServfail, rcode: "SERVFAIL"},
		{name: "notimp bare header", q: chaosQ, m: &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: dns.RcodeNotImplemented}},
			kind: result.KindNotimp, rcode: "NOTIMP"},
		{name: "nxdomain", q: chaosQ, m: reply(chaosQ, dns.RcodeNameError, ""), kind: result.KindRcode, rcode: "NXDOMAIN"},
		{name: "unknown rcode", q: chaosQ, m: reply(chaosQ, 4000, ""), kind: result.KindRcode, rcode: "RCODE4000"},
		{name: "question name differs", q: chaosQ,
			m:    reply(dns.Question{Name: "x.example.", Qclass: dns.ClassCHAOS, Qtype: dns.TypeTXT}, 0, "", txtRR("x.example.", dns.ClassCHAOS, "box")),
			kind: result.KindMismatch, identity: "box", rcode: "NOERROR"},
		{name: "question class differs", q: chaosQ,
			m:    reply(dns.Question{Name: "hostname.bind.", Qclass: dns.ClassINET, Qtype: dns.TypeTXT}, dns.RcodeRefused, ""),
			kind: result.KindMismatch, rcode: "REFUSED"},
		{name: "answer for another class", q: chaosQ, m: reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassINET, "OPNsense.home.arpa")),
			kind: result.KindMismatch, identity: "OPNsense.home.arpa", rcode: "NOERROR", says: "--allow-class-in"},
		{name: "answer in class IN, allowed", q: chaosQ, id: classIN,
			m:        reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassINET, "ns1.fra")),
			identity: "ns1.fra", rcode: "NOERROR"},
		{name: "answer in class HS, class IN allowed", q: chaosQ, id: classIN,
			m:    reply(chaosQ, 0, "", txtRR("hostname.bind.", dns.ClassHESIOD, "ns1.fra")),
			kind: result.KindMismatch, identity: "ns1.fra", rcode: "NOERROR", says: "only records for other names or classes"},
		{name: "answer in class IN behind a cname, allowed", q: chaosQ, id: classIN,
			m: reply(chaosQ, 0, "",
				&dns.CNAME{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "a.example."},
				txtRR("a.example.", dns.ClassINET, "ns1.ams")),
			identity: "ns1.ams", rcode: "NOERROR"},
		{name: "answer for another name beside an nsid", q: chaosQ, m: reply(chaosQ, 0, "box", txtRR("x.example.", dns.ClassCHAOS, "y")),
			kind: result.KindMismatch, identity: "y", nsid: "box", rcode: "NOERROR"},
		{name: "not a response", q: chaosQ, m: &dns.Msg{Question: []dns.Question{chaosQ}}, kind: result.KindMalformed, rcode: "NOERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := readDNSAnswer(tc.q, tc.m, tc.id)
			if a.Kind != tc.kind || (err == nil) != (tc.kind == result.KindNone) {
				t.Fatalf("kind %q err %v, want kind %q", a.Kind, err, tc.kind)
			}
			if err != nil && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if a.Identity != tc.identity || a.NSID != tc.nsid || a.Rcode != tc.rcode {
				t.Errorf("got %+v, want identity %q nsid %q rcode %q", a, tc.identity, tc.nsid, tc.rcode)
			}
		})
	}
}

// identifier resolves a DNS spec's identification, failing the test on a
// bad spec.
func identifier(t testing.TB, sp spec.Spec) *spec.Identifier {
	t.Helper()
	sp.Method = result.MethodDNS
	id, err := spec.NewIdentifier(&sp)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FuzzDNSAnswer reads arbitrary bytes as a DNS answer: reading must never
// panic, whatever it says must be storable, and the order of the records
// (which servers rotate) must not change it.
func FuzzDNSAnswer(f *testing.F) {
	for _, m := range []*dns.Msg{
		reply(chaosQ, 0, "nsid", txtRR("hostname.bind.", dns.ClassCHAOS, `a \"b\"`, `\255\000`)),
		reply(chaosQ, dns.RcodeRefused, ""),
		{MsgHdr: dns.MsgHdr{Response: true, Rcode: dns.RcodeNotImplemented}},
	} {
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	ids := []*spec.Identifier{nil, identifier(f, spec.Spec{Preset: "k-root"}), identifier(f, spec.Spec{AllowClassIN: true})}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return
		}
		questions := []dns.Question{chaosQ}
		if len(m.Question) > 0 {
			questions = append(questions, m.Question[0]) // so the matching paths run too
		}
		// Reversed, the answer says the same; CNAME chains are left out,
		// as a hostile answer may give a name several CNAMEs, and the hop
		// cap then keeps those met first.
		rev := m.Copy()
		slices.Reverse(rev.Answer)
		hasCNAME := slices.ContainsFunc(m.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeCNAME })
		for _, q := range questions {
			for _, id := range ids {
				a, err := readDNSAnswer(q, m, id)
				if (err == nil) != (a.Kind == result.KindNone) || a.Kind != result.KindNone && !slices.Contains(result.Kinds, a.Kind) {
					t.Fatalf("kind %q with err %v", a.Kind, err)
				}
				for _, s := range []string{a.Identity, a.NSID} {
					if !utf8.ValidString(s) || len(s) > MaxIdentityLen {
						t.Fatalf("unstorable identity or nsid %q", s)
					}
				}
				if ra, _ := readDNSAnswer(q, rev, id); !hasCNAME && ra != a {
					t.Fatalf("answer read as %+v, and with its records reversed as %+v", a, ra)
				}
			}
		}
	})
}

// FuzzDNSTXT sends arbitrary bytes as CHAOS TXT text: the identity must be
// those bytes, unescaped and then cleaned, whatever they hold, and cleaning
// must keep apart the words that white space or control characters did.
func FuzzDNSTXT(f *testing.F) {
	f.Add([]byte(`ns1."fra" \ 1`))
	f.Add([]byte("\\000\x00\xff\"\\"))
	f.Add([]byte(strings.Repeat("a", 300)))
	apart := func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
	f.Fuzz(func(t *testing.T, text []byte) {
		if len(text) > 4000 {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(txtAnswerWire(chaosQ, text)); err != nil {
			t.Fatalf("test wire does not unpack: %v", err)
		}
		a, err := readDNSAnswer(chaosQ, m, nil)
		want := cleanIdentity(string(text))
		if a.Identity != want {
			t.Fatalf("identity %q, want %q", a.Identity, want)
		}
		if (err == nil) != (want != "") {
			t.Fatalf("err %v for identity %q", err, want)
		}
		// Valid text that fits is cut nowhere, and nothing is dropped from it.
		if s := string(text); len(s) <= MaxIdentityLen && utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError) {
			if got, words := strings.Fields(a.Identity), strings.FieldsFunc(s, apart); !slices.Equal(got, words) {
				t.Fatalf("text %q gives the words %q, want %q", s, got, words)
			}
		}
	})
}

// txtAnswerWire packs an answer to q holding text in one TXT record, by hand
// so that no escaping library sits between the bytes and the wire.
func txtAnswerWire(q dns.Question, text []byte) []byte {
	var rdata []byte
	for len(text) > 0 || rdata == nil {
		n := min(len(text), 255)
		rdata = append(append(rdata, byte(n)), text[:n]...)
		text = text[n:]
	}
	name := make([]byte, 256)
	n, err := dns.PackDomainName(q.Name, name, 0, nil, false)
	if err != nil {
		panic(err)
	}
	w := []byte{0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0} // QR AA, one question, one answer
	w = append(w, name[:n]...)
	w = binary.BigEndian.AppendUint16(w, q.Qtype)
	w = binary.BigEndian.AppendUint16(w, q.Qclass)
	w = append(w, 0xc0, 12) // pointer to the question name
	w = binary.BigEndian.AppendUint16(w, dns.TypeTXT)
	w = binary.BigEndian.AppendUint16(w, q.Qclass)
	w = binary.BigEndian.AppendUint32(w, 0)
	w = binary.BigEndian.AppendUint16(w, uint16(len(rdata)))
	return append(w, rdata...)
}
