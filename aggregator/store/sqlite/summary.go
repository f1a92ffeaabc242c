package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/summarycodec"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// Summaries (the rollup behind store.Summarizer).
//
// The summaries table holds summary.Summary values per target, probe and
// bucket of record time, at several bucket lengths (spans). Level 0 (one
// minute) is kept by Append in the transaction that stores the records,
// from the rows the insert actually stored, so the rollup counts each
// stored record exactly once and is durable with it. The coarser levels
// are compacted from the level below by Compact once their buckets are
// over (compact.go), so that a map of an hour or a week reads a few rows
// per probe rather than one a minute; a record arriving late for a bucket
// already compacted is merged into it by Append too. A map over a window
// reads the coarsest buckets that fit inside it, finer ones towards its
// edges, and the raw rows of the partial minutes at the very edges.
//
// summary_state.floor (µs) is the time below which summaries are not
// trusted: the newest time stored when the table was created (older
// records were never rolled up) and the latest DeleteBefore (a bucket it
// cut into would still count deleted rows). Below the floor maps read raw
// rows, which stay exact whatever arrives late.

// Bucket lengths, in µs.
const (
	minute = int64(time.Minute / time.Microsecond)
	hour   = 60 * minute
	day    = 24 * hour
)

// spans are the rollup's bucket lengths, finest first; each divides the
// next, so a bucket of one level is whole buckets of the level below.
// Level 0 is written by Append, the others by Compact. The steps are those
// of the windows people ask for: the last quarter hour, hours, days.
var spans = [...]int64{minute, 5 * minute, 15 * minute, hour, 6 * hour, day}

// Only times that maps can hold in UnixNano (years 1678 to 2262) are
// rolled up, less the longest span so that rounding to a bucket cannot
// overflow; others are read raw.
const (
	minRolled = math.MinInt64/1000 + day
	maxRolled = math.MaxInt64/1000 - day
)

// floorTo is the start of t's bucket of length span; ceilTo the first
// bucket start at or after t. t must be within [minRolled, maxRolled].
func floorTo(t, span int64) int64 {
	m := t % span
	if m < 0 {
		m += span
	}
	return t - m
}

func ceilTo(t, span int64) int64 {
	f := floorTo(t, span)
	if f == t {
		return t
	}
	return f + span
}

// rolledColumns are what maps needs of a stored record, read by the raw
// edges of ScanSummaries and by Append when it reads new rows back.
const rolledColumns = `time, probe, target, site, rtt_ms, error, error_kind, lat, lon, country, asn, suspect`

// rolledRow decodes rolledColumns into a record, reusing its buffers.
type rolledRow struct {
	rec      result.Record
	t, asn   int64
	kind     string
	lat, lon sql.NullFloat64
	latv     float64
	lonv     float64
}

func (x *rolledRow) scan(rows *sql.Rows) (*result.Record, error) {
	x.rec = result.Record{}
	if err := rows.Scan(&x.t, &x.rec.Probe, &x.rec.Target, &x.rec.Site, &x.rec.RTTMs, &x.rec.Error, &x.kind,
		&x.lat, &x.lon, &x.rec.Country, &x.asn, &x.rec.Suspect); err != nil {
		return nil, err
	}
	x.rec.Time = time.UnixMicro(x.t).UTC()
	x.rec.ASN = uint32(x.asn)
	x.rec.ErrorKind = result.ErrorKind(x.kind)
	if x.lat.Valid {
		x.latv = x.lat.Float64
		x.rec.Lat = &x.latv
	}
	if x.lon.Valid {
		x.lonv = x.lon.Float64
		x.rec.Lon = &x.lonv
	}
	return &x.rec, nil
}

