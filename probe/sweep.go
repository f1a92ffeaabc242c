package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Sweep defaults.
const (
	// DefaultSweepInterval paces the echoes at 1000 a second: fast enough
	// for a /16 of targets in a minute, slow enough that the socket's
	// receive buffer and routers' ICMP rate limits keep up.
	DefaultSweepInterval = time.Millisecond
	// DefaultSweepWait is how long to wait for replies after the last
	// echo; an RTT above it counts as lost.
	DefaultSweepWait = 2 * time.Second
	// maxSweepPerFamily: each echo's sequence number is unique within its
	// family's socket, and a sequence number has 16 bits.
	maxSweepPerFamily = 1 << 16
	// maxSweepLag bounds how far the sender may fall behind its schedule
	// and catch up: 10 echoes back to back at the default interval.
	maxSweepLag = 10 * time.Millisecond
)

// SweepOptions configures Sweep. The zero value sends unprivileged echoes
// with the default pacing and wait.
type SweepOptions struct {
	// Privileged uses raw ICMP sockets (root or CAP_NET_RAW) instead of
	// unprivileged ping sockets (Linux: net.ipv4.ping_group_range).
	Privileged bool
	// Interval is the gap between two echoes; 0 means DefaultSweepInterval.
	Interval time.Duration
	// Wait bounds the wait for replies after the last echo is sent; 0
	// means DefaultSweepWait. ctx bounds the whole sweep in any case.
	Wait time.Duration
}

// SweepResult is the outcome for one address.
type SweepResult struct {
	Addr netip.Addr
	// Replied is true when an echo reply came back in time; RTT is then
	// its round-trip time.
	Replied bool
	RTT     time.Duration
	// Err is set when the echo could not be sent (no route, say).
	Err error
}

// Sweep sends one ICMP echo to each address and returns, in the order of
// addrs, which answered and how fast. It shares one socket per address
// family among all addresses, so a sweep of thousands of targets costs two
// sockets, not thousands; at most 65536 addresses per family.
//
// Replies are matched by source address and sequence number, which is
// unique per echo. The echo id is checked only on raw sockets: on Linux,
// unprivileged ping sockets replace it with their own and deliver only
// their own replies. A random token in the payload keeps replies to other
// processes' echoes out on raw sockets, which see all ICMP.
//
// The returned error is for a sweep that could not run at all: too many
// addresses, or a socket the system would not open (wrapping
// ErrICMPPermission, with a hint on how to allow it).
func Sweep(ctx context.Context, addrs []netip.Addr, opts SweepOptions) ([]SweepResult, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultSweepInterval
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultSweepWait
	}
	out := make([]SweepResult, len(addrs))
	if len(addrs) == 0 {
		return out, nil
	}
	var fams [2]*sweepFamily // IPv4, IPv6
	for i, a := range addrs {
		out[i].Addr = a
		f := 0
		if a.Is6() && !a.Is4In6() {
			f = 1
		}
		if fams[f] == nil {
			fams[f] = &sweepFamily{v6: f == 1}
		}
		fams[f].index = append(fams[f].index, i)
	}
	for _, f := range fams {
		if f != nil && len(f.index) > maxSweepPerFamily {
			return nil, fmt.Errorf("sweep of %d addresses of one family: at most %d per call, split the list", len(f.index), maxSweepPerFamily)
		}
	}

	var rnd [10]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never returns an error

	for _, f := range fams {
		if f == nil {
			continue
		}
		if err := f.open(opts.Privileged); err != nil {
			closeAll(fams)
			return nil, err
		}
	}
	defer closeAll(fams)

	s := &sweep{id: int(binary.BigEndian.Uint16(rnd[8:])), token: rnd[:8],
		out: out, sent: make([]time.Time, len(addrs)), pending: len(addrs), done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, f := range fams {
		if f != nil {
			wg.Go(func() { s.receive(f) })
		}
	}
	s.send(ctx, fams, opts.Interval)

	wait := time.NewTimer(opts.Wait)
	select {
	case <-s.done:
	case <-wait.C:
	case <-ctx.Done():
	}
	wait.Stop()
	for _, f := range fams {
		if f != nil {
			// Unblocks the reader; it then sees the deadline and returns.
			_ = f.conn.SetReadDeadline(time.Now())
		}
	}
	wg.Wait()
	return out, nil
}

// sweepFamily is the socket of one address family and the indexes (into
// addrs) of its addresses; an echo's sequence number is its position in
// index.
type sweepFamily struct {
	v6    bool
	conn  net.PacketConn
	udp   bool // a ping socket: the kernel owns the echo ID
	index []int
}

func (f *sweepFamily) open(privileged bool) error {
	c, err := listenSweep(f.v6, privileged)
	if err != nil {
		_, err = icmpSocketError(err, privileged)
		network, _ := sweepNetwork(f.v6, privileged)
		return fmt.Errorf("sweep: open %s socket: %w", network, err)
	}
	f.conn, f.udp = c, !privileged
	return nil
}

