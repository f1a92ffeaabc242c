package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// ednsBufferSize is the UDP payload size advertised with NSID: the DNS flag
// day 2020 value, which avoids IP fragmentation on nearly every path.
const ednsBufferSize = 1232

// measureDNS asks the target the identifier's question, with an EDNS NSID
// request unless the spec says not to, over UDP (again over TCP when the
// answer is truncated) or over TCP only when the spec asks. The identity is
// the answer's TXT text, else its NSID.
func (m *Measurer) measureDNS(ctx context.Context, t Target, r *result.Record) error {
	q, err := t.Ident.DNSQuestion()
	if err != nil {
		return fmt.Errorf("%w: %v", spec.ErrBadSpec, err)
	}
	r.DNS = &result.DNS{QName: q.Name, QClass: spec.ClassName(q.Qclass), QType: spec.TypeName(q.Qtype)}

	msg := new(dns.Msg)
	msg.SetQuestion(q.Name, q.Qtype)
	msg.Question[0].Qclass = q.Qclass
	if !t.Spec.NoNSID {
		msg.SetEdns0(ednsBufferSize, false)
		opt := msg.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}

	network := "udp"
	if t.Spec.TCP {
		network = "tcp"
	}
	resp, rtt, err := exchangeDNS(ctx, m.dnsConns, msg, network, t.Addr)
	retried := false
	if err == nil && resp.Truncated && network == "udp" {
		network, retried = "tcp", true
		resp, rtt, err = exchangeDNS(ctx, m.dnsConns, msg, network, t.Addr)
	}
	r.DNS.TCP = network == "tcp"
	if err != nil {
		r.ErrorKind = exchangeErrorKind(ctx, err)
		var hint string
		switch r.ErrorKind {
		case result.KindTimeout:
			hint = "no answer before the measurement deadline (raise the timeout, or check that the target serves DNS on this port)"
		case result.KindMalformed:
			r.RTTMs = ms(rtt)
			hint = "the answer does not parse as a DNS message (is something other than a DNS server on this port?)"
		case result.KindRefused:
			hint = "nothing listens on this port (the connection was refused; check the address and port)"
		default:
			hint = "the exchange failed"
		}
		if retried {
			hint = "the UDP answer was truncated, and over TCP " + hint
		}
		err = fmt.Errorf("dns %s to %s over %s: %s: %w", questionString(q), t.Addr, network, hint, err)
		r.Error = err.Error()
		return err
	}
	r.RTTMs = ms(rtt)
	resp.Compress = true
	r.DNS.Size = resp.Len()

	if err := IdentifyDNS(t.Ident, q, resp, r); err != nil {
		err = fmt.Errorf("dns to %s: %w", t.Addr, err)
		r.Error = err.Error()
		return err
	}
	return nil
}

// exchangeDNS sends msg to addr over network and reads the answer.
//
// Over UDP it borrows a connected socket from pool and gives it back only
// after a clean exchange: the answer arrived, carries the query's ID (miekg/dns
// skips answers with other IDs on UDP) and answers the question asked. After
// anything else (an error, a timeout, cancellation, a malformed or
// mismatched answer) the socket is closed, so that an answer arriving late
// can never be read as the answer to the next query. TCP dials every time.
func exchangeDNS(ctx context.Context, pool *dnsPool, msg *dns.Msg, network string, addr netip.AddrPort) (*dns.Msg, time.Duration, error) {
	if network == "tcp" {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr.String())
		if err != nil {
			return nil, 0, err
		}
		co := &dns.Conn{Conn: c}
		defer co.Close()
		resp, rtt, _, err := exchangeOn(ctx, co, msg)
		return resp, rtt, err
	}
	pc, err := pool.get(ctx, addr)
	if err != nil {
		return nil, 0, err
	}
	if msg.Id == pc.lastID {
		// A second answer to the socket's previous query (a duplicate
		// datagram) must not pass for the answer to this one.
		msg.Id++
	}
	pc.co.UDPSize = 0 // as on a fresh socket: the exchange sizes it from msg
	resp, rtt, open, err := exchangeOn(ctx, pc.co, msg)
	if err != nil || !open || !resp.Response || !sameQuestion(resp.Question, msg.Question[0]) {
		_ = pc.co.Close()
		return resp, rtt, err
	}
	pc.lastID = msg.Id
	pool.put(addr, pc)
	return resp, rtt, nil
}

// exchangeOn sends msg on co and reads the answer. open is false when
// ctx ended during the exchange: co is then closed.
//
// miekg/dns caps every exchange at 2s unless Client.Timeout is set, and
// obeys only a context's deadline, not its cancellation. So Timeout is set
// to the context's remaining time (the context alone bounds the exchange)
// and cancellation closes the connection.
func exchangeOn(ctx context.Context, co *dns.Conn, msg *dns.Msg) (resp *dns.Msg, rtt time.Duration, open bool, err error) {
	timeout := 24 * time.Hour // no deadline: cancellation alone ends the wait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, 0, true, context.DeadlineExceeded
		}
	}
	c := &dns.Client{Timeout: timeout}
	stop := context.AfterFunc(ctx, func() { _ = co.Close() })
	resp, rtt, err = c.ExchangeWithConnContext(ctx, msg, co)
	return resp, rtt, stop(), err
}