// stored is r as a Scan would read it back, in x's buffers: time to the
// µs, NaN coordinates as NULL, -0 as 0 (SQLite keeps no negative zero).
// Only what maps reads of a record is copied.
func (x *rolledRow) stored(r *result.Record) *result.Record {
	x.rec = result.Record{Time: time.UnixMicro(r.Time.UnixMicro()).UTC(), Probe: r.Probe, Target: r.Target,
		Site: r.Site, RTTMs: r.RTTMs, Error: r.Error, ErrorKind: r.ErrorKind, Country: r.Country, ASN: r.ASN,
		Suspect: r.Suspect}
	if r.Lat != nil && !math.IsNaN(*r.Lat) {
		x.latv = *r.Lat + 0 // -0 + 0 is +0
		x.rec.Lat = &x.latv
	}
	if r.Lon != nil && !math.IsNaN(*r.Lon) {
		x.lonv = *r.Lon + 0
		x.rec.Lon = &x.lonv
	}
	return &x.rec
}

// readBack folds the rows stored after seq, which must be want rows, into
// ru.
func (s *Store) readBack(ctx context.Context, tx *sql.Tx, seq, want int64, ru rollup) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+rolledColumns+` FROM results WHERE seq > ?`, seq)
	if err != nil {
		return s.wrap(ctx, "append: read back new rows", err)
	}
	defer rows.Close()
	var (
		row rolledRow
		n   int64
	)
	for rows.Next() {
		r, err := row.scan(rows)
		if err != nil {
			return s.wrap(ctx, "append: read back new rows", err)
		}
		ru.add(r, row.t)
		n++
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "append: read back new rows", err)
	}
	if n != want {
		// Only a row numbered 2^63-1 makes SQLite number new rows at
		// random; the rollup cannot tell which are new then.
		return fmt.Errorf("sqlite store: append: stored %d rows but found %d numbered after %d: the results table's seq has reached its limit: dump and reload the results", want, n, seq)
	}
	return nil
}

// rollKey is one row of the summaries table.
type rollKey struct {
	target, probe string
	span, start   int64 // the bucket, µs
}

func compareKeys(a, b rollKey) int {
	return cmp.Or(strings.Compare(a.target, b.target), cmp.Compare(a.span, b.span),
		cmp.Compare(a.start, b.start), strings.Compare(a.probe, b.probe))
}

// rollup gathers summaries to merge into the summaries table.
type rollup map[rollKey]*summary.Summary

// add folds a stored record into its level 0 bucket, unless its time is
// beyond what is rolled up.
func (ru rollup) add(r *result.Record, t int64) {
	if t < minRolled || t >= maxRolled {
		return
	}
	ru.at(rollKey{r.Target, r.Probe, spans[0], floorTo(t, spans[0])}).Add(r)
}

// at is the summary of k, created empty when missing.
func (ru rollup) at(k rollKey) *summary.Summary {
	s := ru[k]
	if s == nil {
		s = &summary.Summary{}
		ru[k] = s
	}
	return s
}

// rollupPerStatement is how many summaries one statement of writeRollup
// reads or writes: as for results, many rows a statement spare a step, a
// reset and a database/sql call each.
const rollupPerStatement = 50

// writeRollup merges the level 0 summaries of an Append's new records
// into the summaries table in tx, and into the coarser buckets that
// Compact has already made (late records).
func (s *Store) writeRollup(ctx context.Context, tx *sql.Tx, ru rollup) error {
	if len(ru) == 0 {
		return nil
	}
	lv, err := s.readLevels(ctx, tx, "append")
	if err != nil {
		return err
	}
	fresh := make([]rollKey, 0, len(ru))
	for k := range ru {
		fresh = append(fresh, k)
	}
	for l := 1; l < len(spans); l++ {
		for _, k := range fresh {
			if c := (rollKey{k.target, k.probe, spans[l], floorTo(k.start, spans[l])}); lv.compacted(l, c.start) {
				ru.at(c).Merge(ru[k])
			}
		}
	}
	return s.mergeAndPut(ctx, tx, ru, "append")
}

