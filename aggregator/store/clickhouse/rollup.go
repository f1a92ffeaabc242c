package clickhouse

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/summarycodec"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// The rollup: summaries of past buckets, so that a map of a long window
// reads a few rows per probe and runs the GROUP BY over results FINAL only
// for the parts of the window no usable bucket covers.
//
// Compact makes a bucket (one span and start, every target at once) with
// the summary query over results FINAL, for buckets that ended grace
// before now: it takes snapshot = now (the store's clock) before reading, inserts the
// summary rows (made = snapshot), then one made_buckets row per target with
// data (at = snapshot). Append marks late records: after inserting them it
// takes tAfter = now and adds a dirty_buckets row (at = tAfter) for
// every bucket of every span, holding one of the batch's records, that
// ends at or before tAfter - grace + margin. A bucket of a target is usable
// by reads iff it starts at or after the floor and its newest made mark is
// more than margin after its newest dirty mark (any made mark when none is
// dirty). Compact remakes the dirty buckets whose newest dirty mark is
// older than now - margin.
//
// Why a usable bucket holds exactly the records of its target and time
// (once the Appends that stored them have returned), given clocks of the
// instances that differ by less than margin: the summary rows read are
// those with the newest made, M, of a snapshot no older than the usable
// mark's, so M > max(dirty.at) + margin, and M >= end + grace since a
// snapshot is taken only then. A record whose Append took tAfter < M -
// margin had completed its insert when the snapshot began (the clocks
// differ by less than margin), so the snapshot saw it. A record with tAfter >= M - margin >= end + grace - margin was marked
// dirty (its bucket ends at or before tAfter - grace + margin) with at =
// tAfter >= M - margin, which contradicts M > dirty.at + margin: no such
// record exists. Every record the snapshot saw is a record of the bucket,
// counted once (FINAL); records leave only by retention, below the floor.
// Several instances may compact at once: they write identical rows or
// newer ones, which ReplacingMergeTree(made) and max(at) resolve. With
// replicas, the snapshot must see every insert that returned, and a read
// the summary rows of every mark it sees (docs/clickhouse.md).

// Bucket lengths, µs; each divides the next.
const (
	quarterHour = uint64(15 * time.Minute / time.Microsecond)
	hourSpan    = 4 * quarterHour
	daySpan     = 24 * hourSpan
)

var spans = [...]uint64{quarterHour, hourSpan, daySpan}

// runBuckets bounds the buckets of one compaction query per span (six
// hours of quarter hours or hours, one day), runsPerCall the queries per
// span per Compact call, and compactBudget the time after which Compact
// starts no new query: one call never runs for minutes, and the
// aggregator calls again a minute later.
var runBuckets = [...]uint64{24, 6, 1}

const (
	runsPerCall   = 8
	compactBudget = 30 * time.Second
)

// Defaults of config.grace and config.margin.
const (
	defaultGrace  = 5 * time.Minute
	defaultMargin = time.Minute
)

func floorTo(t, span uint64) uint64 { return t - t%span }

func ceilTo(t, span uint64) uint64 {
	if t%span == 0 {
		return t
	}
	return t - t%span + span
}

func millis(t time.Time) uint64 { return uint64(max(t.UnixMilli(), 0)) }

