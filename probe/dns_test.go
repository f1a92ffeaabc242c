package probe

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/responder"
	"github.com/catchmap/catchmap/probe/result"
)

// startDNSSite starts a responder on addr ("" for 127.0.0.1:0) and shuts it
// down when the test ends.
func startDNSSite(t *testing.T, d *responder.DNS, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := d.Start(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("responder shutdown: %v", err)
		}
	})
	return got
}

// measureDNSOnce runs spec through the whole Measurer path and returns its
// only record.
func measureDNSOnce(t *testing.T, spec Spec) result.Record {
	t.Helper()
	spec.Method = result.MethodDNS
	if spec.Timeout == 0 {
		spec.Timeout = Duration(3 * time.Second)
	}
	m := NewMeasurer(slog.New(slog.DiscardHandler), WithProbeName("test"))
	recs, err := m.Measure(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

func withNSID(d *responder.DNS, nsid string) *responder.DNS {
	d.NSID = []byte(nsid)
	return d
}

func withOther(d *responder.DNS, rcode int) *responder.DNS {
	d.OtherRcode = rcode
	return d
}

func withMode(d *responder.DNS, mode responder.Mode) *responder.DNS {
	d.Mode = mode
	return d
}

func TestMeasureDNS(t *testing.T) {
	const siteRE = `^ns\d+\.([a-z]{3})\b`
	for _, tc := range []struct {
		name     string
		site     func() *responder.DNS
		spec     Spec // Target is filled in
		kind     result.ErrorKind
		identity string
		wantSite string
		rcode    string
		nsid     string
		suspect  bool
	}{
		{name: "identity", site: func() *responder.DNS { return withNSID(responder.NewDNS("ns1.fra.example"), "fra-nsid") },
			spec: Spec{SiteRegex: siteRE}, identity: "ns1.fra.example", wantSite: "fra", rcode: "NOERROR", nsid: "fra-nsid"},
		{name: "id.server", site: func() *responder.DNS { return responder.NewDNS("LHR") },
			spec: Spec{QName: "id.server", QClass: "ch", QType: "txt"}, identity: "LHR", wantSite: "lhr", rcode: "NOERROR"},
		{name: "identity with quotes and spaces", site: func() *responder.DNS { return responder.NewDNS(`ns2."ams" \ x`) },
			spec: Spec{SiteRegex: `"([a-z]+)"`}, identity: `ns2."ams" \ x`, wantSite: "ams", rcode: "NOERROR"},
		{name: "version", site: func() *responder.DNS { return responder.NewDNS("x") },
			spec: Spec{QName: "version.bind.", SiteRegex: `(responder)`}, identity: responder.DefaultVersion, rcode: "NOERROR"},
		{name: "nsid only", site: func() *responder.DNS {
			return withOther(withNSID(responder.NewDNS(""), "ns3.sin.example"), dns.RcodeSuccess)
		},
			spec: Spec{SiteRegex: siteRE}, identity: "ns3.sin.example", wantSite: "sin", rcode: "NOERROR", nsid: "ns3.sin.example"},
		{name: "nsid on . IN SOA", site: func() *responder.DNS {
			return withOther(withNSID(responder.NewDNS("unused"), "ns4.gru.example"), dns.RcodeSuccess)
		},
			spec: Spec{QName: ".", QClass: "IN", QType: "SOA", SiteRegex: siteRE}, identity: "ns4.gru.example", wantSite: "gru", rcode: "NOERROR", nsid: "ns4.gru.example"},
		{name: "middlebox", site: func() *responder.DNS { return responder.NewDNS(responder.MiddleboxIdentity) },
			identity: responder.MiddleboxIdentity, wantSite: "opnsense.home.arpa", rcode: "NOERROR", suspect: true},
		{name: "refused", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeRefused) },
			kind: result.KindRefused, rcode: "REFUSED"},
		{name: "refused with nsid", site: func() *responder.DNS {
			return withNSID(withMode(responder.NewDNS("x"), responder.ModeRefused), "ns5.nrt.example")
		},
			spec: Spec{SiteRegex: siteRE}, kind: result.KindRefused, rcode: "REFUSED", identity: "ns5.nrt.example", wantSite: "nrt", nsid: "ns5.nrt.example"},
		{name: "servfail", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeServfail) },
			kind: result.KindServfail, rcode: "SERVFAIL"},
		{name: "notimp bare header", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeNotimpBare) },
			kind: result.KindNotimp, rcode: "NOTIMP"},
		{name: "other rcode", site: func() *responder.DNS { return withOther(responder.NewDNS("x"), dns.RcodeNameError) },
			spec: Spec{QName: "nothing.invalid."}, kind: result.KindRcode, rcode: "NXDOMAIN"},
		{name: "mismatch", site: func() *responder.DNS {
			return withMode(responder.NewDNS(responder.MiddleboxIdentity), responder.ModeMismatch)
		},
			spec: Spec{SiteRegex: `(.+)`}, kind: result.KindMismatch, rcode: "NOERROR", identity: responder.MiddleboxIdentity, suspect: true},
		{name: "garbage", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeGarbage) },
			kind: result.KindMalformed},
		{name: "no identity", site: func() *responder.DNS { return withOther(responder.NewDNS(""), dns.RcodeSuccess) },
			kind: result.KindNoIdentity, rcode: "NOERROR"},
	} {
		for _, tcp := range []bool{false, true} {
			name := tc.name + "/udp"
			if tcp {
				name = tc.name + "/tcp"
			}
			t.Run(name, func(t *testing.T) {
				d := tc.site()
				spec := tc.spec
				spec.Target = startDNSSite(t, d, "")
				spec.TCP = tcp
				r := measureDNSOnce(t, spec)
				if r.ErrorKind != tc.kind {
					t.Fatalf("kind %q, want %q (error %q)", r.ErrorKind, tc.kind, r.Error)
				}
				if (r.Error == "") != (tc.kind == result.KindNone) {
					t.Errorf("error %q with kind %q", r.Error, r.ErrorKind)
				}
				if r.Identity != tc.identity || r.Site != tc.wantSite {
					t.Errorf("identity %q site %q, want %q %q", r.Identity, r.Site, tc.identity, tc.wantSite)
				}
				if r.Suspect != tc.suspect {
					t.Errorf("suspect %v, want %v", r.Suspect, tc.suspect)
				}
				if r.DNS == nil {
					t.Fatal("no dns details")
				}
				if r.DNS.Rcode != tc.rcode || r.DNS.NSID != tc.nsid || r.DNS.TCP != tcp {
					t.Errorf("dns details %+v, want rcode %q nsid %q tcp %v", *r.DNS, tc.rcode, tc.nsid, tcp)
				}
				udpQ, tcpQ := d.Queries()
				if tcp && udpQ != 0 || !tcp && tcpQ != 0 {
					t.Errorf("queries udp=%d tcp=%d, want only %s", udpQ, tcpQ, map[bool]string{true: "tcp", false: "udp"}[tcp])
				}
				if tc.kind != result.KindMalformed && tc.kind != result.KindTimeout && (r.RTTMs <= 0 || r.DNS.Size < 12) {
					t.Errorf("rtt %v ms, size %d: want both measured", r.RTTMs, r.DNS.Size)
				}
				if r.AF != 4 || r.Addr != "127.0.0.1" || r.Method != result.MethodDNS {
					t.Errorf("af %d addr %q method %q", r.AF, r.Addr, r.Method)
				}
			})
		}
	}
}

