// Package rawsocktest is a fake network for the sweep's tests: sites open
// fake sockets on it, what a site sends comes back as echo replies to the
// site a routing function names, and tests inject packets of their own. It
// needs no privilege and sends nothing.
package rawsocktest

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/catchmap/catchmap/sweep/rawsock"
)

// Route says what the network does with a probe from site to dst: which
// site catches the reply, from which address, or nothing (ok false).
type Route func(site string, dst netip.Addr) (catcher string, from netip.Addr, ok bool)

// Probe is an echo request a site sent.
type Probe struct {
	Site string
	Dst  netip.Addr
	At   time.Time
}

// queueLen is how many batches a fake catching socket holds before it
// drops, as a full receive buffer would.
const queueLen = 1 << 12

// Net is a fake network.
type Net struct {
	route Route

	mu     sync.Mutex
	sites  map[string]*catching
	sent   []Probe
	open   int // sending sockets open
	refuse error
}

// Refuse makes every send fail with err, as a kernel with no route would;
// nil sends again.
func (n *Net) Refuse(err error) {
	n.mu.Lock()
	n.refuse = err
	n.mu.Unlock()
}

// New returns a network that routes with route; nil routes every reply
// from the probed address back to the sending site.
func New(route Route) *Net {
	if route == nil {
		route = func(site string, dst netip.Addr) (string, netip.Addr, bool) { return site, dst, true }
	}
	return &Net{route: route, sites: map[string]*catching{}}
}

// Site returns the opener of site's sockets.
func (n *Net) Site(name string) rawsock.Opener { return opener{n, name} }

// Inject delivers replies to site's catching socket, as if from outside.
func (n *Net) Inject(site string, rs ...rawsock.Reply) {
	n.mu.Lock()
	c := n.sites[site]
	n.mu.Unlock()
	if c != nil {
		c.deliver(rs)
	}
}

// Probes returns what was sent, in order.
func (n *Net) Probes() []Probe {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Probe(nil), n.sent...)
}

// OpenSenders counts the sending sockets open now.
func (n *Net) OpenSenders() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.open
}

type opener struct {
	n    *Net
	site string
}

func (o opener) Catch(addr netip.Addr, rcvbuf int) (rawsock.Catching, error) {
	c := &catching{in: make(chan []rawsock.Reply, queueLen), closed: make(chan struct{}), rcvbuf: rcvbuf, addr: addr}
	o.n.mu.Lock()
	defer o.n.mu.Unlock()
	if o.n.sites[o.site] != nil {
		return nil, errors.New("rawsocktest: site " + o.site + " has a catching socket already")
	}
	o.n.sites[o.site] = c
	return c, nil
}

func (o opener) Send(addr netip.Addr) (rawsock.Sending, error) {
	o.n.mu.Lock()
	o.n.open++
	o.n.mu.Unlock()
	return &sending{o: o, addr: addr}, nil
}

type catching struct {
	addr   netip.Addr
	in     chan []rawsock.Reply
	closed chan struct{}
	once   sync.Once
	rcvbuf int
	mu     sync.Mutex
	drops  uint32
}

var errClosed = errors.New("rawsocktest: socket closed")

func (c *catching) deliver(rs []rawsock.Reply) {
	for i := range rs {
		rs[i].To = c.addr
	}
	select {
	case c.in <- rs:
	default:
		c.mu.Lock()
		c.drops += uint32(len(rs))
		c.mu.Unlock()
	}
}

func (c *catching) Read() ([]rawsock.Reply, int, error) {
	select {
	case rs := <-c.in:
		return rs, 0, nil
	case <-c.closed:
		return nil, 0, errClosed
	}
}

func (c *catching) Drops() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops
}

func (c *catching) ReadBuffer() int { return c.rcvbuf }

func (c *catching) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

type sending struct {
	o    opener
	addr netip.Addr
	q    []queued
}

type queued struct {
	dst netip.Addr
	b   []byte
}

// batch is the fake's sendmmsg size: small, so that a share takes many.
const batch = 8

func (s *sending) Next() []byte                 { return make([]byte, 0, 256) }
func (s *sending) Add(dst netip.Addr, b []byte) { s.q = append(s.q, queued{dst, b}) }
func (s *sending) Len() int                     { return len(s.q) }
func (s *sending) Cap() int                     { return batch }

// Flush sends the batch: each probe that the route answers becomes a
// reply, the echo's data (after its 8-byte header) echoed.
func (s *sending) Flush() (int, int, error) {
	n := s.o.n
	now := time.Now()
	out := map[*catching][]rawsock.Reply{}
	n.mu.Lock()
	if err := n.refuse; err != nil {
		k := len(s.q)
		s.q = s.q[:0]
		n.mu.Unlock()
		return 0, k, err
	}
	for _, p := range s.q {
		n.sent = append(n.sent, Probe{Site: s.o.site, Dst: p.dst, At: now})
		site, from, ok := n.route(s.o.site, p.dst)
		if c := n.sites[site]; ok && c != nil {
			out[c] = append(out[c], rawsock.Reply{From: from, Data: append([]byte(nil), p.b[8:]...), Received: now})
		}
	}
	n.mu.Unlock()
	k := len(s.q)
	s.q = s.q[:0]
	for c, rs := range out {
		c.deliver(rs)
	}
	return k, 0, nil
}

func (s *sending) Close() error {
	s.o.n.mu.Lock()
	s.o.n.open--
	s.o.n.mu.Unlock()
	return nil
}