// markLate adds the dirty marks of the batch's late records (see above).
// It marks every record of the batch, stored before or not: a batch
// re-sent after an Append failed between its insert and its marks gets
// them then.
func (s *Store) markLate(ctx context.Context, batches [][]result.Record) error {
	tAfter := s.cfg.now()
	late := micros(tAfter.Add(s.cfg.margin - s.cfg.grace))
	type mark struct {
		target      string
		span, start uint64
	}
	var (
		marks map[mark]bool
		// A backfill's records come in runs of one target and bucket:
		// the map is asked once a run.
		last [len(spans)]mark
	)
	for _, rs := range batches {
		for i := range rs {
			t := micros(rs[i].Time)
			for j, span := range spans {
				start := floorTo(t, span)
				if start+span > late {
					break // a coarser bucket ends later still
				}
				m := mark{rs[i].Target, span, start}
				if m == last[j] {
					continue
				}
				if marks == nil {
					marks = map[mark]bool{}
				}
				marks[m], last[j] = true, m
			}
		}
	}
	if len(marks) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(marks))
	at := millis(tAfter)
	for m := range marks {
		rows = append(rows, []any{m.target, m.span, m.start, at})
	}
	return s.insertRows(ctx, "append: mark late records' buckets", `INSERT INTO dirty_buckets (target, span, start, at)`, rows...)
}

// rollupFloor is the time (µs) below which buckets are not used.
func (s *Store) rollupFloor(ctx context.Context, op string) (uint64, error) {
	var f uint64
	err := s.conn.QueryRow(ctx, `SELECT max(floor) FROM rollup_floor`).Scan(&f)
	return f, s.wrap(ctx, op+": read rollup floor", err)
}

// raiseFloor moves the floor up to cutoff before retention deletes
// anything below it.
func (s *Store) raiseFloor(ctx context.Context, cutoff uint64) error {
	return s.insertRows(ctx, "delete old results: raise rollup floor", `INSERT INTO rollup_floor (one, floor)`, []any{uint8(0), cutoff})
}

// dropRollupBefore drops what lies below the floor: the summaries' whole
// days, and the marks (a mutation ClickHouse runs in the background; the
// marks are small and never read below the floor anyway).
func (s *Store) dropRollupBefore(ctx context.Context, cutoff uint64) error {
	if err := s.dropDaysBefore(ctx, "summaries", fromMicros(cutoff).Truncate(24*time.Hour)); err != nil {
		return err
	}
	for _, table := range []string{"made_buckets", "dirty_buckets"} {
		n, err := s.count(ctx, "count old marks", `SELECT count() FROM `+table+` WHERE start < ?`, cutoff)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := s.conn.Exec(ctx, `ALTER TABLE `+table+` DELETE WHERE start < ?`, cutoff); err != nil {
				return s.wrap(ctx, "delete old "+table, err)
			}
		}
	}
	return nil
}

// Compact implements the aggregator's compactor: it makes the buckets
// that ended grace before now and the dirty buckets due, oldest first,
// within a bounded amount of work per call.
func (s *Store) Compact(ctx context.Context, now time.Time) error {
	_, err := s.compact(ctx, now)
	return err
}

// compact is Compact, reporting how many target buckets it made.
func (s *Store) compact(ctx context.Context, now time.Time) (int, error) {
	const op = "compact summaries"
	// The budget is of the machine's time, whatever the store's clock says.
	deadline := time.Now().Add(compactBudget)
	floor, err := s.rollupFloor(ctx, op)
	if err != nil {
		return 0, err
	}
	made := 0
	for l, span := range spans {
		todo, err := s.toMake(ctx, op, span, floor, now, runsPerCall*runBuckets[l])
		if err != nil {
			return made, err
		}
		for runs := 0; len(todo) > 0 && runs < runsPerCall && time.Now().Before(deadline); runs++ {
			a := todo[0]
			b := a + runBuckets[l]*span
			n := 1
			for n < len(todo) && todo[n] < b {
				n++
			}
			k, err := s.makeBuckets(ctx, op, span, a, todo[n-1]+span)
			if err != nil {
				return made, err
			}
			made += k
			todo = todo[n:]
		}
	}
	return made, nil
}