// mergeAndPut merges ru with the stored summaries of its keys and writes
// the outcome. Keys go in primary key order, so that reads and writes walk
// the table's pages in turn rather than at random.
func (s *Store) mergeAndPut(ctx context.Context, tx *sql.Tx, ru rollup, op string) error {
	keys := make([]rollKey, 0, len(ru))
	for k := range ru {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	if err := s.mergeStored(ctx, tx, keys, ru, op); err != nil {
		return err
	}
	return s.putSummaries(ctx, tx, keys, ru, op)
}

// mergeStored merges the stored summaries of keys into ru, reading those of
// one target and bucket rollupPerStatement probes at a time.
func (s *Store) mergeStored(ctx context.Context, tx *sql.Tx, keys []rollKey, ru rollup, op string) error {
	get, err := tx.PrepareContext(ctx, `SELECT probe, body FROM summaries WHERE target = ? AND span = ? AND start = ? AND probe IN (?`+
		strings.Repeat(",?", rollupPerStatement-1)+`)`)
	if err != nil {
		return s.wrap(ctx, op+": prepare summaries", err)
	}
	defer get.Close()
	var (
		old   summary.Summary
		dec   summarycodec.Decoder
		probe string
		body  sql.RawBytes
		args  = make([]any, 3+rollupPerStatement)
	)
	same := func(a, b rollKey) bool { return a.target == b.target && a.span == b.span && a.start == b.start }
	for lo := 0; lo < len(keys); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite store: %s: %w", op, err)
		}
		k := keys[lo]
		args[0], args[1], args[2] = k.target, k.span, k.start
		n := 0
		for ; n < rollupPerStatement && lo+n < len(keys) && same(keys[lo+n], k); n++ {
			args[3+n] = keys[lo+n].probe
		}
		for i := n; i < rollupPerStatement; i++ {
			args[3+i] = k.probe // padding: a repeated probe matches nothing more
		}
		lo += n
		rows, err := get.Query(args...)
		if err != nil {
			return s.wrap(ctx, op+": read summaries", err)
		}
		for rows.Next() {
			if err := rows.Scan(&probe, &body); err != nil {
				rows.Close()
				return s.wrap(ctx, op+": read summaries", err)
			}
			if err := dec.Decode(body, &old); err != nil {
				rows.Close()
				return corrupt(op, k.target, probe, k.start, k.start+k.span, err)
			}
			old.Target, old.Probe = k.target, probe
			ru[rollKey{k.target, probe, k.span, k.start}].Merge(&old)
		}
		if err := rows.Close(); err != nil {
			return s.wrap(ctx, op+": read summaries", err)
		}
		if err := rows.Err(); err != nil {
			return s.wrap(ctx, op+": read summaries", err)
		}
	}
	return nil
}

// corrupt is the error for a summary body that does not decode.
func corrupt(op, target, probe string, from, to int64, err error) error {
	return fmt.Errorf("sqlite store: %s: a summary of %s, probe %s, in %s to %s is corrupt: %w (run a retention past it, or restore a backup)",
		op, target, probe, time.UnixMicro(from).UTC().Format(time.RFC3339), time.UnixMicro(to).UTC().Format(time.RFC3339), err)
}

