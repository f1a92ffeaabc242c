package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// maxTime is the last moment the day partition can hold: the partition
// key goes through DateTime, 32-bit seconds.
var maxTime = time.Unix(math.MaxUint32, 0).UTC()

// key identifies a record in the results table: the sorting key, on which
// ReplacingMergeTree and FINAL merge duplicates.
type key struct {
	target string
	time   uint64
	id     string
}

// Append implements store.Results: AppendBatches of one batch.
func (s *Store) Append(ctx context.Context, rs []result.Record) (int, error) {
	stored, err := s.AppendBatches(ctx, [][]result.Record{rs})
	if err != nil {
		return 0, err
	}
	return stored[0], nil
}

// AppendBatches stores several batches and returns how many new records
// each stored: a record whose id is stored already, or appears earlier in
// the call, counts in none, as in SQLite. It looks up which records are
// stored, inserts the others with one INSERT, appended column-wise, then
// marks the rollup's buckets that late records fall in (rollup.go).
//
// The aggregator merges concurrent uploads this way (group commit), which
// ClickHouse needs more than SQLite does: every INSERT writes a part, about
// ninety files, and merges them later, so one INSERT per probe upload would
// load the server with parts and merges long before it ran out of rows per
// second. See the package comment for what "stored" means when two
// instances append the same batch at the same moment.
func (s *Store) AppendBatches(ctx context.Context, batches [][]result.Record) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse store: append: %w", err)
	}
	total := 0
	for b, rs := range batches {
		for i := range rs {
			r := &rs[i]
			if r.ID == "" {
				return nil, fmt.Errorf("clickhouse store: append: batch %d, record %d has no id: give every record an id (result.NewID)", b, i)
			}
			if r.Time.Unix() < 0 || r.Time.After(maxTime) {
				return nil, fmt.Errorf("clickhouse store: append: record %s has time %v, outside 1970..%d: fix the probe's clock",
					r.ID, r.Time, maxTime.Year())
			}
		}
		total += len(rs)
	}
	stored := make([]int, len(batches))
	if total == 0 {
		return stored, nil
	}
	old, err := s.existing(ctx, batches, total)
	if err != nil {
		return nil, err
	}
	// fresh keeps the first of each new id, as SQLite's INSERT OR IGNORE does.
	fresh := make([]*result.Record, 0, total)
	seen := make(map[string]struct{}, total)
	for b, rs := range batches {
		for i := range rs {
			r := &rs[i]
			if _, dup := seen[r.ID]; dup {
				continue
			}
			seen[r.ID] = struct{}{}
			if len(old) > 0 { // mostly empty: building the key costs more than the lookup
				if _, ok := old[key{r.Target, uint64(r.Time.UnixMicro()), r.ID}]; ok {
					continue
				}
			}
			fresh = append(fresh, r)
			stored[b]++
		}
	}
	if len(fresh) > 0 {
		if err := s.insert(ctx, fresh); err != nil {
			return nil, err
		}
	}
	// After the insert: the rollup's exactness rests on it (rollup.go).
	if err := s.markLate(ctx, batches); err != nil {
		return nil, err
	}
	return stored, nil
}

// existing returns the keys of the batches' records that are stored. The
// ids travel as an external table rather than as a literal list,
// which would pass max_query_size (256 KiB) at a few thousand ids; the
// time bounds let the primary key and the partitions skip everything
// outside the batches, and Go matches the rows found on the whole key. Only
// the ids travel: targets and times would double what is sent, for a
// lookup that rarely finds anything.
func (s *Store) existing(ctx context.Context, batches [][]result.Record, total int) (map[key]struct{}, error) {
	ids := make([]string, 0, total)
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, rs := range batches {
		for i := range rs {
			t := uint64(rs[i].Time.UnixMicro())
			ids, lo, hi = append(ids, rs[i].ID), min(lo, t), max(hi, t)
		}
	}
	t, err := idTable(ids)
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: append: build the id lookup: %w", err)
	}
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(t)),
		`SELECT target, time, id FROM results WHERE time >= ? AND time <= ? AND id IN (SELECT id FROM ids)`, lo, hi)
	if err != nil {
		return nil, s.wrap(ctx, "append: look up stored ids", err)
	}
	defer rows.Close()
	out := make(map[key]struct{})
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.target, &k.time, &k.id); err != nil {
			return nil, s.wrap(ctx, "append: look up stored ids", err)
		}
		out[k] = struct{}{}
	}
	return out, s.wrap(ctx, "append: look up stored ids", rows.Err())
}

