package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/maps/summary"
)

// Summaries (store.Summarizer and store.StepSummarizer): ClickHouse
// condenses a window per target, probe and visited site with one GROUP BY
// over the deduplicated (FINAL) rows, so maps read a few rows per probe
// instead of every record. Each field follows summary.Summary.Add:
//
//   - a visit is a result that succeeded (no error, no error kind), is not
//     suspect and names a site; every other result counts in the "" group,
//     as a result only (and as an error when it failed);
//   - RTTs kept are those > 0 and finite (NaN fails the comparison);
//   - the place is that of the most recent record with a valid one (both
//     coordinates set, in range, not NaN: a NULL becomes 1000, out of
//     range), ties going to the greater latitude, then longitude: the
//     maximum of (time, lat, lon); country and ASN likewise, by (time,
//     value).
//
// Comparing tuples costs ClickHouse a generic value per row, which made
// up a third of a map's time; yet a probe's place, country and ASN rarely
// change within a window. So the first query takes the value at the
// latest time (argMax by time alone, numeric) and flags the groups whose
// value is not the same throughout (min != max): only there can a tie on
// time pick the wrong one. The probes flagged, if any, are read again with
// the exact tuple comparisons.
//
// Go merges a probe's groups with summary.Summary.Merge, whose every field is
// a sum, a maximum or a concatenation. Times are µs in the table and
// UnixNano in summaries.
//
// Maps read the rollup's summaries of past buckets where they can
// (rollup.go); this query serves the rest of their window, and makes the
// rollup's buckets.

// visitExpr is the site a row visits, "" for none.
const visitExpr = `if(error = '' AND error_kind = '' AND suspect = 0, site, '')`

// placeOK holds for rows with a valid place, on the columns lat0 and lon0
// that summaryQuery's inner SELECT makes.
const placeOK = `lat0 >= -90 AND lat0 <= 90 AND lon0 >= -180 AND lon0 <= 180`

// latestAggregates pick the place, country and ASN of the latest record
// having them, then the "mixed" flag: exact picks them by the tuple
// rules; otherwise by time alone, which is exact unless mixed.
func latestAggregates(exact bool) string {
	by := func(tuple string) string {
		if exact {
			return "tuple(" + tuple + ")"
		}
		return "time"
	}
	aggs := `maxIf(time, ` + placeOK + `), argMaxIf(lat0, ` + by("time, lat0, lon0") + `, ` + placeOK + `),
		argMaxIf(lon0, ` + by("time, lat0, lon0") + `, ` + placeOK + `),
		maxIf(time, country != ''), argMaxIf(country, ` + by("time, country") + `, country != ''),
		maxIf(time, asn != 0), argMaxIf(asn, ` + by("time, asn") + `, asn != 0)`
	if exact {
		return aggs + `, 0`
	}
	return aggs + `, minIf(lat0, ` + placeOK + `) != maxIf(lat0, ` + placeOK + `)
		OR minIf(lon0, ` + placeOK + `) != maxIf(lon0, ` + placeOK + `)
		OR minIf(country, country != '') != maxIf(country, country != '')
		OR minIf(asn, asn != 0) != maxIf(asn, asn != 0)`
}

// rttAggregate gathers a group's kept RTTs as one string of 8-byte little
// endian floats: the driver scans a String without reflection, an Array
// element by element with it. reinterpretAsString drops a float's trailing
// zero bytes; padding and cutting to 8 puts them back.
const rttAggregate = `arrayStringConcat(arrayMap(x -> substring(concat(reinterpretAsString(x), '\0\0\0\0\0\0\0\0'), 1, 8),
	groupArrayIf(rtt_ms, rtt_ms > 0 AND isFinite(rtt_ms))))`

// summaryRow is one group: a target, probe and visited site ("" for the
// results that visit none), per step for step summaries.
type summaryRow struct {
	step                   int64
	target, probe, visit   string
	n, errors, first, last uint64
	places, placeAt        uint64
	lat, lon               float64
	countryAt              uint64
	country                string
	asnAt                  uint64
	asn                    uint32
	mixed                  uint8
	rttBytes               string
	rtts                   []float64
	part                   summary.Summary // the row as a summary, reused
}

// dests are the Scan destinations of a query built by summaryQuery.
func (r *summaryRow) dests(step, rtts bool) []any {
	var d []any
	if step {
		d = append(d, &r.step)
	}
	d = append(d, &r.target, &r.probe, &r.visit, &r.n, &r.errors, &r.first, &r.last,
		&r.places, &r.placeAt, &r.lat, &r.lon, &r.countryAt, &r.country, &r.asnAt, &r.asn, &r.mixed)
	if rtts {
		d = append(d, &r.rttBytes)
	}
	return d
}

