// Package spool is a bounded on-disk queue of opaque records, kept in the
// order they were Put: the probe agent's results wait in one while the
// aggregator is away, and survive restarts. Typed puts a record type on
// top of it; Results is the agent's, result.Record as JSON.
//
// Records are appended to segment files (format in segment.go); a segment
// is rolled when it reaches a size, a small fraction of the bound, so that
// dropping the oldest one frees room without emptying the spool. Put fsyncs
// the segment, and the directory when it made the segment, before it
// returns: a record Put acknowledged survives a crash of the process or of
// the machine. Peek hands out the oldest records; Ack notes in a cursor file
// how far the consumer got and deletes the segments it is done with. An Ack
// lost in a crash only hands records out again; the aggregator dedupes them.
//
// The bound is on disk use: each file counts as its size rounded up to the
// filesystem's block, and a block is kept for the cursor. When a Put would
// cross the bound, or the disk answers ENOSPC, the oldest segments go
// first; what is dropped is counted in catchmap_<subsystem>_spool_dropped_total
// and logged at most once a minute.
//
// Damaged data (a torn last frame, a frame whose checksum fails) is skipped
// and counted in catchmap_<subsystem>_spool_corrupt_total, never fatal.
//
// A spool left by an older agent, one NDJSON file per Put named
// <seq>-<count>.ndjson, is read as it is, each line a record, and handed out
// before anything new.
//
// Put may be called from many goroutines; Peek and Ack from one consumer.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxBytes bounds a spool when the caller sets no bound.
const DefaultMaxBytes = 256 << 20

// QuarantineFile is the side file, inside the spool directory, that keeps
// records the consumer refused, one a line, for a human to look at. It
// takes at most a tenth of the bound, on top of it.
const QuarantineFile = "quarantine.ndjson"

const (
	// cursorFile holds the (seq, offset) before which every record was
	// acknowledged.
	cursorFile = "ack"
	cursorSize = 20 // seq, offset, CRC-32C of both
	// tmpPrefix marks the temporary files of an older agent's interrupted Put.
	tmpPrefix = ".tmp-"

	// A segment is rolled at a 64th of the space the spool may take (the
	// bound, or the filesystem when smaller), so that dropping the oldest
	// segment keeps most of the spool, within these limits: one block, and
	// 1 MiB, what Peek reads at once.
	segmentsPerBound = 64
	maxSegmentTarget = 1 << 20
	// maxSegmentBytes bounds what is read of one file, so that a foreign or
	// damaged file cannot make the spool allocate without bound.
	maxSegmentBytes = 64 << 20
)

var (
	// ErrTooLarge means records are larger than the spool may hold at all.
	ErrTooLarge = errors.New("spool: records larger than the spool may hold: raise the spool's bound, or put fewer records at once")
	// ErrClosed means Put was called after Close.
	ErrClosed = errors.New("spool: closed")
)

// Options configure a spool.
type Options struct {
	// MaxBytes bounds the disk space of the spool (DefaultMaxBytes when <= 0).
	MaxBytes int64
	// Subsystem names the spool's metrics, catchmap_<Subsystem>_spooled_records
	// and the others in register: "probe" for the agent, so that its metrics
	// keep their names. Required: lower case, digits and underscores.
	Subsystem string
	// Now is the clock of the drop log (time.Now when nil).
	Now func() time.Time
}

var subsystemRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

type segment struct {
	file   string
	seq    uint64
	legacy bool
	first  int64 // offset of the first record: past the magic, if intact
	end    int64 // end of what was written whole: reads stop here
	size   int64 // of the file, which counts for the bound
	// records and bytes (of payload) not yet acknowledged.
	records int
	bytes   int64
}

// Spool is an on-disk queue of records. Use Open.
type Spool struct {
	log       *slog.Logger
	dir       string
	maxBytes  int64
	block     int64
	segTarget int64

	mu sync.Mutex // guards what follows, but for the metrics
	// segs are the segments, oldest first; the last is appended to while
	// open is set.
	segs        []*segment
	open        *os.File
	headOff     int64 // where the next Peek reads in segs[0]
	nextSeq     uint64
	records     int
	bytes       int64
	disk        int64
	closed      bool
	buf         []byte // the magic, then the frames of the Put being written
	drops       dropLog
	dropped     prometheus.Counter
	corrupt     prometheus.Counter
	quarantined prometheus.Counter
	gRecords    prometheus.Gauge
	gBytes      prometheus.Gauge
	gDisk       prometheus.Gauge
}

