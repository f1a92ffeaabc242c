//go:build !linux

package probe

import (
	"net"

	"golang.org/x/net/icmp"
)

// listenSweep opens a sweep's socket for one family: a raw ICMP socket when
// privileged, else an unprivileged ping socket. Outside Linux there is no
// ICMP_FILTER, and the socket's receive buffer is left as the system sets
// it.
func listenSweep(v6, privileged bool) (net.PacketConn, error) {
	c, err := icmp.ListenPacket(sweepNetwork(v6, privileged))
	if err != nil {
		return nil, err // not c: a nil *icmp.PacketConn is no nil net.PacketConn
	}
	return c, nil
}
