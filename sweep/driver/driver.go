// Package driver runs a sweep across catchers (`catchmap sweep run`): it
// checks everything it can before any packet goes out, hands every
// catcher the sweep's key and each sender its share of the hitlist,
// starts the senders once every catcher is ready, waits for the last send
// and the cooldown, collects what each site caught, and tells every /24's
// catchment.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/catchmap/catchmap/sweep/catcher"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/order"
	"github.com/catchmap/catchmap/sweep/payload"
)

// Defaults of Options.
const (
	DefaultCooldown = 10 * time.Second
	// DefaultPoll is how often the senders' progress is read.
	DefaultPoll = 250 * time.Millisecond
	// callTimeout bounds each call to a catcher.
	callTimeout = 30 * time.Second
	// ttlSlack is how long a catcher keeps a sweep beyond its expected
	// end, should the driver vanish.
	ttlSlack = 5 * time.Minute
)

// ErrInput is input that cannot make a sweep; nothing was sent.
var ErrInput = errors.New("bad sweep input")

// Options of Run.
type Options struct {
	// Catchers are the sites' catchers; each names its site.
	Catchers []*control.Client
	// From names the sending sites; the hitlist is split among them.
	From []string
	// Rate per sending site, in packets per second.
	Rate int
	// Cooldown is how long replies may come after the last send.
	Cooldown time.Duration
	// Contact goes in every probe.
	Contact string
	// Targets are the hitlist, one address per /24.
	Targets []uint32
	// Poll is how often the senders' progress is read.
	Poll time.Duration
}

// Result is a sweep's outcome.
type Result struct {
	Summary Summary
	// Rows has one row per /24 of the hitlist, in address order.
	Rows []Row
}

// site is one catcher as the driver knows it.
type site struct {
	name   string
	c      *control.Client
	status control.Status
	share  []uint32 // nil unless a sender
	final  control.SweepStatus
}

