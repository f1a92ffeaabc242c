package dnstxt

import (
	"testing"

	"github.com/miekg/dns"
)

// TestEscapeWire packs escaped strings with miekg/dns and checks that the
// wire carries the original bytes.
func TestEscapeWire(t *testing.T) {
	for _, s := range []string{"", "ams1", `say "hi"`, `back\slash`, "tab\there", "\x00\xff\x7f", "é"} {
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{Escape(s)}}
		buf := make([]byte, 1024)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%q: pack: %v", s, err)
		}
		rdata := buf[n-len(s)-1 : n]
		if int(rdata[0]) != len(s) || string(rdata[1:]) != s {
			t.Errorf("%q: wire carries %q", s, rdata)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("ns1.nl-ams.k.ripe.net")
	f.Add("\"\\\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 255 {
			return
		}
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{Escape(s)}}
		buf := make([]byte, 2048)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%q: pack: %v", s, err)
		}
		if got := string(buf[n-len(s) : n]); got != s || int(buf[n-len(s)-1]) != len(s) {
			t.Errorf("%q: wire carries %q", s, got)
		}
	})
}
