//go:build !linux

package rawsock

import (
	"errors"
	"net/netip"
)

// Raw would open raw ICMP sockets; sweeps need Linux for now.
type Raw struct{}

var errLinux = errors.New("sweeps need Linux (raw ICMP sockets with batched I/O)")

// Catch implements Opener.
func (Raw) Catch(netip.Addr, int) (Catching, error) { return nil, errLinux }

// Send implements Opener.
func (Raw) Send(netip.Addr) (Sending, error) { return nil, errLinux }
