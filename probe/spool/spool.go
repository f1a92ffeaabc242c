// Package spool is the probe agent's bounded on-disk queue of result records.
// It keeps results while the aggregator is away and across restarts.
//
// Layout: one immutable segment file per Put, NDJSON of result.Record, named
// <seq>-<count>.ndjson with seq a 16-digit hex number that orders segments.
// A segment is written to a temporary file, fsync'd, renamed into place and
// the directory fsync'd before Put returns, so a record Put acknowledged
// survives a crash. Segments are deleted only when Ack says the aggregator
// took them. A deletion lost in a crash only re-sends records the aggregator
// already has; it dedupes by id.
//
// The spool is bounded by bytes. When a Put would exceed the bound, or the
// disk answers ENOSPC, the oldest segments go first; each dropped record is
// counted in catchmap_probe_spool_dropped_total and logged.
//
// A segment whose last line was torn (no newline) or a line that is not a
// record is skipped and counted, never fatal.
//
// Put may be called from many goroutines; Peek and Ack from one consumer.
package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/probe/result"
)

// DefaultMaxBytes bounds a spool when the caller sets no bound.
const DefaultMaxBytes = 256 << 20

// maxSegmentBytes bounds what Peek reads from one file, so a corrupt or
// foreign file cannot make the agent allocate without bound.
const maxSegmentBytes = 64 << 20

// QuarantineFile is the side file, inside the spool directory, that keeps
// records the aggregator refused as malformed, for a human to look at.
const QuarantineFile = "quarantine.ndjson"

const (
	segSuffix = ".ndjson"
	tmpPrefix = ".tmp-"
)

// ErrTooLarge means one Put is larger than the whole spool may be.
var ErrTooLarge = errors.New("records are larger than the spool's size bound: raise --spool-max-bytes")

type segment struct {
	seq   uint64
	count int
	size  int64
}

func (g segment) name() string { return fmt.Sprintf("%016x-%d%s", g.seq, g.count, segSuffix) }

// parseName reads a segment file name; ok is false for any other file.
func parseName(name string) (segment, bool) {
	base, found := strings.CutSuffix(name, segSuffix)
	if !found {
		return segment{}, false
	}
	seqText, countText, found := strings.Cut(base, "-")
	if !found || len(seqText) != 16 {
		return segment{}, false
	}
	seq, err := strconv.ParseUint(seqText, 16, 64)
	if err != nil {
		return segment{}, false
	}
	count, err := strconv.Atoi(countText)
	if err != nil || count < 0 {
		return segment{}, false
	}
	return segment{seq: seq, count: count}, true
}

// Spool is an on-disk queue of records. Use Open.
type Spool struct {
	log      *slog.Logger
	dir      string
	maxBytes int64

	mu      sync.Mutex
	segs    []segment // oldest first
	bytes   int64
	records int
	nextSeq uint64

	dropped    prometheus.Counter
	corrupt    prometheus.Counter
	gRecords   prometheus.Gauge
	gBytes     prometheus.Gauge
	quarantine prometheus.Counter
}

// Open opens (creating it if needed) the spool in dir, bounded by maxBytes
// (DefaultMaxBytes when <= 0). It reads what a previous run left: temporary
// files of an interrupted Put are removed, segments are queued in order.
// Its metrics are registered with reg.
func Open(log *slog.Logger, reg prometheus.Registerer, dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create directory %s: %w (check --spool and its permissions)", dir, err)
	}
	s := &Spool{
		log:      log,
		dir:      dir,
		maxBytes: maxBytes,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_probe_spool_dropped_total",
			Help: "Records dropped from the spool, oldest first, because it was full or the disk was.",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_probe_spool_corrupt_lines_total",
			Help: "Spool lines skipped because they were torn or not a record.",
		}),
		gRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catchmap_probe_spooled_records",
			Help: "Records waiting in the spool for upload.",
		}),
		gBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catchmap_probe_spool_bytes",
			Help: "Bytes of records waiting in the spool.",
		}),
		quarantine: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_probe_quarantined_total",
			Help: "Records the aggregator refused as malformed, moved to the quarantine file.",
		}),
	}
	for _, c := range []prometheus.Collector{s.dropped, s.corrupt, s.gRecords, s.gBytes, s.quarantine} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("spool: register metrics: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read directory %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// An interrupted Put: it was never acknowledged, so nobody counts on it.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				log.Warn("spool: cannot remove an interrupted write", "file", name, "err", err)
			}
			continue
		}
		g, ok := parseName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		g.size = info.Size()
		s.segs = append(s.segs, g)
	}
	slices.SortFunc(s.segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, g := range s.segs {
		s.bytes += g.size
		s.records += g.count
		s.nextSeq = g.seq + 1
	}
	s.mu.Lock()
	s.dropOldestLocked(0, "spool larger than its bound at start")
	s.updateGaugesLocked()
	s.mu.Unlock()
	if len(s.segs) > 0 {
		log.Info("spool: resuming", "dir", dir, "records", s.records, "bytes", s.bytes)
	}
	return s, nil
}

