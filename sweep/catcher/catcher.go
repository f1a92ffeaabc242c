// Package catcher is the site agent of a sweep, `catchmap catch`: at every
// site of the anycast service it catches the echo replies that BGP delivers
// to the anycast address, verifies and classifies each, and keeps them for
// the driver; when the driver makes it a sender, it also sends its share of
// the hitlist from the anycast address at its rate.
//
// As in zmap, sending and receiving are separate loops that share no state
// about targets: each reply carries in its payload everything needed to
// verify it. The receive loop looks up only the sweep's key.
package catcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
	"github.com/catchmap/catchmap/sweep/rawsock"
)

// Defaults of Config.
const (
	DefaultMaxRate    = 100_000
	DefaultReadBuffer = 64 << 20
	DefaultMaxSweeps  = 8
	DefaultMaxTTL     = 24 * time.Hour
	// MaxTargets is every /24 of IPv4: no share is larger.
	MaxTargets = 1 << 24
)

// Errors of Order and Start, which the HTTP API turns into statuses.
var (
	// ErrInvalid: the order is malformed (400).
	ErrInvalid = errors.New("invalid sweep order")
	// ErrRefused: the order is well formed but this site will not do it,
	// such as a rate above its cap (422).
	ErrRefused = errors.New("sweep refused")
	// ErrConflict: another order with this sweep's id (409).
	ErrConflict = errors.New("another sweep order has this id")
	// ErrBusy: too many sweeps at once (503).
	ErrBusy = errors.New("too many sweeps at this site")
)

// errShutdown stops the senders when the agent stops.
var errShutdown = errors.New("the catcher is shutting down")

// Config of an agent.
type Config struct {
	// Site is this site's code, stamped on every probe it sends.
	Site string
	// Anycast is the address probes leave from and replies come to.
	Anycast netip.Addr
	// MaxRate caps any sweep's rate at this site, in packets per second.
	MaxRate int
	// Allow, when set, holds everything this site may probe; Block what
	// it never probes. Both are checked before every send.
	Allow, Block *hitlist.Set
	// ReadBuffer is the catching socket's receive buffer, in bytes.
	ReadBuffer int
	// MaxSweeps bounds the sweeps known at once; MaxTTL how long one is
	// kept without the driver asking about it.
	MaxSweeps int
	MaxTTL    time.Duration
	// Store keeps what is caught until the driver collects it.
	Store Store
	// Sockets opens the sockets: rawsock.Raw when nil.
	Sockets rawsock.Opener
}

var siteRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (c *Config) fill() error {
	if !siteRE.MatchString(c.Site) {
		return fmt.Errorf("site %q: a site code is 1-32 lower-case letters, digits and dashes, starting with a letter (e.g. ams, fi-hel)", c.Site)
	}
	if !c.Anycast.Is4() {
		return fmt.Errorf("anycast address %s: an IPv4 address is needed (IPv6 sweeps come later)", c.Anycast)
	}
	if c.MaxRate == 0 {
		c.MaxRate = DefaultMaxRate
	}
	if c.MaxRate < 1 {
		return fmt.Errorf("max rate %d: at least 1 packet/s", c.MaxRate)
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.MaxSweeps == 0 {
		c.MaxSweeps = DefaultMaxSweeps
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Store == nil {
		c.Store = NewMemStore(DefaultMaxReplies)
	}
	if c.Sockets == nil {
		c.Sockets = rawsock.Raw{}
	}
	return nil
}

// Agent is a running catcher.
type Agent struct {
	log  *slog.Logger
	cfg  Config
	m    *metrics
	sock rawsock.Catching

	// ctx ends when Run returns: sending stops.
	ctx  context.Context
	stop context.CancelCauseFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	sweeps map[payload.ID]*sweep
	// known is a copy of sweeps for the receive loop, replaced whenever
	// sweeps changes, so that a lookup takes no lock.
	known atomic.Pointer[map[payload.ID]*sweep]

	replies [4]atomic.Uint64 // by class index, catcher-wide
	drops   atomic.Uint64
	sent    atomic.Uint64
}

// class indexes into the counters, in control.Classes order.
const (
	iCaught = iota
	iOther
	iForged
	iStray
)

// New checks cfg and opens the catching socket: a missing privilege shows
// here, before anything listens.
func New(log *slog.Logger, reg prometheus.Registerer, cfg Config) (*Agent, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	sock, err := cfg.Sockets.Catch(cfg.Anycast, cfg.ReadBuffer)
	if err != nil {
		return nil, err
	}
	a := &Agent{log: log, cfg: cfg, sock: sock, sweeps: map[payload.ID]*sweep{}}
	a.ctx, a.stop = context.WithCancelCause(context.Background())
	a.publish()
	if a.m, err = newMetrics(reg, a); err != nil {
		sock.Close()
		return nil, err
	}
	if got := sock.ReadBuffer(); got < cfg.ReadBuffer {
		log.Warn("the catching socket's receive buffer is smaller than asked: bursts of replies may be dropped (raise net.core.rmem_max, or run as root)",
			"asked", cfg.ReadBuffer, "got", got)
	}
	return a, nil
}

// Run catches replies until ctx ends, then stops every sender and closes
// the sockets.
func (a *Agent) Run(ctx context.Context) error {
	recvDone := make(chan error, 1)
	go func() { recvDone <- a.receive() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-recvDone:
			err = fmt.Errorf("catching socket failed: %w", err)
			break loop
		case now := <-tick.C:
			a.expire(now)
		}
	}
	a.stop(errShutdown)
	a.wg.Wait()
	a.sock.Close()
	if err == nil {
		<-recvDone
	}
	return err
}

// receive is the receive loop: read a batch, classify, keep.
func (a *Agent) receive() error {
	var keep []control.Reply
	var cur *sweep // the sweep whose key the last lookup found
	lastDrops := uint32(0)
	for {
		reps, other, err := a.sock.Read()
		if err != nil {
			if a.ctx.Err() != nil {
				return nil
			}
			return err
		}
		known := *a.known.Load()
		keys := func(id payload.ID) (*payload.Verifier, bool) {
			cur = known[id]
			if cur == nil {
				return nil, false
			}
			return cur.verifier, true
		}
		a.count(iStray, nil, other)
		keep = keep[:0]
		for _, r := range reps {
			cur = nil
			p, err := payload.Open(r.Data, keys)
			class := iCaught
			switch {
			case errors.Is(err, payload.ErrBadMAC):
				class = iForged
			case err != nil:
				a.count(iStray, nil, 1)
				continue
			case r.From != p.Target:
				class = iOther
			}
			a.count(class, cur, 1)
			keep = append(keep, control.Reply{Sweep: p.Sweep, Class: control.Classes[class], Target: p.Target, From: r.From,
				Sender: p.Site, Catcher: a.cfg.Site, Sent: p.Sent.UTC(), Received: r.Received.UTC()})
		}
		if len(keep) > 0 {
			a.keep(keep, known)
		}
		if d := a.sock.Drops(); d != lastDrops {
			// The counter is the kernel's 32-bit count; it wraps.
			a.drops.Add(uint64(d - lastDrops))
			a.m.drops.Add(float64(d - lastDrops))
			lastDrops = d
		}
	}
}

func (a *Agent) count(class int, s *sweep, n int) {
	if n == 0 {
		return
	}
	a.replies[class].Add(uint64(n))
	a.m.replies[class].Add(float64(n))
	if s != nil {
		s.replies[class].Add(uint64(n))
	}
}

// keep stores a batch; what a full store refuses is counted per sweep.
func (a *Agent) keep(rs []control.Reply, known map[payload.ID]*sweep) {
	err := a.cfg.Store.Append(rs)
	if err == nil {
		return
	}
	a.m.storeDropped.Add(float64(len(rs)))
	for _, r := range rs {
		if s := known[r.Sweep]; s != nil {
			s.storeDropped.Add(1)
		}
	}
	a.log.Warn("replies not kept", "n", len(rs), "err", err)
}

// publish copies the sweeps for the receive loop; a.mu must be held (or
// the agent not yet shared).
func (a *Agent) publish() {
	m := make(map[payload.ID]*sweep, len(a.sweeps))
	for id, s := range a.sweeps {
		m[id] = s
	}
	a.known.Store(&m)
}

// Status describes the agent and its sweeps.
func (a *Agent) Status() control.Status {
	st := control.Status{Site: a.cfg.Site, Anycast: a.cfg.Anycast.String(), MaxRate: a.cfg.MaxRate,
		ReadBuffer: a.sock.ReadBuffer(), Sent: a.sent.Load(), Replies: map[string]uint64{}, KernelDrops: a.drops.Load(), Sweeps: []control.SweepStatus{}}
	for i, c := range control.Classes {
		st.Replies[c] = a.replies[i].Load()
	}
	a.mu.Lock()
	ss := make([]*sweep, 0, len(a.sweeps))
	for _, s := range a.sweeps {
		ss = append(ss, s)
	}
	a.mu.Unlock()
	for _, s := range ss {
		st.Sweeps = append(st.Sweeps, a.sweepStatus(s))
	}
	slices.SortFunc(st.Sweeps, func(x, y control.SweepStatus) int { return x.Started.Compare(y.Started) })
	return st
}