// toMake lists, oldest first and at most limit, the starts of the
// buckets of span to make: those past the newest made one that hold
// records, and the dirty ones due.
func (s *Store) toMake(ctx context.Context, op string, span, floor uint64, now time.Time, limit uint64) ([]uint64, error) {
	wall := s.cfg.now()
	if now.After(wall) {
		now = wall // the exactness argument needs snapshots after end + grace on this clock
	}
	horizon := floorTo(micros(now.Add(-s.cfg.grace)), span) // buckets ending by it
	lo := ceilTo(floor, span)
	var made, hw uint64
	if err := s.conn.QueryRow(ctx, `SELECT count(), max(start) FROM made_buckets WHERE span = ?`, span).Scan(&made, &hw); err != nil {
		return nil, s.wrap(ctx, op+": read made buckets", err)
	}
	if made > 0 {
		lo = max(lo, hw+span)
	}
	var todo []uint64
	if lo < horizon {
		rows, err := s.conn.Query(ctx, `SELECT DISTINCT intDiv(time, ?) * ? AS b FROM results WHERE time >= ? AND time < ? ORDER BY b LIMIT ?`,
			span, span, lo, horizon, limit)
		if err != nil {
			return nil, s.wrap(ctx, op+": find records to compact", err)
		}
		for rows.Next() {
			var b uint64
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, s.wrap(ctx, op+": find records to compact", err)
			}
			todo = append(todo, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap(ctx, op+": find records to compact", err)
		}
	}
	// Dirty buckets are due once their newest mark is margin old; until
	// then a snapshot could not make them usable, so the frontier skips
	// them too (a backfill is made once, a minute after it arrives).
	margin := uint64(s.cfg.margin.Milliseconds())
	rows, err := s.conn.Query(ctx, `SELECT start, min(dirty + ? < ?) FROM (
			SELECT target, start, max(at) AS dirty FROM dirty_buckets WHERE span = ? AND start >= ? AND start + ? <= ?
			GROUP BY target, start)
		ANY LEFT JOIN (
			SELECT target, start, max(at) AS made FROM made_buckets WHERE span = ? AND start >= ? AND start + ? <= ?
			GROUP BY target, start) USING (target, start)
		WHERE made <= dirty + ?
		GROUP BY start ORDER BY start`,
		margin, millis(wall), span, floor, span, horizon, span, floor, span, horizon, margin)
	if err != nil {
		return nil, s.wrap(ctx, op+": find dirty buckets", err)
	}
	defer rows.Close()
	wait := map[uint64]bool{}
	for rows.Next() {
		var (
			b   uint64
			due uint8
		)
		if err := rows.Scan(&b, &due); err != nil {
			return nil, s.wrap(ctx, op+": find dirty buckets", err)
		}
		if due == 1 {
			todo = append(todo, b)
		} else {
			wait[b] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, op+": find dirty buckets", err)
	}
	todo = slices.DeleteFunc(todo, func(b uint64) bool { return wait[b] })
	slices.Sort(todo)
	todo = slices.Compact(todo)
	return todo[:min(len(todo), int(limit))], nil
}