func nanos(us uint64) int64 { return int64(us) * 1000 }

// mergeInto folds the row into s, which holds the probe's other groups.
func (r *summaryRow) mergeInto(s *summary.Summary) error {
	p := &r.part
	p.Reset()
	p.Target, p.Probe = r.target, r.probe
	p.First, p.Last = nanos(r.first), nanos(r.last)
	p.Results, p.Errors = int(r.n), int(r.errors)
	if r.visit != "" {
		if len(r.rttBytes)%8 != 0 {
			return fmt.Errorf("RTTs of probe %s came as %d bytes, not 8 per float: is the server's reinterpretAsString unlike 18.16's?", r.probe, len(r.rttBytes))
		}
		r.rtts = r.rtts[:0]
		for i := 0; i < len(r.rttBytes); i += 8 {
			b := r.rttBytes[i : i+8]
			r.rtts = append(r.rtts, math.Float64frombits(uint64(b[0])|uint64(b[1])<<8|uint64(b[2])<<16|uint64(b[3])<<24|
				uint64(b[4])<<32|uint64(b[5])<<40|uint64(b[6])<<48|uint64(b[7])<<56))
		}
		// Merge copies the RTTs, so r.rtts can be reused.
		p.Sites = append(p.Sites, summary.SiteSummary{Site: r.visit, N: int(r.n), Last: p.Last, RTTs: r.rtts})
	}
	if r.places > 0 {
		p.HasPlace, p.PlaceAt, p.Lat, p.Lon = true, nanos(r.placeAt), r.lat, r.lon
	}
	if r.country != "" {
		p.Country, p.CountryAt = r.country, nanos(r.countryAt)
	}
	if r.asn != 0 {
		p.ASN, p.ASNAt = r.asn, nanos(r.asnAt)
	}
	s.Merge(p)
	return nil
}

// ceilMicros is the first µs at or after t, clamped to the column's range:
// a record at that µs is the first that maps' builders, which compare
// nanoseconds, count in a window starting (or ending) at t.
func ceilMicros(t time.Time) uint64 {
	us := t.UnixMicro()
	if t.After(time.UnixMicro(us)) {
		us++
	}
	return uint64(max(us, 0))
}

// summaryFilter is the WHERE clause of q, its bounds rounded as maps
// rounds them.
func summaryFilter(q store.Query, only restriction) (string, []any) {
	var cond []string
	var args []any
	if !q.From.IsZero() {
		cond, args = append(cond, "time >= ?"), append(args, ceilMicros(q.From))
	}
	if !q.To.IsZero() {
		cond, args = append(cond, "time < ?"), append(args, ceilMicros(q.To))
	}
	if q.Target != "" {
		cond, args = append(cond, "target = ?"), append(args, q.Target)
	}
	if q.Probe != "" {
		cond, args = append(cond, "probe = ?"), append(args, q.Probe)
	}
	if only.cond != "" {
		cond, args = append(cond, only.cond), append(args, only.args...)
	}
	return where(cond), args
}

// pair is a target and probe.
type pair struct{ target, probe string }

// maxExactPairs bounds the pairs an exact query names; beyond it, it reads
// every probe (a list that long would pass max_query_size).
const maxExactPairs = 2000

// summaryQuery is the GROUP BY condensing q, per step counted from origin
// when step > 0, with the RTTs when rtts, exact (see latestAggregates) for
// the pairs only when exact. Groups come ordered by step, target and
// probe, so that a probe's groups are consecutive.
func summaryQuery(q store.Query, only restriction, origin time.Time, step time.Duration, rtts, exact bool, pairs map[pair]bool) (string, []any) {
	filter, args := summaryFilter(q, only)
	if exact && len(pairs) <= maxExactPairs {
		in := make([]string, 0, len(pairs))
		for p := range pairs {
			in = append(in, "(?, ?)")
			args = append(args, p.target, p.probe)
		}
		filter += " AND (target, probe) IN (" + strings.Join(in, ", ") + ")"
	}
	key := "target, probe, visit"
	cols := "target, probe, site, error, error_kind, suspect, time, country, asn, lat, lon"
	var stepArgs []any
	if step > 0 {
		// In ns, since a window's start need not be a whole µs.
		key = "step, " + key
		cols = "intDiv(toInt64(time) * 1000 - ?, ?) AS step, " + cols
		stepArgs = []any{origin.UnixNano(), int64(step)}
	}
	aggs := `count(), countIf(error != '' OR error_kind != ''), min(time), max(time), countIf(` + placeOK + `), ` +
		latestAggregates(exact)
	if rtts {
		cols += ", rtt_ms"
		aggs += ", " + rttAggregate
	}
	query := `SELECT ` + key + `, ` + aggs + `
		FROM (SELECT ` + cols + `, ` + visitExpr + ` AS visit, ifNull(lat, 1000) AS lat0, ifNull(lon, 1000) AS lon0
			FROM results FINAL WHERE ` + filter + `)
		GROUP BY ` + key + ` ORDER BY ` + strings.TrimSuffix(key, ", visit")
	return query, append(stepArgs, args...)
}