// sweepNetwork names the socket of a family and mode the way
// golang.org/x/net/icmp.ListenPacket takes it, with the address to bind.
func sweepNetwork(v6, privileged bool) (network, addr string) {
	switch {
	case v6 && privileged:
		return "ip6:ipv6-icmp", "::"
	case v6:
		return "udp6", "::"
	case privileged:
		return "ip4:icmp", "0.0.0.0"
	}
	return "udp4", "0.0.0.0"
}

func closeAll(fams [2]*sweepFamily) {
	for _, f := range fams {
		if f != nil && f.conn != nil {
			_ = f.conn.Close()
		}
	}
}

// sweep is the state shared by the sender and the readers.
type sweep struct {
	id    int
	token []byte

	mu      sync.Mutex
	out     []SweepResult
	sent    []time.Time
	pending int // echoes sent or to be sent and not yet answered
	done    chan struct{}
}

// send sends one echo per address, interleaving families, echo number seq
// of each family due interval*seq after the first. Echoes already due go
// out back to back, so that a timer coarser than the interval slows the
// sweep down no more than the interval asks, and a tiny interval sends as
// fast as the sockets take the echoes (as fping -i 0 does). After a stall
// (the process off the CPU) at most maxSweepLag worth of echoes goes out at
// once: the schedule slips rather than bursts.
func (s *sweep) send(ctx context.Context, fams [2]*sweepFamily, interval time.Duration) {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for seq := 0; ; seq++ {
		more := false
		for _, f := range fams {
			if f == nil || seq >= len(f.index) {
				continue
			}
			more = true
			s.sendOne(f, seq)
		}
		if !more {
			return
		}
		lag := time.Since(start.Add(time.Duration(seq+1) * interval))
		if lag > maxSweepLag {
			start = start.Add(lag - maxSweepLag)
		}
		if lag < 0 {
			timer.Reset(-lag)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			s.unsent(fams, seq+1, ctx.Err())
			return
		}
	}
}

// unsent marks every echo from number seq on as never sent, for err.
func (s *sweep) unsent(fams [2]*sweepFamily, seq int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fams {
		for q := seq; f != nil && q < len(f.index); q++ {
			s.out[f.index[q]].Err = err
		}
	}
}

func (s *sweep) sendOne(f *sweepFamily, seq int) {
	i := f.index[seq]
	a := s.out[i].Addr
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if f.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: s.id, Seq: seq, Data: s.token}}
	// The kernel fills the ICMPv6 checksum, so no pseudo-header is needed.
	b, err := msg.Marshal(nil)
	if err == nil {
		ip := net.IP(a.Unmap().AsSlice())
		var dst net.Addr = &net.IPAddr{IP: ip, Zone: a.Zone()}
		if f.udp {
			dst = &net.UDPAddr{IP: ip, Zone: a.Zone()}
		}
		s.mu.Lock()
		s.sent[i] = time.Now()
		s.mu.Unlock()
		_, err = f.conn.WriteTo(b, dst)
	}
	if err != nil {
		s.mu.Lock()
		s.out[i].Err = fmt.Errorf("send echo to %s: %w", a, err)
		s.answered()
		s.mu.Unlock()
	}
}

// answered counts one echo as settled; s.mu must be held.
func (s *sweep) answered() {
	s.pending--
	if s.pending == 0 {
		close(s.done)
	}
}

// receive reads replies on f until its read deadline is set to the past.
func (s *sweep) receive(f *sweepFamily) {
	proto := 1 // ICMPv4
	if f.v6 {
		proto = 58 // ICMPv6
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := f.conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			// The deadline set at the end of the sweep, or a socket that
			// broke: either way nothing more will come.
			return
		}
		s.match(f, proto, buf[:n], peer, now)
	}
}

// match records the reply in b from peer if it answers one of our echoes.
func (s *sweep) match(f *sweepFamily, proto int, b []byte, peer net.Addr, now time.Time) {
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
		return
	}
	echo, ok := m.Body.(*icmp.Echo)
	if !ok || echo.Seq >= len(f.index) || !bytes.Equal(echo.Data, s.token) {
		return
	}
	if !f.udp && echo.ID != s.id {
		return
	}
	var ip net.IP
	switch p := peer.(type) {
	case *net.IPAddr:
		ip = p.IP
	case *net.UDPAddr:
		ip = p.IP
	}
	from, ok := netip.AddrFromSlice(ip)
	i := f.index[echo.Seq]
	if !ok || from.Unmap() != s.out[i].Addr.Unmap().WithZone("") {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.out[i]
	if r.Replied || r.Err != nil || s.sent[i].IsZero() {
		return // a duplicate, or a reply racing a failed send
	}
	r.Replied, r.RTT = true, now.Sub(s.sent[i])
	s.answered()
}
