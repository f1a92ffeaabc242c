package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// sweepMode picks a socket mode this process may open, or skips.
func sweepMode(t *testing.T) SweepOptions {
	t.Helper()
	unpriv, priv := icmpModes(t)
	if !unpriv && !priv {
		t.Skip("neither unprivileged ICMP (ping_group_range) nor root: no ICMP socket can be opened")
	}
	return SweepOptions{Privileged: !unpriv}
}

func TestSweepLoopback(t *testing.T) {
	unpriv, priv := icmpModes(t)
	if !unpriv && !priv {
		t.Skip("neither unprivileged ICMP (ping_group_range) nor root: no ICMP socket can be opened")
	}
	var addrs []netip.Addr
	for i := 1; i <= 200; i++ {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	// A repeated address gets its own echo and its own answer.
	addrs = append(addrs, netip.MustParseAddr("127.0.1.1"), netip.MustParseAddr("::ffff:127.0.2.1"))
	if hasIPv6Loopback() {
		addrs = append(addrs, netip.MustParseAddr("::1"))
	}
	for _, mode := range []struct {
		privileged, allowed bool
	}{{false, unpriv}, {true, priv}} {
		if !mode.allowed {
			continue
		}
		t.Run(fmt.Sprintf("privileged=%v", mode.privileged), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res, err := Sweep(ctx, addrs, SweepOptions{Privileged: mode.privileged})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(addrs) {
				t.Fatalf("%d results for %d addresses", len(res), len(addrs))
			}
			for i, r := range res {
				if r.Addr != addrs[i] || !r.Replied || r.Err != nil || r.RTT <= 0 {
					t.Errorf("result %d = %+v, want a reply from %s", i, r, addrs[i])
				}
			}
			// All answered, so the sweep must not sit out its wait.
			if d := time.Since(start); d >= DefaultSweepWait {
				t.Errorf("sweep took %v: it waited although every address had answered", d)
			}
		})
	}
}

func TestSweepBounds(t *testing.T) {
	t.Run("no addresses", func(t *testing.T) {
		res, err := Sweep(t.Context(), nil, SweepOptions{})
		if err != nil || len(res) != 0 {
			t.Fatalf("got %v, %v; want nothing and no error", res, err)
		}
	})
	t.Run("too many", func(t *testing.T) {
		addrs := make([]netip.Addr, maxSweepPerFamily+1)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{127, 2, byte(i >> 8), byte(i)})
		}
		if _, err := Sweep(t.Context(), addrs, SweepOptions{}); err == nil {
			t.Fatal("no error for more than one sequence space of addresses")
		}
	})
	t.Run("silent address", func(t *testing.T) {
		// lo's broadcast address does not answer echoes (Linux's default
		// net.ipv4.icmp_echo_ignore_broadcasts=1), or the send is refused
		// for want of SO_BROADCAST: either way it is lost, the sweep ends
		// after Wait, and the other address still answers.
		opts := sweepMode(t)
		opts.Wait = 200 * time.Millisecond
		addrs := []netip.Addr{netip.MustParseAddr("127.255.255.255"), netip.MustParseAddr("127.0.4.9")}
		start := time.Now()
		res, err := Sweep(t.Context(), addrs, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Replied {
			t.Errorf("broadcast %+v: want no reply", res[0])
		}
		if !res[1].Replied {
			t.Errorf("127.0.4.9 %+v: want a reply", res[1])
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("sweep took %v with Wait %v", d, opts.Wait)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		opts := sweepMode(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		addrs := []netip.Addr{netip.MustParseAddr("127.0.4.1"), netip.MustParseAddr("127.0.4.2")}
		res, err := Sweep(ctx, addrs, opts)
		if err != nil {
			t.Fatal(err)
		}
		// The first echo goes out before the context is looked at; the
		// rest must be marked as never sent.
		if !errors.Is(res[1].Err, context.Canceled) {
			t.Errorf("second result %+v, want a context.Canceled error", res[1])
		}
	})
}

// TestSweepPacing checks that catching up after a late timer never sends
// echoes ahead of their time: n echoes interval apart take at least
// (n-1) intervals, however fast the replies come.
func TestSweepPacing(t *testing.T) {
	opts := sweepMode(t)
	opts.Interval = 20 * time.Millisecond
	var addrs []netip.Addr
	for i := 1; i <= 10; i++ {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 5, byte(i)}))
	}
	start := time.Now()
	res, err := Sweep(t.Context(), addrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d, min := time.Since(start), time.Duration(len(addrs)-1)*opts.Interval; d < min {
		t.Errorf("%d echoes %v apart took %v, want at least %v", len(addrs), opts.Interval, d, min)
	}
	for _, r := range res {
		if !r.Replied {
			t.Errorf("%s: no reply", r.Addr)
		}
	}
}
