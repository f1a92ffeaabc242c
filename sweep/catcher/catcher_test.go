package catcher

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
	"github.com/catchmap/catchmap/sweep/rawsock"
	"github.com/catchmap/catchmap/sweep/rawsock/rawsocktest"
)

func TestMain(m *testing.M) { testutil.Main(m, "catchmap/sweep/catcher.") }

var anycastAddr = netip.MustParseAddr("192.0.2.53")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs an agent on fake sockets until the test ends.
func start(t *testing.T, n *rawsocktest.Net, mod func(*Config)) *Agent {
	t.Helper()
	cfg := Config{Site: "ams", Anycast: anycastAddr, Sockets: n.Site("ams")}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(quiet, prometheus.NewRegistry(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a
}

// targets returns n addresses, the .1 of consecutive /24s from base.
func targets(base string, n int) []uint32 {
	b := hitlist.U32(netip.MustParseAddr(base))
	ts := make([]uint32, n)
	for i := range ts {
		ts[i] = b + uint32(i)<<8
	}
	return ts
}

func order(id payload.ID, key payload.Key, rate int, ts []uint32) control.Order {
	o := control.Order{ID: id, Key: key.Hex(), Contact: "sweeps@example.net", TTLMillis: 60_000}
	if ts != nil {
		o.Send = &control.SendOrder{Rate: rate, Targets: control.PackTargets(ts), WithinMillis: 30_000}
	}
	return o
}

// waitSweep polls the sweep until cond holds.
func waitSweep(t *testing.T, a *Agent, id payload.ID, what string, cond func(control.SweepStatus) bool) control.SweepStatus {
	t.Helper()
	var st control.SweepStatus
	testutil.WaitFor(t, 10*time.Second, what, func() bool {
		var err error
		st, err = a.Sweep(id)
		return err == nil && cond(st)
	})
	return st
}

func replies(t *testing.T, a *Agent, id payload.ID) []control.Reply {
	t.Helper()
	var rs []control.Reply
	if err := a.Replies(id, func(r control.Reply) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestSendAndCatch sends a share through the fake network and catches
// what comes back: replies from the probed address are caught, from
// another address other_source, from silent ones nothing.
func TestSendAndCatch(t *testing.T) {
	answer := func(dst netip.Addr) (netip.Addr, bool) {
		b := dst.As4()
		switch b[2] % 10 {
		case 0:
			return dst, false // silent
		case 1:
			return netip.AddrFrom4([4]byte{b[0], b[1], b[2], 99}), true // another address of the /24
		}
		return dst, true
	}
	n := rawsocktest.New(func(site string, dst netip.Addr) (string, netip.Addr, bool) {
		from, ok := answer(dst)
		return site, from, ok
	})
	a := start(t, n, nil)
	id, key := payload.NewID(), payload.NewKey()
	ts := targets("10.1.0.1", 1000)
	if err := a.Order(order(id, key, 50_000, ts)); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Sweep(id); st.State != control.StateCatching {
		t.Errorf("state %s before start", st.State)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, x := range ts {
		if from, ok := answer(hitlist.Addr(x)); ok && from == hitlist.Addr(x) {
			want[control.Caught]++
		} else if ok {
			want[control.OtherSource]++
		}
	}
	answered := want[control.Caught] + want[control.OtherSource]
	st := waitSweep(t, a, id, "all replies", func(st control.SweepStatus) bool {
		return st.Done() && st.Replies[control.Caught]+st.Replies[control.OtherSource] == answered
	})
	if st.State != control.StateSent || st.Sent != 1000 || st.Replies[control.Caught] != want[control.Caught] || st.Replies[control.OtherSource] != want[control.OtherSource] {
		t.Errorf("status %+v, want replies %v", st, want)
	}
	rs := replies(t, a, id)
	if uint64(len(rs)) != answered {
		t.Fatalf("%d replies kept", len(rs))
	}
	for _, r := range rs {
		want := control.Caught
		if r.From != r.Target {
			want = control.OtherSource
		}
		if r.Class != want || r.Sender != "ams" || r.Catcher != "ams" || r.Sweep != id || r.Sent.IsZero() || r.Received.Before(r.Sent) {
			t.Fatalf("reply %+v", r)
		}
	}
}

// TestForgedAndStray injects what an attacker or a confused host might
// send: none of it is caught.
func TestForgedAndStray(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, nil)
	id, key := payload.NewID(), payload.NewKey()
	if err := a.Order(order(id, key, 0, nil)); err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddr("10.1.2.1")
	reply := func(enc *payload.Encoder) rawsock.Reply {
		return rawsock.Reply{From: from, To: anycastAddr, Data: enc.Append(nil, from, time.Now()), Received: time.Now()}
	}
	forger, _ := payload.NewEncoder(id, payload.NewKey(), "ams", "")
	other, _ := payload.NewEncoder(id+1, key, "ams", "")
	good, _ := payload.NewEncoder(id, key, "lhr", "")
	n.Inject("ams", reply(forger), reply(forger),
		reply(other), rawsock.Reply{From: from, Data: []byte("hello")}, rawsock.Reply{From: from},
		reply(good))
	st := waitSweep(t, a, id, "six replies", func(st control.SweepStatus) bool {
		return st.Replies[control.Forged]+st.Replies[control.Stray]+st.Replies[control.Caught] == 6
	})
	if st.Replies[control.Forged] != 2 || st.Replies[control.Stray] != 3 || st.Replies[control.Caught] != 1 {
		t.Errorf("replies %v: want 2 forged, 3 stray, 1 caught", st.Replies)
	}
	for _, r := range replies(t, a, id) {
		if r.Class == control.Caught && r.Sender != "lhr" {
			t.Errorf("a forged reply was caught: %+v", r)
		}
	}
	if s := a.Status(); s.Replies[control.Stray] != 3 || s.Replies[control.Forged] != 2 {
		t.Errorf("catcher-wide counts %v", s.Replies)
	}
}

// TestRate checks that a share goes out no faster than its rate.
func TestRate(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, nil)
	id := payload.NewID()
	const rate, count = 2000, 600
	if err := a.Order(order(id, payload.NewKey(), rate, targets("10.2.0.1", count))); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	waitSweep(t, a, id, "the share sent", control.SweepStatus.Done)
	ps := n.Probes()
	if len(ps) != count {
		t.Fatalf("%d probes sent", len(ps))
	}
	took := ps[len(ps)-1].At.Sub(ps[0].At)
	// The last probe is due (count-1)/rate after the first; a stall may
	// let maxLag of them out early.
	if least := time.Duration(count-1)*time.Second/rate - maxLag; took < least {
		t.Errorf("%d probes in %s at %d/s: faster than the rate", count, took, rate)
	}
	// In any window of 100 ms, at most rate*100ms + the catch-up burst.
	for i, j := 0, 0; i < len(ps); i++ {
		for ps[i].At.Sub(ps[j].At) > 100*time.Millisecond {
			j++
		}
		if k := i - j + 1; k > rate/10+int(rate*maxLag.Seconds())+8 {
			t.Fatalf("%d probes within 100 ms at %d/s", k, rate)
		}
	}
}

// TestAllowAndBlock: the site's lists are checked before every send.
func TestAllowAndBlock(t *testing.T) {
	n := rawsocktest.New(nil)
	allow, _ := hitlist.ParseSet([]string{"10.0.0.0/8"})
	block, _ := hitlist.ParseSet([]string{"10.3.1.0/24"})
	a := start(t, n, func(c *Config) { c.Allow, c.Block = allow, block })
	id := payload.NewID()
	ts := append(targets("10.3.0.1", 3), targets("192.0.2.1", 2)...)
	if err := a.Order(order(id, payload.NewKey(), 1000, ts)); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	st := waitSweep(t, a, id, "the share sent", control.SweepStatus.Done)
	if st.Sent != 2 || st.Blocked != 3 {
		t.Errorf("sent %d, blocked %d; want 2 and 3", st.Sent, st.Blocked)
	}
	for _, p := range n.Probes() {
		if !allow.Contains(hitlist.U32(p.Dst)) || block.Contains(hitlist.U32(p.Dst)) {
			t.Errorf("probe to %s", p.Dst)
		}
	}
}

// TestOrderChecks: what a site refuses, and how.
func TestOrderChecks(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, func(c *Config) { c.MaxRate = 5000; c.MaxSweeps = 2 })
	key := payload.NewKey()
	ts := targets("10.4.0.1", 10)
	mod := func(f func(*control.Order)) control.Order {
		o := order(payload.NewID(), key, 1000, ts)
		f(&o)
		return o
	}
	cases := []struct {
		name string
		o    control.Order
		want error
		msg  string
	}{
		{"rate above cap", mod(func(o *control.Order) { o.Send.Rate = 5001 }), ErrRefused, "above this site's cap of 5000"},
		{"no hitlist", mod(func(o *control.Order) { o.Send.Targets = nil }), ErrRefused, "no hitlist"},
		{"rate zero", mod(func(o *control.Order) { o.Send.Rate = 0 }), ErrInvalid, "at least 1"},
		{"bad key", mod(func(o *control.Order) { o.Key = "00" }), ErrInvalid, "key"},
		{"bad contact", mod(func(o *control.Order) { o.Contact = "a\nb" }), ErrInvalid, "printable"},
		{"ragged targets", mod(func(o *control.Order) { o.Send.Targets = o.Send.Targets[:5] }), ErrInvalid, "whole number"},
		{"no ttl", mod(func(o *control.Order) { o.TTLMillis = 0 }), ErrInvalid, "ttl"},
		{"too slow", mod(func(o *control.Order) { o.Send.Rate = 1; o.Send.WithinMillis = 5000 }), ErrRefused, "take 10s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := a.Order(c.o)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want %v with %q", err, c.want, c.msg)
			}
			if _, err := a.Sweep(c.o.ID); !errors.Is(err, control.ErrNotFound) {
				t.Errorf("a refused order is known: %v", err)
			}
		})
	}
	o := order(payload.NewID(), key, 1000, ts)
	if err := a.Order(o); err != nil {
		t.Fatal(err)
	}
	if err := a.Order(o); err != nil {
		t.Errorf("the same order again: %v", err)
	}
	o2 := o
	o2.Contact = "someone else"
	if err := a.Order(o2); !errors.Is(err, ErrConflict) {
		t.Errorf("another order with the id: %v", err)
	}
	catchOnly := order(payload.NewID(), key, 0, nil)
	if err := a.Order(catchOnly); err != nil {
		t.Fatal(err)
	}
	if err := a.Order(order(payload.NewID(), key, 0, nil)); !errors.Is(err, ErrBusy) {
		t.Errorf("a third sweep with --max-sweeps 2: %v", err)
	}
	if err := a.Start(catchOnly.ID); !errors.Is(err, ErrRefused) {
		t.Errorf("starting a sweep this site only catches: %v", err)
	}
	if err := a.Start(payload.NewID()); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("starting an unknown sweep: %v", err)
	}
	if got := len(n.Probes()); got != 0 {
		t.Errorf("%d probes sent by refused orders", got)
	}
}

