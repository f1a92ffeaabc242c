package probe

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// measureTCP times one TCP connect to t.Addr and closes the connection. The
// handshake is one round trip, so its time is the RTT. r.Ping counts the
// attempt as one packet sent, so tcp and icmp results read alike.
func measureTCP(ctx context.Context, t Target, r *result.Record) error {
	r.Ping = &result.Ping{Sent: 1, Loss: 1}
	var d net.Dialer
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		return fmt.Errorf("tcp connect to %s: %w", t.Addr, err)
	}
	rtt := ms(time.Since(start))
	_ = c.Close() // nothing was written: a close error cannot lose data
	r.RTTMs = rtt
	*r.Ping = result.Ping{Sent: 1, Received: 1, MinMs: rtt, AvgMs: rtt, MaxMs: rtt}
	return nil
}
