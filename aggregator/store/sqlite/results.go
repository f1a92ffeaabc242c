package sqlite

import (
	"context"
	"math"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// Append implements store.Results: AppendBatches of one batch, in one
// transaction, INSERT OR IGNORE on the unique id so re-sent records count 0.
func (s *Store) Append(ctx context.Context, rs []result.Record) (int, error) {
	stored, err := s.AppendBatches(ctx, [][]result.Record{rs})
	if err != nil {
		return 0, err
	}
	return stored[0], nil
}

func floatArg(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// bounds turns a window into microseconds, zero times leaving that side open.
func bounds(from, to time.Time) (int64, int64) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixMicro()
	}
	if !to.IsZero() {
		hi = to.UnixMicro()
	}
	return lo, hi
}

// Scan implements store.Results. Rows stream from the database cursor, one
// reused record at a time; the ordering comes from an index, never a sort
// of the window. The scan reads one snapshot: while fn runs, checkpoints
// cannot move past it, so a slow fn lets the WAL grow until the scan ends.
func (s *Store) Scan(ctx context.Context, q store.Query, fn func(*result.Record) error) error {
	lo, hi := bounds(q.From, q.To)
	where, args := filters(q, "time", lo, hi)
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	args = append(args, limit)
	// time, seq is the order of both indexes (an index ends with the rowid),
	// so equal times come out in insertion order without a sort.
	query := `SELECT ` + resultColumns + ` FROM results WHERE ` + where + ` ORDER BY time, seq LIMIT ?`
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return s.wrap(ctx, "scan", err)
	}
	defer rows.Close()

	x := newRowReader()
	for rows.Next() {
		rec, err := x.scan(rows)
		if err != nil {
			return s.wrap(ctx, "scan: read row", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "scan", err)
	}
	return nil
}

// Targets implements store.Results. It walks the distinct targets of the
// (target, time) index with a skip scan and probes the window for each, so
// its cost grows with the number of targets, not of rows.
func (s *Store) Targets(ctx context.Context, from, to time.Time) ([]string, error) {
	lo, hi := bounds(from, to)
	rows, err := s.r.QueryContext(ctx, `
		WITH RECURSIVE t(target) AS (
			SELECT min(target) FROM results
			UNION ALL
			SELECT (SELECT min(target) FROM results WHERE target > t.target) FROM t WHERE t.target IS NOT NULL
		)
		SELECT target FROM t
		WHERE target IS NOT NULL
		AND EXISTS (SELECT 1 FROM results r WHERE r.target = t.target AND r.time >= ? AND r.time < ?)`, lo, hi)
	if err != nil {
		return nil, s.wrap(ctx, "list targets", err)
	}
	defer rows.Close()
	out, err := store.ScanStrings(rows)
	if err != nil {
		return nil, s.wrap(ctx, "list targets", err)
	}
	return out, nil
}

// deleteChunk bounds one retention transaction, so that ingest waits for
// the writer at most one chunk's time.
const deleteChunk = 10000

// DeleteBefore implements store.Results, in chunks of deleteChunk rows.
// A cancelled call keeps the chunks it already deleted. The file does not
// shrink: freed pages are reused by later appends. Summaries before t go
// first, so that no map counts a deleted row (see summary.go).
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	if err := s.raiseFloor(ctx, t.UnixMicro()); err != nil {
		return 0, err
	}
	for {
		res, err := s.w.ExecContext(ctx,
			`DELETE FROM results WHERE seq IN (SELECT seq FROM results WHERE time < ? LIMIT ?)`,
			t.UnixMicro(), deleteChunk)
		if err != nil {
			return total, s.wrap(ctx, "delete old results", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.wrap(ctx, "delete old results", err)
		}
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}
