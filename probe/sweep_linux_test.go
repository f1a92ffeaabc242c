//go:build linux

package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// TestSweepFilter checks that the raw socket of a sweep does not receive
// echo requests: on loopback an unfiltered raw socket sees each request it
// sends before the reply, and requests fill its buffer.
func TestSweepFilter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root")
	}
	filtered, err := listenSweep(false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer filtered.Close()
	// The control: a raw socket without the filter.
	plain, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	const id = 0x5eed
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("filter test")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := filtered.WriteTo(b, &net.IPAddr{IP: net.IPv4(127, 0, 9, 9)}); err != nil {
		t.Fatal(err)
	}
	types := func(c net.PacketConn) []icmp.Type {
		var got []icmp.Type
		buf := make([]byte, 1500)
		// Both messages of our echo arrive within the deadline on
		// loopback; other processes' ICMP is skipped by ID.
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for len(got) < 2 {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if e, ok := m.Body.(*icmp.Echo); err == nil && ok && e.ID == id {
				got = append(got, m.Type)
			}
		}
		return got
	}
	if got := types(plain); len(got) != 2 || got[0] != ipv4.ICMPTypeEcho || got[1] != ipv4.ICMPTypeEchoReply {
		t.Fatalf("unfiltered socket read %v, want the request then the reply", got)
	}
	if got := types(filtered); len(got) != 1 || got[0] != ipv4.ICMPTypeEchoReply {
		t.Errorf("sweep socket read %v, want the reply only", got)
	}
}

func TestSweepReadBuffer(t *testing.T) {
	unpriv, priv := icmpModes(t)
	for _, mode := range []struct{ v6, privileged, allowed bool }{
		{false, false, unpriv}, {false, true, priv}, {true, true, priv && hasIPv6Loopback()},
	} {
		t.Run(fmt.Sprintf("v6=%v/privileged=%v", mode.v6, mode.privileged), func(t *testing.T) {
			if !mode.allowed {
				t.Skip("this socket cannot be opened here")
			}
			if os.Geteuid() != 0 {
				t.Skip("without root the buffer stops at net.core.rmem_max")
			}
			c, err := listenSweep(mode.v6, mode.privileged)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw, err := c.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var size int
			var serr error
			if err := raw.Control(func(fd uintptr) {
				size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
			}); err != nil || serr != nil {
				t.Fatal(err, serr)
			}
			if size < sweepReadBuffer {
				t.Errorf("receive buffer %d bytes, want at least %d", size, sweepReadBuffer)
			}
		})
	}
}

// TestSweepBurst sends 2,000 echoes back to back: with the filter and the
// larger buffer none of the replies is lost, even on loopback, where they
// arrive as fast as the echoes leave.
func TestSweepBurst(t *testing.T) {
	unpriv, priv := icmpModes(t)
	if os.Geteuid() != 0 {
		t.Skip("without root the receive buffer stops at net.core.rmem_max and a burst may overflow it")
	}
	addrs := make([]netip.Addr, 2000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
	}
	for _, mode := range []struct{ privileged, allowed bool }{{false, unpriv}, {true, priv}} {
		t.Run(fmt.Sprintf("privileged=%v", mode.privileged), func(t *testing.T) {
			if !mode.allowed {
				t.Skip("this socket cannot be opened here")
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := Sweep(ctx, addrs, SweepOptions{Privileged: mode.privileged, Interval: time.Nanosecond, Wait: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lost := 0
			for _, r := range res {
				if !r.Replied {
					lost++
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d replies lost", lost, len(addrs))
			}
		})
	}
}