// ScanSummaries implements store.Summarizer: one summary per target and
// probe for the whole of q's window.
func (s *Store) ScanSummaries(ctx context.Context, q store.Query, fn func(*summary.Summary) error) error {
	if q.Limit != 0 {
		return errors.New("clickhouse store: scan summaries: a limit cannot apply to summaries: query with Limit 0, or use Scan")
	}
	return s.scanSummaries(ctx, "scan summaries", q, 0, true, len(spans)-1, fn)
}

// ScanStepSummaries implements store.StepSummarizer: one summary per
// target, probe and step [q.From+k*step, q.From+(k+1)*step) of q's window,
// without RTTs, which timelines do not use.
func (s *Store) ScanStepSummaries(ctx context.Context, q store.Query, step time.Duration, fn func(*summary.Summary) error) error {
	switch {
	case q.Limit != 0:
		return errors.New("clickhouse store: scan step summaries: a limit cannot apply to summaries: query with Limit 0, or use Scan")
	case q.From.IsZero():
		return errors.New("clickhouse store: scan step summaries: steps count from the window's start: give the query a From")
	case step <= 0:
		return fmt.Errorf("clickhouse store: scan step summaries: step %v: give a positive step", step)
	}
	// A span's buckets never cross a step's edge when the window starts
	// on the span's edges and the step is a whole number of them.
	top := -1
	if from := q.From.UnixMicro(); from >= 0 && q.From.Nanosecond()%1000 == 0 && step%time.Microsecond == 0 {
		for l, span := range spans {
			if uint64(from)%span == 0 && uint64(step.Microseconds())%span == 0 {
				top = l
			}
		}
	}
	return s.scanSummaries(ctx, "scan step summaries", q, step, false, top, fn)
}

// sumKey is a summary handed out: a target and probe, per step for step
// summaries (0 otherwise).
type sumKey struct {
	step int64
	pair
}

// scanSummaries hands fn one summary per target, probe (and step) of q:
// the rollup's usable buckets of the spans up to top (rollup.go), and the
// results of the rest of the window.
func (s *Store) scanSummaries(ctx context.Context, op string, q store.Query, step time.Duration, rtts bool, top int, fn func(*summary.Summary) error) error {
	p, err := s.planRead(ctx, op, q, top)
	if err != nil {
		return err
	}
	all := map[sumKey]*summary.Summary{}
	if p.read {
		if all, err = s.gatherAll(ctx, op, q, step, rtts, p.rest); err != nil {
			return err
		}
	}
	if err := s.readRollup(ctx, op, q, p.picks, q.From, step, all); err != nil {
		return err
	}
	for _, sum := range all {
		if err := fn(sum); err != nil {
			return err
		}
	}
	return nil
}

