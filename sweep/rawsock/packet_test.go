package rawsock

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// replyPacket wraps an echo reply of id, seq and data in an IPv4 header,
// as a raw socket delivers it.
func replyPacket(from, to netip.Addr, id, seq uint16, data []byte) []byte {
	icmp := AppendEcho(nil, id, seq, data)
	icmp[0] = typeEchoReply
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(icmp)))
	h[8], h[9] = 64, 1
	f, t := from.As4(), to.As4()
	copy(h[12:], f[:])
	copy(h[16:], t[:])
	return append(h, icmp...)
}

func TestAppendEchoChecksum(t *testing.T) {
	for _, data := range [][]byte{nil, {1}, []byte("odd length payload"), make([]byte, 200)} {
		b := AppendEcho([]byte{0xff}, 0x1234, 0xabcd, data)[1:]
		if checksum(b) != 0 {
			t.Errorf("data of %d bytes: checksum does not verify", len(data))
		}
		if b[0] != typeEchoRequest || binary.BigEndian.Uint16(b[4:]) != 0x1234 || binary.BigEndian.Uint16(b[6:]) != 0xabcd {
			t.Errorf("header % x", b[:8])
		}
	}
}

func TestParseReply(t *testing.T) {
	from, to := netip.MustParseAddr("10.64.1.1"), netip.MustParseAddr("192.0.2.53")
	good := replyPacket(from, to, 7, 9, []byte("payload"))
	r, ok := ParseReply(good)
	if !ok || r.From != from || r.To != to || r.ID != 7 || r.Seq != 9 || string(r.Data) != "payload" {
		t.Fatalf("got %+v, %v", r, ok)
	}
	// Trailing bytes beyond the IP total length are not data.
	if r, ok := ParseReply(append(append([]byte(nil), good...), 0, 0)); !ok || string(r.Data) != "payload" {
		t.Errorf("padded packet: %+v, %v", r, ok)
	}
	bad := map[string]func([]byte){
		"IPv6":         func(b []byte) { b[0] = 0x65 },
		"short IHL":    func(b []byte) { b[0] = 0x44 },
		"not ICMP":     func(b []byte) { b[9] = 17 },
		"fragment":     func(b []byte) { b[7] = 1 },
		"total long":   func(b []byte) { binary.BigEndian.PutUint16(b[2:], 999) },
		"echo request": func(b []byte) { b[20] = typeEchoRequest },
		"code":         func(b []byte) { b[21] = 1 },
		"checksum":     func(b []byte) { b[len(b)-1] ^= 1 },
	}
	for name, mutate := range bad {
		b := append([]byte(nil), good...)
		mutate(b)
		if _, ok := ParseReply(b); ok {
			t.Errorf("%s: parsed", name)
		}
	}
	for n := range len(good) {
		if _, ok := ParseReply(good[:n]); ok && n < len(good) {
			t.Errorf("truncated to %d bytes: parsed", n)
		}
	}
}

// FuzzParseReply: no packet panics the parser, and what parses holds
// together: the data lies within the packet, and its checksum verifies.
func FuzzParseReply(f *testing.F) {
	f.Add(replyPacket(netip.MustParseAddr("10.64.1.1"), netip.MustParseAddr("192.0.2.53"), 7, 9, []byte("payload")))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := ParseReply(b)
		if !ok {
			return
		}
		ihl := int(b[0]&0x0f) * 4
		if len(r.Data) > len(b)-ihl-echoHeader || checksum(b[ihl:ihl+echoHeader+len(r.Data)]) != 0 {
			t.Fatalf("parsed %+v from %x", r, b)
		}
	})
}