// Open opens (creating it, owner-only, if needed) the spool in dir and
// registers its metrics with reg. It takes up what a previous run, or an
// older agent, left: acknowledged segments are deleted, the others queued in
// order, and the spool is trimmed to its bound.
func Open(log *slog.Logger, reg prometheus.Registerer, dir string, opt Options) (*Spool, error) {
	if !subsystemRe.MatchString(opt.Subsystem) {
		return nil, fmt.Errorf("spool: subsystem %q must be lower case, digits and underscores, such as probe", opt.Subsystem)
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create directory %s: %w (check the spool path and its permissions)", dir, err)
	}
	block, fsSize, err := geometry(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read the filesystem of %s: %w", dir, err)
	}
	space := opt.MaxBytes
	if fsSize > 0 {
		space = min(space, fsSize)
	}
	s := &Spool{
		log:       log,
		dir:       dir,
		maxBytes:  opt.MaxBytes,
		block:     block,
		segTarget: min(max(space/segmentsPerBound/block*block, block), maxSegmentTarget),
		drops:     dropLog{log: log, dir: dir, now: opt.Now},
	}
	if err := s.register(reg, opt.Subsystem); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.segs) > 0 && s.disk > s.budget() {
		s.dropHeadLocked(dropFull, nil)
	}
	s.updateGaugesLocked()
	if len(s.segs) > 0 {
		log.Info("spool: resuming", "dir", dir, "records", s.records, "bytes", s.bytes, "disk_bytes", s.disk)
	}
	return s, nil
}

func (s *Spool) register(reg prometheus.Registerer, sub string) error {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "catchmap", Subsystem: sub, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "catchmap", Subsystem: sub, Name: name, Help: help})
	}
	s.dropped = counter("spool_dropped_total", "Records dropped from the spool, oldest first, because it or the disk was full, or that it could not store.")
	s.corrupt = counter("spool_corrupt_total", "Damaged spans (torn or failing their checksum) and undecodable records skipped in the spool.")
	s.quarantined = counter("quarantined_total", "Records refused by the consumer and moved to the spool's quarantine file.")
	s.gRecords = gauge("spooled_records", "Records waiting in the spool.")
	s.gBytes = gauge("spool_bytes", "Bytes of the records waiting in the spool.")
	s.gDisk = gauge("spool_disk_bytes", "Disk space the spool takes, as its bound counts it.")
	for _, c := range []prometheus.Collector{s.dropped, s.corrupt, s.quarantined, s.gRecords, s.gBytes, s.gDisk} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("spool: register metrics: %w", err)
		}
	}
	return nil
}

// load reads the directory: segments, then the cursor.
func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read directory %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// An older agent's interrupted Put: never acknowledged.
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				s.log.Warn("spool: cannot remove an interrupted write", "file", name, "err", err)
			}
			continue
		}
		seq, legacy, count, ok := parseName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		g := &segment{file: name, seq: seq, legacy: legacy, end: info.Size(), size: info.Size()}
		if legacy {
			g.records, g.bytes = count, max(info.Size()-int64(count), 0)
		}
		s.segs = append(s.segs, g)
	}
	slices.SortFunc(s.segs, func(a, b *segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	if n := len(s.segs); n > 0 {
		s.nextSeq = s.segs[n-1].seq + 1
	}
	cseq, coff, cok := s.readCursor()
	if cok {
		// Segments below the cursor count as acknowledged: new ones go above.
		s.nextSeq = max(s.nextSeq, cseq+1)
	}
	kept := s.segs[:0]
	for _, g := range s.segs {
		if cok && g.seq < cseq {
			s.removeFile(g) // acknowledged before the restart
			continue
		}
		from := int64(-1)
		if cok && g.seq == cseq {
			from = coff
		}
		from, err := s.scan(g, from)
		if err != nil {
			return err
		}
		if len(kept) == 0 {
			s.headOff = from
		}
		kept = append(kept, g)
		s.records += g.records
		s.bytes += g.bytes
		s.disk += s.roundUp(g.size)
	}
	s.segs = kept
	return nil
}

// scan counts what a segment holds from offset from, and returns from: the
// segment's first record when from is not in it. A legacy segment read from
// its start holds what its name says.
func (s *Spool) scan(g *segment, from int64) (int64, error) {
	if g.legacy && from <= 0 {
		return 0, nil
	}
	data, err := s.readRange(g, 0)
	if err != nil {
		return 0, err
	}
	decode := decodeFrames
	if g.legacy {
		decode = decodeLines
	} else {
		g.first = segmentStart(data)
	}
	if from < g.first || from > int64(len(data)) {
		from = g.first
	}
	recs, _, _ := decode(data[from:], len(data))
	g.records, g.bytes = len(recs), 0
	for _, r := range recs {
		g.bytes += int64(len(r))
	}
	return from, nil
}

func (s *Spool) readCursor() (seq uint64, off int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil || len(b) != cursorSize || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, 0, false // none, or torn: records are handed out again, no worse
	}
	return binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:])), true
}