// DefaultDNSSockets is how many idle UDP sockets a Measurer keeps per DNS
// server unless WithDNSSockets says otherwise: as many as `catchmap
// measure` runs measurements at once by default, so that a run reuses its
// sockets rather than opening one per query.
const DefaultDNSSockets = 32

const (
	// maxIdleDNSSockets bounds the idle sockets of all servers together,
	// so that a probe measuring thousands of servers does not hold a
	// socket for each.
	maxIdleDNSSockets = 256
	// dnsIdleTimeout closes a socket unused this long: a probe measuring
	// in rounds minutes apart gains nothing from keeping it.
	dnsIdleTimeout = 10 * time.Second
)

// dnsPool keeps connected UDP sockets to DNS servers for reuse, at most
// perServer idle ones per server address and maxIdleDNSSockets in all,
// each for at most idle time. A measurement borrows a socket with get and
// hands it back with put, or closes it itself.
type dnsPool struct {
	perServer int
	idle      time.Duration

	mu     sync.Mutex
	conns  map[netip.AddrPort][]*pooledConn // a stack per server: newest last
	total  int
	reaper *time.Timer // runs reap while any socket is idle
	closed bool
}

// pooledConn is a connected UDP socket and what its last exchange left.
type pooledConn struct {
	co     *dns.Conn
	lastID uint16    // ID of the query last answered on it
	since  time.Time // when it went idle
}

func newDNSPool(perServer int, idle time.Duration) *dnsPool {
	return &dnsPool{perServer: perServer, idle: idle, conns: map[netip.AddrPort][]*pooledConn{}}
}

// get returns an idle socket to addr, the most recently used one, or a new
// one when none is idle.
func (p *dnsPool) get(ctx context.Context, addr netip.AddrPort) (*pooledConn, error) {
	p.mu.Lock()
	if s := p.conns[addr]; len(s) > 0 {
		pc := s[len(s)-1]
		s[len(s)-1] = nil
		// An emptied stack stays (reap drops it), so that the next put
		// does not allocate a new one.
		p.conns[addr] = s[:len(s)-1]
		p.total--
		p.mu.Unlock()
		return pc, nil
	}
	p.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return nil, err
	}
	// The first query's ID is random, so any lastID will do.
	return &pooledConn{co: &dns.Conn{Conn: c}}, nil
}

// put makes pc idle, or closes it when the pool is full or closed.
func (p *dnsPool) put(addr netip.AddrPort, pc *pooledConn) {
	p.mu.Lock()
	s := p.conns[addr]
	if p.closed || len(s) >= p.perServer || p.total >= maxIdleDNSSockets {
		p.mu.Unlock()
		_ = pc.co.Close()
		return
	}
	pc.since = time.Now()
	p.conns[addr] = append(s, pc)
	p.total++
	if p.reaper == nil {
		p.reaper = time.AfterFunc(p.idle, p.reap)
	}
	p.mu.Unlock()
}

// reap closes the sockets idle for p.idle or longer, and runs again when
// the oldest of the others would be. It drops empty stacks, so that the map
// does not grow with every server ever measured.
func (p *dnsPool) reap() {
	now := time.Now()
	var stale []*pooledConn
	p.mu.Lock()
	oldest := now
	for addr, s := range p.conns {
		// Each stack is in the order its sockets went idle.
		n := 0
		for n < len(s) && now.Sub(s[n].since) >= p.idle {
			n++
		}
		stale = append(stale, s[:n]...)
		p.total -= n
		if n == len(s) {
			delete(p.conns, addr)
			continue
		}
		if s[n].since.Before(oldest) {
			oldest = s[n].since
		}
		p.conns[addr] = slices.Delete(s, 0, n)
	}
	p.reaper = nil
	if p.total > 0 && !p.closed {
		p.reaper = time.AfterFunc(oldest.Add(p.idle).Sub(now), p.reap)
	}
	p.mu.Unlock()
	for _, pc := range stale {
		_ = pc.co.Close()
	}
}

// close closes every idle socket; sockets handed back later are closed too.
func (p *dnsPool) close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.total, p.closed = map[netip.AddrPort][]*pooledConn{}, 0, true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	p.mu.Unlock()
	for _, s := range conns {
		for _, pc := range s {
			_ = pc.co.Close()
		}
	}
}

// exchangeErrorKind classifies a failed exchange. A port that refuses the
// connection (over UDP, an ICMP port unreachable) is KindRefused, as for the
// tcp and http methods; the record's empty dns.rcode tells it from a REFUSED
// rcode, which comes with an answer.
func exchangeErrorKind(ctx context.Context, err error) result.ErrorKind {
	var dnsErr *dns.Error
	switch {
	case ctx.Err() != nil:
		return classify(ctx.Err())
	case errors.As(err, &dnsErr), errors.Is(err, io.ErrUnexpectedEOF):
		// The answer arrived but does not unpack, or a TCP answer was cut
		// short of the length it announced.
		return result.KindMalformed
	}
	return classify(err)
}
