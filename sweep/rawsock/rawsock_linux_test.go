//go:build linux

package rawsock

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root")
	}
}

// local is this test's own loopback address: replies to it reach only
// this test's catching socket.
var local = netip.AddrFrom4([4]byte{127, 77, byte(os.Getpid() >> 8), byte(os.Getpid())})

// open returns a catching socket with the receive buffer rcvbuf and a
// sending socket, both on local, closed when the test ends.
func open(t *testing.T, rcvbuf int) (catch, send *Conn) {
	t.Helper()
	needRoot(t)
	catch, err := ListenCatch(local, rcvbuf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catch.Close() })
	send, err = ListenSend(local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	return catch, send
}

// TestLoopbackBatch sends a batch of echoes to loopback addresses from
// local and catches every reply, with its data and a kernel receive time.
func TestLoopbackBatch(t *testing.T) {
	catch, send := open(t, 1<<20)
	if catch.ReadBuffer() < 1<<19 {
		t.Errorf("receive buffer %d, asked for %d", catch.ReadBuffer(), 1<<20)
	}
	const n = 200
	w := send.NewWriter(64)
	start := time.Now()
	sent := 0
	for i := range n {
		dst := netip.AddrFrom4([4]byte{127, 78, byte(i >> 8), byte(i)})
		w.Add(dst, AppendEcho(w.Next(), 0x5eed, uint16(i), fmt.Appendf(nil, "probe %d", i)))
		if w.Len() == w.Cap() || i == n-1 {
			k, _, err := w.Flush()
			if err != nil {
				t.Fatal(err)
			}
			sent += k
		}
	}
	if sent != n {
		t.Fatalf("sent %d of %d", sent, n)
	}
	r := catch.NewReader(32)
	got := map[uint16]bool{}
	_ = catch.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < n {
		reps, _, err := r.Read()
		if err != nil {
			t.Fatalf("after %d replies: %v", len(got), err)
		}
		for _, rep := range reps {
			want := netip.AddrFrom4([4]byte{127, 78, byte(rep.Seq >> 8), byte(rep.Seq)})
			if rep.ID != 0x5eed || rep.From != want || rep.To != local || string(rep.Data) != fmt.Sprintf("probe %d", rep.Seq) {
				t.Fatalf("reply %+v", rep)
			}
			if rep.Received.Before(start.Add(-time.Second)) || rep.Received.After(time.Now()) {
				t.Fatalf("receive time %s is not the kernel's", rep.Received)
			}
			got[rep.Seq] = true
		}
	}
	if catch.Drops() != 0 {
		t.Errorf("%d drops with an idle machine's buffer", catch.Drops())
	}
}

// TestDropsReported overflows a small receive buffer and checks that the
// kernel's drop counter comes through.
func TestDropsReported(t *testing.T) {
	catch, send := open(t, 4096)
	w := send.NewWriter(100)
	for range 5 {
		for i := range 100 {
			w.Add(netip.AddrFrom4([4]byte{127, 79, 0, byte(i)}), AppendEcho(w.Next(), 1, uint16(i), make([]byte, 64)))
		}
		if _, _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Drain what fit, then send one more: the kernel tags it with the
	// count of those it dropped.
	r := catch.NewReader(64)
	deadline := time.Now().Add(5 * time.Second)
	for catch.Drops() == 0 && time.Now().Before(deadline) {
		_ = catch.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := r.Read(); err != nil {
			w.Add(netip.AddrFrom4([4]byte{127, 79, 1, 1}), AppendEcho(w.Next(), 1, 1, nil))
			if _, _, err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if catch.Drops() == 0 {
		t.Fatal("500 replies into a 4 KiB buffer, and no drop reported")
	}
	t.Logf("kernel dropped %d replies", catch.Drops())
}

// TestFlushRefused: a packet the kernel refuses is skipped and counted,
// and the rest of the batch still goes.
func TestFlushRefused(t *testing.T) {
	catch, send := open(t, 1<<20)
	w := send.NewWriter(8)
	dst := netip.AddrFrom4([4]byte{127, 79, 2, 1})
	w.Add(dst, AppendEcho(w.Next(), 2, 1, []byte("first")))
	// No IPv4 packet holds 70,000 bytes: EMSGSIZE, before anything leaves.
	w.Add(dst, AppendEcho(nil, 2, 2, make([]byte, 70_000)))
	w.Add(dst, AppendEcho(w.Next(), 2, 3, []byte("third")))
	sent, refused, err := w.Flush()
	if sent != 2 || refused != 1 || err == nil || w.Len() != 0 {
		t.Fatalf("sent %d, refused %d, err %v, %d queued; want 2, 1, an error, 0", sent, refused, err, w.Len())
	}
	r := catch.NewReader(8)
	var seqs []uint16
	_ = catch.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(seqs) < 2 {
		reps, _, err := r.Read()
		if err != nil {
			t.Fatalf("after %v: %v", seqs, err)
		}
		for _, rep := range reps {
			if rep.ID == 2 {
				seqs = append(seqs, rep.Seq)
			}
		}
	}
	if seqs[0]+seqs[1] != 4 {
		t.Errorf("replies to %v: want 1 and 3", seqs)
	}
}