// TestForgetStopsSending: a forgotten sweep stops sending at once, and
// its replies are no longer caught.
func TestForgetStopsSending(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, nil)
	id, key := payload.NewID(), payload.NewKey()
	if err := a.Order(order(id, key, 100, targets("10.5.0.1", 1000))); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "a few probes", func() bool { return len(n.Probes()) >= 5 })
	if err := a.Forget(id); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the sending socket closed", func() bool { return n.OpenSenders() == 0 })
	sent := len(n.Probes())
	if sent > 50 {
		t.Errorf("%d probes at 100/s before the forget took effect", sent)
	}
	late, _ := payload.NewEncoder(id, key, "ams", "")
	n.Inject("ams", rawsock.Reply{From: netip.MustParseAddr("10.5.0.1"), Data: late.Append(nil, netip.MustParseAddr("10.5.0.1"), time.Now())})
	testutil.WaitFor(t, 5*time.Second, "the late reply counted stray", func() bool { return a.Status().Replies[control.Stray] == 1 })
	if err := a.Forget(id); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("forgetting twice: %v", err)
	}
}

// TestExpire: a sweep whose driver stops asking is forgotten after its
// TTL.
func TestExpire(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, nil)
	id := payload.NewID()
	o := order(id, payload.NewKey(), 0, nil)
	o.TTLMillis = 1000
	if err := a.Order(o); err != nil {
		t.Fatal(err)
	}
	a.expire(time.Now().Add(500 * time.Millisecond))
	if _, err := a.Sweep(id); err != nil {
		t.Fatalf("expired before its TTL: %v", err)
	}
	a.expire(time.Now().Add(1500 * time.Millisecond))
	if _, err := a.Sweep(id); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("kept after its TTL: %v", err)
	}
}

