// Package responder behaves like one site of an anycast service: a DNS
// server that answers CHAOS identity questions and NSID the way coredns'
// chaos plugin does, and an HTTP handler that names its point of presence the
// way CDNs do. Tests, the lab and the demo start one per simulated site.
//
// The DNS server can also misbehave in the ways real networks do (SERVFAIL,
// a bare NOTIMP header, silence, interception, truncation, garbage), so that
// the probe's handling of each can be tested against real sockets.
package responder

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/dnstxt"
)

// Mode selects how a DNS server answers. The zero value answers correctly.
type Mode string

// The modes. Each reproduces an answer seen from real servers or middleboxes.
const (
	// ModeNormal answers like coredns' chaos plugin.
	ModeNormal Mode = ""
	// ModeServfail answers every question with SERVFAIL (Google Public DNS
	// does so for CHAOS).
	ModeServfail Mode = "servfail"
	// ModeRefused answers every question with REFUSED (OpenDNS).
	ModeRefused Mode = "refused"
	// ModeNotimpBare answers with a bare 12-byte NOTIMP header and no
	// question section, as a K-root server did in RIPE Atlas data.
	ModeNotimpBare Mode = "notimp-bare"
	// ModeSilent never answers, so clients time out.
	ModeSilent Mode = "silent"
	// ModeMismatch answers with another question name and class, as a
	// middlebox that rewrites or intercepts port 53 may.
	ModeMismatch Mode = "mismatch"
	// ModeTruncate sets the TC bit with an empty answer over UDP, whatever
	// the size, and answers in full over TCP.
	ModeTruncate Mode = "truncate"
	// ModeGarbage answers with bytes that do not parse as a DNS message
	// (the query's ID, then a header promising records that never come).
	ModeGarbage Mode = "garbage"
	// ModeOversized pads the identity TXT record to OversizedLen bytes of
	// text, so that UDP answers are truncated and TCP carries it whole.
	ModeOversized Mode = "oversized"
)

// Modes lists every mode, for lab configurations and table tests.
var Modes = []Mode{ModeNormal, ModeServfail, ModeRefused, ModeNotimpBare, ModeSilent,
	ModeMismatch, ModeTruncate, ModeGarbage, ModeOversized}

const (
	// DefaultVersion answers version.bind. and version.server.
	DefaultVersion = "catchmap-responder"
	// MiddleboxIdentity is what a home router that intercepts CHAOS queries
	// answers; set it as Identity to play one.
	MiddleboxIdentity = "OPNsense.home.arpa"
	// MismatchQName is the question name ModeMismatch answers for.
	MismatchQName = "intercepted.invalid."
	// OversizedLen is the length of the TXT text ModeOversized sends.
	OversizedLen = 8192
	// ednsSize is the buffer size the server advertises, the DNS flag day
	// 2020 value.
	ednsSize = 1232
)

// DNS is one simulated site's DNS server, serving on UDP and TCP at the same
// address. Set its fields before Start and do not change them afterwards.
type DNS struct {
	// Identity answers CH TXT hostname.bind. and id.server.; it may hold
	// any bytes, quotes and spaces included. Empty: those questions get
	// OtherRcode, like a server that does not reveal itself.
	Identity string
	// Version answers CH TXT version.bind. and version.server.; empty:
	// those questions get OtherRcode.
	Version string
	// NSID is sent in EDNS option 3 when a query asks for it; nil: never.
	NSID []byte
	// OtherRcode answers every other question. NewDNS sets REFUSED, as
	// coredns does; NOERROR answers with an empty answer section (still
	// carrying NSID), as an authoritative server does for a name it has
	// but a type it lacks.
	OtherRcode int
	// Mode makes the server misbehave; see the Mode constants.
	Mode Mode

	udpQueries, tcpQueries atomic.Int64

	mu      sync.Mutex
	servers []*dns.Server
	done    chan error // one value per server goroutine when it ends
	running int        // server goroutines not yet received from done
}

// NewDNS returns a well-behaved server that names itself identity.
func NewDNS(identity string) *DNS {
	return &DNS{Identity: identity, Version: DefaultVersion, OtherRcode: dns.RcodeRefused}
}

// Queries returns how many queries the server has received over UDP and over
// TCP, so tests can check which transport a client used.
func (d *DNS) Queries() (udp, tcp int64) { return d.udpQueries.Load(), d.tcpQueries.Load() }

// Start listens on addr ("127.0.0.1:0" when empty: a free port) over UDP
// and TCP, waits until both servers are serving, and returns the address.
// ctx bounds the wait. Call Shutdown to stop.
func (d *DNS) Start(ctx context.Context, addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.servers != nil {
		return "", errors.New("responder: DNS server already started: use a new DNS for another site")
	}
	pc, l, err := listenBoth(addr)
	if err != nil {
		return "", err
	}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	d.servers = []*dns.Server{
		{PacketConn: pc, Handler: d, NotifyStartedFunc: notify},
		{Listener: l, Handler: d, NotifyStartedFunc: notify},
	}
	d.done = make(chan error, len(d.servers))
	d.running = len(d.servers)
	for _, s := range d.servers {
		go func() { d.done <- s.ActivateAndServe() }()
	}
	for range d.servers {
		select {
		case <-started:
		case err := <-d.done:
			d.running--
			d.shutdownLocked(context.Background())
			return "", fmt.Errorf("responder: DNS server on %s failed to start: %w", pc.LocalAddr(), err)
		case <-ctx.Done():
			d.shutdownLocked(context.Background())
			return "", fmt.Errorf("responder: DNS server on %s did not start in time: %w", pc.LocalAddr(), ctx.Err())
		}
	}
	return pc.LocalAddr().String(), nil
}