// Len returns the number of records waiting, as counted when they were Put.
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

// encode writes recs as NDJSON. A record JSON cannot hold (a NaN RTT) is
// left out and counted in bad, so it cannot take its neighbours with it.
func encode(recs []result.Record) (data []byte, n int, bad error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode ends each record with a newline: NDJSON.
	for i := range recs {
		mark := buf.Len()
		if err := enc.Encode(&recs[i]); err != nil {
			buf.Truncate(mark)
			if bad == nil {
				bad = fmt.Errorf("spool: record %s cannot be encoded: %w", recs[i].ID, err)
			}
			continue
		}
		n++
	}
	return buf.Bytes(), n, bad
}

// Put stores recs durably: when it returns nil they are on disk. To make room
// it drops the oldest records first. It fails only when the records cannot be
// stored even in an empty spool.
func (s *Spool) Put(recs []result.Record) error {
	if len(recs) == 0 {
		return nil
	}
	data, n, bad := encode(recs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if bad != nil {
		s.dropped.Add(float64(len(recs) - n))
		s.log.Error("spool: dropped records that cannot be encoded", "records", len(recs)-n, "err", bad)
	}
	if n == 0 {
		return bad
	}
	if int64(len(data)) > s.maxBytes {
		s.dropped.Add(float64(n))
		s.log.Error("spool: dropped new records larger than the spool bound", "records", n, "bytes", len(data), "max_bytes", s.maxBytes)
		return ErrTooLarge
	}
	s.dropOldestLocked(int64(len(data)), "spool full")
	var err error
	g := segment{seq: s.nextSeq, count: n, size: int64(len(data))}
	for {
		err = s.writeLocked(g, data)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
			s.dropped.Add(float64(n))
			return fmt.Errorf("%w (check the spool directory and its disk)", err)
		}
		if len(s.segs) == 0 {
			s.dropped.Add(float64(n))
			s.log.Error("spool: disk full and spool empty: dropped new records", "dir", s.dir, "records", n, "err", err)
			return fmt.Errorf("spool: disk full even with an empty spool: free space on the disk of %s: %w", s.dir, err)
		}
		s.dropSegmentLocked("disk full")
	}
	s.nextSeq++
	s.segs = append(s.segs, g)
	s.bytes += g.size
	s.records += g.count
	s.updateGaugesLocked()
	return nil
}

// writeLocked writes one segment atomically: temp file, fsync, rename, fsync
// of the directory. On error nothing is left behind.
func (s *Spool) writeLocked(g segment, data []byte) error {
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("spool: create segment in %s: %w", s.dir, err)
	}
	tmp := f.Name()
	fail := func(what string, err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: %s %s: %w", what, tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, g.name())); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: rename segment into place: %w", err)
	}
	return syncDir(s.dir)
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

// dropOldestLocked drops the oldest segments until incoming more bytes fit.
func (s *Spool) dropOldestLocked(incoming int64, why string) {
	for len(s.segs) > 0 && s.bytes+incoming > s.maxBytes {
		s.dropSegmentLocked(why)
	}
}

