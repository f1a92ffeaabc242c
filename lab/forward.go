package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"
)

// queueLen bounds the packets in flight on one direction of a link; more
// are dropped, as a router's queue would.
const queueLen = 4096

// spin is how long before a packet is due the forwarder stops sleeping
// and yields instead: about how late a timer wakes on a busy machine.
const spin = 300 * time.Microsecond

// busy is the queue length from which a link stops spinning for exact
// timing: under a sweep's thousands of packets a second, spinning before
// every packet would take a core per link and starve the rest of the lab.
// A busy link sends each packet when its timer wakes, a little late and
// never early.
const busy = 8

// dropReport is how often a link logs that its queue overflowed.
const dropReport = time.Second

// mtu of the TUN links; reads of up to this many bytes get a whole packet.
const mtu = 1500

// Forward creates both TUN ends of every link of the lab in l.Dir and
// copies packets between them, each held for its link's delay, until ctx
// ends. ready is called once every device exists.
func Forward(ctx context.Context, log *slog.Logger, l *Lab, ready func() error) error {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	type end struct{ a, b *os.File }
	var ends []end
	for _, w := range l.Topo.Wires() {
		na, _ := l.Topo.Node(w.A)
		nb, _ := l.Topo.Node(w.B)
		fa, err := openTUN(na.NS, IfName(w.B))
		if err != nil {
			return err
		}
		files = append(files, fa)
		fb, err := openTUN(nb.NS, IfName(w.A))
		if err != nil {
			return err
		}
		files = append(files, fb)
		ends = append(ends, end{fa, fb})
	}
	if err := ready(); err != nil {
		return err
	}
	log.Info("lab links forwarding", "links", len(ends))
	var wg sync.WaitGroup
	for i, w := range l.Topo.Wires() {
		e := ends[i]
		wg.Go(func() { pipe(ctx, log, e.a, e.b, w.Delay) })
		wg.Go(func() { pipe(ctx, log, e.b, e.a, w.Delay) })
	}
	<-ctx.Done()
	// Closing the devices ends the blocked reads.
	for _, f := range files {
		f.Close()
	}
	files = nil
	wg.Wait()
	return nil
}

type packet struct {
	b   []byte
	due time.Time
}

// pipe copies packets from src to dst, each delay after it was read. The
// delay is the same for every packet, so a FIFO keeps them in order.
func pipe(ctx context.Context, log *slog.Logger, src, dst *os.File, delay time.Duration) {
	q := make(chan packet, queueLen)
	go func() {
		defer close(q)
		buf := make([]byte, mtu+64)
		var dropped int
		var reported time.Time
		for {
			n, err := src.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) && ctx.Err() == nil {
					log.Error("lab link read failed", "dev", src.Name(), "err", err)
				}
				return
			}
			p := packet{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
			select {
			case q <- p:
			default: // queue full: drop, as a router would
				dropped++
				if time.Since(reported) >= dropReport {
					log.Warn("lab link queue full: packets dropped", "dev", src.Name(), "dropped", dropped)
					reported = time.Now()
				}
			}
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	// Timers wake late, more so on a busy machine: sleep until shortly
	// before the packet is due, then yield until it is. A packet is held
	// at least its link's delay, never less: the lab is never faster than
	// its topology.
	for p := range q {
		d := time.Until(p.due)
		if len(q) < busy {
			d -= spin
		}
		if d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		for time.Now().Before(p.due) {
			runtime.Gosched()
		}
		if _, err := dst.Write(p.b); err != nil && ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
			// A device that is down refuses writes (EIO): the packet is
			// lost, as on a link that is down.
			log.Debug("lab link write failed", "dev", dst.Name(), "err", err)
		}
	}
}

// errForwarder explains a forwarder that did not come up.
func errForwarder(logPath string, err error) error {
	return fmt.Errorf("lab link forwarder: %w (see %s)", err, logPath)
}
