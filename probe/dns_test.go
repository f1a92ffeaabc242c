package probe

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/responder"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// measureDNSOnce runs spec through the whole Measurer path and returns its
// only record.
func measureDNSOnce(t *testing.T, sp spec.Spec) result.Record {
	t.Helper()
	sp.Method = result.MethodDNS
	if sp.Timeout == 0 {
		sp.Timeout = spec.Duration(3 * time.Second)
	}
	m := NewMeasurer(slog.New(slog.DiscardHandler), WithProbeName("test"))
	defer m.Close()
	recs, err := m.Measure(t.Context(), sp)
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
		spec     spec.Spec // Target is filled in
		kind     result.ErrorKind
		identity string
		wantSite string
		rcode    string
		nsid     string
		suspect  bool
	}{
		{name: "identity", site: func() *responder.DNS { return withNSID(responder.NewDNS("ns1.fra.example"), "fra-nsid") },
			spec: spec.Spec{SiteRegex: siteRE}, identity: "ns1.fra.example", wantSite: "fra", rcode: "NOERROR", nsid: "fra-nsid"},
		{name: "id.server", site: func() *responder.DNS { return responder.NewDNS("LHR") },
			spec: spec.Spec{QName: "id.server", QClass: "ch", QType: "txt"}, identity: "LHR", wantSite: "lhr", rcode: "NOERROR"},
		{name: "identity with quotes and spaces", site: func() *responder.DNS { return responder.NewDNS(`ns2."ams" \ x`) },
			spec: spec.Spec{SiteRegex: `"([a-z]+)"`}, identity: `ns2."ams" \ x`, wantSite: "ams", rcode: "NOERROR"},
		{name: "version", site: func() *responder.DNS { return responder.NewDNS("x") },
			spec: spec.Spec{QName: "version.bind.", SiteRegex: `(responder)`}, identity: responder.DefaultVersion, rcode: "NOERROR"},
		{name: "nsid only", site: func() *responder.DNS {
			return withOther(withNSID(responder.NewDNS(""), "ns3.sin.example"), dns.RcodeSuccess)
		},
			spec: spec.Spec{SiteRegex: siteRE}, identity: "ns3.sin.example", wantSite: "sin", rcode: "NOERROR", nsid: "ns3.sin.example"},
		{name: "nsid on . IN SOA", site: func() *responder.DNS {
			return withOther(withNSID(responder.NewDNS("unused"), "ns4.gru.example"), dns.RcodeSuccess)
		},
			spec: spec.Spec{QName: ".", QClass: "IN", QType: "SOA", SiteRegex: siteRE}, identity: "ns4.gru.example", wantSite: "gru", rcode: "NOERROR", nsid: "ns4.gru.example"},
		{name: "middlebox", site: func() *responder.DNS { return responder.NewDNS(responder.MiddleboxIdentity) },
			identity: responder.MiddleboxIdentity, wantSite: "opnsense.home.arpa", rcode: "NOERROR", suspect: true},
		{name: "refused", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeRefused) },
			kind: result.KindRefused, rcode: "REFUSED"},
		{name: "refused with nsid", site: func() *responder.DNS {
			return withNSID(withMode(responder.NewDNS("x"), responder.ModeRefused), "ns5.nrt.example")
		},
			spec: spec.Spec{SiteRegex: siteRE}, kind: result.KindRefused, rcode: "REFUSED", identity: "ns5.nrt.example", wantSite: "nrt", nsid: "ns5.nrt.example"},
		{name: "servfail", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeServfail) },
			kind: result.KindServfail, rcode: "SERVFAIL"},
		{name: "notimp bare header", site: func() *responder.DNS { return withMode(responder.NewDNS("x"), responder.ModeNotimpBare) },
			kind: result.KindNotimp, rcode: "NOTIMP"},
		{name: "other rcode", site: func() *responder.DNS { return withOther(responder.NewDNS("x"), dns.RcodeNameError) },
			spec: spec.Spec{QName: "nothing.invalid."}, kind: result.KindRcode, rcode: "NXDOMAIN"},
		{name: "mismatch", site: func() *responder.DNS {
			return withMode(responder.NewDNS(responder.MiddleboxIdentity), responder.ModeMismatch)
		},
			spec: spec.Spec{SiteRegex: `(.+)`}, kind: result.KindMismatch, rcode: "NOERROR", identity: responder.MiddleboxIdentity, suspect: true},
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
				sp := tc.spec
				sp.Target = testutil.Serve(t, d, "")
				sp.TCP = tcp
				r := measureDNSOnce(t, sp)
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
	r := measureDNSOnce(t, spec.Spec{Target: testutil.Serve(t, responder.NewDNS("a"), ""), QName: "HOSTNAME.BIND", QClass: "ch"})
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
			r := measureDNSOnce(t, spec.Spec{Target: testutil.Serve(t, d, "")})
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
		r := measureDNSOnce(t, spec.Spec{Target: testutil.Serve(t, d, ""), TCP: tcp, Timeout: spec.Duration(200 * time.Millisecond)})
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
	r := measureDNSOnce(t, spec.Spec{Target: addr})
	if r.ErrorKind != result.KindRefused || !strings.Contains(r.Error, "truncated") || r.DNS == nil || !r.DNS.TCP {
		t.Errorf("record %+v dns %+v: want a refused connection over TCP, with word that the UDP answer was truncated", r, r.DNS)
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
	r := measureDNSOnce(t, spec.Spec{Target: addr, Timeout: spec.Duration(5 * time.Second)})
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
		r := measureDNSOnce(t, spec.Spec{Target: addr, TCP: tcp, Timeout: spec.Duration(time.Second)})
		// UDP learns of the closed port from ICMP port unreachable, TCP from
		// a reset; either is refused, as for the tcp and http methods, and
		// the empty rcode tells it from a DNS REFUSED answer.
		if r.ErrorKind != result.KindRefused || !strings.Contains(r.Error, addr) || !strings.Contains(r.Error, "nothing listens") {
			t.Errorf("tcp=%v: kind %q error %q, want refused naming %s", tcp, r.ErrorKind, r.Error, addr)
		}
		if r.DNS == nil || r.DNS.Rcode != "" {
			t.Errorf("tcp=%v: dns %+v, want no rcode", tcp, r.DNS)
		}
	}
}

