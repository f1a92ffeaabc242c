package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

const probeColumns = `id, name, lat, lon, country, asn, labels, created, last_seen, addr, revoked`

// CreateProbe implements store.Probes.
func (s *Store) CreateProbe(ctx context.Context, p api.Probe, tokenHash []byte) error {
	if p.ID == "" || len(tokenHash) == 0 {
		return errors.New("sqlite store: create probe: id and token hash are required")
	}
	labels, err := json.Marshal(p.Labels)
	if err != nil {
		return fmt.Errorf("sqlite store: create probe %s: labels: %w", p.ID, err)
	}
	var lastSeen any
	if p.LastSeen != nil {
		lastSeen = p.LastSeen.UnixMicro()
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO probes (`+probeColumns+`, token_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.Name, floatArg(p.Lat), floatArg(p.Lon), p.Country, int64(p.ASN), string(labels),
		p.Created.UnixMicro(), lastSeen, p.Addr, p.Revoked, tokenHash)
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("sqlite store: create probe %s: a probe with this id or token already exists: %w", p.ID, err)
	}
	return s.wrap(ctx, "create probe "+p.ID, err)
}

// ProbeByToken implements store.Probes.
func (s *Store) ProbeByToken(ctx context.Context, tokenHash []byte) (api.Probe, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+probeColumns+` FROM probes WHERE token_hash = ? AND NOT revoked`, tokenHash)
	p, err := scanProbe(row)
	return p, s.wrap(ctx, "find probe by token", err)
}

// Probe implements store.Probes.
func (s *Store) Probe(ctx context.Context, id string) (api.Probe, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+probeColumns+` FROM probes WHERE id = ?`, id)
	p, err := scanProbe(row)
	return p, s.wrap(ctx, "find probe "+id, err)
}

// ListProbes implements store.Probes, ordered by id.
func (s *Store) ListProbes(ctx context.Context) ([]api.Probe, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+probeColumns+` FROM probes ORDER BY id`)
	if err != nil {
		return nil, s.wrap(ctx, "list probes", err)
	}
	defer rows.Close()
	var out []api.Probe
	for rows.Next() {
		p, err := scanProbe(rows)
		if err != nil {
			return nil, s.wrap(ctx, "list probes", err)
		}
		out = append(out, p)
	}
	return out, s.wrap(ctx, "list probes", rows.Err())
}

// scanProbe reads one row of probeColumns from a *sql.Row or *sql.Rows.
func scanProbe(row interface{ Scan(...any) error }) (api.Probe, error) {
	var (
		p            api.Probe
		lat, lon     sql.NullFloat64
		asn, created int64
		lastSeen     sql.NullInt64
		labels       string
	)
	if err := row.Scan(&p.ID, &p.Name, &lat, &lon, &p.Country, &asn, &labels, &created, &lastSeen, &p.Addr, &p.Revoked); err != nil {
		return api.Probe{}, err
	}
	if lat.Valid {
		p.Lat = &lat.Float64
	}
	if lon.Valid {
		p.Lon = &lon.Float64
	}
	p.ASN = uint32(asn)
	p.Created = time.UnixMicro(created).UTC()
	if lastSeen.Valid {
		t := time.UnixMicro(lastSeen.Int64).UTC()
		p.LastSeen = &t
	}
	if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
		return api.Probe{}, fmt.Errorf("labels of probe %s: %w", p.ID, err)
	}
	return p, nil
}

// RevokeProbe implements store.Probes. Revoking twice is not an error.
func (s *Store) RevokeProbe(ctx context.Context, id string) error {
	return s.updateProbe(ctx, "revoke probe "+id, `UPDATE probes SET revoked = 1 WHERE id = ?`, id)
}