// insertChunk is the rows sent per block of an INSERT. The driver makes
// each column's buffers afresh for every INSERT but reuses them from one
// block to the next: growing them to a whole upload's size cost more CPU
// than anything else on the client, and at 10M results the load ran 15%
// faster in chunks (bench/storecompare.sh; 2k to 16k rows gave the same,
// within the noise). The server squashes an INSERT's blocks back into parts
// of up to min_insert_block_size_rows (a million), so an upload still makes
// one part and no extra merges (TestLargeAppend).
const insertChunk = 4096

// insert writes rs as one INSERT.
func (s *Store) insert(ctx context.Context, rs []*result.Record) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO results ("+resultColumnList+")")
	if err != nil {
		return s.wrap(ctx, "append: prepare", err)
	}
	cols := make([]colWriter, len(resultColumns))
	for i, c := range resultColumns {
		cols[i] = c.writer(min(len(rs), insertChunk))
	}
	for len(rs) > 0 {
		chunk := rs[:min(len(rs), insertChunk)]
		rs = rs[len(chunk):]
		for _, r := range chunk {
			for _, c := range cols {
				c.add(r)
			}
		}
		for i, c := range cols {
			if err := c.send(b, i); err != nil {
				b.Abort() // frees the connection; its own error only says the batch was not sent
				return s.wrap(ctx, "append: column "+resultColumns[i].name, err)
			}
		}
		if len(rs) > 0 {
			if err := b.Flush(); err != nil {
				b.Abort()
				return s.wrap(ctx, "append: send a block", err)
			}
		}
	}
	return s.wrap(ctx, "append", b.Send())
}

// window turns [from, to) into microsecond conditions on column, zero
// times leaving that side open.
func window(column string, from, to time.Time) (cond []string, args []any) {
	if !from.IsZero() {
		cond = append(cond, column+" >= ?")
		args = append(args, micros(from))
	}
	if !to.IsZero() {
		cond = append(cond, column+" < ?")
		args = append(args, micros(to))
	}
	return cond, args
}

// micros is t in microseconds since 1970, clamped to the column's range so
// that a bound before 1970 selects from the start.
func micros(t time.Time) uint64 { return uint64(max(t.UnixMicro(), 0)) }

// where joins conditions, "1" for none.
func where(cond []string) string {
	if len(cond) == 0 {
		return "1"
	}
	return strings.Join(cond, " AND ")
}

// Scan implements store.Results. FINAL merges duplicates still in separate
// parts; rows stream block by block from the server, one reused record at a
// time.
func (s *Store) Scan(ctx context.Context, q store.Query, fn func(*result.Record) error) error {
	cond, args := window("time", q.From, q.To)
	if q.Target != "" {
		cond = append(cond, "target = ?")
		args = append(args, q.Target)
	}
	if q.Probe != "" {
		cond = append(cond, "probe = ?")
		args = append(args, q.Probe)
	}
	query := "SELECT " + resultColumnList + " FROM results FINAL WHERE " + where(cond) + " ORDER BY time, id"
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	// Closing rows reads the rest of the answer; cancelling first makes
	// the driver tell the server to stop instead.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.conn.Query(qctx, query, args...)
	if err != nil {
		return s.wrap(ctx, "scan", err)
	}
	defer func() {
		cancel()
		rows.Close()
	}()
	readers := make([]colReader, len(resultColumns))
	dests := make([]any, len(resultColumns))
	for i, c := range resultColumns {
		readers[i] = c.reader()
		dests[i] = readers[i].dest()
	}
	w := row{present: make([]bool, len(resultGroups))}
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("clickhouse store: scan: %w", err)
		}
		if err := rows.Scan(dests...); err != nil {
			return s.wrap(ctx, "scan: read row", err)
		}
		for _, r := range readers {
			r.apply(&w)
		}
		if err := fn(&w.rec); err != nil {
			return err
		}
	}
	return s.wrap(ctx, "scan", rows.Err())
}