func TestMeasureDNSNoNSID(t *testing.T) {
	d := withNSID(responder.NewDNS("ns1.fra.example"), "secret")
	r := measureDNSOnce(t, spec.Spec{Target: testutil.Serve(t, d, ""), NoNSID: true})
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
		addr := testutil.Serve(t, withNSID(responder.NewDNS("ns6.ams.example"), "six"), "[::1]:0")
		r := measureDNSOnce(t, spec.Spec{Target: addr, TCP: tcp, SiteRegex: `^ns\d\.([a-z]{3})`})
		if !r.OK() || r.AF != 6 || r.Addr != "::1" || r.Site != "ams" || r.DNS.NSID != "six" || r.DNS.TCP != tcp {
			t.Errorf("tcp=%v: record %+v dns %+v", tcp, r, r.DNS)
		}
	}
}

func TestMeasureDNSBadQuestion(t *testing.T) {
	for _, sp := range []spec.Spec{{QClass: "XX"}, {QType: "NOPE"}, {QName: "a..b"}} {
		sp.Target = "127.0.0.1:53" // never dialled: the question fails first
		sp.Method = result.MethodDNS
		ident, err := spec.NewIdentifier(&sp)
		if err != nil {
			t.Fatal(err)
		}
		var r result.Record
		err = NewMeasurer(slog.New(slog.DiscardHandler)).measureDNS(t.Context(), Target{Spec: &sp, Ident: ident}, &r)
		if !errors.Is(err, spec.ErrBadSpec) {
			t.Errorf("%+v: err %v, want ErrBadSpec", sp, err)
		}
	}
}

func TestMeasureDNSCancelled(t *testing.T) {
	d := withMode(responder.NewDNS("x"), responder.ModeSilent)
	sp := spec.Spec{Target: testutil.Serve(t, d, ""), Method: result.MethodDNS}
	ident, err := spec.NewIdentifier(&sp)
	if err != nil {
		t.Fatal(err)
	}
	host, err := netip.ParseAddrPort(sp.Target)
	if err != nil {
		t.Fatal(err)
	}
	// No deadline: cancellation alone must end the wait.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	var r result.Record
	if err := NewMeasurer(slog.New(slog.DiscardHandler)).measureDNS(ctx, Target{Spec: &sp, Addr: host, Ident: ident}, &r); err == nil {
		t.Fatal("measured a silent server")
	}
	if e := time.Since(start); e > 1900*time.Millisecond {
		t.Errorf("cancellation took %v to end the exchange", e)
	}
}

// sourcePorts serves DNS over UDP with h and records the source port of
// every query, so that a test can tell which socket asked.
type sourcePorts struct {
	mu    sync.Mutex
	ports []int
}