func TestMeasureDNSQuestionDetails(t *testing.T) {
	r := measureDNSOnce(t, Spec{Target: startDNSSite(t, responder.NewDNS("a"), ""), QName: "HOSTNAME.BIND", QClass: "ch"})
	want := result.DNS{QName: "HOSTNAME.BIND.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", Size: r.DNS.Size}
	if r.DNS == nil || *r.DNS != want || r.Identity != "a" {
		t.Errorf("dns %+v identity %q, want %+v and a", r.DNS, r.Identity, want)
	}
}

func TestMeasureDNSRetriesOverTCP(t *testing.T) {
	for _, tc := range []struct {
		mode     responder.Mode
		identity string
	}{
		{responder.ModeTruncate, "ns1.fra.example"},
		// 8 KiB of TXT: cut to MaxIdentityLen, and it could only come over TCP.
		{responder.ModeOversized, "ns1.fra.example" + strings.Repeat("x", MaxIdentityLen-len("ns1.fra.example"))},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			d := withMode(responder.NewDNS("ns1.fra.example"), tc.mode)
			r := measureDNSOnce(t, Spec{Target: startDNSSite(t, d, "")})
			if !r.OK() || r.Identity != tc.identity || r.DNS == nil || !r.DNS.TCP {
				t.Fatalf("record %+v dns %+v: want the identity, over TCP", r, r.DNS)
			}
			if udp, tcp := d.Queries(); udp != 1 || tcp != 1 {
				t.Errorf("queries udp=%d tcp=%d, want one of each", udp, tcp)
			}
		})
	}
}

func TestMeasureDNSTimeout(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		d := withMode(responder.NewDNS("x"), responder.ModeSilent)
		start := time.Now()
		r := measureDNSOnce(t, Spec{Target: startDNSSite(t, d, ""), TCP: tcp, Timeout: Duration(200 * time.Millisecond)})
		if r.ErrorKind != result.KindTimeout || !strings.Contains(r.Error, "deadline") {
			t.Errorf("tcp=%v: kind %q error %q, want a timeout", tcp, r.ErrorKind, r.Error)
		}
		// The context's deadline, not miekg/dns' 2s default, ends the wait.
		if e := time.Since(start); e > 1900*time.Millisecond {
			t.Errorf("tcp=%v: took %v with a 200ms timeout", tcp, e)
		}
	}
}

