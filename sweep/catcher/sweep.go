package catcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/payload"
)

// sweep is one sweep this site knows.
type sweep struct {
	order    control.Order
	key      payload.Key
	verifier *payload.Verifier // the receive loop's alone
	targets  []uint32          // this site's share; nil when it only catches
	ttl      time.Duration

	replies      [4]atomic.Uint64
	storeDropped atomic.Uint64
	// The catcher-wide stray and drop counts when the sweep arrived.
	strays0, drops0 uint64

	sent, blocked, sendErrors atomic.Int64

	mu       sync.Mutex
	state    string
	started  time.Time
	finished time.Time
	expires  time.Time
	err      string
	cancel   context.CancelCauseFunc
}

// errForgotten stops a sender whose sweep was forgotten.
var errForgotten = errors.New("the sweep was forgotten (by its driver, or at the end of its TTL)")

// Order takes a sweep: from now on its replies are caught here. An order
// already taken is taken again without effect; another order with its id
// is refused.
func (a *Agent) Order(o control.Order) error {
	s, err := a.check(o)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.sweeps[o.ID]; ok {
		if !sameOrder(old.order, o) {
			return fmt.Errorf("%w: %s", ErrConflict, o.ID)
		}
		a.touch(old)
		return nil
	}
	if len(a.sweeps) >= a.cfg.MaxSweeps {
		return fmt.Errorf("%w: %d sweeps are known here (the most at once); wait for one to end or forget it", ErrBusy, len(a.sweeps))
	}
	s.strays0, s.drops0 = a.replies[iStray].Load(), a.drops.Load()
	s.started = time.Now()
	a.touch(s)
	a.sweeps[o.ID] = s
	a.publish()
	a.m.sweeps.Set(float64(len(a.sweeps)))
	a.log.Info("sweep ordered", "sweep", o.ID, "send", s.targets != nil, "targets", len(s.targets), "rate", rateOf(o))
	return nil
}

func rateOf(o control.Order) int {
	if o.Send == nil {
		return 0
	}
	return o.Send.Rate
}

func sameOrder(a, b control.Order) bool {
	if a.ID != b.ID || a.Key != b.Key || a.Contact != b.Contact || a.TTLMillis != b.TTLMillis || (a.Send == nil) != (b.Send == nil) {
		return false
	}
	return a.Send == nil || a.Send.Rate == b.Send.Rate && a.Send.WithinMillis == b.Send.WithinMillis && bytes.Equal(a.Send.Targets, b.Send.Targets)
}