// makeBuckets makes the buckets of span in [a, b), every target, from
// one snapshot, and returns how many target buckets it made.
func (s *Store) makeBuckets(ctx context.Context, op string, span, a, b uint64) (int, error) {
	snapshot := millis(s.cfg.now())
	q := store.Query{From: fromMicros(a), To: fromMicros(b)}
	all, err := s.gatherAll(ctx, op, q, time.Duration(span)*time.Microsecond, true, restriction{})
	if err != nil {
		return 0, err
	}
	if len(all) == 0 {
		return 0, nil
	}
	keys := make([]sumKey, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y sumKey) int {
		if c := strings.Compare(x.target, y.target); c != 0 {
			return c
		}
		if x.step != y.step {
			return int(x.step - y.step)
		}
		return strings.Compare(x.probe, y.probe)
	})
	var (
		targets, probes, bodies []string
		starts                  []uint64
		body                    []byte
		marks                   [][]any
	)
	for i, k := range keys {
		start := a + uint64(k.step)*span
		body = summarycodec.Append(body[:0], all[k])
		targets, probes, bodies, starts = append(targets, k.target), append(probes, k.probe), append(bodies, string(body)), append(starts, start)
		if i == 0 || k.target != keys[i-1].target || k.step != keys[i-1].step {
			marks = append(marks, []any{k.target, span, start, snapshot})
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO summaries (target, span, start, probe, body, made)`)
	if err != nil {
		return 0, s.wrap(ctx, op+": prepare summaries", err)
	}
	spansCol, made := make([]uint64, len(keys)), make([]uint64, len(keys))
	for i := range keys {
		spansCol[i], made[i] = span, snapshot
	}
	for i, col := range []any{targets, spansCol, starts, probes, bodies, made} {
		if err := batch.Column(i).Append(col); err != nil {
			batch.Abort()
			return 0, s.wrap(ctx, op+": write summaries", err)
		}
	}
	if err := batch.Send(); err != nil {
		return 0, s.wrap(ctx, op+": write summaries", err)
	}
	// Only once the summaries are stored may a mark say so.
	if err := s.insertRows(ctx, op+": mark made buckets", `INSERT INTO made_buckets (target, span, start, at)`, marks...); err != nil {
		return 0, err
	}
	return len(marks), nil
}

// restriction limits a summary query over results to part of its window:
// an SQL condition and its arguments, "" for none.
type restriction struct {
	cond string
	args []any
}

// bucket is one bucket of a span.
type bucket struct{ span, start uint64 }

// markPair is a bucket's newest made and dirty marks, ms.
type markPair struct{ made, dirty uint64 }

// plan is how a read covers its window: the usable buckets per target, and
// the restriction of the results query to the rest (read is false when no
// rest is left).
type plan struct {
	picks map[string][]bucket
	rest  restriction
	read  bool
}

// noRollup is a plan reading results only.
var noRollup = plan{read: true}

// planRead covers q's window with the usable buckets of the spans up to
// top (-1: none). Without a target, a bucket is used for every target at
// once, when it is usable for each target that has a mark on it: a target
// without one has no records there, since a record that a compaction did
// not see was marked dirty (rollup.go). So the rest of the window is a few
// time ranges, which the results table's key narrows down without naming
// targets.
func (s *Store) planRead(ctx context.Context, op string, q store.Query, top int) (plan, error) {
	if top < 0 {
		return noRollup, nil
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	if !q.From.IsZero() {
		lo = ceilMicros(q.From)
	}
	if !q.To.IsZero() {
		hi = ceilMicros(q.To)
	}
	if lo >= hi {
		return noRollup, nil
	}
	floor, err := s.rollupFloor(ctx, op)
	if err != nil {
		return plan{}, err
	}
	marks, err := s.readMarks(ctx, op, q.Target, max(lo, floor), hi)
	if err != nil {
		return plan{}, err
	}
	margin := uint64(s.cfg.margin.Milliseconds())
	type state struct {
		made    []string // targets made there
		spoiled bool     // a target's marks make it unusable
	}
	buckets := map[bucket]*state{}
	for t, m := range marks {
		for b, x := range m {
			st := buckets[b]
			if st == nil {
				st = &state{}
				buckets[b] = st
			}
			if x.made > 0 && (x.dirty == 0 || x.made > x.dirty+margin) {
				st.made = append(st.made, t)
			} else {
				st.spoiled = true
			}
		}
	}
	usable := func(l int, start uint64) bool {
		st := buckets[bucket{spans[l], start}]
		return st != nil && !st.spoiled && len(st.made) > 0
	}
	// Cover only the stretch the usable buckets span.
	a, b := uint64(math.MaxUint64), uint64(0)
	for k := range buckets {
		if l := spanLevel(k.span); l <= top && k.start >= max(lo, floor) && k.start+k.span <= hi && usable(l, k.start) {
			a, b = min(a, k.start), max(b, k.start+k.span)
		}
	}
	if a >= b {
		return noRollup, nil
	}
	var gaps []gap
	addGap := func(x, y uint64) {
		if x >= y {
			return
		}
		if n := len(gaps); n > 0 && gaps[n-1].hi == x {
			gaps[n-1].hi = y
			return
		}
		gaps = append(gaps, gap{x, y})
	}
	p := plan{picks: map[string][]bucket{}}
	addGap(lo, a)
	cover(top, a, b, usable, func(l int, start uint64) {
		k := bucket{spans[l], start}
		for _, t := range buckets[k].made {
			p.picks[t] = append(p.picks[t], k)
		}
	}, addGap)
	addGap(b, hi)
	var ranges []string
	var args []any
	for _, g := range gaps {
		if g.hi == math.MaxUint64 {
			ranges, args = append(ranges, "time >= ?"), append(args, g.lo)
		} else {
			ranges, args = append(ranges, "time >= ? AND time < ?"), append(args, g.lo, g.hi)
		}
	}
	if len(ranges) > 0 {
		p.read, p.rest = true, restriction{"(" + strings.Join(ranges, " OR ") + ")", args}
	}
	return p, nil
}

// gap is a stretch of time in µs; hi = math.MaxUint64 is an open end.
type gap struct{ lo, hi uint64 }

// spanLevel is the index of span in spans.
func spanLevel(span uint64) int {
	return slices.Index(spans[:], span)
}

// cover splits [a, b) into the usable buckets of level l and below,
// coarsest first, calling take for each, and gap for what none covers.
func cover(l int, a, b uint64, usable func(int, uint64) bool, take func(int, uint64), gap func(uint64, uint64)) {
	if a >= b {
		return
	}
	if l < 0 {
		gap(a, b)
		return
	}
	span := spans[l]
	x := ceilTo(a, span)
	if x >= b || b-x < span {
		cover(l-1, a, b, usable, take, gap)
		return
	}
	cover(l-1, a, x, usable, take, gap)
	for ; b-x >= span; x += span {
		if usable(l, x) {
			take(l, x)
		} else {
			cover(l-1, x, x+span, usable, take, gap)
		}
	}
	cover(l-1, x, b, usable, take, gap)
}

// readMarks reads the newest made and dirty marks of the buckets starting
// in [lo, hi), per target (q's only when it names one).
func (s *Store) readMarks(ctx context.Context, op, target string, lo, hi uint64) (map[string]map[bucket]markPair, error) {
	cond, args := "start >= ? AND start < ?", []any{lo, hi}
	if target != "" {
		cond, args = cond+" AND target = ?", append(args, target)
	}
	rows, err := s.conn.Query(ctx, `SELECT 0 AS dirty, target, span, start, max(at) FROM made_buckets WHERE `+cond+` GROUP BY target, span, start
		UNION ALL
		SELECT 1 AS dirty, target, span, start, max(at) FROM dirty_buckets WHERE `+cond+` GROUP BY target, span, start`,
		append(args, args...)...)
	if err != nil {
		return nil, s.wrap(ctx, op+": read rollup marks", err)
	}
	defer rows.Close()
	out := map[string]map[bucket]markPair{}
	for rows.Next() {
		var (
			dirty       uint8
			t           string
			span, start uint64
			at          uint64
		)
		if err := rows.Scan(&dirty, &t, &span, &start, &at); err != nil {
			return nil, s.wrap(ctx, op+": read rollup marks", err)
		}
		if spanLevel(span) < 0 {
			continue // a span this catchmap does not know
		}
		m := out[t]
		if m == nil {
			m = map[bucket]markPair{}
			out[t] = m
		}
		x := m[bucket{span, start}]
		if dirty == 1 {
			x.dirty = at
		} else {
			x.made = at
		}
		m[bucket{span, start}] = x
	}
	return out, s.wrap(ctx, op+": read rollup marks", rows.Err())
}

// rawBody scans a String without copying it again.
type rawBody []byte

func (b *rawBody) UnmarshalBinary(d []byte) error {
	*b = d
	return nil
}

// maxPickedPerQuery bounds the buckets one summaries query names, so that
// the query stays well below max_query_size.
const maxPickedPerQuery = 1000

// summaryRowKey is a row of the summaries table, but for its version.
type summaryRowKey struct {
	target, probe string
	span, start   uint64
}

// readRollup merges the summaries of the picked buckets into all, keyed as
// gather keys them (per step counted from origin when step > 0). The
// buckets are read in up to WithQuerySlices queries at once. The rows are
// read without FINAL, which merges in one thread and cost more than the
// rest of the read: of the rows of one key (a bucket made more than once)
// Go keeps the one made last, as ReplacingMergeTree(made) would. Any row
// of a usable bucket made at least as late as its usable mark holds the
// bucket's records (rollup.go), so of rows made at the same moment any
// will do.
func (s *Store) readRollup(ctx context.Context, op string, q store.Query, picks map[string][]bucket, origin time.Time, step time.Duration,
	all map[sumKey]*summary.Summary) error {
	type pick struct {
		target string
		bucket
	}
	var list []pick
	for t, bs := range picks {
		for _, b := range bs {
			list = append(list, pick{t, b})
		}
	}
	if len(list) == 0 {
		return nil
	}
	n := max(s.cfg.querySlices, (len(list)+maxPickedPerQuery-1)/maxPickedPerQuery)
	per := (len(list) + n - 1) / n
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.cfg.querySlices, 1))
	for lo := 0; lo < len(list); lo += per {
		chunk := list[lo:min(lo+per, len(list))]
		g.Go(func() error {
			in := make([]string, len(chunk))
			args := make([]any, 0, 3*len(chunk)+1)
			for i, p := range chunk {
				in[i] = "(?, ?, ?)"
				args = append(args, p.target, p.span, p.start)
			}
			query := `SELECT target, span, start, probe, made, body FROM summaries WHERE (target, span, start) IN (` + strings.Join(in, ", ") + `)`
			if q.Probe != "" {
				query, args = query+` AND probe = ?`, append(args, q.Probe)
			}
			type version struct {
				made uint64
				body rawBody
			}
			newest := map[summaryRowKey]version{}
			err := func() error {
				qctx, cancel := context.WithCancel(gctx)
				defer cancel()
				rows, err := s.conn.Query(qctx, query, args...)
				if err != nil {
					return s.wrap(gctx, op+": read summaries", err)
				}
				defer func() {
					cancel()
					rows.Close()
				}()
				var (
					k    summaryRowKey
					made uint64
					body rawBody
				)
				for rows.Next() {
					if err := rows.Scan(&k.target, &k.span, &k.start, &k.probe, &made, &body); err != nil {
						return s.wrap(gctx, op+": read summaries", err)
					}
					if v, ok := newest[k]; !ok || made > v.made {
						newest[k] = version{made, body}
					}
				}
				return s.wrap(gctx, op+": read summaries", rows.Err())
			}()
			if err != nil {
				return err
			}
			var (
				dec summarycodec.Decoder
				sum summary.Summary
			)
			for k, v := range newest {
				if err := dec.Decode(v.body, &sum); err != nil {
					return fmt.Errorf("clickhouse store: %s: the summary of %s, probe %s, in the bucket at %s is corrupt: %w (run a retention past it, or drop its rows from the summaries and made_buckets tables)",
						op, k.target, k.probe, fromMicros(k.start).Format(time.RFC3339), err)
				}
				sum.Target, sum.Probe = k.target, k.probe
				key := sumKey{pair: pair{k.target, k.probe}}
				if step > 0 {
					key.step = (int64(k.start)*1000 - origin.UnixNano()) / int64(step)
				}
				mu.Lock()
				if all[key] == nil {
					all[key] = &summary.Summary{}
				}
				all[key].Merge(&sum)
				mu.Unlock()
			}
			return nil
		})
	}
	return g.Wait()
}