func (s *Spool) dropSegmentLocked(why string) {
	g := s.segs[0]
	s.segs = s.segs[1:]
	if err := os.Remove(filepath.Join(s.dir, g.name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("spool: cannot remove dropped segment", "file", g.name(), "err", err)
	}
	s.bytes -= g.size
	s.records -= g.count
	s.dropped.Add(float64(g.count))
	s.log.Warn("spool: dropped oldest records", "reason", why, "records", g.count, "bytes", g.size, "max_bytes", s.maxBytes)
	s.updateGaugesLocked()
}

func (s *Spool) updateGaugesLocked() {
	s.gRecords.Set(float64(s.records))
	s.gBytes.Set(float64(s.bytes))
}

// Batch is a run of the oldest records, handed out by Peek and given back to
// Ack once the aggregator has them.
type Batch struct {
	Records []result.Record
	last    uint64 // seq of the newest segment in the batch
}

// Peek returns the oldest records, up to max of them (at least one whole
// segment, so a single Put larger than max comes out whole). It returns nil
// when the spool is empty. The records stay in the spool until Ack. A batch
// may hold no records when every segment in it was corrupt: Ack it anyway.
func (s *Spool) Peek(max int) (*Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return nil, nil
	}
	b := &Batch{}
	n := 0
	for _, g := range s.segs {
		if n > 0 && n+g.count > max {
			break
		}
		recs, bad, err := s.readLocked(g)
		if err != nil {
			return nil, err
		}
		if bad > 0 {
			s.corrupt.Add(float64(bad))
			s.log.Warn("spool: skipped torn or corrupt lines", "file", g.name(), "lines", bad, "records", len(recs))
		}
		b.Records = append(b.Records, recs...)
		b.last = g.seq
		n += g.count
	}
	return b, nil
}

func (s *Spool) readLocked(g segment) ([]result.Record, int, error) {
	path := filepath.Join(s.dir, g.name())
	if g.size > maxSegmentBytes {
		s.log.Warn("spool: segment too large to read: skipped", "file", g.name(), "bytes", g.size)
		return nil, 1, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted behind our back: nothing to send, Ack will forget it.
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("spool: read %s: %w", path, err)
	}
	recs, bad := Decode(data)
	return recs, bad, nil
}

// Decode reads a segment: NDJSON of result.Record. It returns the records it
// could read and how many lines it skipped: a last line without a newline
// (torn write), a line that is not JSON, or a record without an id.
func Decode(data []byte) ([]result.Record, int) {
	var recs []result.Record
	bad := 0
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !complete {
			bad++ // torn: the write never finished
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r result.Record
		if err := json.Unmarshal(line, &r); err != nil || r.ID == "" {
			bad++
			continue
		}
		recs = append(recs, r)
	}
	return recs, bad
}

// Ack deletes the batch's segments: the aggregator has their records.
func (s *Spool) Ack(b *Batch) error {
	if b == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Segments only leave from the front, and the batch was a prefix when
	// peeked, so it is still a prefix now, minus whatever was dropped.
	for len(s.segs) > 0 && s.segs[0].seq <= b.last {
		g := s.segs[0]
		if err := os.Remove(filepath.Join(s.dir, g.name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("spool: delete uploaded segment: %w", err)
		}
		s.segs = s.segs[1:]
		s.bytes -= g.size
		s.records -= g.count
	}
	s.updateGaugesLocked()
	return nil
}

// Quarantine appends recs to the quarantine file so a human can see what the
// aggregator refused. The file is bounded to a tenth of the spool; past that
// the records are dropped and logged.
func (s *Spool) Quarantine(recs []result.Record, reason string) error {
	data, n, _ := encode(recs)
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.dir, QuarantineFile)
	var size int64
	if info, err := os.Stat(path); err == nil {
		size = info.Size()
	}
	if size+int64(len(data)) > s.maxBytes/10 {
		s.dropped.Add(float64(len(recs)))
		s.log.Error("spool: quarantine file full: dropped refused records", "file", path, "records", len(recs), "reason", reason)
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
	s.quarantine.Add(float64(n))
	s.log.Error("spool: aggregator refused records: quarantined", "file", path, "records", len(recs), "reason", reason)
	return nil
}