// putSummaries writes the summaries of keys, rollupPerStatement at a time.
func (s *Store) putSummaries(ctx context.Context, tx *sql.Tx, keys []rollKey, ru rollup, op string) error {
	const put = `INSERT OR REPLACE INTO summaries (target, span, start, probe, body) VALUES (?, ?, ?, ?, ?)`
	many, err := tx.PrepareContext(ctx, put+strings.Repeat(",(?, ?, ?, ?, ?)", rollupPerStatement-1))
	if err != nil {
		return s.wrap(ctx, op+": prepare summaries", err)
	}
	defer many.Close()
	one, err := tx.PrepareContext(ctx, put)
	if err != nil {
		return s.wrap(ctx, op+": prepare summaries", err)
	}
	defer one.Close()
	var (
		args  = make([]any, 5*rollupPerStatement)
		arena []byte
		ends  [rollupPerStatement]int
	)
	for lo := 0; lo < len(keys); {
		st, n := many, rollupPerStatement
		if len(keys)-lo < rollupPerStatement {
			st, n = one, 1
		}
		// The bodies share one buffer, sliced once it stops growing.
		arena = arena[:0]
		for i := range n {
			arena = summarycodec.Append(arena, ru[keys[lo+i]])
			ends[i] = len(arena)
		}
		for i := range n {
			k, start := keys[lo+i], 0
			if i > 0 {
				start = ends[i-1]
			}
			a := args[5*i : 5*i+5]
			a[0], a[1], a[2], a[3], a[4] = k.target, k.span, k.start, k.probe, arena[start:ends[i]]
		}
		if _, err := st.Exec(args[:5*n]...); err != nil {
			return s.wrap(ctx, op+": write summaries", err)
		}
		lo += n
	}
	return nil
}

// ScanSummaries implements store.Summarizer. It reads in one transaction, so
// the summaries and the raw edges come from the same snapshot. Give a
// target: without one it walks the whole summaries table.
func (s *Store) ScanSummaries(ctx context.Context, q store.Query, fn func(*summary.Summary) error) error {
	return s.scanSummaries(ctx, "scan summaries", q, len(spans)-1, fn)
}

// ScanStepSummaries implements store.StepSummarizer. Buckets of a level
// never cross a step's edge when the window starts on the level's edges
// and the step is a whole number of its buckets, so the timeline reads the
// coarsest such level; with none (a window or step off the minute), it
// reads raw records, as Scan would.
func (s *Store) ScanStepSummaries(ctx context.Context, q store.Query, step time.Duration, fn func(*summary.Summary) error) error {
	const op = "scan step summaries"
	if q.From.IsZero() || q.To.IsZero() || step <= 0 {
		return fmt.Errorf("sqlite store: %s: need a window with both ends and a positive step, got %s to %s by %s",
			op, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), step)
	}
	from, st := q.From.UnixMicro(), step.Microseconds()
	onMicros := q.From.Nanosecond()%1000 == 0 && step%time.Microsecond == 0
	top := -1
	for l, span := range spans {
		if onMicros && floorTo(min(max(from, minRolled), maxRolled), span) == from && st%span == 0 {
			top = l
		}
	}
	return s.scanSummaries(ctx, op, q, top, fn)
}

// scanSummaries hands out the summaries of q from levels up to top (-1:
// raw records only).
func (s *Store) scanSummaries(ctx context.Context, op string, q store.Query, top int, fn func(*summary.Summary) error) error {
	if q.Limit != 0 {
		return fmt.Errorf("sqlite store: %s: a limit cannot apply to summaries: query with Limit 0, or use Scan", op)
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.wrap(ctx, op+": begin", err)
	}
	defer tx.Rollback()
	lv, err := s.readLevels(ctx, tx, op)
	if err != nil {
		return err
	}
	lo, hi := bounds(q.From, q.To)
	// Summaries serve the whole minutes in [a, b); raw rows the rest.
	a := ceilTo(min(max(lo, lv.floor, minRolled), maxRolled), spans[0])
	b := floorTo(min(max(hi, minRolled), maxRolled), spans[0])
	if a >= b || top < 0 {
		return s.scanRolled(ctx, tx, q, lo, hi, fn)
	}
	if err := s.scanRolled(ctx, tx, q, lo, a, fn); err != nil {
		return err
	}
	read := func(l int, x, y int64) error { return s.scanSummaryRows(ctx, tx, q, spans[l], x, y, fn) }
	if err := lv.cover(0, top, a, b, read); err != nil {
		return err
	}
	return s.scanRolled(ctx, tx, q, b, hi, fn)
}