// check validates an order against this site's limits.
func (a *Agent) check(o control.Order) (*sweep, error) {
	key, err := payload.ParseKey(o.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// The encoder checks the contact string as it will go into packets.
	if _, err := payload.NewEncoder(o.ID, key, a.cfg.Site, o.Contact); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ttl := time.Duration(o.TTLMillis) * time.Millisecond
	if ttl <= 0 || ttl > a.cfg.MaxTTL {
		return nil, fmt.Errorf("%w: ttl %s is out of range (0, %s]", ErrInvalid, ttl, a.cfg.MaxTTL)
	}
	s := &sweep{order: o, key: key, verifier: payload.NewVerifier(key), ttl: ttl, state: control.StateCatching}
	if o.Send == nil {
		return s, nil
	}
	rate := o.Send.Rate
	switch {
	case rate < 1:
		return nil, fmt.Errorf("%w: rate %d: at least 1 packet/s", ErrInvalid, rate)
	case rate > a.cfg.MaxRate:
		return nil, fmt.Errorf("%w: rate %d packets/s is above this site's cap of %d (catch --max-rate)", ErrRefused, rate, a.cfg.MaxRate)
	}
	if s.targets, err = control.UnpackTargets(o.Send.Targets); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch n := len(s.targets); {
	case n == 0:
		return nil, fmt.Errorf("%w: a sender's order with no hitlist: nothing to send", ErrRefused)
	case n > MaxTargets:
		return nil, fmt.Errorf("%w: %d targets: at most %d (every /24)", ErrRefused, n, MaxTargets)
	}
	within := time.Duration(o.Send.WithinMillis) * time.Millisecond
	need := time.Duration(float64(len(s.targets)) / float64(rate) * float64(time.Second))
	switch {
	case within <= 0 || within > a.cfg.MaxTTL:
		return nil, fmt.Errorf("%w: within %s is out of range (0, %s]", ErrInvalid, within, a.cfg.MaxTTL)
	case within < need:
		return nil, fmt.Errorf("%w: %d targets at %d packets/s take %s, more than the %s allowed", ErrRefused, len(s.targets), rate, need.Round(time.Millisecond), within)
	case ttl < within:
		return nil, fmt.Errorf("%w: ttl %s is shorter than the sending time bound %s", ErrInvalid, ttl, within)
	}
	return s, nil
}

// touch renews a sweep's TTL; a.mu must be held.
func (a *Agent) touch(s *sweep) {
	s.mu.Lock()
	s.expires = time.Now().Add(s.ttl)
	s.mu.Unlock()
}

// lookup returns the sweep, renewing its TTL.
func (a *Agent) lookup(id payload.ID) (*sweep, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sweeps[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", control.ErrNotFound, id)
	}
	a.touch(s)
	return s, nil
}

// Start has this site send its share of the sweep. Starting a sweep that
// is sending or has sent does nothing.
func (a *Agent) Start(id payload.ID) error {
	s, err := a.lookup(id)
	if err != nil {
		return err
	}
	if s.targets == nil {
		return fmt.Errorf("%w: this site only catches sweep %s: its order has no share to send", ErrRefused, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != control.StateCatching {
		return nil
	}
	out, err := a.cfg.Sockets.Send(a.cfg.Anycast)
	if err != nil {
		s.state, s.err, s.finished = control.StateFailed, err.Error(), time.Now()
		return fmt.Errorf("sweep %s: %w", id, err)
	}
	within := time.Duration(s.order.Send.WithinMillis) * time.Millisecond
	sctx, cancel := context.WithCancelCause(a.ctx)
	ctx, cancelTimeout := context.WithTimeoutCause(sctx, within, fmt.Errorf("the sending time bound of %s passed", within))
	s.state, s.started, s.cancel = control.StateSending, time.Now(), cancel
	a.wg.Go(func() {
		defer cancel(nil)
		defer cancelTimeout()
		defer out.Close()
		state, err := a.send(ctx, s, out)
		s.mu.Lock()
		s.state, s.finished = state, time.Now()
		if err != nil {
			s.err = err.Error()
		}
		s.mu.Unlock()
		a.log.Info("sweep sent", "sweep", id, "state", state, "sent", s.sent.Load(), "blocked", s.blocked.Load(),
			"send_errors", s.sendErrors.Load(), "took", time.Since(s.started).Round(time.Millisecond), "err", err)
	})
	return nil
}

// Sweep returns the sweep's status.
func (a *Agent) Sweep(id payload.ID) (control.SweepStatus, error) {
	s, err := a.lookup(id)
	if err != nil {
		return control.SweepStatus{}, err
	}
	return a.sweepStatus(s), nil
}

func (a *Agent) sweepStatus(s *sweep) control.SweepStatus {
	st := control.SweepStatus{ID: s.order.ID, Targets: len(s.targets), Rate: rateOf(s.order),
		Sent: int(s.sent.Load()), Blocked: int(s.blocked.Load()), SendErrors: int(s.sendErrors.Load()),
		Replies: map[string]uint64{}, StoreDropped: s.storeDropped.Load(), KernelDrops: a.drops.Load() - s.drops0}
	for i, c := range control.Classes[:iStray] {
		st.Replies[c] = s.replies[i].Load()
	}
	st.Replies[control.Stray] = a.replies[iStray].Load() - s.strays0
	s.mu.Lock()
	st.State, st.Started, st.Finished, st.Error = s.state, s.started.UTC(), s.finished, s.err
	s.mu.Unlock()
	if !st.Finished.IsZero() {
		st.Finished = st.Finished.UTC()
	}
	return st
}

// Replies calls fn with every reply kept for the sweep.
func (a *Agent) Replies(id payload.ID, fn func(control.Reply) error) error {
	if _, err := a.lookup(id); err != nil {
		return err
	}
	// The store keeps no catcher: it is this one.
	return a.cfg.Store.Replies(id, func(r control.Reply) error {
		r.Catcher = a.cfg.Site
		return fn(r)
	})
}

// Forget stops the sweep's sending and drops it and what was kept for it.
func (a *Agent) Forget(id payload.ID) error {
	a.mu.Lock()
	s, ok := a.sweeps[id]
	if ok {
		delete(a.sweeps, id)
		a.publish()
		a.m.sweeps.Set(float64(len(a.sweeps)))
	}
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", control.ErrNotFound, id)
	}
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel(errForgotten)
	}
	s.mu.Unlock()
	a.log.Info("sweep forgotten", "sweep", id)
	return a.cfg.Store.Forget(id)
}

// expire forgets the sweeps whose driver has not asked for them in their
// TTL: a driver that died leaves no sweep behind for long.
func (a *Agent) expire(now time.Time) {
	var gone []payload.ID
	a.mu.Lock()
	for id, s := range a.sweeps {
		s.mu.Lock()
		if now.After(s.expires) {
			gone = append(gone, id)
		}
		s.mu.Unlock()
	}
	a.mu.Unlock()
	for _, id := range gone {
		a.log.Warn("sweep expired: its driver stopped asking", "sweep", id)
		if err := a.Forget(id); err != nil {
			a.log.Warn("forgetting an expired sweep", "sweep", id, "err", err)
		}
	}
}
