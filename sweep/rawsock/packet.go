// Package rawsock sends ICMP echo requests from a given source address and
// receives the echo replies addressed to it, in batches (sendmmsg and
// recvmmsg through golang.org/x/net/ipv4), on raw sockets with a large
// receive buffer whose kernel drops are counted. It needs root or
// CAP_NET_RAW, and Linux; it uses no cgo.
package rawsock

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// ICMP echo types and the header length of an echo message.
const (
	typeEchoReply   = 0
	typeEchoRequest = 8
	echoHeader      = 8
)

// ErrNeedPrivilege is a raw socket the system refused.
var ErrNeedPrivilege = errors.New("raw ICMP sockets need root or CAP_NET_RAW (setcap cap_net_raw+ep on the binary)")

// AppendEcho appends an ICMP echo request with the given id, sequence
// number and data to dst, its checksum filled in.
func AppendEcho(dst []byte, id, seq uint16, data []byte) []byte {
	start := len(dst)
	dst = append(dst, typeEchoRequest, 0, 0, 0, byte(id>>8), byte(id), byte(seq>>8), byte(seq))
	dst = append(dst, data...)
	binary.BigEndian.PutUint16(dst[start+2:], checksum(dst[start:]))
	return dst
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// Reply is one echo reply as received.
type Reply struct {
	// From is the reply's source address, To its destination.
	From, To netip.Addr
	ID, Seq  uint16
	// Data is the echo's data: the request's, if the host echoed it
	// faithfully. It points into the reader's buffer, valid until the
	// next read.
	Data []byte
	// Received is the kernel's receive time.
	Received time.Time
}

// ParseReply reads an IPv4 packet, header included as raw sockets deliver
// it, that holds an ICMP echo reply; ok is false for anything else.
func ParseReply(b []byte) (r Reply, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return r, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl+echoHeader || total > len(b) || b[9] != 1 {
		return r, false
	}
	// A fragment cannot be parsed alone; the kernel reassembles before a
	// raw socket sees the packet, so this is only a guard.
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
		return r, false
	}
	icmp := b[ihl:total]
	// Raw sockets get ICMP before the kernel checks its checksum: a reply
	// damaged on the way is unparseable, not forged.
	if icmp[0] != typeEchoReply || icmp[1] != 0 || checksum(icmp) != 0 {
		return r, false
	}
	r.From = netip.AddrFrom4([4]byte(b[12:16]))
	r.To = netip.AddrFrom4([4]byte(b[16:20]))
	r.ID = binary.BigEndian.Uint16(icmp[4:])
	r.Seq = binary.BigEndian.Uint16(icmp[6:])
	r.Data = icmp[echoHeader:]
	return r, true
}
