package sqlite

import (
	"context"
	"fmt"
)

// migrations are applied in order, each in its own transaction; the
// schema_version table holds how many have run. Append new ones at the end,
// never edit a released one.
//
// results: a rowid table with a UNIQUE index on id rather than a WITHOUT
// ROWID table keyed by id. Measured on 10k-row transactions, the rowid
// table inserts ~15% faster, and since ids are UUIDv7 (time-sorted) the id
// index is append-mostly and costs ~5% over no unique index at all.
// Secondary indexes then hold an 8-byte rowid instead of the 36-byte id.
// results_time serves DeleteBefore and scans of every target.
var migrations = []string{
	`CREATE TABLE results (
		seq        INTEGER PRIMARY KEY,
		id         TEXT    NOT NULL UNIQUE,
		time       INTEGER NOT NULL, -- microseconds since 1970, UTC
		probe      TEXT    NOT NULL,
		target     TEXT    NOT NULL,
		method     TEXT    NOT NULL,
		af         INTEGER NOT NULL,
		addr       TEXT    NOT NULL,
		identity   TEXT    NOT NULL,
		site       TEXT    NOT NULL,
		rtt_ms     REAL    NOT NULL,
		error      TEXT    NOT NULL,
		error_kind TEXT    NOT NULL,
		lat        REAL,             -- NULL: unknown (0 is a real place)
		lon        REAL,
		country    TEXT    NOT NULL,
		asn        INTEGER NOT NULL,
		suspect    INTEGER NOT NULL,
		dns        TEXT,             -- JSON of result.DNS, NULL if none
		http       TEXT,             -- JSON of result.HTTP
		ping       TEXT              -- JSON of result.Ping
	);
	CREATE INDEX results_target_time ON results (target, time);
	CREATE INDEX results_time ON results (time);

	CREATE TABLE probes (
		id         TEXT    PRIMARY KEY,
		token_hash BLOB    NOT NULL UNIQUE,
		name       TEXT    NOT NULL,
		lat        REAL,
		lon        REAL,
		country    TEXT    NOT NULL,
		asn        INTEGER NOT NULL,
		labels     TEXT    NOT NULL, -- JSON object
		created    INTEGER NOT NULL,
		last_seen  INTEGER,
		addr       TEXT    NOT NULL,
		revoked    INTEGER NOT NULL DEFAULT 0
	);

	CREATE TABLE plan (
		one  INTEGER PRIMARY KEY CHECK (one = 1),
		body TEXT    NOT NULL -- JSON of api.Plan
	);

	CREATE TABLE annotations (
		id     TEXT    PRIMARY KEY,
		time   INTEGER NOT NULL,
		target TEXT    NOT NULL, -- empty: every target
		text   TEXT    NOT NULL
	);
	CREATE INDEX annotations_time ON annotations (time);

	CREATE TABLE events (
		id      TEXT    PRIMARY KEY,
		time    INTEGER NOT NULL,
		prefix  TEXT    NOT NULL,
		kind    TEXT    NOT NULL,
		as_path TEXT    NOT NULL, -- JSON array of ASNs
		peer    TEXT    NOT NULL,
		source  TEXT    NOT NULL
	);
	CREATE INDEX events_prefix_time ON events (prefix, time);`,

	// summaries: the rollup of summary.go. WITHOUT ROWID, so that a
	// target's minutes lie together in the primary key and a map reads
	// them as one range. The floor starts above every stored result: they
	// were never rolled up and stay served raw.
	`CREATE TABLE summaries (
		target TEXT    NOT NULL,
		minute INTEGER NOT NULL, -- start of the minute, µs since 1970, UTC
		probe  TEXT    NOT NULL,
		body   BLOB    NOT NULL, -- encodeSummary
		PRIMARY KEY (target, minute, probe)
	) WITHOUT ROWID;

	CREATE TABLE summary_state (
		one   INTEGER PRIMARY KEY CHECK (one = 1),
		floor INTEGER NOT NULL -- µs: summaries of earlier minutes are not read
	);
	INSERT INTO summary_state (one, floor) SELECT 1, coalesce(max(time) + 1, -9223372036854775808) FROM results;`,

	// Summaries at several spans (compact.go): the minutes of migration 2
	// become level 0. rollup_state.done is how far each coarser level is
	// made; a span without a row is made nowhere yet.
	`CREATE TABLE summaries_by_span (
		target TEXT    NOT NULL,
		span   INTEGER NOT NULL, -- bucket length, µs
		start  INTEGER NOT NULL, -- bucket start, µs since 1970, UTC
		probe  TEXT    NOT NULL,
		body   BLOB    NOT NULL, -- encodeSummary
		PRIMARY KEY (target, span, start, probe)
	) WITHOUT ROWID;
	INSERT INTO summaries_by_span (target, span, start, probe, body)
		SELECT target, 60000000, minute, probe, body FROM summaries;
	DROP TABLE summaries;
	ALTER TABLE summaries_by_span RENAME TO summaries;

	CREATE TABLE rollup_state (
		span INTEGER PRIMARY KEY, -- µs
		done INTEGER NOT NULL     -- µs: buckets ending at or before it are made
	);`,
}

// migrate brings the schema up to date.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return s.wrap(ctx, "open "+s.path, err)
	}
	for {
		done, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			return s.ensureColumns(ctx)
		}
	}
}

// migrateOne applies the next migration, if any, reporting done when there
// is none left.
func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, s.wrap(ctx, "begin migration", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return false, s.wrap(ctx, "read schema version", err)
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("sqlite store: %s has schema version %d but this catchmap knows only %d: run a newer catchmap",
			s.path, v, len(migrations))
	case v == len(migrations):
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, s.wrap(ctx, fmt.Sprintf("apply migration %d", v+1), err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (?)`, v+1); err != nil {
		return false, s.wrap(ctx, "record schema version", err)
	}
	if err := tx.Commit(); err != nil {
		return false, s.wrap(ctx, "commit migration", err)
	}
	s.log.Info("sqlite store schema migrated", "path", s.path, "version", v+1)
	return false, nil
}
