package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/catchmap/catchmap/lab"
	"github.com/catchmap/catchmap/sweep/payload"
)

// forged returns n payloads that name sweep id and target, each under a
// key of its own: what an attacker who saw a probe could make.
func forged(id string, target netip.Addr, n int) [][]byte {
	sid, err := payload.ParseID(id)
	if err != nil {
		panic(err)
	}
	var out [][]byte
	for range n {
		enc, err := payload.NewEncoder(sid, payload.NewKey(), "ams", "forger")
		if err != nil {
			panic(err)
		}
		out = append(out, enc.Append(nil, target, time.Now()))
	}
	return out
}

// strays returns n payloads that are no sweep's: half of an unknown sweep,
// half not a payload at all.
func strays(n int) [][]byte {
	var out [][]byte
	for i := range n {
		if i%2 == 0 {
			enc, _ := payload.NewEncoder(payload.NewID(), payload.NewKey(), "ams", "")
			out = append(out, enc.Append(nil, netip.MustParseAddr("10.16.5.1"), time.Now()))
		} else {
			out = append(out, []byte(fmt.Sprintf("hello from a confused host %d", i)))
		}
	}
	return out
}

// injectReplies sends an ICMP echo reply with each payload to dst from a
// raw socket in node's namespace.
func injectReplies(l *lab.Lab, node, dst string, payloads ...[][]byte) error {
	return l.InNamespace(node, func() error {
		c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return fmt.Errorf("raw socket in %s: %w", node, err)
		}
		defer c.Close()
		seq := 0
		for _, ps := range payloads {
			for _, p := range ps {
				seq++
				m := icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 0xbad, Seq: seq, Data: p}}
				b, err := m.Marshal(nil)
				if err != nil {
					return err
				}
				if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
					return fmt.Errorf("injecting from %s: %w", node, err)
				}
			}
		}
		return nil
	})
}