func (s *sourcePorts) wrap(h func(w dns.ResponseWriter, req *dns.Msg, n int)) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		s.mu.Lock()
		s.ports = append(s.ports, w.RemoteAddr().(*net.UDPAddr).Port)
		n := len(s.ports)
		s.mu.Unlock()
		h(w, req, n)
	})
}

func (s *sourcePorts) get() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ports)
}

// idle counts the pool's idle sockets to addr.
func (p *dnsPool) idleTo(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns[netip.MustParseAddrPort(addr)])
}

func newTestMeasurer(t *testing.T, opts ...Option) *Measurer {
	t.Helper()
	m := NewMeasurer(slog.New(slog.DiscardHandler), opts...)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func measureWith(t *testing.T, m *Measurer, sp spec.Spec) result.Record {
	t.Helper()
	sp.Method = result.MethodDNS
	if sp.Timeout == 0 {
		sp.Timeout = spec.Duration(3 * time.Second)
	}
	recs, err := m.Measure(t.Context(), sp)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func TestDNSSocketReused(t *testing.T) {
	d := responder.NewDNS("ns1.fra.example")
	var seen sourcePorts
	addr := startUDPOnly(t, seen.wrap(func(w dns.ResponseWriter, req *dns.Msg, _ int) { d.ServeDNS(w, req) }))
	m := newTestMeasurer(t)
	for range 3 {
		if r := measureWith(t, m, spec.Spec{Target: addr}); !r.OK() || r.Identity != "ns1.fra.example" {
			t.Fatalf("record %+v", r)
		}
	}
	if p := seen.get(); len(p) != 3 || p[1] != p[0] || p[2] != p[0] {
		t.Errorf("source ports %v: want one socket for all three queries", p)
	}
	if n := m.dnsConns.idleTo(addr); n != 1 {
		t.Errorf("%d idle sockets, want 1", n)
	}

	// Without a pool every query has a socket of its own, closed after it.
	m0 := newTestMeasurer(t, WithDNSSockets(0))
	if r := measureWith(t, m0, spec.Spec{Target: addr}); !r.OK() {
		t.Fatalf("record %+v", r)
	}
	if n := m0.dnsConns.idleTo(addr); n != 0 {
		t.Errorf("WithDNSSockets(0): %d idle sockets, want none", n)
	}
}

// TestDNSSocketDiscardedAfterTimeout checks that an answer arriving after
// its query timed out cannot be read by the next query: the socket that
// timed out is closed, and the next query asks from another.
func TestDNSSocketDiscardedAfterTimeout(t *testing.T) {
	late, fresh := responder.NewDNS("late"), responder.NewDNS("fresh")
	release, lateSent := make(chan struct{}), make(chan struct{})
	var seen sourcePorts
	addr := startUDPOnly(t, seen.wrap(func(w dns.ResponseWriter, req *dns.Msg, n int) {
		if n == 1 {
			<-release
			late.ServeDNS(w, req)
			close(lateSent)
			return
		}
		fresh.ServeDNS(w, req)
	}))
	m := newTestMeasurer(t)
	if r := measureWith(t, m, spec.Spec{Target: addr, Timeout: spec.Duration(200 * time.Millisecond)}); r.ErrorKind != result.KindTimeout {
		t.Fatalf("first query: kind %q (%s), want a timeout", r.ErrorKind, r.Error)
	}
	close(release)
	select {
	case <-lateSent:
	case <-time.After(5 * time.Second):
		t.Fatal("the late answer was not sent in 5s")
	}
	if r := measureWith(t, m, spec.Spec{Target: addr}); !r.OK() || r.Identity != "fresh" {
		t.Fatalf("second query: record %+v, want identity fresh", r)
	}
	if p := seen.get(); len(p) != 2 || p[0] == p[1] {
		t.Errorf("source ports %v: the socket that timed out was used again", p)
	}
}

func TestDNSSocketDiscardedAfterBadAnswer(t *testing.T) {
	for _, mode := range []responder.Mode{responder.ModeMismatch, responder.ModeGarbage, responder.ModeRefused} {
		t.Run(string(mode), func(t *testing.T) {
			addr := testutil.Serve(t, withMode(responder.NewDNS("x"), mode), "")
			m := newTestMeasurer(t)
			r := measureWith(t, m, spec.Spec{Target: addr})
			if r.OK() {
				t.Fatalf("record %+v: want a failure", r)
			}
			// A refusal answers the question asked: the socket is clean.
			want := 0
			if mode == responder.ModeRefused {
				want = 1
			}
			if n := m.dnsConns.idleTo(addr); n != want {
				t.Errorf("%d idle sockets, want %d", n, want)
			}
		})
	}
}

// TestDNSPoolBounds runs more measurements at once than the pool keeps,
// then closes the Measurer.
func TestDNSPoolBounds(t *testing.T) {
	const inFlight, keep = 8, 2
	d := responder.NewDNS("ns1.fra.example")
	all := make(chan struct{})
	var arrived atomic.Int32
	addr := startUDPOnly(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		// The first inFlight queries wait for each other, so that as many
		// sockets are borrowed at once.
		if arrived.Add(1) == inFlight {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
		d.ServeDNS(w, req)
	}))
	m := newTestMeasurer(t, WithDNSSockets(keep))
	var wg sync.WaitGroup
	recs := make([]result.Record, inFlight)
	for i := range inFlight {
		wg.Go(func() {
			rs, err := m.Measure(t.Context(), spec.Spec{Target: addr, Method: result.MethodDNS, Timeout: spec.Duration(10 * time.Second)})
			if err == nil {
				recs[i] = rs[0]
			}
		})
	}
	wg.Wait()
	for i, r := range recs {
		if !r.OK() {
			t.Errorf("measurement %d: %+v", i, r)
		}
	}
	if n := m.dnsConns.idleTo(addr); n != keep {
		t.Errorf("%d idle sockets after %d at once, want %d", n, inFlight, keep)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.dnsConns.idleTo(addr); n != 0 {
		t.Errorf("%d idle sockets after Close, want none", n)
	}
	// Still usable after Close, but keeps nothing.
	if r := measureWith(t, m, spec.Spec{Target: addr}); !r.OK() {
		t.Errorf("after Close: %+v", r)
	}
	if n := m.dnsConns.idleTo(addr); n != 0 {
		t.Errorf("%d idle sockets after a measurement after Close, want none", n)
	}
}

func TestDNSPoolIdleTimeout(t *testing.T) {
	addr := netip.MustParseAddrPort(testutil.Serve(t, responder.NewDNS("x"), ""))
	p := newDNSPool(4, 50*time.Millisecond)
	defer p.close()
	var conns []*pooledConn
	for range 2 {
		pc, err := p.get(t.Context(), addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, pc)
	}
	for _, pc := range conns {
		p.put(addr, pc)
	}
	testutil.WaitFor(t, 5*time.Second, "idle sockets reaped after a 50ms idle timeout", func() bool { return p.idleTo(addr.String()) == 0 })
	for _, pc := range conns {
		if _, err := pc.co.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write on a reaped socket: %v, want net.ErrClosed", err)
		}
	}
}

// TestDNSPoolReapKeepsFresh reaps a stack holding one socket past its idle
// time and one within it.
func TestDNSPoolReapKeepsFresh(t *testing.T) {
	addr := netip.MustParseAddrPort(testutil.Serve(t, responder.NewDNS("x"), ""))
	p := newDNSPool(4, time.Hour)
	defer p.close()
	old, err := p.get(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := p.get(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	p.put(addr, old)
	p.put(addr, fresh)
	p.mu.Lock()
	old.since = old.since.Add(-2 * time.Hour)
	p.mu.Unlock()
	p.reap()
	p.mu.Lock()
	s, total, rescheduled := p.conns[addr], p.total, p.reaper != nil
	p.mu.Unlock()
	if len(s) != 1 || s[0] != fresh || total != 1 || !rescheduled {
		t.Errorf("after reap: stack %v total %d reaper %v, want the fresh socket only, and another reap", s, total, rescheduled)
	}
	if _, err := old.co.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write on the reaped socket: %v, want net.ErrClosed", err)
	}
}

// TestDNSSocketNewID checks that a query never reuses the ID of the last
// query on its socket, whose duplicate answer could still be on the way.
func TestDNSSocketNewID(t *testing.T) {
	addr := netip.MustParseAddrPort(testutil.Serve(t, responder.NewDNS("x"), ""))
	p := newDNSPool(1, time.Minute)
	defer p.close()
	pc, err := p.get(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := new(dns.Msg)
	msg.SetQuestion("hostname.bind.", dns.TypeTXT)
	msg.Question[0].Qclass = dns.ClassCHAOS
	pc.lastID = msg.Id
	p.put(addr, pc)
	old := msg.Id
	resp, _, err := exchangeDNS(t.Context(), p, msg, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Id == old || resp.Id != msg.Id {
		t.Errorf("query ID %d after a socket's last ID %d, answer ID %d: want a new ID, answered", msg.Id, old, resp.Id)
	}
}