// Run runs one sweep. An error wrapping ErrInput means nothing was sent;
// other errors may come after sending began, with what is known so far in
// the result.
func Run(ctx context.Context, log *slog.Logger, o Options) (*Result, error) {
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	sites, senders, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	// The order's seed is as random as a key.
	shares, err := order.Split(o.Targets, len(senders), order.Seed(payload.NewKey()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	longest := 0
	for i, s := range senders {
		s.share = shares[i]
		longest = max(longest, len(s.share))
	}
	// Sending may run late (a busy sender), never past this bound.
	within := time.Duration(float64(longest)/float64(o.Rate)*1.5*float64(time.Second)) + 10*time.Second
	id, key := payload.NewID(), payload.NewKey()
	r := &Result{Summary: Summary{Sweep: id, Prefixes: len(o.Targets), Rate: o.Rate, Cooldown: o.Cooldown, From: o.From}}
	ttl := within + o.Cooldown + ttlSlack
	defer forget(ctx, log, id, sites)
	if err := orderAll(ctx, id, key, o, sites, within, ttl); err != nil {
		return nil, err
	}
	log.Info("sweep ordered at every catcher", "sweep", id, "prefixes", len(o.Targets), "senders", len(senders), "rate", o.Rate)
	r.Summary.Started = time.Now().UTC()
	for _, s := range senders {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := s.c.Start(cctx, id)
		cancel()
		if err != nil {
			return r, fmt.Errorf("starting the sender at %s: %w", s.name, err)
		}
	}
	if err := waitSent(ctx, log, id, senders, within+callTimeout, o.Poll); err != nil {
		return r, err
	}
	r.Summary.SendingEnded = time.Now().UTC()
	log.Info("sending over; waiting for the last replies", "sweep", id, "cooldown", o.Cooldown)
	t := time.NewTimer(o.Cooldown)
	select {
	case <-ctx.Done():
		t.Stop()
		return r, fmt.Errorf("sweep %s interrupted in its cooldown: %w", id, context.Cause(ctx))
	case <-t.C:
	}
	replies, err := collect(ctx, id, sites)
	if err != nil {
		return r, err
	}
	r.Summary.Finished = time.Now().UTC()
	r.Rows = catchments(o.Targets, replies, &r.Summary)
	r.Summary.add(sites)
	return r, nil
}

// prepare checks the options and asks every catcher who it is; what it
// finds wrong wraps ErrInput.
func prepare(ctx context.Context, o Options) ([]*site, []*site, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(o.Targets) == 0 {
		bad("the hitlist holds no address to probe")
	}
	if len(o.Targets) > catcher.MaxTargets {
		bad("%d targets: at most %d (every /24)", len(o.Targets), catcher.MaxTargets)
	}
	if o.Rate < 1 {
		bad("rate %d: at least 1 packet/s per sending site", o.Rate)
	}
	if o.Cooldown < 0 {
		bad("cooldown %s is negative", o.Cooldown)
	}
	if err := payload.CheckContact(o.Contact); err != nil {
		bad("%v", err)
	}
	if len(o.Catchers) == 0 {
		bad("no catchers: give each site's catcher with --catcher URL")
	}
	if len(o.From) == 0 {
		bad("no sending site: give at least one --from SITE")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	sites := make([]*site, len(o.Catchers))
	var wg sync.WaitGroup
	callErrs := make([]error, len(o.Catchers))
	for i, c := range o.Catchers {
		sites[i] = &site{c: c}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			sites[i].status, callErrs[i] = c.Status(cctx)
			sites[i].name = sites[i].status.Site
		})
	}
	wg.Wait()
	if err := errors.Join(callErrs...); err != nil {
		return nil, nil, fmt.Errorf("%w: asking the catchers who they are: %v", ErrInput, err)
	}
	byName := map[string]*site{}
	for _, s := range sites {
		if old := byName[s.name]; old != nil {
			bad("catchers %s and %s both say they are site %s: give each site once", old.c.Base(), s.c.Base(), s.name)
		}
		byName[s.name] = s
		if anycast := sites[0].status.Anycast; s.status.Anycast != anycast {
			bad("site %s catches for %s, site %s for %s: one sweep, one anycast address", s.name, s.status.Anycast, sites[0].name, anycast)
		}
	}
	var senders []*site
	for _, name := range o.From {
		s := byName[name]
		switch {
		case s == nil:
			bad("unknown site %q in --from: the catchers are %s", name, names(sites))
		case slices.Contains(senders, s):
			bad("site %s named twice in --from", name)
		case o.Rate > s.status.MaxRate:
			bad("rate %d packets/s is above site %s's cap of %d (its catch --max-rate)", o.Rate, name, s.status.MaxRate)
		default:
			senders = append(senders, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return sites, senders, nil
}

func names(sites []*site) string {
	var ns []string
	for _, s := range sites {
		ns = append(ns, s.name)
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}

// orderAll gives every catcher the sweep; a refusal anywhere is input
// the sweep cannot run with, and nothing has been sent.
func orderAll(ctx context.Context, id payload.ID, key payload.Key, o Options, sites []*site, within, ttl time.Duration) error {
	errs := make([]error, len(sites))
	var wg sync.WaitGroup
	for i, s := range sites {
		ord := control.Order{ID: id, Key: key.Hex(), Contact: o.Contact, TTLMillis: ttl.Milliseconds()}
		if s.share != nil {
			ord.Send = &control.SendOrder{Rate: o.Rate, Targets: control.PackTargets(s.share), WithinMillis: within.Milliseconds()}
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			if err := s.c.Order(cctx, ord); err != nil {
				errs[i] = fmt.Errorf("site %s: %w", s.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: the catchers did not all take the sweep: %v", ErrInput, err)
	}
	return nil
}

// waitSent polls the senders until each is done, failing after limit.
func waitSent(ctx context.Context, log *slog.Logger, id payload.ID, senders []*site, limit, poll time.Duration) error {
	deadline := time.Now().Add(limit)
	lastLog := time.Now()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		done, sent, why := true, 0, ""
		for _, s := range senders {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			st, err := s.c.Sweep(cctx, id)
			cancel()
			switch {
			case err != nil:
				// A poll that fails is tried again until the deadline.
				done, why = false, err.Error()
			case st.Done():
				s.final = st
			default:
				done = false
			}
			sent += st.Sent
		}
		if done {
			return nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			log.Info("sending", "sweep", id, "sent", sent)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sweep %s: the senders did not finish within %s: %s", id, limit, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sweep %s interrupted while sending: %w", id, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// collect reads every catcher's replies and final counts.
func collect(ctx context.Context, id payload.ID, sites []*site) ([]control.Reply, error) {
	var mu sync.Mutex
	var all []control.Reply
	errs := make([]error, len(sites))
	var wg sync.WaitGroup
	for i, s := range sites {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 10*callTimeout)
			defer cancel()
			var mine []control.Reply
			err := s.c.Replies(cctx, id, func(r control.Reply) error { mine = append(mine, r); return nil })
			if err == nil {
				s.final, err = s.c.Sweep(cctx, id)
			}
			if err != nil {
				errs[i] = fmt.Errorf("collecting from site %s: %w", s.name, err)
				return
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, errors.Join(errs...)
}

// forget has every catcher drop the sweep, whatever happened: no sender
// goes on, no catcher keeps it.
func forget(ctx context.Context, log *slog.Logger, id payload.ID, sites []*site) {
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range sites {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			if err := s.c.Forget(cctx, id); err != nil {
				log.Warn("a catcher did not forget the sweep; it will at the end of its TTL", "site", s.name, "sweep", id, "err", err)
			}
		})
	}
	wg.Wait()
}