// writeCursor notes that everything before (seq, off) was acknowledged. It
// does not fsync: a cursor lost with the machine only hands records out
// again.
func (s *Spool) writeCursor(seq uint64, off int64) error {
	var b [cursorSize]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	f, err := os.OpenFile(filepath.Join(s.dir, cursorFile), os.O_WRONLY|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.WriteAt(b[:], 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("spool: note the acknowledged records in %s: %w (they will be handed out again after a restart)", s.dir, err)
	}
	return nil
}

func (s *Spool) roundUp(n int64) int64 { return (n + s.block - 1) / s.block * s.block }

// budget is what the segments may take: the bound less the cursor's block.
func (s *Spool) budget() int64 { return s.maxBytes - s.block }

func (s *Spool) path(g *segment) string { return filepath.Join(s.dir, g.file) }

// Len returns the number of records waiting.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Bytes returns the size of the records waiting.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// DiskBytes returns the disk space the spool takes, as its bound counts it.
func (s *Spool) DiskBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disk
}

// Put stores recs durably: when it returns nil they are on disk. To make room
// it drops the oldest records first. Records it cannot store at all are
// dropped and counted, and the error says why; the others are stored.
func (s *Spool) Put(recs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops.tick()
	if s.closed {
		s.dropLocked(dropWriteFailed, recs, ErrClosed)
		return ErrClosed
	}
	s.buf = append(s.buf[:0], segMagic...)
	var payload int64
	n := 0
	var tooLarge [][]byte
	for _, r := range recs {
		if len(r) > MaxRecordBytes {
			tooLarge = append(tooLarge, r)
			continue
		}
		s.buf = appendFrame(s.buf, r)
		payload += int64(len(r))
		n++
	}
	var errs []error
	if len(tooLarge) > 0 {
		err := fmt.Errorf("%w: %d records over %d bytes", ErrTooLarge, len(tooLarge), MaxRecordBytes)
		s.dropLocked(dropTooLarge, tooLarge, err)
		errs = append(errs, err)
	}
	if n == 0 {
		return errors.Join(errs...)
	}
	need := int64(len(s.buf) - len(segMagic))
	if fresh := s.roundUp(int64(len(s.buf))); fresh > s.budget() || fresh > maxSegmentBytes {
		err := fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, fresh, s.maxBytes)
		s.countDroppedLocked(dropTooLarge, n, payload, err)
		return errors.Join(append(errs, err)...)
	}
	for {
		appendTo := s.open != nil && s.last().size+need <= s.segTarget
		grow := s.roundUp(int64(len(s.buf)))
		if appendTo {
			grow = s.roundUp(s.last().size+need) - s.roundUp(s.last().size)
		}
		if s.disk+grow > s.budget() && len(s.segs) > 0 {
			s.dropHeadLocked(dropFull, nil)
			continue
		}
		err := s.writeLocked(appendTo)
		if err == nil {
			break
		}
		if noSpace(err) && len(s.segs) > 0 {
			s.dropHeadLocked(dropDiskFull, err)
			continue
		}
		why := dropWriteFailed
		if noSpace(err) {
			why = dropDiskFull
			err = fmt.Errorf("%w (the spool is empty: the disk is full of other files)", err)
		}
		s.countDroppedLocked(why, n, payload, err)
		return errors.Join(append(errs, err)...)
	}
	g := s.last()
	g.records += n
	g.bytes += payload
	s.records += n
	s.bytes += payload
	s.updateGaugesLocked()
	return errors.Join(errs...)
}

func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (s *Spool) last() *segment { return s.segs[len(s.segs)-1] }

