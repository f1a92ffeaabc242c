package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a spool that the test closes at its end.
func open(t *testing.T, dir string, maxBytes int64) *Spool {
	t.Helper()
	s, _ := openLogged(t, dir, Options{MaxBytes: maxBytes})
	return s
}

// openLogged is open with opt, and the spool's log.
func openLogged(t *testing.T, dir string, opt Options) (*Spool, *testutil.Buffer) {
	t.Helper()
	var logs testutil.Buffer
	opt.Subsystem = "test"
	s, err := Open(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry(), dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, &logs
}

// raws are n opaque records named tag-0000 on, each padded to size bytes.
func raws(n int, tag string, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		r := fmt.Appendf(nil, "%s-%04d", tag, i)
		out[i] = append(r, bytes.Repeat([]byte{'.'}, max(size-len(r), 0))...)
	}
	return out
}

// names are the records' names, without the padding.
func names(recs [][]byte) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(bytes.TrimRight(r, "."))
	}
	return strings.Join(out, ",")
}

func results(n int, tag string) []result.Record {
	out := make([]result.Record, n)
	for i := range out {
		out[i] = result.Record{ID: fmt.Sprintf("%s-%04d", tag, i), Time: time.Unix(1700000000, 0).UTC(),
			Target: "192.0.2.1", Method: result.MethodTCP, AF: 4, Addr: "192.0.2.1", RTTMs: 1.5}
	}
	return out
}

func ids(rs []result.Record) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return strings.Join(out, ",")
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

func mustPut(t *testing.T, s *Spool, recs [][]byte) {
	t.Helper()
	if err := s.Put(recs); err != nil {
		t.Fatal(err)
	}
}

func mustPeek(t *testing.T, s *Spool, limit int) *Batch {
	t.Helper()
	b, err := s.Peek(limit)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Fatal("Peek found the spool empty")
	}
	return b
}

func mustAck(t *testing.T, s *Spool, b *Batch) {
	t.Helper()
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
}

// restart closes s and opens its directory anew, as the next run would,
// and peeks at all it holds.
func restart(t *testing.T, s *Spool) (*Spool, *Batch) {
	t.Helper()
	_ = s.Close()
	s2 := open(t, s.dir, s.maxBytes)
	return s2, mustPeek(t, s2, 1<<20)
}

// files lists the spool's segment files, old and new.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*" + segSuffix, "*-*" + legacySuffix} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

