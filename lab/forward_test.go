package lab

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// packetPair returns the two ends of a connected SOCK_SEQPACKET socket
// pair: like a TUN device, and unlike a pipe, it keeps each write a
// packet of its own however late the reader.
func packetPair(t *testing.T) (r, w *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "packets-r"), os.NewFile(uintptr(fds[1]), "packets-w")
}

// TestPipeDelay sends numbered packets through pipe over socket pairs (a
// TUN needs root) and checks each arrives whole, in order and no sooner
// than the delay.
func TestPipeDelay(t *testing.T) {
	srcR, srcW := packetPair(t)
	dstR, dstW := packetPair(t)
	defer dstR.Close()
	ctx, cancel := context.WithCancel(context.Background())
	const delay = 30 * time.Millisecond
	done := make(chan struct{})
	go func() {
		pipe(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), srcR, dstW, delay)
		close(done)
	}()
	const packets = 5
	sent := make(chan time.Time, packets)
	go func() {
		for i := range packets {
			sent <- time.Now()
			srcW.Write([]byte{byte(i)})
			time.Sleep(5 * time.Millisecond)
		}
	}()
	buf := make([]byte, 16)
	for i := range packets {
		dstR.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := dstR.Read(buf)
		got := time.Now()
		if err != nil || n != 1 {
			t.Fatalf("packet %d: read %d bytes, %v", i, n, err)
		}
		if int(buf[0]) != i {
			t.Errorf("packet %d arrived as number %d: out of order", i, buf[0])
		}
		if held := got.Sub(<-sent); held < delay {
			t.Errorf("packet %d held %s, less than the link's %s", i, held, delay)
		}
	}
	cancel()
	srcW.Close()
	srcR.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pipe did not stop after its context ended and its source closed")
	}
}