// startUDPOnly serves h over UDP alone, so that TCP to the same port finds
// nothing, and stops it when the test ends.
func startUDPOnly(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start in 5s")
	}
	return pc.LocalAddr().String()
}

func TestMeasureDNSTCPRetryFails(t *testing.T) {
	addr := startUDPOnly(t, withMode(responder.NewDNS("x"), responder.ModeTruncate))
	r := measureDNSOnce(t, Spec{Target: addr})
	if r.ErrorKind != result.KindNetwork || !strings.Contains(r.Error, "truncated") || r.DNS == nil || !r.DNS.TCP {
		t.Errorf("record %+v dns %+v: want a network error over TCP that says the UDP answer was truncated", r, r.DNS)
	}
}

// TestMeasureDNSLongDeadline checks that a deadline beyond miekg/dns' 2s
// default is honoured: a server that answers after 2.5s is still heard.
func TestMeasureDNSLongDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 2.5s for a slow answer; run without -short")
	}
	d := responder.NewDNS("slow")
	addr := startUDPOnly(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		time.Sleep(2500 * time.Millisecond)
		d.ServeDNS(w, req)
	}))
	r := measureDNSOnce(t, Spec{Target: addr, Timeout: Duration(5 * time.Second)})
	if !r.OK() || r.Identity != "slow" || r.RTTMs < 2500 {
		t.Errorf("record %+v: want identity slow after 2.5s", r)
	}
}

func TestMeasureDNSClosedPort(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		// A port that was free a moment ago: nothing answers there.
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.LocalAddr().String()
		l.Close()
		r := measureDNSOnce(t, Spec{Target: addr, TCP: tcp, Timeout: Duration(time.Second)})
		// UDP learns of the closed port from ICMP port unreachable, TCP from
		// a reset; either is a network failure, not a DNS REFUSED rcode.
		if r.ErrorKind != result.KindNetwork || !strings.Contains(r.Error, addr) {
			t.Errorf("tcp=%v: kind %q error %q, want network naming %s", tcp, r.ErrorKind, r.Error, addr)
		}
	}
}

func TestMeasureDNSNoNSID(t *testing.T) {
	d := withNSID(responder.NewDNS("ns1.fra.example"), "secret")
	r := measureDNSOnce(t, Spec{Target: startDNSSite(t, d, ""), NoNSID: true})
	if !r.OK() || r.DNS.NSID != "" || r.Identity != "ns1.fra.example" {
		t.Errorf("record %+v dns %+v: want the identity and no NSID", r, r.DNS)
	}
}

func TestMeasureDNSIPv6(t *testing.T) {
	if l, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("the kernel has no ::1 (%v)", err)
	} else {
		l.Close()
	}
	for _, tcp := range []bool{false, true} {
		addr := startDNSSite(t, withNSID(responder.NewDNS("ns6.ams.example"), "six"), "[::1]:0")
		r := measureDNSOnce(t, Spec{Target: addr, TCP: tcp, SiteRegex: `^ns\d\.([a-z]{3})`})
		if !r.OK() || r.AF != 6 || r.Addr != "::1" || r.Site != "ams" || r.DNS.NSID != "six" || r.DNS.TCP != tcp {
			t.Errorf("tcp=%v: record %+v dns %+v", tcp, r, r.DNS)
		}
	}
}

func TestMeasureDNSBadQuestion(t *testing.T) {
	for _, spec := range []Spec{{QClass: "XX"}, {QType: "NOPE"}, {QName: "a..b"}} {
		spec.Target = "127.0.0.1:53" // never dialled: the question fails first
		spec.Method = result.MethodDNS
		ident, err := NewIdentifier(&spec)
		if err != nil {
			t.Fatal(err)
		}
		var r result.Record
		err = measureDNS(t.Context(), Target{Spec: &spec, Ident: ident}, &r)
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("%+v: err %v, want ErrBadSpec", spec, err)
		}
	}
}

func TestMeasureDNSCancelled(t *testing.T) {
	d := withMode(responder.NewDNS("x"), responder.ModeSilent)
	spec := Spec{Target: startDNSSite(t, d, ""), Method: result.MethodDNS}
	ident, err := NewIdentifier(&spec)
	if err != nil {
		t.Fatal(err)
	}
	host, err := netip.ParseAddrPort(spec.Target)
	if err != nil {
		t.Fatal(err)
	}
	// No deadline: cancellation alone must end the wait.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	var r result.Record
	if err := measureDNS(ctx, Target{Spec: &spec, Addr: host, Ident: ident}, &r); err == nil {
		t.Fatal("measured a silent server")
	}
	if e := time.Since(start); e > 1900*time.Millisecond {
		t.Errorf("cancellation took %v to end the exchange", e)
	}
}
