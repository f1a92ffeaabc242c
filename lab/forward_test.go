package lab

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestPipeDelay sends numbered writes through pipe over real pipes (a TUN
// needs root; a pipe carries each small write whole, as a TUN carries a
// packet) and checks each arrives in order and no sooner than the delay.
func TestPipeDelay(t *testing.T) {
	srcR, srcW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	dstR, dstW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
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
