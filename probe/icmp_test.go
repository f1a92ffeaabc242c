package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// icmpModes reports which ICMP socket modes this process may open, read
// from the system rather than tried: unprivileged needs the process's group
// in net.ipv4.ping_group_range on Linux, privileged needs root (CI runs the
// tests as root). Tests never change the sysctl.
func icmpModes(t *testing.T) (unprivileged, privileged bool) {
	t.Helper()
	privileged = os.Geteuid() == 0
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		// Not Linux: macOS has unprivileged ping sockets for everyone.
		return runtime.GOOS == "darwin", privileged
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		t.Fatalf("ping_group_range %q: %v", b, err)
	}
	gid := os.Getegid()
	return lo <= gid && gid <= hi, privileged
}

// hasIPv6Loopback reports whether ::1 is usable here (containers may lack it).
func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestICMP(t *testing.T) {
	unpriv, priv := icmpModes(t)
	if !unpriv && !priv {
		t.Skip("neither unprivileged ICMP (ping_group_range) nor root: no ICMP socket can be opened")
	}
	targets := []string{"127.0.0.1", "127.0.3.7", "127.1.2.3"}
	if hasIPv6Loopback() {
		targets = append(targets, "::1")
	}
	for _, mode := range []struct {
		privileged, allowed bool
	}{{false, unpriv}, {true, priv}} {
		if !mode.allowed {
			continue
		}
		for _, target := range targets {
			t.Run(fmt.Sprintf("privileged=%v/%s", mode.privileged, target), func(t *testing.T) {
				r := measureSpec(t, spec.Spec{Target: target, Method: result.MethodICMP, Count: 3,
					Interval: spec.Duration(10 * time.Millisecond), Privileged: mode.privileged})
				if !r.OK() {
					t.Fatalf("%s: %s", r.ErrorKind, r.Error)
				}
				p := r.Ping
				if p == nil || p.Sent != 3 || p.Received != 3 || p.Loss != 0 {
					t.Fatalf("Ping %+v, want 3 sent and received", p)
				}
				if p.MinMs <= 0 || p.MinMs > p.AvgMs || p.AvgMs > p.MaxMs || r.RTTMs != p.AvgMs {
					t.Errorf("RTTMs %v Ping %+v: want 0 < min <= avg <= max and RTTMs = avg", r.RTTMs, p)
				}
			})
		}
	}
}

func TestICMPDefaults(t *testing.T) {
	unpriv, priv := icmpModes(t)
	if !unpriv && !priv {
		t.Skip("no ICMP socket can be opened here")
	}
	r := measureSpec(t, spec.Spec{Target: "127.0.0.1", Method: result.MethodICMP, Privileged: !unpriv})
	if !r.OK() || r.Ping == nil || r.Ping.Sent != DefaultICMPCount || r.Ping.Received != DefaultICMPCount {
		t.Fatalf("kind %q error %q Ping %+v: want %d echoes answered", r.ErrorKind, r.Error, r.Ping, DefaultICMPCount)
	}
}

// TestICMPPermission checks the error for a mode the system refuses; it
// runs only where one is refused (unprivileged ICMP with an empty
// ping_group_range, or raw ICMP without root).
func TestICMPPermission(t *testing.T) {
	unpriv, priv := icmpModes(t)
	for _, mode := range []struct {
		privileged, allowed bool
	}{{false, unpriv}, {true, priv}} {
		if mode.allowed {
			continue
		}
		t.Run(fmt.Sprintf("privileged=%v", mode.privileged), func(t *testing.T) {
			r := measureSpec(t, spec.Spec{Target: "127.0.0.1", Method: result.MethodICMP, Privileged: mode.privileged})
			if r.ErrorKind != result.KindPermission {
				t.Fatalf("kind %q error %q, want permission", r.ErrorKind, r.Error)
			}
			if !strings.Contains(r.Error, icmpPermissionHint) || !strings.Contains(r.Error, "--privileged") {
				t.Errorf("error %q does not say how to allow ICMP", r.Error)
			}
		})
	}
}

func TestICMPSocketError(t *testing.T) {
	perm := &net.OpError{Op: "listen", Net: "udp4", Err: os.NewSyscallError("socket", syscall.EACCES)}
	kind, err := icmpSocketError(perm, false)
	if kind != result.KindPermission || !errors.Is(err, ErrICMPPermission) {
		t.Errorf("EACCES: kind %q err %v, want permission wrapping ErrICMPPermission", kind, err)
	}
	other := &net.OpError{Op: "read", Net: "udp4", Err: errors.New("boom")}
	if kind, err := icmpSocketError(other, true); kind != result.KindNetwork || err != other {
		t.Errorf("other error: kind %q err %v, want network and the error unchanged", kind, err)
	}
}

// TestICMPLoss pings lo's broadcast address, which Linux does not answer
// while net.ipv4.icmp_echo_ignore_broadcasts is 1 (its default).
func TestICMPLoss(t *testing.T) {
	unpriv, priv := icmpModes(t)
	if !unpriv && !priv {
		t.Skip("no ICMP socket can be opened here")
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/icmp_echo_ignore_broadcasts"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("this system answers echoes to broadcast addresses: no silent loopback address to ping")
	}
	r := measureSpec(t, spec.Spec{Target: "127.255.255.255", Method: result.MethodICMP, Count: 2,
		Interval: spec.Duration(10 * time.Millisecond), Privileged: !unpriv, Timeout: spec.Duration(300 * time.Millisecond)})
	if r.ErrorKind != result.KindLoss || !strings.Contains(r.Error, "no echo reply") {
		t.Fatalf("kind %q error %q, want loss", r.ErrorKind, r.Error)
	}
	if p := r.Ping; p == nil || p.Sent != 2 || p.Received != 0 || p.Loss != 1 || r.RTTMs != 0 {
		t.Fatalf("RTTMs %v Ping %+v, want 2 sent, none received", r.RTTMs, p)
	}
}
