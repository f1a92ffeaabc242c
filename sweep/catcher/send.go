package catcher

import (
	"context"
	"fmt"
	"time"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
	"github.com/catchmap/catchmap/sweep/rawsock"
)

// maxLag bounds the catch-up after a stall (the process off the CPU):
// at most this long's worth of probes goes out back to back, and the
// schedule slips by the rest, so that no second sees more than the rate
// and this much. 50 ms rides out the scheduler of a busy machine (a 10 ms
// bound lost a tenth of the rate to slips on two shared CPUs) while a
// burst stays small: 5,000 probes to random networks at 100,000/s.
const maxLag = 50 * time.Millisecond

// quantum is the shortest wait between two batches: at high rates the
// sender wakes every quantum and sends what fell due meanwhile, in one
// sendmmsg, rather than waking for each probe.
const quantum = 250 * time.Microsecond

// maxRefusedRun ends a share when the kernel refuses this many probes in
// a row and takes none: the socket or the route is gone, not one target.
const maxRefusedRun = 1000

// send sends s's share at its rate until done or ctx ends, and returns
// the sweep's final state.
func (a *Agent) send(ctx context.Context, s *sweep, out rawsock.Sending) (string, error) {
	enc, err := payload.NewEncoder(s.order.ID, s.key, a.cfg.Site, s.order.Contact)
	if err != nil {
		return control.StateFailed, err
	}
	rate := float64(s.order.Send.Rate)
	echoID := uint16(s.order.ID)
	data := make([]byte, 0, payload.MaxSize)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	next, refusedRun := 0, 0
	for next < len(s.targets) {
		now := time.Now()
		due := int(now.Sub(start).Seconds()*rate) + 1
		if lag := due - next - int(rate*maxLag.Seconds()) - 1; lag > 0 {
			start = start.Add(time.Duration(float64(lag) / rate * float64(time.Second)))
			due -= lag
		}
		due = min(due, len(s.targets))
		for next < due && out.Len() < out.Cap() {
			t := s.targets[next]
			next++
			if !a.allowed(t) {
				s.blocked.Add(1)
				a.m.blocked.Inc()
				continue
			}
			dst := hitlist.Addr(t)
			data = enc.Append(data[:0], dst, now)
			out.Add(dst, rawsock.AppendEcho(out.Next(), echoID, uint16(next-1), data))
		}
		if out.Len() > 0 {
			sent, refused, err := out.Flush()
			s.sent.Add(int64(sent))
			a.sent.Add(uint64(sent))
			a.m.sent.Add(float64(sent))
			if refused > 0 {
				s.sendErrors.Add(int64(refused))
				a.m.sendErrors.Add(float64(refused))
				a.log.Debug("probes refused by the kernel", "sweep", s.order.ID, "n", refused, "err", err)
			}
			if sent > 0 {
				refusedRun = 0
			}
			if refusedRun += refused; refusedRun >= maxRefusedRun {
				return control.StateFailed, fmt.Errorf("the kernel refused %d probes in a row: %w", refusedRun, err)
			}
		}
		if ctx.Err() != nil {
			return control.StateStopped, context.Cause(ctx)
		}
		if next < due {
			continue // the batch was full; more are due now
		}
		if next >= len(s.targets) {
			break
		}
		wait := time.Until(start.Add(time.Duration(float64(next) / rate * float64(time.Second))))
		if wait <= 0 {
			continue
		}
		timer.Reset(max(wait, quantum))
		select {
		case <-ctx.Done():
			return control.StateStopped, context.Cause(ctx)
		case <-timer.C:
		}
	}
	return control.StateSent, nil
}

// allowed checks a target against the site's lists, before every send.
func (a *Agent) allowed(t uint32) bool {
	if a.cfg.Allow != nil && !a.cfg.Allow.Contains(t) {
		return false
	}
	return !a.cfg.Block.Contains(t)
}
