package spool

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// dropReason is why records were dropped: a fixed set, so that a log line
// can sum a minute of drops by reason.
type dropReason int

const (
	dropFull dropReason = iota
	dropDiskFull
	dropTooLarge
	dropUnencodable
	dropWriteFailed
	dropQuarantineFull
	numDropReasons
)

var dropReasons = [numDropReasons]struct {
	key, hint string
	level     slog.Level
}{
	dropFull:           {"spool_full", "spool full: uploads are behind (the oldest go first)", slog.LevelWarn},
	dropDiskFull:       {"disk_full", "disk full: free space on the spool's disk", slog.LevelWarn},
	dropTooLarge:       {"too_large", "records larger than the spool can hold", slog.LevelError},
	dropUnencodable:    {"unencodable", "records that cannot be encoded", slog.LevelError},
	dropWriteFailed:    {"write_failed", "write failed: check the spool's disk", slog.LevelError},
	dropQuarantineFull: {"quarantine_full", "quarantine file full: read it, then delete it", slog.LevelWarn},
}

// dropLogEvery is the least time between two drop lines: a full spool drops
// on every Put, and a line for each would bury the rest of the log.
const dropLogEvery = time.Minute

// dropLog sums drops and logs them at most once every dropLogEvery: the
// first drop at once, the drops after it when the minute is up and the spool
// is next used (or closed). Callers hold the spool's lock.
type dropLog struct {
	log *slog.Logger
	dir string
	now func() time.Time

	last    time.Time // of the last line; zero before the first
	records [numDropReasons]int
	bytes   int64
	err     error // the last error behind a drop since the last line
}

func (d *dropLog) add(why dropReason, records int, bytes int64, err error) {
	if records == 0 {
		return
	}
	d.records[why] += records
	d.bytes += bytes
	if err != nil {
		d.err = err
	}
	d.tick()
}

// tick logs the drops summed so far if a line is due.
func (d *dropLog) tick() {
	if d.last.IsZero() || d.now().Sub(d.last) >= dropLogEvery {
		d.flush()
	}
}

// flush logs the drops summed so far, if any.
func (d *dropLog) flush() {
	total, level := 0, slog.LevelWarn
	var counts []any
	var hints []string
	for why, n := range d.records {
		if n == 0 {
			continue
		}
		r := dropReasons[why]
		total += n
		level = max(level, r.level)
		counts = append(counts, r.key, n)
		hints = append(hints, r.hint)
	}
	if total == 0 {
		return
	}
	now := d.now()
	attrs := []slog.Attr{slog.String("dir", d.dir), slog.Int("records", total), slog.Int64("bytes", d.bytes),
		slog.Group("why", counts...), slog.String("hint", strings.Join(hints, "; "))}
	if !d.last.IsZero() {
		attrs = append(attrs, slog.Duration("since", now.Sub(d.last).Round(time.Second)))
	}
	if d.err != nil {
		attrs = append(attrs, slog.Any("err", d.err))
	}
	d.log.LogAttrs(context.Background(), level, "spool: dropped records (one line a minute at most, with the counts since the last)", attrs...)
	*d = dropLog{log: d.log, dir: d.dir, now: d.now, last: now}
}
