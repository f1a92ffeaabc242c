package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/catchmap/catchmap/probe/result"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string, max int64) *Spool {
	t.Helper()
	s, err := Open(quiet(), prometheus.NewRegistry(), dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recs(n int, tag string) []result.Record {
	out := make([]result.Record, n)
	for i := range out {
		out[i] = result.Record{ID: fmt.Sprintf("%s-%04d", tag, i), Time: time.Unix(1700000000, 0).UTC(),
			Target: "192.0.2.1", Method: result.MethodTCP, AF: 4, Addr: "192.0.2.1", RTTMs: 1.5}
	}
	return out
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func ids(rs []result.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestPutPeekAck(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	if b, err := s.Peek(10); err != nil || b != nil {
		t.Fatalf("empty spool: Peek = %v, %v; want nil, nil", b, err)
	}
	for i := range 5 {
		if err := s.Put(recs(2, fmt.Sprint("p", i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 10 {
		t.Fatalf("Len = %d, want 10", s.Len())
	}
	b, err := s.Peek(5)
	if err != nil {
		t.Fatal(err)
	}
	// Whole segments only: two of two records fit in five.
	if got := strings.Join(ids(b.Records), ","); got != "p0-0000,p0-0001,p1-0000,p1-0001" {
		t.Fatalf("first batch = %s", got)
	}
	if b.Records[0].RTTMs != 1.5 || b.Records[0].Method != "tcp" {
		t.Fatalf("record did not round-trip: %+v", b.Records[0])
	}
	// Peek again without Ack gives the same batch: nothing is lost before Ack.
	b2, _ := s.Peek(5)
	if len(b2.Records) != 4 || b2.Records[0].ID != "p0-0000" {
		t.Fatalf("second Peek without Ack = %v", ids(b2.Records))
	}
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 6 {
		t.Fatalf("Len after Ack = %d, want 6", s.Len())
	}
	b, _ = s.Peek(1)
	if len(b.Records) != 2 || b.Records[0].ID != "p2-0000" {
		t.Fatalf("batch smaller than a segment must hold the whole segment: %v", ids(b.Records))
	}
}

func TestReopenAndTornWrite(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	if err := s.Put(recs(3, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(recs(2, "b")); err != nil {
		t.Fatal(err)
	}
	// Tear the last segment mid-line, as a crash during a write might on a
	// filesystem that does not honour the rename barrier.
	names, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if len(names) != 2 {
		t.Fatalf("segments on disk: %v", names)
	}
	data, _ := os.ReadFile(names[1])
	if err := os.WriteFile(names[1], data[:len(data)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	// And an interrupted Put's temp file, plus a stranger.
	if err := os.WriteFile(filepath.Join(dir, tmpPrefix+"123"), []byte(`{"id":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	s2, err := Open(quiet(), reg, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file of an interrupted Put survived Open: %v", err)
	}
	b, err := s2.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(b.Records), ","); got != "a-0000,a-0001,a-0002,b-0000" {
		t.Fatalf("after reopen = %s, want the three of a and the untorn b-0000", got)
	}
	if n := value(s2.corrupt); n != 1 {
		t.Fatalf("corrupt lines = %v, want 1", n)
	}
	if err := s2.Ack(b); err != nil {
		t.Fatal(err)
	}
	if b, _ := s2.Peek(100); b != nil || s2.Len() != 0 {
		t.Fatalf("spool not empty after Ack: %v, len %d", b, s2.Len())
	}
	// New segments after a reopen sort after the old ones.
	_ = s2.Put(recs(1, "c"))
	s3 := open(t, dir, 0)
	_ = s3.Put(recs(1, "d"))
	b, _ = s3.Peek(100)
	if got := strings.Join(ids(b.Records), ","); got != "c-0000,d-0000" {
		t.Fatalf("order across reopen = %s", got)
	}
}

func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	one, _, _ := encode(recs(1, "x0"))
	// Room for exactly three one-record segments.
	s := open(t, dir, int64(3*len(one)))
	for i := range 5 {
		if err := s.Put(recs(1, fmt.Sprintf("x%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := s.Peek(100)
	if got := strings.Join(ids(b.Records), ","); got != "x2-0000,x3-0000,x4-0000" {
		t.Fatalf("after overflow = %s, want the newest three", got)
	}
	if n := value(s.dropped); n != 2 {
		t.Fatalf("dropped = %v, want 2", n)
	}
	if err := s.Put(recs(10, "big")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put larger than the bound: err = %v, want ErrTooLarge", err)
	}
	// A batch peeked before its segments were dropped can still be acked.
	_ = s.Ack(b)
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("len %d bytes %d after ack", s.Len(), s.Bytes())
	}
	// A smaller bound at the next start trims the spool at once.
	for i := range 3 {
		_ = s.Put(recs(1, fmt.Sprintf("y%d", i)))
	}
	s2 := open(t, dir, int64(len(one)))
	if s2.Len() != 1 {
		t.Fatalf("reopen with a smaller bound kept %d records, want 1", s2.Len())
	}
}

func TestUnencodableRecordAlone(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	rs := recs(3, "n")
	rs[1].RTTMs = math.NaN() // JSON has no NaN
	if err := s.Put(rs); err != nil {
		t.Fatalf("Put with one bad record: %v", err)
	}
	b, _ := s.Peek(10)
	if got := strings.Join(ids(b.Records), ","); got != "n-0000,n-0002" {
		t.Fatalf("kept %s, want the two good records", got)
	}
	if value(s.dropped) != 1 || s.Len() != 2 {
		t.Fatalf("dropped %v, len %d; want 1, 2", value(s.dropped), s.Len())
	}
}

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	if err := s.Quarantine(recs(2, "q"), "400 bad batch"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, QuarantineFile))
	if err != nil {
		t.Fatal(err)
	}
	got, bad := Decode(data)
	if len(got) != 2 || bad != 0 {
		t.Fatalf("quarantine file holds %d records, %d bad", len(got), bad)
	}
	if s.Len() != 0 {
		t.Fatal("quarantine file counted as a segment")
	}
	if s2 := open(t, dir, 0); s2.Len() != 0 {
		t.Fatal("quarantine file read back as a segment after reopen")
	}
}

// TestDiskFull fills a real, small tmpfs so that the kernel answers ENOSPC.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for a real out-of-space error")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount tmpfs (in a container without CAP_SYS_ADMIN?): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	// The spool's own bound is far above the disk, so only ENOSPC can stop it.
	s := open(t, dir, 64<<20)
	const puts = 200 // 200 segments of ~8 KiB cannot fit in 256 KiB
	for i := range puts {
		if err := s.Put(recs(40, fmt.Sprintf("f%03d", i))); err != nil {
			t.Fatalf("put %d on a full disk: %v (should drop the oldest instead)", i, err)
		}
	}
	dropped := value(s.dropped)
	if dropped == 0 {
		t.Fatal("disk never filled: nothing dropped")
	}
	if want := float64(puts*40 - s.Len()); dropped != want {
		t.Fatalf("dropped %v records, want %v (put %d, kept %d)", dropped, want, puts*40, s.Len())
	}
	b, err := s.Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if last := b.Records[len(b.Records)-1].ID; last != fmt.Sprintf("f%03d-0039", puts-1) {
		t.Fatalf("newest record kept is %s, want the last one put", last)
	}
	if first := b.Records[0].ID; first == "f000-0000" {
		t.Fatal("oldest record survived a full disk: the newest should have won")
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*")); len(tmps) != 0 {
		t.Fatalf("failed writes left temp files: %v", tmps)
	}
}

func FuzzSpoolDecode(f *testing.F) {
	good, _, _ := encode(recs(2, "z"))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"id":"a","rtt_ms":"x"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, bad := Decode(data)
		lines := strings.Count(string(data), "\n") + 1
		if len(got)+bad > lines {
			t.Fatalf("%d records + %d bad from %d lines", len(got), bad, lines)
		}
		for _, r := range got {
			if r.ID == "" {
				t.Fatal("decoded a record without an id")
			}
		}
		// What decodes must survive a round trip through the encoder.
		again, _, err := encode(got)
		if err != nil {
			t.Fatal(err)
		}
		if back, bad := Decode(again); len(back) != len(got) || bad != 0 {
			t.Fatalf("round trip: %d records, %d bad; want %d, 0", len(back), bad, len(got))
		}
	})
}
