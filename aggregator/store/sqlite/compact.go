package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/catchmap/catchmap/aggregator/store/summarycodec"
	"github.com/catchmap/catchmap/maps/summary"
)

// Compaction: the coarser levels of the rollup (summary.go).
//
// rollup_state.done[l] is how far level l is made: every bucket of level l
// that ends at or before it holds the whole of its records, so a read may
// use it; later buckets are read from finer levels. Compact moves done up
// bucket by bucket, each in its own transaction, building a bucket from the
// level below (which is made at least that far). From then on Append merges
// a late record into the made buckets it falls in, at every level.

// compactGrace is how long after a bucket ends Compact waits before making
// it, so that records of the bucket that are still on their way from the
// probes land in level 0 first rather than each in every level.
const compactGrace = minute

// levels is what a transaction needs to know of the rollup's state.
type levels struct {
	floor int64 // summary_state.floor
	done  [len(spans)]int64
}

func (s *Store) readLevels(ctx context.Context, tx *sql.Tx, op string) (levels, error) {
	var lv levels
	if err := tx.QueryRowContext(ctx, `SELECT floor FROM summary_state`).Scan(&lv.floor); err != nil {
		return lv, s.wrap(ctx, op+": read summary floor", err)
	}
	lv.done[0] = math.MaxInt64 // level 0 is kept by Append as records come
	for l := 1; l < len(spans); l++ {
		lv.done[l] = minRolled // made nowhere, and safe to round
	}
	rows, err := tx.QueryContext(ctx, `SELECT span, done FROM rollup_state`)
	if err != nil {
		return lv, s.wrap(ctx, op+": read rollup state", err)
	}
	defer rows.Close()
	for rows.Next() {
		var span, done int64
		if err := rows.Scan(&span, &done); err != nil {
			return lv, s.wrap(ctx, op+": read rollup state", err)
		}
		for l := 1; l < len(spans); l++ {
			if spans[l] == span {
				lv.done[l] = done
			}
		}
	}
	return lv, s.wrap(ctx, op+": read rollup state", rows.Err())
}

// compacted reports whether the level l bucket starting at start is made.
func (lv *levels) compacted(l int, start int64) bool {
	return start+spans[l] <= lv.done[l]
}

// cover splits [a, b), on level l's bucket edges and within what level l
// holds, into runs of whole buckets, each at the coarsest level up to top
// made for it, and calls read for each run.
func (lv *levels) cover(l, top int, a, b int64, read func(l int, a, b int64) error) error {
	if l < top {
		next := spans[l+1]
		x, y := ceilTo(a, next), floorTo(min(b, lv.done[l+1]), next)
		if x < y {
			if a < x {
				if err := read(l, a, x); err != nil {
					return err
				}
			}
			if err := lv.cover(l+1, top, x, y, read); err != nil {
				return err
			}
			if y < b {
				return read(l, y, b)
			}
			return nil
		}
	}
	return read(l, a, b)
}

// Compact makes the coarser levels of the rollup up to the buckets that
// ended compactGrace before now. The aggregator calls it every minute; a
// first call on a large database works through its whole history, one
// bucket a transaction, so ingest waits for at most one bucket's work.
func (s *Store) Compact(ctx context.Context, now time.Time) error {
	horizon := min(max(now.UnixMicro(), minRolled), maxRolled) - compactGrace
	for l := 1; l < len(spans); l++ {
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("sqlite store: compact summaries: %w", err)
			}
			more, err := s.compactNext(ctx, l, horizon)
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
	}
	return nil
}

// compactNext makes level l's next bucket that holds records, if it ended
// by horizon, and reports whether there may be more to make.
func (s *Store) compactNext(ctx context.Context, l int, horizon int64) (more bool, err error) {
	const op = "compact summaries"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, s.wrap(ctx, op+": begin", err)
	}
	defer tx.Rollback()
	lv, err := s.readLevels(ctx, tx, op)
	if err != nil {
		return false, err
	}
	span, below := spans[l], spans[l-1]
	end := floorTo(min(horizon, lv.done[l-1]), span)
	start := max(lv.done[l], ceilTo(max(lv.floor, minRolled), span))
	targets, err := s.summaryTargets(ctx, tx)
	if err != nil {
		return false, err
	}
	// Skip to the first bucket with records below: empty buckets are made
	// by saying so.
	first := int64(math.MaxInt64)
	for _, t := range targets {
		var at sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(start) FROM summaries WHERE target = ? AND span = ? AND start >= ?`,
			t, below, start).Scan(&at); err != nil {
			return false, s.wrap(ctx, op+": find records", err)
		}
		if at.Valid {
			first = min(first, at.Int64)
		}
	}
	if len(targets) == 0 {
		// An empty store: done stays, so that records arriving later for
		// the past (an import into a new store) are compacted when their
		// turn comes rather than merged into made buckets one Append at a
		// time.
		return false, nil
	}
	if first == math.MaxInt64 || floorTo(first, span)+span > end {
		// Nothing to make before end: the buckets before the first
		// records are empty, and made by saying so.
		if to := min(end, floorTo(first, span)); to > lv.done[l] {
			return false, s.setDone(ctx, tx, op, span, to)
		}
		return false, nil
	}
	start = floorTo(first, span)
	ru := rollup{}
	var (
		dec   summarycodec.Decoder
		sum   summary.Summary
		probe string
		body  sql.RawBytes
	)
	for _, t := range targets {
		rows, err := tx.QueryContext(ctx, `SELECT probe, body FROM summaries WHERE target = ? AND span = ? AND start >= ? AND start < ?`,
			t, below, start, start+span)
		if err != nil {
			return false, s.wrap(ctx, op+": read summaries", err)
		}
		for rows.Next() {
			if err := rows.Scan(&probe, &body); err != nil {
				rows.Close()
				return false, s.wrap(ctx, op+": read summaries", err)
			}
			if err := dec.Decode(body, &sum); err != nil {
				rows.Close()
				return false, corrupt(op, t, probe, start, start+span, err)
			}
			sum.Target, sum.Probe = t, probe
			ru.at(rollKey{t, probe, span, start}).Merge(&sum)
		}
		if err := rows.Close(); err != nil {
			return false, s.wrap(ctx, op+": read summaries", err)
		}
		if err := rows.Err(); err != nil {
			return false, s.wrap(ctx, op+": read summaries", err)
		}
	}
	// mergeAndPut finds no stored bucket to merge with (Append writes only
	// made ones), but a crash between a bucket's rows and its done mark
	// cannot leave half a bucket either: both are in this transaction.
	if err := s.mergeAndPut(ctx, tx, ru, op); err != nil {
		return false, err
	}
	return true, s.setDone(ctx, tx, op, span, start+span)
}

// setDone records that level span is made up to done, and commits tx.
func (s *Store) setDone(ctx context.Context, tx *sql.Tx, op string, span, done int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_state (span, done) VALUES (?, ?)
		ON CONFLICT (span) DO UPDATE SET done = max(done, excluded.done)`, span, done); err != nil {
		return s.wrap(ctx, op+": record progress", err)
	}
	return s.wrap(ctx, op+": commit", tx.Commit())
}

// summaryTargets lists the targets with summaries, along the primary key.
func (s *Store) summaryTargets(ctx context.Context, tx *sql.Tx) ([]string, error) {
	var out []string
	target := ""
	for {
		err := tx.QueryRowContext(ctx, `SELECT target FROM summaries WHERE target > ? ORDER BY target LIMIT 1`, target).Scan(&target)
		if errors.Is(err, sql.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return nil, s.wrap(ctx, "list summary targets", err)
		}
		out = append(out, target)
	}
}