// listenBoth opens UDP and TCP on the same address. With port 0 the kernel
// picks a UDP port that TCP may already use elsewhere, so it tries a few.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("responder: bad listen address %q: use host:port such as 127.0.0.1:0", addr)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("responder: listen udp %s: %w", addr, err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("responder: listen tcp beside udp on %s: %w", addr, lastErr)
}

// Shutdown stops both servers and waits for them, at most until ctx ends.
func (d *DNS) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shutdownLocked(ctx)
}

func (d *DNS) shutdownLocked(ctx context.Context) error {
	var errs []error
	for _, s := range d.servers {
		// "server not started" is expected after a failed Start; closing
		// the sockets below ends such a server's goroutine all the same.
		s.ShutdownContext(ctx)
		if s.PacketConn != nil {
			s.PacketConn.Close()
		}
		if s.Listener != nil {
			s.Listener.Close()
		}
	}
	for ; d.running > 0; d.running-- {
		select {
		case err := <-d.done:
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("responder: DNS server did not stop in time: %w", ctx.Err())
		}
	}
	d.servers = nil
	return errors.Join(errs...)
}

// ServeDNS answers one query. DNS is a dns.Handler, so it can also be
// mounted on a server the caller runs.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	tcp := w.LocalAddr().Network() == "tcp"
	if tcp {
		d.tcpQueries.Add(1)
	} else {
		d.udpQueries.Add(1)
	}
	switch d.Mode {
	case ModeSilent:
		return
	case ModeNotimpBare:
		// Written by hand: dns.Msg always packs the question it holds.
		h := make([]byte, 12)
		h[0], h[1] = byte(req.Id>>8), byte(req.Id)
		h[2] = 0x80 // QR
		h[3] = dns.RcodeNotImplemented
		w.Write(h)
		return
	case ModeGarbage:
		// ID, QR, QDCOUNT=1 and ANCOUNT=1, then bytes that end mid-name.
		w.Write([]byte{byte(req.Id >> 8), byte(req.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0x3f, 'g', 'a', 'r', 'b'})
		return
	}
	resp := d.answer(req, tcp)
	w.WriteMsg(resp)
}

// answer builds the reply to req for everything but the raw-bytes modes.
func (d *DNS) answer(req *dns.Msg, tcp bool) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	reqOpt := req.IsEdns0()
	d.addEDNS(resp, reqOpt)

	switch d.Mode {
	case ModeServfail:
		resp.Rcode = dns.RcodeServerFailure
		return resp
	case ModeRefused:
		resp.Rcode = dns.RcodeRefused
		return resp
	case ModeTruncate:
		if !tcp {
			resp.Truncated = true
			return resp
		}
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	q := req.Question[0]
	text, ok := d.chaosText(q)
	if !ok {
		resp.Rcode = d.OtherRcode
		return resp
	}
	if d.Mode == ModeMismatch {
		q = dns.Question{Name: MismatchQName, Qtype: dns.TypeTXT, Qclass: dns.ClassINET}
		resp.Question = []dns.Question{q}
	}
	resp.Answer = []dns.RR{&dns.TXT{
		Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: q.Qclass},
		Txt: txtStrings(text),
	}}
	if !tcp {
		size := dns.MinMsgSize
		if reqOpt != nil {
			size = int(min(reqOpt.UDPSize(), ednsSize))
		}
		resp.Truncate(size)
	}
	return resp
}

// chaosText returns the text for a CHAOS identity or version question.
func (d *DNS) chaosText(q dns.Question) (string, bool) {
	if q.Qclass != dns.ClassCHAOS || q.Qtype != dns.TypeTXT {
		return "", false
	}
	var text string
	switch strings.ToLower(q.Name) {
	case "hostname.bind.", "id.server.":
		text = d.Identity
		if d.Mode == ModeOversized {
			text += strings.Repeat("x", max(0, OversizedLen-len(text)))
		}
	case "version.bind.", "version.server.":
		text = d.Version
	}
	return text, text != ""
}

// addEDNS echoes EDNS when the query used it, with NSID when asked.
func (d *DNS) addEDNS(resp *dns.Msg, reqOpt *dns.OPT) {
	if reqOpt == nil {
		return
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(ednsSize)
	if d.NSID != nil && asksNSID(reqOpt) {
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString(d.NSID)})
	}
	resp.Extra = append(resp.Extra, opt)
}

func asksNSID(opt *dns.OPT) bool {
	for _, o := range opt.Option {
		if o.Option() == dns.EDNS0NSID {
			return true
		}
	}
	return false
}

// txtStrings splits text into TXT character-strings of at most 255 bytes,
// escaped the way miekg/dns packs them, so every byte goes out as given.
func txtStrings(text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 255)
		out = append(out, dnstxt.Escape(text[:n]))
		text = text[n:]
	}
	return out
}
