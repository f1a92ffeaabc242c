//go:build linux

package probe

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listenSweep opens a sweep's socket for one family: a raw ICMP socket when
// privileged, else a ping socket (SOCK_DGRAM, IPPROTO_ICMP).
//
// A raw socket sees every ICMP message the host receives, and on loopback
// that includes each echo request the sweep sends, so without a filter the
// requests crowd the replies out of the receive buffer. The kernel's
// ICMP_FILTER (raw(7), icmp6(7)) lets only echo replies in. A ping socket
// gets only the replies to its own echoes and needs no filter.
//
// Either way the receive buffer is grown, so that a burst of replies waits
// in it while the reader catches up instead of being dropped.
func listenSweep(v6, privileged bool) (net.PacketConn, error) {
	var c net.PacketConn
	var err error
	switch {
	case privileged && v6:
		c, err = net.ListenPacket(sweepNetwork(v6, privileged))
		if err == nil {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeEchoReply)
			err = ipv6.NewPacketConn(c).SetICMPFilter(&f)
		}
	case privileged:
		c, err = net.ListenPacket(sweepNetwork(v6, privileged))
		if err == nil {
			var f ipv4.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv4.ICMPTypeEchoReply)
			err = ipv4.NewPacketConn(c).SetICMPFilter(&f)
		}
	default:
		c, err = listenPingSocket(v6)
	}
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, err
	}
	growReadBuffer(c)
	return c, nil
}

// listenPingSocket opens an unprivileged ICMP socket as
// golang.org/x/net/icmp.ListenPacket does, but returns the *net.UDPConn
// itself so that its receive buffer can be set.
func listenPingSocket(v6 bool) (net.PacketConn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{}
	if v6 {
		family, proto, sa = syscall.AF_INET6, syscall.IPPROTO_ICMPV6, &syscall.SockaddrInet6{}
	}
	s, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(s, sa); err != nil {
		_ = syscall.Close(s)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(s), "icmp ping socket")
	defer f.Close() // FilePacketConn works on a duplicate
	return net.FilePacketConn(f)
}

// sweepReadBuffer is the receive buffer a sweep asks for: room for tens
// of thousands of replies (a queued loopback reply costs about a kilobyte
// of buffer) while the reader is off the CPU.
const sweepReadBuffer = 8 << 20

// growReadBuffer raises c's receive buffer towards sweepReadBuffer: up to
// net.core.rmem_max for anyone, beyond it with SO_RCVBUFFORCE where the
// process has CAP_NET_ADMIN (root). Both are best effort: a smaller buffer
// loses replies only to bursts, and those show as lost, not as an error.
func growReadBuffer(c net.PacketConn) {
	rc, ok := c.(interface {
		SetReadBuffer(int) error
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	_ = rc.SetReadBuffer(sweepReadBuffer)
	raw, err := rc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		// EPERM without CAP_NET_ADMIN: SetReadBuffer's size stands.
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, sweepReadBuffer)
	})
}