// writeLocked writes the frames in s.buf at the end of the open segment, or
// with the magic to a new one, and syncs it. On error what it wrote is gone, or at least past the
// segment's end, and the next write goes to a new segment.
func (s *Spool) writeLocked(appendTo bool) error {
	if !appendTo {
		s.closeOpenLocked()
		g := &segment{file: segName(s.nextSeq), seq: s.nextSeq, first: int64(len(segMagic))}
		path := s.path(g)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("spool: create segment %s: %w", path, err)
		}
		_, err = f.Write(s.buf)
		if err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = syncDir(s.dir)
		}
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return fmt.Errorf("spool: write segment %s: %w", path, err)
		}
		s.nextSeq++
		g.end = int64(len(s.buf))
		g.size = g.end
		if len(s.segs) == 0 {
			s.headOff = g.first
		}
		s.segs = append(s.segs, g)
		s.disk += s.roundUp(g.size)
		s.open = f
		return nil
	}
	g := s.last()
	frames := s.buf[len(segMagic):]
	_, err := s.open.WriteAt(frames, g.end)
	if err == nil {
		err = s.open.Sync()
	}
	if err != nil {
		// After a failed write or fsync the file's state is unknown: cut
		// what may be there and write on in a new segment.
		if terr := s.open.Truncate(g.end); terr != nil {
			s.setSizeLocked(g, g.end+int64(len(frames)))
		}
		s.closeOpenLocked()
		return fmt.Errorf("spool: append to segment %s: %w", s.path(g), err)
	}
	g.end += int64(len(frames))
	s.setSizeLocked(g, g.end)
	return nil
}

func (s *Spool) setSizeLocked(g *segment, size int64) {
	s.disk += s.roundUp(size) - s.roundUp(g.size)
	g.size = size
}

func (s *Spool) closeOpenLocked() {
	if s.open == nil {
		return
	}
	if err := s.open.Close(); err != nil {
		s.log.Warn("spool: closing a segment", "file", s.open.Name(), "err", err)
	}
	s.open = nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open directory %s to sync it: %w", dir, err)
	}
	err = d.Sync()
	_ = d.Close()
	if err != nil && !errors.Is(err, syscall.EINVAL) { // some filesystems cannot sync directories
		return fmt.Errorf("spool: sync directory %s: %w", dir, err)
	}
	return nil
}

// countDropped counts and logs n records of size bytes as dropped.
func (s *Spool) countDropped(why dropReason, n int, bytes int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countDroppedLocked(why, n, bytes, err)
}

func (s *Spool) countDroppedLocked(why dropReason, n int, bytes int64, err error) {
	s.drops.add(why, n, bytes, err)
	s.dropped.Add(float64(n))
}

// dropLocked counts and logs recs as dropped.
func (s *Spool) dropLocked(why dropReason, recs [][]byte, err error) {
	var n int64
	for _, r := range recs {
		n += int64(len(r))
	}
	s.countDroppedLocked(why, len(recs), n, err)
}

// dropHeadLocked drops the oldest segment, counting its records as dropped.
func (s *Spool) dropHeadLocked(why dropReason, err error) {
	g := s.segs[0]
	s.countDroppedLocked(why, g.records, g.bytes, err)
	s.removeHeadLocked()
}

// removeHeadLocked deletes the oldest segment.
func (s *Spool) removeHeadLocked() {
	g := s.segs[0]
	if len(s.segs) == 1 {
		s.closeOpenLocked()
	}
	s.removeFile(g)
	s.segs = s.segs[1:]
	s.records -= g.records
	s.bytes -= g.bytes
	s.disk -= s.roundUp(g.size)
	if len(s.segs) > 0 {
		s.headOff = s.segs[0].first
	}
	s.updateGaugesLocked()
}