// TestStoreFull: replies a full store refuses are counted, not lost
// silently, and the rest of the agent goes on.
func TestStoreFull(t *testing.T) {
	n := rawsocktest.New(nil)
	a := start(t, n, func(c *Config) { c.Store = NewMemStore(100) })
	id := payload.NewID()
	if err := a.Order(order(id, payload.NewKey(), 100_000, targets("10.6.0.1", 400))); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	st := waitSweep(t, a, id, "all caught", func(st control.SweepStatus) bool { return st.Replies[control.Caught] == 400 })
	kept := len(replies(t, a, id))
	if kept > 100 || uint64(kept)+st.StoreDropped != 400 {
		t.Errorf("kept %d, dropped %d of 400 with room for 100", kept, st.StoreDropped)
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Site: "AMS", Anycast: anycastAddr}, "site"},
		{Config{Site: "ams"}, "anycast"},
		{Config{Site: "ams", Anycast: netip.MustParseAddr("2001:db8::1")}, "IPv4"},
		{Config{Site: "ams", Anycast: anycastAddr, MaxRate: -1}, "max rate"},
	} {
		c.cfg.Sockets = rawsocktest.New(nil).Site("ams")
		if _, err := New(quiet, prometheus.NewRegistry(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
	}
}

// TestSendFailsWhenRefused: a share whose every probe the kernel refuses
// ends failed, with the kernel's error, instead of spinning.
func TestSendFailsWhenRefused(t *testing.T) {
	n := rawsocktest.New(nil)
	n.Refuse(errors.New("network is unreachable"))
	a := start(t, n, nil)
	id := payload.NewID()
	if err := a.Order(order(id, payload.NewKey(), 100_000, targets("10.9.0.1", 5000))); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(id); err != nil {
		t.Fatal(err)
	}
	st := waitSweep(t, a, id, "the share given up", control.SweepStatus.Done)
	if st.State != control.StateFailed || st.Sent != 0 || st.SendErrors < maxRefusedRun || !strings.Contains(st.Error, "network is unreachable") {
		t.Errorf("status %+v", st)
	}
}
