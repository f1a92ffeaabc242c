package clickhouse

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// insertRows inserts rows through a native batch rather than a VALUES
// literal: binary values need no quoting, and floats come back bit for bit.
func (s *Store) insertRows(ctx context.Context, op, insert string, rows ...[]any) error {
	b, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return s.wrap(ctx, op, err)
	}
	for _, r := range rows {
		if err := b.Append(r...); err != nil {
			b.Abort() // frees the connection; its own error only says the batch was not sent
			return s.wrap(ctx, op, err)
		}
	}
	return s.wrap(ctx, op, b.Send())
}

// count runs a SELECT count() query.
func (s *Store) count(ctx context.Context, op, query string, args ...any) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, query, args...).Scan(&n)
	return n, s.wrap(ctx, op, err)
}

// idTable carries a list of ids to the server as an external table, for
// lists too long for a query literal.
func idTable(ids []string) (*ext.Table, error) {
	t, err := ext.NewTable("ids", ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	_, err = t.Block().Columns[0].Append(ids)
	return t, err
}

// storedIDs returns which of ids the table holds.
func (s *Store) storedIDs(ctx context.Context, op, table string, ids []string) (map[string]bool, error) {
	t, err := idTable(ids)
	if err != nil {
		return nil, fmt.Errorf("clickhouse store: %s: build the id lookup: %w", op, err)
	}
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(t)),
		`SELECT DISTINCT id FROM `+table+` WHERE id IN (SELECT id FROM ids)`)
	if err != nil {
		return nil, s.wrap(ctx, op+": look up stored ids", err)
	}
	defer rows.Close()
	stored := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(ctx, op+": look up stored ids", err)
		}
		stored[id] = true
	}
	return stored, s.wrap(ctx, op+": look up stored ids", rows.Err())
}

func fromMicros(us uint64) time.Time { return time.UnixMicro(int64(us)).UTC() }

// CreateProbe implements store.Probes. The check for an existing id or
// token and the insert are two statements: two instances creating the same
// probe at the same moment could both succeed, which the server's random
// ids and tokens make moot.
func (s *Store) CreateProbe(ctx context.Context, p api.Probe, tokenHash []byte) error {
	if p.ID == "" || len(tokenHash) == 0 {
		return errors.New("clickhouse store: create probe: id and token hash are required")
	}
	op := "create probe " + p.ID
	hash := hex.EncodeToString(tokenHash)
	n, err := s.count(ctx, op, `SELECT count() FROM probes WHERE id = ? OR token_hash = ?`, p.ID, hash)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("clickhouse store: %s: a probe with this id or token already exists", op)
	}
	labels, err := json.Marshal(p.Labels)
	if err != nil {
		return fmt.Errorf("clickhouse store: %s: labels: %w", op, err)
	}
	if err := s.insertRows(ctx, op, `INSERT INTO probes (id, token_hash, name, lat, lon, country, asn, labels, created)`,
		[]any{p.ID, hash, p.Name, p.Lat, p.Lon, p.Country, p.ASN, string(labels), micros(p.Created)}); err != nil {
		return err
	}
	if p.LastSeen != nil {
		if err := s.TouchProbes(ctx, []store.Touch{{ID: p.ID, Seen: *p.LastSeen, Addr: p.Addr}}); err != nil {
			return err
		}
	}
	if p.Revoked {
		return s.RevokeProbe(ctx, p.ID)
	}
	return nil
}