func (s *Spool) removeFile(g *segment) {
	if err := os.Remove(s.path(g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The cursor is past it, so the next Open deletes it.
		s.log.Warn("spool: cannot delete a segment", "file", s.path(g), "err", err)
	}
}

func (s *Spool) updateGaugesLocked() {
	s.gRecords.Set(float64(s.records))
	s.gBytes.Set(float64(s.bytes))
	s.gDisk.Set(float64(s.disk))
}

// Batch is a run of the oldest records, handed out by Peek and given back to
// Ack once the consumer has them.
type Batch struct {
	// Records are the batch's records; the caller may keep them.
	Records [][]byte

	// The batch ends in segment seq, where it read from from to to, taking
	// records and bytes of it; the segments before seq it took whole.
	seq      uint64
	from, to int64
	records  int
	bytes    int64
	bad      int // damaged spans and undecodable records, counted at Ack
	acked    bool
}

// Peek returns the oldest records, up to limit of them (at least one), or
// nil when the spool is empty. The records stay in the spool until Ack. A batch
// may hold no records when all it read was damaged: Ack it anyway.
func (s *Spool) Peek(limit int) (*Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops.tick()
	if len(s.segs) == 0 {
		return nil, nil
	}
	b := &Batch{}
	for i, g := range s.segs {
		if i > 0 && len(b.Records) >= limit {
			break
		}
		from := g.first
		if i == 0 {
			from = s.headOff
		}
		data, err := s.readRange(g, from)
		if err != nil {
			return nil, err
		}
		decode := decodeFrames
		if g.legacy {
			decode = decodeLines
		}
		recs, used, bad := decode(data, max(limit-len(b.Records), 1))
		if int64(len(data)) < g.end-from {
			used, bad = int(g.end-from), bad+1 // shorter than written: truncated behind our back
		}
		b.Records = append(b.Records, recs...)
		b.bad += bad
		b.seq, b.from, b.to, b.records, b.bytes = g.seq, from, from+int64(used), len(recs), 0
		for _, r := range recs {
			b.bytes += int64(len(r))
		}
	}
	return b, nil
}

// readRange reads a segment from offset from to its end. A segment deleted
// behind the spool's back reads as empty; one too large to be a segment as
// empty too, and the caller counts it as damaged.
func (s *Spool) readRange(g *segment, from int64) ([]byte, error) {
	n := g.end - from
	if n > maxSegmentBytes {
		s.log.Warn("spool: file too large to be a segment: skipped", "file", s.path(g), "bytes", g.size)
		return nil, nil
	}
	f, err := os.Open(s.path(g))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", s.path(g), err)
	}
	defer f.Close()
	data := make([]byte, n)
	got, err := f.ReadAt(data, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: read %s: %w", s.path(g), err)
	}
	return data[:got], nil
}

// Ack tells the spool that the consumer has b's records: they are deleted.
func (s *Spool) Ack(b *Batch) error {
	if b == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops.tick()
	if b.acked {
		return nil
	}
	b.acked = true
	if b.bad > 0 {
		s.corrupt.Add(float64(b.bad))
		s.log.Warn("spool: skipped damaged or undecodable data", "dir", s.dir, "spans", b.bad, "records", len(b.Records))
	}
	// Segments only leave from the front, and the batch was a prefix when
	// peeked, so it is still a prefix now, less what was dropped.
	for len(s.segs) > 0 && s.segs[0].seq < b.seq {
		s.removeHeadLocked()
	}
	if len(s.segs) > 0 && s.segs[0].seq == b.seq && s.headOff == b.from {
		g := s.segs[0]
		g.records -= b.records
		g.bytes -= b.bytes
		s.records -= b.records
		s.bytes -= b.bytes
		s.headOff = b.to
		if b.to >= g.end {
			s.removeHeadLocked()
		}
	}
	s.updateGaugesLocked()
	if len(s.segs) > 0 {
		return s.writeCursor(s.segs[0].seq, s.headOff)
	}
	return s.writeCursor(b.seq, b.to)
}

// Quarantine appends recs, one a line, to the quarantine file, for a human
// to see what the consumer refused, and logs reason. Past a tenth of the
// bound they are dropped and counted instead.
func (s *Spool) Quarantine(recs [][]byte, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	for _, r := range recs {
		data = append(append(data, r...), '\n')
	}
	path := filepath.Join(s.dir, QuarantineFile)
	var size int64
	if info, err := os.Stat(path); err == nil {
		size = info.Size()
	}
	if s.roundUp(size+int64(len(data))) > s.maxBytes/10 {
		s.dropLocked(dropQuarantineFull, recs, nil)
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: open quarantine file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: write quarantine file %s: %w", path, err)
	}
	s.quarantined.Add(float64(len(recs)))
	s.log.Error("spool: refused records quarantined", "file", path, "records", len(recs), "reason", reason)
	return nil
}

// Close closes the segment being appended to and logs the drops not yet
// logged. Put fails after it; the rest works on.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.drops.flush()
	if s.open == nil {
		return nil
	}
	err := s.open.Close()
	s.open = nil
	if err != nil {
		return fmt.Errorf("spool: close segment: %w", err)
	}
	return nil
}