// gatherAll summarizes the results of q (restricted by only) per target,
// probe (and step). FINAL merges parts in one thread per query, so the
// window is cut into slices queried at once: duplicates share their time,
// so each slice deduplicates on its own, and Go merges a probe's slices.
func (s *Store) gatherAll(ctx context.Context, op string, q store.Query, step time.Duration, rtts bool, only restriction) (map[sumKey]*summary.Summary, error) {
	parts, err := s.slices(ctx, op, q, only, step)
	if err != nil {
		return nil, err
	}
	all := map[sumKey]*summary.Summary{}
	mixed := map[pair]bool{}
	if err := s.gather(ctx, op, parts, only, q.From, step, rtts, false, nil, all, mixed); err != nil {
		return nil, err
	}
	if len(mixed) > 0 {
		for k := range all {
			if mixed[k.pair] || len(mixed) > maxExactPairs {
				delete(all, k)
			}
		}
		if err := s.gather(ctx, op, parts, only, q.From, step, rtts, true, mixed, all, nil); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// gather runs the slices' queries at once, merging their summaries into
// all and noting in mixed the pairs whose place, country or ASN changed.
// An exact gather reads the pairs in pairs only (every pair when there are
// too many to name) and adds only the summaries missing from all.
func (s *Store) gather(ctx context.Context, op string, parts []store.Query, only restriction, origin time.Time, step time.Duration, rtts, exact bool,
	pairs map[pair]bool, all map[sumKey]*summary.Summary, mixed map[pair]bool) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, part := range parts {
		g.Go(func() error {
			return s.scanSlice(gctx, op, part, only, origin, step, rtts, exact, pairs, func(sum *summary.Summary, changed bool) error {
				k := sumKey{pair: pair{sum.Target, sum.Probe}}
				if step > 0 {
					k.step = (sum.First - origin.UnixNano()) / int64(step)
				}
				mu.Lock()
				defer mu.Unlock()
				if changed && mixed != nil {
					mixed[k.pair] = true
				}
				if all[k] == nil {
					all[k] = &summary.Summary{}
				}
				all[k].Merge(sum)
				return nil
			})
		})
	}
	return g.Wait()
}

// slices cuts q's window into WithQuerySlices parts of equal time (on step
// edges when step > 0). An open end is closed at the first or last record.
func (s *Store) slices(ctx context.Context, op string, q store.Query, only restriction, step time.Duration) ([]store.Query, error) {
	n := s.cfg.querySlices
	if n <= 1 {
		return []store.Query{q}, nil
	}
	from, to := q.From, q.To
	if from.IsZero() || to.IsZero() {
		filter, args := summaryFilter(q, only)
		var lo, hi uint64
		var rows uint64
		if err := s.conn.QueryRow(ctx, `SELECT min(time), max(time), count() FROM results WHERE `+filter, args...).Scan(&lo, &hi, &rows); err != nil {
			return nil, s.wrap(ctx, op+": find the window's ends", err)
		}
		if rows == 0 || hi >= math.MaxInt64/1000 {
			return []store.Query{q}, nil
		}
		if from.IsZero() {
			from = time.UnixMicro(int64(lo))
		}
		if to.IsZero() {
			to = time.UnixMicro(int64(hi) + 1)
		}
	}
	span := to.Sub(from)
	edges := []time.Time{from}
	for i := 1; i < n; i++ {
		cut := span / time.Duration(n) * time.Duration(i)
		if step > 0 {
			cut = cut / step * step
		}
		if e := from.Add(cut); e.After(edges[len(edges)-1]) {
			edges = append(edges, e)
		}
	}
	edges = append(edges, to)
	parts := make([]store.Query, len(edges)-1)
	for i := range parts {
		parts[i] = q
		parts[i].From, parts[i].To = edges[i], edges[i+1]
	}
	// Open ends stay open: records beyond the data's ends as found above
	// may have arrived since.
	parts[0].From, parts[len(parts)-1].To = q.From, q.To
	return parts, nil
}

// scanSlice runs summaryQuery on q and hands fn one merged summary per
// target, probe (and step counted from origin), and whether any of its
// groups was flagged mixed.
func (s *Store) scanSlice(ctx context.Context, op string, q store.Query, only restriction, origin time.Time, step time.Duration, rtts, exact bool,
	pairs map[pair]bool, fn func(*summary.Summary, bool) error) error {
	query, args := summaryQuery(q, only, origin, step, rtts, exact, pairs)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.conn.Query(qctx, query, args...)
	if err != nil {
		return s.wrap(ctx, op, err)
	}
	defer func() {
		cancel() // before Close, which would otherwise read the rest of the answer
		rows.Close()
	}()
	var (
		r       summaryRow
		cur     summary.Summary
		prev    int64
		changed bool
	)
	dests := r.dests(step > 0, rtts)
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return s.wrap(ctx, op+": read row", err)
		}
		if cur.Results > 0 && (r.step != prev || r.target != cur.Target || r.probe != cur.Probe) {
			if err := fn(&cur, changed); err != nil {
				return err
			}
			cur.Reset()
			changed = false
		}
		prev, changed = r.step, changed || r.mixed != 0
		if err := r.mergeInto(&cur); err != nil {
			return fmt.Errorf("clickhouse store: %s: %w", op, err)
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, op, err)
	}
	if cur.Results > 0 {
		return fn(&cur, changed)
	}
	return nil
}