// allocated is the disk space the filesystem allocated to the files in dir.
func allocated(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		n += st.Blocks * 512
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPutPeekAck: records come out in order, in batches of the size asked,
// across Puts and segments, and stay until acked.
func TestPutPeekAck(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	if b, err := s.Peek(10); err != nil || b != nil {
		t.Fatalf("empty spool: Peek = %v, %v; want nil, nil", b, err)
	}
	for i := range 5 {
		mustPut(t, s, raws(2, fmt.Sprint("p", i), 10))
	}
	if s.Len() != 10 || s.Bytes() != 100 {
		t.Fatalf("Len, Bytes = %d, %d; want 10, 100", s.Len(), s.Bytes())
	}
	b := mustPeek(t, s, 3)
	if got := names(b.Records); got != "p0-0000,p0-0001,p1-0000" {
		t.Fatalf("first batch = %s", got)
	}
	// Peek again without Ack gives the same batch: nothing is lost before Ack.
	if got := names(mustPeek(t, s, 3).Records); got != "p0-0000,p0-0001,p1-0000" {
		t.Fatalf("second Peek without Ack = %s", got)
	}
	mustAck(t, s, b)
	mustAck(t, s, b) // a second Ack of the same batch changes nothing
	if s.Len() != 7 || s.Bytes() != 70 {
		t.Fatalf("Len, Bytes after Ack = %d, %d; want 7, 70", s.Len(), s.Bytes())
	}
	b = mustPeek(t, s, 100)
	if got := names(b.Records); got != "p1-0001,p2-0000,p2-0001,p3-0000,p3-0001,p4-0000,p4-0001" {
		t.Fatalf("rest = %s", got)
	}
	mustAck(t, s, b)
	if b, _ := s.Peek(10); b != nil || s.Len() != 0 || s.Bytes() != 0 || s.DiskBytes() != 0 {
		t.Fatalf("after acking all: Peek %v, Len %d, Bytes %d, DiskBytes %d", b, s.Len(), s.Bytes(), s.DiskBytes())
	}
	if f := files(t, s.dir); len(f) != 0 {
		t.Fatalf("segments left after acking all: %v", f)
	}
	mustPut(t, s, raws(1, "after", 10))
	if got := names(mustPeek(t, s, 10).Records); got != "after-0000" {
		t.Fatalf("after draining, a Put gives %s", got)
	}
}

// TestSegmentsRoll: many Puts share few files, rolled at the segment size,
// and the disk use the spool counts is at least what the filesystem
// allocated.
func TestSegmentsRoll(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20) // segments of 16 KiB
	for i := range 200 {
		mustPut(t, s, raws(1, fmt.Sprint("r", i), 400))
	}
	segs := files(t, dir)
	if n := len(segs); n < 5 || n > 6 {
		t.Fatalf("%d segment files for 200 Puts of 400 bytes in 16 KiB segments, want 5 or 6", n)
	}
	for _, f := range segs {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > s.segTarget {
			t.Errorf("%s is %d bytes, over the %d of a segment", f, info.Size(), s.segTarget)
		}
	}
	if a := allocated(t, dir); s.DiskBytes() < a {
		t.Fatalf("spool counts %d bytes of disk, the filesystem allocated %d", s.DiskBytes(), a)
	}
	if ratio := float64(s.DiskBytes()) / float64(s.Bytes()); ratio > 1.1 {
		t.Fatalf("disk use %d for %d bytes of records: %.2fx", s.DiskBytes(), s.Bytes(), ratio)
	}
	b := mustPeek(t, s, 1000)
	if len(b.Records) != 200 || names(b.Records[199:]) != "r199-0000" {
		t.Fatalf("read back %d records, last %s", len(b.Records), names(b.Records[len(b.Records)-1:]))
	}
}