// filters is the WHERE clause of q's target and probe on top of a time
// range in column col.
func filters(q store.Query, col string, lo, hi int64) (string, []any) {
	where := []string{col + " >= ?", col + " < ?"}
	args := []any{lo, hi}
	if q.Target != "" {
		where = append(where, "target = ?")
		args = append(args, q.Target)
	}
	if q.Probe != "" {
		where = append(where, "probe = ?")
		args = append(args, q.Probe)
	}
	return strings.Join(where, " AND "), args
}

// scanRolled hands out the raw rows of [lo, hi) as one-record summaries.
func (s *Store) scanRolled(ctx context.Context, tx *sql.Tx, q store.Query, lo, hi int64, fn func(*summary.Summary) error) error {
	if lo >= hi {
		return nil
	}
	where, args := filters(q, "time", lo, hi)
	rows, err := tx.QueryContext(ctx, `SELECT `+rolledColumns+` FROM results WHERE `+where, args...)
	if err != nil {
		return s.wrap(ctx, "scan summaries: raw edges", err)
	}
	defer rows.Close()
	var (
		row rolledRow
		sum summary.Summary
	)
	for rows.Next() {
		r, err := row.scan(rows)
		if err != nil {
			return s.wrap(ctx, "scan summaries: read row", err)
		}
		sum.Reset()
		sum.Add(r)
		if err := fn(&sum); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "scan summaries: raw edges", err)
	}
	return nil
}

// scanSummaryRows hands out the stored summaries of length span in
// [a, b).
func (s *Store) scanSummaryRows(ctx context.Context, tx *sql.Tx, q store.Query, span, a, b int64, fn func(*summary.Summary) error) error {
	where, args := filters(q, "start", a, b)
	// The target is read only when the query does not name it: every
	// column read costs the driver an allocation a row.
	var (
		target, body sql.RawBytes
		probe        string
		sum          summary.Summary
		dec          summarycodec.Decoder
		lastT        string
	)
	cols, dest := "target, probe, body", []any{&target, &probe, &body}
	if q.Target != "" {
		cols, dest, target = "probe, body", dest[1:], sql.RawBytes(q.Target)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+cols+` FROM summaries WHERE span = ? AND `+where, append([]any{span}, args...)...)
	if err != nil {
		return s.wrap(ctx, "scan summaries", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return s.wrap(ctx, "scan summaries: read row", err)
		}
		if err := dec.Decode(body, &sum); err != nil {
			return corrupt("scan summaries", string(target), probe, a, b, err)
		}
		// Rows come in (target, span, start, probe) order: keep the
		// target's string while it repeats.
		if string(target) != lastT {
			lastT = string(target)
		}
		sum.Target, sum.Probe = lastT, probe
		if err := fn(&sum); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "scan summaries", err)
	}
	return nil
}

// raiseFloor moves the summaries' floor up to t (µs) and drops the
// summaries below it, which are never read again.
func (s *Store) raiseFloor(ctx context.Context, t int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "delete old results: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE summary_state SET floor = max(floor, ?)`, t); err != nil {
		return s.wrap(ctx, "delete old results: raise summary floor", err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "delete old results: commit", err)
	}
	// Per target, along the primary key; in chunks, as DeleteBefore.
	target := ""
	for {
		err := s.w.QueryRowContext(ctx, `SELECT target FROM summaries WHERE target > ? ORDER BY target LIMIT 1`, target).Scan(&target)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return s.wrap(ctx, "delete old summaries", err)
		}
		for _, span := range spans {
			for {
				res, err := s.w.ExecContext(ctx, `DELETE FROM summaries WHERE target = ? AND span = ? AND (start, probe) IN
					(SELECT start, probe FROM summaries WHERE target = ? AND span = ? AND start < ? LIMIT ?)`,
					target, span, target, span, t, deleteChunk)
				if err != nil {
					return s.wrap(ctx, "delete old summaries", err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return s.wrap(ctx, "delete old summaries", err)
				}
				if n < deleteChunk {
					break
				}
			}
		}
	}
}
