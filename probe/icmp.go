package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/catchmap/catchmap/probe/result"
)

// ICMP defaults. The interval is short so that a measurement of many
// targets stays quick (3 echoes take about 400 ms plus one RTT); a gap of
// 200 ms is still far above what ICMP rate limiters on routers punish.
const (
	DefaultICMPCount    = 3
	DefaultICMPInterval = 200 * time.Millisecond
)

// ErrICMPPermission wraps the error of an ICMP socket the system would not
// open; its message says how to allow it.
var ErrICMPPermission = errors.New("no permission to open an ICMP socket")

// measureICMP sends t.Spec.Count echoes to t.Addr, t.Spec.Interval apart,
// and waits for the replies until all are in or ctx ends. r.RTTMs is the
// mean RTT. Per-packet RTTs are not kept (pro-bing's running statistics
// suffice), so memory stays flat however large Count is.
func measureICMP(ctx context.Context, t Target, r *result.Record) error {
	count := t.Spec.Count
	if count <= 0 {
		count = DefaultICMPCount
	}
	interval := t.Spec.Interval.D()
	if interval <= 0 {
		interval = DefaultICMPInterval
	}
	a := t.Addr.Addr()
	p := probing.New(a.String())
	p.SetIPAddr(&net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()})
	p.Count = count
	p.Interval = interval
	p.RecordRtts = false
	p.RecordTTLs = false
	p.SetPrivileged(t.Spec.Privileged)
	// Errors reach the caller through the return value and OnSendError;
	// pro-bing's own logger would print to stderr.
	p.SetLogger(probing.NoopLogger{})
	var sendErr error // written by pro-bing's send loop, read after Run returns
	p.OnSendError = func(_ *probing.Packet, err error) {
		if sendErr == nil {
			sendErr = err
		}
	}

	runErr := p.RunWithContext(ctx)
	if runErr != nil && ctx.Err() == nil {
		if sendErr != nil && errors.Is(runErr, sendErr) {
			// The socket opened, and the kernel refused the echo itself.
			r.ErrorKind = result.KindNetwork
			err := fmt.Errorf("ping %s: sending the echo request failed: %w", a, runErr)
			if errors.Is(runErr, syscall.EPERM) || errors.Is(runErr, syscall.EACCES) {
				// What an output rule of a local firewall (nftables,
				// iptables) that drops the echo makes sendmsg say.
				err = fmt.Errorf("%w (the ICMP socket opened, so a local firewall rule on outgoing ICMP is the likely cause: "+
					"see nft list ruleset, or iptables -S OUTPUT)", err)
			}
			return err
		}
		// Not the deadline: the socket could not be opened or used.
		kind, err := icmpSocketError(runErr, t.Spec.Privileged)
		r.ErrorKind = kind
		return fmt.Errorf("ping %s: %w", a, err)
	}
	st := p.Statistics()
	r.Ping = pingStats(st)
	r.RTTMs = r.Ping.AvgMs
	if st.PacketsRecv == 0 {
		r.ErrorKind = result.KindLoss
		err := fmt.Errorf("ping %s: no echo reply (%d sent)", a, st.PacketsSent)
		if sendErr != nil {
			err = fmt.Errorf("%w: sending failed: %w", err, sendErr)
		}
		return err
	}
	return nil
}

// pingStats converts pro-bing's statistics to result.Ping.
func pingStats(st *probing.Statistics) *result.Ping {
	recv := min(st.PacketsRecv, st.PacketsSent)
	ps := &result.Ping{
		Sent:     st.PacketsSent,
		Received: recv,
		MinMs:    ms(st.MinRtt),
		AvgMs:    ms(st.AvgRtt),
		MaxMs:    ms(st.MaxRtt),
		StddevMs: ms(st.StdDevRtt),
	}
	if st.PacketsSent > 0 {
		ps.Loss = float64(st.PacketsSent-recv) / float64(st.PacketsSent)
	}
	return ps
}

// icmpSocketError classifies an error from opening or setting up an ICMP
// socket (a failed send is told apart before). EACCES and EPERM mean the
// system refused the socket: the message then says how to allow it.
func icmpSocketError(err error, privileged bool) (result.ErrorKind, error) {
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		return classify(err), err
	}
	mode := "unprivileged (datagram) ICMP"
	if privileged {
		mode = "privileged (raw) ICMP"
	}
	return result.KindPermission, fmt.Errorf("%w: %s: %w; %s", ErrICMPPermission, mode, err, icmpPermissionHint)
}
