package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

const resultColumns = `id, time, probe, target, method, af, addr, identity, site, rtt_ms, error, error_kind,
	lat, lon, country, asn, suspect, dns, http, ping`

const insertResult = `INSERT OR IGNORE INTO results (` + resultColumns + `)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// Append implements store.Results: AppendBatches of one batch, in one
// transaction, INSERT OR IGNORE on the unique id so re-sent records count 0.
func (s *Store) Append(ctx context.Context, rs []result.Record) (int, error) {
	stored, err := s.AppendBatches(ctx, [][]result.Record{rs})
	if err != nil {
		return 0, err
	}
	return stored[0], nil
}

// recordArgs fills args in the order of resultColumns. dnsJSON caches the
// encoding of DNS details: a target's answers repeat a few values (one per
// server), and a map lookup costs a tenth of json.Marshal. HTTP and ping
// details carry timings that differ in every record, so are not cached.
func recordArgs(r *result.Record, args []any, dnsJSON map[result.DNS]string) error {
	args[0] = r.ID
	args[1] = r.Time.UnixMicro()
	args[2] = r.Probe
	args[3] = r.Target
	args[4] = r.Method
	args[5] = int64(r.AF)
	args[6] = r.Addr
	args[7] = r.Identity
	args[8] = r.Site
	args[9] = r.RTTMs
	args[10] = r.Error
	args[11] = string(r.ErrorKind)
	args[12] = floatArg(r.Lat)
	args[13] = floatArg(r.Lon)
	args[14] = r.Country
	args[15] = int64(r.ASN)
	args[16] = r.Suspect
	var err error
	if args[17], err = jsonArg(r.DNS, dnsJSON); err != nil {
		return fmt.Errorf("sqlite store: append: record %s: dns details: %w", r.ID, err)
	}
	if args[18], err = jsonArg(r.HTTP, nil); err != nil {
		return fmt.Errorf("sqlite store: append: record %s: http details: %w", r.ID, err)
	}
	if args[19], err = jsonArg(r.Ping, nil); err != nil {
		return fmt.Errorf("sqlite store: append: record %s: ping details: %w", r.ID, err)
	}
	return nil
}

func floatArg(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// jsonArg encodes a details struct, or NULL for a nil pointer, through
// cache when it is not nil.
func jsonArg[T comparable](v *T, cache map[T]string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if j, ok := cache[*v]; ok {
		return j, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if cache != nil {
		if len(cache) >= detailsCacheSize {
			clear(cache)
		}
		cache[*v] = string(b)
	}
	return string(b), nil
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
	where := []string{"time >= ?", "time < ?"}
	args := []any{lo, hi}
	if q.Target != "" {
		where = append(where, "target = ?")
		args = append(args, q.Target)
	}
	if q.Probe != "" {
		where = append(where, "probe = ?")
		args = append(args, q.Probe)
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	args = append(args, limit)
	// time, seq is the order of both indexes (an index ends with the rowid),
	// so equal times come out in insertion order without a sort.
	query := `SELECT ` + resultColumns + ` FROM results WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY time, seq LIMIT ?`
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return s.wrap(ctx, "scan", err)
	}
	defer rows.Close()

	var (
		rec                result.Record
		t, af, asn         int64
		kind               string
		lat, lon           sql.NullFloat64
		latv, lonv         float64
		dnsJ, httpJ, pingJ sql.RawBytes
		dns                result.DNS
		httpD              result.HTTP
		ping               result.Ping
		dnsCache           = make(map[string]result.DNS)
	)
	for rows.Next() {
		rec = result.Record{}
		err := rows.Scan(&rec.ID, &t, &rec.Probe, &rec.Target, &rec.Method, &af, &rec.Addr, &rec.Identity,
			&rec.Site, &rec.RTTMs, &rec.Error, &kind, &lat, &lon, &rec.Country, &asn, &rec.Suspect,
			&dnsJ, &httpJ, &pingJ)
		if err != nil {
			return s.wrap(ctx, "scan: read row", err)
		}
		rec.Time = time.UnixMicro(t).UTC()
		rec.AF = int(af)
		rec.ASN = uint32(asn)
		rec.ErrorKind = result.ErrorKind(kind)
		if lat.Valid {
			latv = lat.Float64
			rec.Lat = &latv
		}
		if lon.Valid {
			lonv = lon.Float64
			rec.Lon = &lonv
		}
		if rec.DNS, err = decodeDetails(dnsJ, &dns, dnsCache); err != nil {
			return fmt.Errorf("sqlite store: scan: record %s: dns details: %w", rec.ID, err)
		}
		if rec.HTTP, err = decodeDetails(httpJ, &httpD, nil); err != nil {
			return fmt.Errorf("sqlite store: scan: record %s: http details: %w", rec.ID, err)
		}
		if rec.Ping, err = decodeDetails(pingJ, &ping, nil); err != nil {
			return fmt.Errorf("sqlite store: scan: record %s: ping details: %w", rec.ID, err)
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(ctx, "scan", err)
	}
	return nil
}

// detailsCacheSize bounds the caches of encoded and decoded DNS details;
// when full they start over.
const detailsCacheSize = 256

// decodeDetails decodes a details column into buf, reused between rows; nil
// for NULL. A non-nil cache remembers decoded values by their JSON: DNS
// details repeat a few values per target, and decoding is most of the CPU a
// scan spends in Go.
func decodeDetails[T any](b []byte, buf *T, cache map[string]T) (*T, error) {
	if b == nil {
		return nil, nil
	}
	if v, ok := cache[string(b)]; ok {
		*buf = v
		return buf, nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if cache != nil {
		if len(cache) >= detailsCacheSize {
			clear(cache)
		}
		cache[string(b)] = v
	}
	*buf = v
	return buf, nil
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