// Targets implements store.Results. DISTINCT needs no FINAL: duplicates
// share their target.
func (s *Store) Targets(ctx context.Context, from, to time.Time) ([]string, error) {
	cond, args := window("time", from, to)
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT target FROM results WHERE "+where(cond)+" ORDER BY target", args...)
	if err != nil {
		return nil, s.wrap(ctx, "list targets", err)
	}
	defer rows.Close()
	out, err := store.ScanStrings(rows)
	return out, s.wrap(ctx, "list targets", err)
}

// DeleteBefore implements store.Results. Whole days before t go by
// dropping their partitions, which is instant; the rows of t's own day
// before t go by a mutation (ALTER TABLE DELETE), which ClickHouse runs in
// the background and which DeleteBefore waits for. On 18.16 a mutation
// rewrites every part of the table, so retention is cheapest with t at
// midnight UTC. It counts deduplicated records, before deleting them.
//
// It works on a plain (or Replicated) results table; with a Distributed
// one, run retention on the shards' local tables (docs/clickhouse.md).
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	cutoff := micros(t)
	if cutoff == 0 {
		return 0, nil
	}
	// Before deleting: a bucket that retention cuts into is never read.
	if err := s.raiseFloor(ctx, cutoff); err != nil {
		return 0, err
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM results FINAL WHERE time < ?`, cutoff).Scan(&n); err != nil {
		return 0, s.wrap(ctx, "count old results", err)
	}
	if err := s.dropRollupBefore(ctx, cutoff); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	day := t.UTC().Truncate(24 * time.Hour)
	if err := s.dropDaysBefore(ctx, "results", day); err != nil {
		return 0, err
	}
	if micros(day) < cutoff {
		var left uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM results WHERE time >= ? AND time < ?`, micros(day), cutoff).Scan(&left); err != nil {
			return 0, s.wrap(ctx, "count old results of "+day.Format(time.DateOnly), err)
		}
		if left > 0 {
			if err := s.conn.Exec(ctx, `ALTER TABLE results DELETE WHERE time < ?`, cutoff); err != nil {
				return 0, s.wrap(ctx, "delete old results", err)
			}
			if err := s.waitMutations(ctx); err != nil {
				return 0, err
			}
		}
	}
	return int64(n), nil
}

// dropDaysBefore drops the partitions of table (results or summaries) of
// the days before day.
func (s *Store) dropDaysBefore(ctx context.Context, table string, day time.Time) error {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = ? AND table = ? AND active AND partition < ?`, s.db, table, day.Format("20060102"))
	if err != nil {
		return s.wrap(ctx, "list old partitions", err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return s.wrap(ctx, "list old partitions", err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "list old partitions", err)
	}
	for _, p := range parts {
		if !isDigits(p) {
			return fmt.Errorf("clickhouse store: %s partition %q is not a day (YYYYMMDD): was the table created by hand with another PARTITION BY?", table, p)
		}
		if err := s.conn.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION "+p); err != nil {
			return s.wrap(ctx, "drop partition "+p, err)
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// waitMutations waits until the results table has no mutation left to run,
// polling with a growing interval up to mutationWait.
func (s *Store) waitMutations(ctx context.Context) error {
	deadline := time.Now().Add(mutationWait)
	pause := 10 * time.Millisecond
	for {
		var pending uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.mutations
			WHERE database = ? AND table = 'results' AND NOT is_done`, s.db).Scan(&pending); err != nil {
			return s.wrap(ctx, "wait for the delete", err)
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse store: delete old results: ClickHouse has not finished after %v: see system.mutations in database %s (%w)",
				mutationWait, s.db, store.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse store: wait for the delete: %w", ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}