// TestReopen: a new Open takes up where the last Ack left off, inside a
// segment, and new records go after the old ones.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	mustPut(t, s, raws(3, "a", 10))
	mustPut(t, s, raws(2, "b", 10))
	mustAck(t, s, mustPeek(t, s, 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(raws(1, "late", 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}

	s2 := open(t, dir, 0)
	if s2.Len() != 3 || s2.Bytes() != 30 {
		t.Fatalf("reopened: Len, Bytes = %d, %d; want 3, 30", s2.Len(), s2.Bytes())
	}
	mustPut(t, s2, raws(1, "c", 10))
	if got := names(mustPeek(t, s2, 100).Records); got != "a-0002,b-0000,b-0001,c-0000" {
		t.Fatalf("after reopen = %s", got)
	}
	// A cursor that does not check out hands the records out again.
	if err := os.WriteFile(filepath.Join(dir, cursorFile), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, b := restart(t, s2)
	if got := names(b.Records); got != "a-0000,a-0001,a-0002,b-0000,b-0001,c-0000" {
		t.Fatalf("with a torn cursor = %s", got)
	}
	// Drained and reopened, the spool keeps what comes next: new segments
	// go above the cursor, not below it.
	mustAck(t, s3, b)
	_ = s3.Close()
	s4 := open(t, dir, 0)
	mustPut(t, s4, raws(1, "d", 10))
	_ = s4.Close()
	if got := names(mustPeek(t, open(t, dir, 0), 100).Records); got != "d-0000" {
		t.Fatalf("reopened after a drain = %q", got)
	}
}

// TestDamageSkipped: a torn tail, a flipped byte and garbage cost only the
// records they hit, and are counted once, when acked.
func TestDamageSkipped(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	mustPut(t, s, raws(5, "a", 20))
	_ = s.Close()
	seg := files(t, dir)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	frame := frameHeader + 20
	// A bit flipped in a-0001's payload, garbage before a-0003, and a crash
	// in the middle of an append.
	data[len(segMagic)+frame+frameHeader+3] ^= 0x40
	at := len(segMagic) + 3*frame
	data = append(data[:at], append([]byte("garbage"), data[at:]...)...)
	data = append(data, appendFrame(nil, []byte("torn-record"))[:15]...)
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, 0)
	if s2.Len() != 4 {
		t.Fatalf("Len = %d, want the 4 intact records", s2.Len())
	}
	mustPut(t, s2, raws(1, "b", 20))
	b := mustPeek(t, s2, 100)
	if got := names(b.Records); got != "a-0000,a-0002,a-0003,a-0004,b-0000" {
		t.Fatalf("read %s", got)
	}
	mustPeek(t, s2, 100) // peeked twice, counted once
	if n := value(s2.corrupt); n != 0 {
		t.Fatalf("damage counted before Ack: %v", n)
	}
	mustAck(t, s2, b)
	if n := value(s2.corrupt); n != 3 {
		t.Fatalf("damaged spans counted = %v, want 3 (flipped, garbage, torn)", n)
	}
}

// TestBoundDropsOldest: a Put past the bound drops the oldest segments,
// and counts their records; a batch peeked before can still be acked.
func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 64<<10) // 4 KiB segments, 60 KiB for them
	old := mustPeekAfterPut(t, s)
	for i := range 40 {
		mustPut(t, s, raws(1, fmt.Sprint("x", i), 2000))
	}
	if s.DiskBytes() > 60<<10 {
		t.Fatalf("disk use %d over the budget", s.DiskBytes())
	}
	dropped := value(s.dropped)
	if dropped == 0 || float64(s.Len())+dropped != 41 {
		t.Fatalf("kept %d, dropped %v; want 41 in all, some dropped", s.Len(), dropped)
	}
	b := mustPeek(t, s, 100)
	if got := names(b.Records[len(b.Records)-1:]); got != "x39-0000" {
		t.Fatalf("newest record kept is %s", got)
	}
	if got := names(b.Records[:1]); got != fmt.Sprintf("x%d-0000", 41-s.Len()-1) {
		t.Fatalf("oldest kept is %s, with %d kept: not the newest run", got, s.Len())
	}
	mustAck(t, s, old) // dropped meanwhile
	if s.Len() != len(b.Records) {
		t.Fatalf("acking a dropped batch changed Len to %d", s.Len())
	}
	if err := s.Put(raws(1, "huge", 70<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put larger than the bound: err = %v, want ErrTooLarge", err)
	}
	if err := s.Put(raws(1, "huge", MaxRecordBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("record over MaxRecordBytes: err = %v, want ErrTooLarge", err)
	}
	_ = s.Close()
	// A smaller bound at the next start trims the spool at once.
	s2 := open(t, dir, 16<<10)
	if s2.DiskBytes() > 12<<10 || s2.Len() == 0 {
		t.Fatalf("reopened with a 16 KiB bound: %d records on %d bytes", s2.Len(), s2.DiskBytes())
	}
}

func mustPeekAfterPut(t *testing.T, s *Spool) *Batch {
	t.Helper()
	mustPut(t, s, raws(1, "old", 2000))
	return mustPeek(t, s, 1)
}

// failCodec cannot encode a record whose id is "bad".
type failCodec struct{ JSON[result.Record] }

func (c failCodec) Encode(r *result.Record) ([]byte, error) {
	if r.ID == "bad" {
		return nil, errors.New("no encoding")
	}
	return c.JSON.Encode(r)
}

func TestTypedResults(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	in := results(3, "n")
	in[1].ID = "bad"
	err := NewTyped[result.Record](s, failCodec{}).Put(in)
	if err == nil || !strings.Contains(err.Error(), "record 2 of 3 cannot be encoded") {
		t.Fatalf("Put with an unencodable record: %v", err)
	}
	rs := Results(s)
	if value(rs.dropped) != 1 || rs.Len() != 2 {
		t.Fatalf("dropped %v, len %d; want 1, 2", value(rs.dropped), rs.Len())
	}
	// A record that is not a result record comes out of the typed spool as damage.
	if err := rs.Spool.Put([][]byte{[]byte(`{"id":""}`), []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	b, err := rs.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(b.Records); got != "n-0000,n-0002" {
		t.Fatalf("kept %s, want the two good records", got)
	}
	if b.Records[0].RTTMs != 1.5 || b.Records[0].Method != "tcp" {
		t.Fatalf("record did not round-trip: %+v", b.Records[0])
	}
	if err := rs.Ack(b); err != nil {
		t.Fatal(err)
	}
	if n := value(rs.corrupt); n != 2 {
		t.Fatalf("undecodable records counted %v, want 2", n)
	}
	// A value JSON has no number for is kept, as null: the record is not
	// lost for it.
	nan := results(1, "nan")
	nan[0].RTTMs = math.NaN()
	if err := rs.Put(nan); err != nil {
		t.Fatalf("Put of a NaN RTT: %v", err)
	}
	if b, err := rs.Peek(10); err != nil || ids(b.Records) != "nan-0000" || b.Records[0].RTTMs != 0 {
		t.Fatalf("NaN record back as %+v, %v", b, err)
	}
}

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	rs := Results(open(t, dir, 64<<10))
	if err := rs.Quarantine(results(2, "q"), "400 bad batch"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, QuarantineFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []result.Record
	if err := result.ReadNDJSON(f, func(r *result.Record) error { got = append(got, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if ids(got) != "q-0000,q-0001" {
		t.Fatalf("quarantine file holds %s", ids(got))
	}
	if rs.Len() != 0 || value(rs.quarantined) != 2 {
		t.Fatalf("Len %d, quarantined %v", rs.Len(), value(rs.quarantined))
	}
	// A tenth of 64 KiB holds one 4 KiB block: the next records are dropped.
	if err := rs.Quarantine(results(40, "more"), "400 bad batch"); err != nil {
		t.Fatal(err)
	}
	if value(rs.dropped) != 40 || value(rs.quarantined) != 2 {
		t.Fatalf("full quarantine: dropped %v, quarantined %v", value(rs.dropped), value(rs.quarantined))
	}
	if rs2 := open(t, dir, 0); rs2.Len() != 0 {
		t.Fatal("quarantine file read back as a segment after reopen")
	}
}

// TestMetricsSubsystem: two spools, the agent's and a catcher's, register
// side by side, each under its subsystem.
func TestMetricsSubsystem(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, sub := range []string{"probe", "sweep"} {
		s, err := Open(quiet(), reg, t.TempDir(), Options{Subsystem: sub})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, sub := range []string{"probe", "sweep"} {
		for _, m := range []string{"spool_dropped_total", "spool_corrupt_total", "quarantined_total", "spooled_records", "spool_bytes", "spool_disk_bytes"} {
			if name := "catchmap_" + sub + "_" + m; !have[name] {
				t.Errorf("no metric %s", name)
			}
		}
	}
	if _, err := Open(quiet(), reg, t.TempDir(), Options{}); err == nil {
		t.Error("Open without a subsystem succeeded")
	}
}

// TestDropLogOncePerMinute: a full spool drops on every Put; the log gets
// one line a minute, with the counts.
func TestDropLogOncePerMinute(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, logs := openLogged(t, t.TempDir(), Options{MaxBytes: 64 << 10, Now: func() time.Time { return now }})
	lines := func() []string {
		var out []string
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "dropped records") {
				out = append(out, l)
			}
		}
		return out
	}
	// Each Put of 3 KiB fills a 4 KiB segment: once the spool is full, each
	// Put drops one record.
	for i := range 100 {
		mustPut(t, s, raws(1, fmt.Sprint("d", i), 3000))
		now = now.Add(500 * time.Millisecond)
	}
	first := value(s.dropped)
	if first < 80 {
		t.Fatalf("only %v dropped", first)
	}
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "records=1 bytes=3000 why.spool_full=1") {
		t.Fatalf("%v drops in 50s gave %d lines, want the first drop alone: %q", first, len(l), l)
	}
	// After the minute the next use of the spool logs what was held back.
	now = now.Add(20 * time.Second)
	if _, err := s.Peek(1); err != nil {
		t.Fatal(err)
	}
	l := lines()
	want := fmt.Sprintf("records=%v bytes=%v why.spool_full=%v", first-1, (first-1)*3000, first-1)
	if len(l) != 2 || !strings.Contains(l[1], want) || !strings.Contains(l[1], "since=1m") {
		t.Fatalf("a minute on: lines %q, want the second with %q since=1m", l, want)
	}
	// Close logs what is left, however soon.
	mustPut(t, s, raws(1, "last", 3000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if l := lines(); len(l) != 3 || !strings.Contains(l[2], "records=1 ") {
		t.Fatalf("after Close: %q", l)
	}
}