// probes loads the probes matching cond (a condition on the probes table,
// with args) with their last touch and revocation.
func (s *Store) probes(ctx context.Context, op, cond string, args ...any) ([]api.Probe, error) {
	rows, err := s.conn.Query(ctx, `SELECT id, name, lat, lon, country, asn, labels, created
		FROM probes FINAL WHERE `+cond+` ORDER BY id`, args...)
	if err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	defer rows.Close()
	var out []api.Probe
	byID := make(map[string]int)
	for rows.Next() {
		var (
			p       api.Probe
			labels  string
			created uint64
		)
		if err := rows.Scan(&p.ID, &p.Name, &p.Lat, &p.Lon, &p.Country, &p.ASN, &labels, &created); err != nil {
			return nil, s.wrap(ctx, op, err)
		}
		if err := json.Unmarshal([]byte(labels), &p.Labels); err != nil {
			return nil, fmt.Errorf("clickhouse store: %s: labels of probe %s are not JSON: %w", op, p.ID, err)
		}
		p.Created = fromMicros(created)
		byID[p.ID] = len(out)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	sub := `(SELECT id FROM probes WHERE ` + cond + `)`
	seen, err := s.conn.Query(ctx, `SELECT id, max(last_seen), argMax(addr, last_seen) FROM probe_seen
		WHERE id IN `+sub+` GROUP BY id`, args...)
	if err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	defer seen.Close()
	for seen.Next() {
		var (
			id, addr string
			last     uint64
		)
		if err := seen.Scan(&id, &last, &addr); err != nil {
			return nil, s.wrap(ctx, op, err)
		}
		if i, ok := byID[id]; ok {
			t := fromMicros(last)
			out[i].LastSeen, out[i].Addr = &t, addr
		}
	}
	if err := seen.Err(); err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	revoked, err := s.conn.Query(ctx, `SELECT DISTINCT id FROM probe_revoked WHERE id IN `+sub, args...)
	if err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	defer revoked.Close()
	for revoked.Next() {
		var id string
		if err := revoked.Scan(&id); err != nil {
			return nil, s.wrap(ctx, op, err)
		}
		if i, ok := byID[id]; ok {
			out[i].Revoked = true
		}
	}
	return out, s.wrap(ctx, op, revoked.Err())
}

// probe loads the one probe matching cond; store.ErrNotFound if none.
func (s *Store) probe(ctx context.Context, op, cond string, args ...any) (api.Probe, error) {
	ps, err := s.probes(ctx, op, cond, args...)
	if err != nil {
		return api.Probe{}, err
	}
	if len(ps) == 0 {
		return api.Probe{}, fmt.Errorf("clickhouse store: %s: %w", op, store.ErrNotFound)
	}
	return ps[0], nil
}

// ProbeByToken implements store.Probes.
func (s *Store) ProbeByToken(ctx context.Context, tokenHash []byte) (api.Probe, error) {
	return s.probe(ctx, "find probe by token",
		`token_hash = ? AND id NOT IN (SELECT id FROM probe_revoked)`, hex.EncodeToString(tokenHash))
}

// Probe implements store.Probes.
func (s *Store) Probe(ctx context.Context, id string) (api.Probe, error) {
	return s.probe(ctx, "find probe "+id, `id = ?`, id)
}

// ListProbes implements store.Probes, ordered by id.
func (s *Store) ListProbes(ctx context.Context) ([]api.Probe, error) {
	return s.probes(ctx, "list probes", "1")
}

// mustExist returns store.ErrNotFound unless probe id exists.
func (s *Store) mustExist(ctx context.Context, op, id string) error {
	n, err := s.count(ctx, op, `SELECT count() FROM probes WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = fmt.Errorf("clickhouse store: %s: %w", op, store.ErrNotFound)
	}
	return err
}

// RevokeProbe implements store.Probes. Revoking twice is not an error.
func (s *Store) RevokeProbe(ctx context.Context, id string) error {
	op := "revoke probe " + id
	if err := s.mustExist(ctx, op, id); err != nil {
		return err
	}
	return s.insertRows(ctx, op, `INSERT INTO probe_revoked (id, revoked_at)`, []any{id, micros(time.Now())})
}

// TouchProbes implements store.Probes: one lookup, one INSERT. Touches
// from several instances keep the latest time, whichever instance writes
// last.
func (s *Store) TouchProbes(ctx context.Context, ts []store.Touch) error {
	if len(ts) == 0 {
		return nil
	}
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	known, err := s.storedIDs(ctx, "touch probes", "probes", ids)
	if err != nil {
		return err
	}
	var missing []string
	rows := make([][]any, 0, len(ts))
	for _, t := range ts {
		if !known[t.ID] {
			missing = append(missing, t.ID)
			continue
		}
		rows = append(rows, []any{t.ID, micros(t.Seen), t.Addr})
	}
	if len(rows) > 0 {
		if err := s.insertRows(ctx, "touch probes", `INSERT INTO probe_seen (id, last_seen, addr)`, rows...); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("clickhouse store: touch probes %s: %w", strings.Join(missing, ", "), store.ErrNotFound)
	}
	return nil
}

// PutPlan implements store.Plans. The newest version wins; a version is
// the wall clock in nanoseconds, but always past the stored one, so that a
// put on an instance whose clock lags still replaces an earlier put.
func (s *Store) PutPlan(ctx context.Context, p api.Plan) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("clickhouse store: put plan: %w", err)
	}
	var last uint64
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM plan`).Scan(&last); err != nil {
		return s.wrap(ctx, "put plan", err)
	}
	version := max(uint64(time.Now().UnixNano()), last+1)
	return s.insertRows(ctx, "put plan", `INSERT INTO plan (one, version, body)`, []any{uint8(1), version, string(b)})
}

// Plan implements store.Plans.
func (s *Store) Plan(ctx context.Context) (api.Plan, error) {
	rows, err := s.conn.Query(ctx, `SELECT body FROM plan ORDER BY version DESC LIMIT 1`)
	if err != nil {
		return api.Plan{}, s.wrap(ctx, "read plan", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return api.Plan{}, s.wrap(ctx, "read plan", rows.Err())
	}
	var body string
	if err := rows.Scan(&body); err != nil {
		return api.Plan{}, s.wrap(ctx, "read plan", err)
	}
	p, err := store.DecodePlan(body)
	if err != nil {
		return api.Plan{}, fmt.Errorf("clickhouse store: read plan: %w", err)
	}
	return p, nil
}

// AddAnnotation implements store.Annotations. An annotation without an id
// gets one; adding an id that exists again changes nothing.
func (s *Store) AddAnnotation(ctx context.Context, a api.Annotation) error {
	if a.ID == "" {
		a.ID = result.NewID()
	}
	n, err := s.count(ctx, "add annotation", `SELECT count() FROM annotations WHERE id = ?`, a.ID)
	if err != nil || n > 0 {
		return err
	}
	return s.insertRows(ctx, "add annotation", `INSERT INTO annotations (id, time, target, text)`,
		[]any{a.ID, micros(a.Time), a.Target, a.Text})
}

// Annotations implements store.Annotations. An empty target lists the
// notes of every target.
func (s *Store) Annotations(ctx context.Context, target string, from, to time.Time) ([]api.Annotation, error) {
	cond, args := window("time", from, to)
	if target != "" {
		cond = append(cond, "target IN (?, '')")
		args = append(args, target)
	}
	rows, err := s.conn.Query(ctx, `SELECT id, time, target, text FROM annotations FINAL WHERE `+where(cond)+
		` ORDER BY time, id`, args...)
	if err != nil {
		return nil, s.wrap(ctx, "list annotations", err)
	}
	defer rows.Close()
	var out []api.Annotation
	for rows.Next() {
		var a api.Annotation
		var t uint64
		if err := rows.Scan(&a.ID, &t, &a.Target, &a.Text); err != nil {
			return nil, s.wrap(ctx, "list annotations", err)
		}
		a.Time = fromMicros(t)
		out = append(out, a)
	}
	return out, s.wrap(ctx, "list annotations", rows.Err())
}

// AddEvents implements store.Events as one INSERT. Events without an id
// get one; an id already stored is skipped.
func (s *Store) AddEvents(ctx context.Context, es []api.Event) error {
	if len(es) == 0 {
		return nil
	}
	ids := make([]string, len(es))
	for i := range es {
		if es[i].ID == "" {
			ids[i] = result.NewID()
		} else {
			ids[i] = es[i].ID
		}
	}
	stored, err := s.storedIDs(ctx, "add events", "events", ids)
	if err != nil {
		return err
	}
	var add [][]any
	for i, e := range es {
		if stored[ids[i]] {
			continue
		}
		stored[ids[i]] = true
		path := e.ASPath
		if path == nil {
			path = []uint32{}
		}
		add = append(add, []any{ids[i], micros(e.Time), e.Prefix, e.Kind, path, e.Peer, e.Source})
	}
	if len(add) == 0 {
		return nil
	}
	return s.insertRows(ctx, "add events", `INSERT INTO events (id, time, prefix, kind, as_path, peer, source)`, add...)
}

// Events implements store.Events. No prefixes, no events.
func (s *Store) Events(ctx context.Context, prefixes []string, from, to time.Time) ([]api.Event, error) {
	if len(prefixes) == 0 {
		return nil, nil
	}
	cond, args := window("time", from, to)
	set := make([]any, len(prefixes))
	for i, p := range prefixes {
		set[i] = p
	}
	cond = append(cond, "prefix IN ?")
	args = append(args, clickhouse.GroupSet{Value: set})
	rows, err := s.conn.Query(ctx, `SELECT id, time, prefix, kind, as_path, peer, source FROM events FINAL WHERE `+
		where(cond)+` ORDER BY time, id`, args...)
	if err != nil {
		return nil, s.wrap(ctx, "list events", err)
	}
	defer rows.Close()
	var out []api.Event
	for rows.Next() {
		var e api.Event
		var t uint64
		if err := rows.Scan(&e.ID, &t, &e.Prefix, &e.Kind, &e.ASPath, &e.Peer, &e.Source); err != nil {
			return nil, s.wrap(ctx, "list events", err)
		}
		e.Time = fromMicros(t)
		if len(e.ASPath) == 0 {
			e.ASPath = nil
		}
		out = append(out, e)
	}
	return out, s.wrap(ctx, "list events", rows.Err())
}