// TouchProbes implements store.Probes, in one transaction.
func (s *Store) TouchProbes(ctx context.Context, ts []store.Touch) error {
	if len(ts) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "touch probes: begin", err)
	}
	defer tx.Rollback()
	var missing []string
	for _, t := range ts {
		res, err := tx.ExecContext(ctx, `UPDATE probes SET last_seen = ?, addr = ? WHERE id = ?`, t.Seen.UnixMicro(), t.Addr, t.ID)
		if err != nil {
			return s.wrap(ctx, "touch probe "+t.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.wrap(ctx, "touch probe "+t.ID, err)
		} else if n == 0 {
			missing = append(missing, t.ID)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(ctx, "touch probes: commit", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("sqlite store: touch probes %s: %w", strings.Join(missing, ", "), store.ErrNotFound)
	}
	return nil
}

// updateProbe runs an UPDATE whose last argument is the probe id, and
// reports store.ErrNotFound when it matched no probe.
func (s *Store) updateProbe(ctx context.Context, op, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return s.wrap(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite store: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// PutPlan implements store.Plans.
func (s *Store) PutPlan(ctx context.Context, p api.Plan) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("sqlite store: put plan: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO plan (one, body) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET body = excluded.body`, string(b))
	return s.wrap(ctx, "put plan", err)
}

// Plan implements store.Plans.
func (s *Store) Plan(ctx context.Context) (api.Plan, error) {
	var body string
	err := s.r.QueryRowContext(ctx, `SELECT body FROM plan WHERE one = 1`).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Plan{}, nil
	}
	if err != nil {
		return api.Plan{}, s.wrap(ctx, "read plan", err)
	}
	p, err := store.DecodePlan(body)
	if err != nil {
		return api.Plan{}, fmt.Errorf("sqlite store: read plan: %w", err)
	}
	return p, nil
}

// AddAnnotation implements store.Annotations. An annotation without an id
// gets one; adding an id that exists again changes nothing.
func (s *Store) AddAnnotation(ctx context.Context, a api.Annotation) error {
	if a.ID == "" {
		a.ID = result.NewID()
	}
	_, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO annotations (id, time, target, text) VALUES (?,?,?,?)`,
		a.ID, a.Time.UnixMicro(), a.Target, a.Text)
	return s.wrap(ctx, "add annotation", err)
}

// Annotations implements store.Annotations. An empty target lists the
// notes of every target.
func (s *Store) Annotations(ctx context.Context, target string, from, to time.Time) ([]api.Annotation, error) {
	lo, hi := bounds(from, to)
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, target, text FROM annotations
		WHERE time >= ?1 AND time < ?2 AND (?3 = '' OR target = ?3 OR target = '')
		ORDER BY time, id`, lo, hi, target)
	if err != nil {
		return nil, s.wrap(ctx, "list annotations", err)
	}
	defer rows.Close()
	var out []api.Annotation
	for rows.Next() {
		var a api.Annotation
		var t int64
		if err := rows.Scan(&a.ID, &t, &a.Target, &a.Text); err != nil {
			return nil, s.wrap(ctx, "list annotations", err)
		}
		a.Time = time.UnixMicro(t).UTC()
		out = append(out, a)
	}
	return out, s.wrap(ctx, "list annotations", rows.Err())
}

// AddEvents implements store.Events in one transaction. Events without an
// id get one; an id already stored is skipped.
func (s *Store) AddEvents(ctx context.Context, es []api.Event) error {
	if len(es) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(ctx, "add events: begin", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO events (id, time, prefix, kind, as_path, peer, source) VALUES (?,?,?,?,?,?,?)`)
	if err != nil {
		return s.wrap(ctx, "add events: prepare", err)
	}
	defer st.Close()
	for _, e := range es {
		if e.ID == "" {
			e.ID = result.NewID()
		}
		path := e.ASPath
		if path == nil {
			path = []uint32{}
		}
		pj, err := json.Marshal(path)
		if err != nil {
			return fmt.Errorf("sqlite store: add events: as path: %w", err)
		}
		if _, err := st.ExecContext(ctx, e.ID, e.Time.UnixMicro(), e.Prefix, e.Kind, string(pj), e.Peer, e.Source); err != nil {
			return s.wrap(ctx, "add events", err)
		}
	}
	return s.wrap(ctx, "add events: commit", tx.Commit())
}

// Events implements store.Events. No prefixes, no events.
func (s *Store) Events(ctx context.Context, prefixes []string, from, to time.Time) ([]api.Event, error) {
	if len(prefixes) == 0 {
		return nil, nil
	}
	lo, hi := bounds(from, to)
	args := []any{lo, hi}
	for _, p := range prefixes {
		args = append(args, p)
	}
	in := strings.Repeat("?,", len(prefixes))
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, prefix, kind, as_path, peer, source FROM events
		WHERE time >= ? AND time < ? AND prefix IN (`+in[:len(in)-1]+`)
		ORDER BY time, id`, args...)
	if err != nil {
		return nil, s.wrap(ctx, "list events", err)
	}
	defer rows.Close()
	var out []api.Event
	for rows.Next() {
		var e api.Event
		var t int64
		var path string
		if err := rows.Scan(&e.ID, &t, &e.Prefix, &e.Kind, &path, &e.Peer, &e.Source); err != nil {
			return nil, s.wrap(ctx, "list events", err)
		}
		e.Time = time.UnixMicro(t).UTC()
		if err := json.Unmarshal([]byte(path), &e.ASPath); err != nil {
			return nil, fmt.Errorf("sqlite store: list events: as path of event %s: %w", e.ID, err)
		}
		if len(e.ASPath) == 0 {
			e.ASPath = nil
		}
		out = append(out, e)
	}
	return out, s.wrap(ctx, "list events", rows.Err())
}
