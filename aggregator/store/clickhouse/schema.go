package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
)

// migrations are applied in order; schema_version holds the highest one
// applied. Append new ones at the end, never edit a released one. Every
// statement must be idempotent (IF NOT EXISTS): instances starting at the
// same moment may both run a migration, and an operator may have created
// the tables beforehand as Replicated or Distributed ones
// (docs/clickhouse.md), which IF NOT EXISTS leaves alone.
//
// results: rows equal on the sorting key (target, time, id) are one record,
// merged by ReplacingMergeTree and by FINAL at read time. time is
// microseconds since 1970 UTC (18.16 has no DateTime64); the day partition
// is computed from it, so that retention drops whole days and a window
// reads only its days. Details of a method are flat columns behind a 0/1
// flag (dns, http, ping) rather than JSON, so that they can be grouped by
// in SQL and cost no encoding on ingest.
//
// Probe state never updates a row in place: touches and revocations are
// rows of their own, and ReplacingMergeTree's version column (last_seen,
// revoked_at) keeps the newest. A read-modify-write of one probe row would
// let a touch on one instance undo a revocation made on another.
var migrations = [][]string{{
	`CREATE TABLE IF NOT EXISTS results (
		id         String,
		time       UInt64,
		probe      String,
		target     String,
		method     String,
		af         Int64,
		addr       String,
		identity   String,
		site       String,
		rtt_ms     Float64,
		error      String,
		error_kind String,
		lat        Nullable(Float64),
		lon        Nullable(Float64),
		country    String,
		asn        UInt32,
		suspect    UInt8,
		dns        UInt8,
		dns_qname  String,
		dns_qclass String,
		dns_qtype  String,
		dns_rcode  String,
		dns_nsid   String,
		dns_tcp    UInt8,
		dns_size   Int64,
		http       UInt8,
		http_status        Int64,
		http_dns_ms        Float64,
		http_connect_ms    Float64,
		http_tls_ms        Float64,
		http_first_byte_ms Float64,
		http_total_ms      Float64,
		http_proto         String,
		ping          UInt8,
		ping_sent     Int64,
		ping_received Int64,
		ping_loss     Float64,
		ping_min_ms   Float64,
		ping_avg_ms   Float64,
		ping_max_ms   Float64,
		ping_stddev_ms Float64
	) ENGINE = ReplacingMergeTree
	PARTITION BY toYYYYMMDD(toDateTime(intDiv(time, 1000000)))
	ORDER BY (target, time, id)`,

	`CREATE TABLE IF NOT EXISTS probes (
		id         String,
		token_hash String, -- hex
		name       String,
		lat        Nullable(Float64),
		lon        Nullable(Float64),
		country    String,
		asn        UInt32,
		labels     String, -- JSON object
		created    UInt64
	) ENGINE = ReplacingMergeTree ORDER BY id`,

	`CREATE TABLE IF NOT EXISTS probe_seen (
		id        String,
		last_seen UInt64,
		addr      String
	) ENGINE = ReplacingMergeTree(last_seen) ORDER BY id`,

	`CREATE TABLE IF NOT EXISTS probe_revoked (
		id         String,
		revoked_at UInt64
	) ENGINE = ReplacingMergeTree(revoked_at) ORDER BY id`,

	// plan: one logical row; the newest version wins.
	`CREATE TABLE IF NOT EXISTS plan (
		one     UInt8,
		version UInt64,
		body    String -- JSON of api.Plan
	) ENGINE = ReplacingMergeTree(version) ORDER BY one`,

	`CREATE TABLE IF NOT EXISTS annotations (
		id     String,
		time   UInt64,
		target String, -- empty: every target
		text   String
	) ENGINE = ReplacingMergeTree ORDER BY id`,

	`CREATE TABLE IF NOT EXISTS events (
		id      String,
		time    UInt64,
		prefix  String,
		kind    String,
		as_path Array(UInt32),
		peer    String,
		source  String
	) ENGINE = ReplacingMergeTree ORDER BY (prefix, time, id)`,
}, {
	// The rollup of past buckets (rollup.go). summaries: one row per
	// target, bucket (span and start, µs) and probe; body is
	// summarycodec's; made is the ms at which the compaction's snapshot
	// began, the newest winning.
	`CREATE TABLE IF NOT EXISTS summaries (
		target String,
		span   UInt64,
		start  UInt64,
		probe  String,
		body   String,
		made   UInt64
	) ENGINE = ReplacingMergeTree(made)
	PARTITION BY toYYYYMMDD(toDateTime(intDiv(start, 1000000)))
	ORDER BY (target, span, start, probe)`,

	// made_buckets and dirty_buckets: a target's bucket was made by a
	// snapshot at at (ms), or received late records at at. Read with
	// max(at) per bucket.
	`CREATE TABLE IF NOT EXISTS made_buckets (
		target String,
		span   UInt64,
		start  UInt64,
		at     UInt64
	) ENGINE = MergeTree ORDER BY (target, span, start)`,

	`CREATE TABLE IF NOT EXISTS dirty_buckets (
		target String,
		span   UInt64,
		start  UInt64,
		at     UInt64
	) ENGINE = MergeTree ORDER BY (target, span, start)`,

	// rollup_floor: buckets starting before max(floor) (µs) are never
	// read; retention raises it.
	`CREATE TABLE IF NOT EXISTS rollup_floor (
		one   UInt8,
		floor UInt64
	) ENGINE = ReplacingMergeTree(floor) ORDER BY one`,
}}

// migrate brings the schema up to date.
func (s *Store) migrate(ctx context.Context) error {
	err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version UInt32, applied UInt64)
		ENGINE = ReplacingMergeTree ORDER BY version`)
	if err != nil {
		return s.wrap(ctx, "create schema_version in "+s.db, err)
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM schema_version`).Scan(&v); err != nil {
		return s.wrap(ctx, "read schema version", err)
	}
	if int(v) > len(migrations) {
		return fmt.Errorf("clickhouse store: database %s has schema version %d but this catchmap knows only %d: run a newer catchmap",
			s.db, v, len(migrations))
	}
	for i := int(v); i < len(migrations); i++ {
		for _, stmt := range migrations[i] {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return s.wrap(ctx, fmt.Sprintf("apply migration %d", i+1), err)
			}
		}
		if err := s.insertRows(ctx, "record schema version", `INSERT INTO schema_version (version, applied)`,
			[]any{uint32(i + 1), micros(time.Now())}); err != nil {
			return err
		}
		s.log.Info("clickhouse store schema migrated", "database", s.db, "version", i+1)
	}
	return s.ensureColumns(ctx)
}

// ensureColumns adds the record's columns that the results table lacks
// (see resultColumn), with their types' defaults in the rows it holds: a
// field added to the record needs no migration of its own. Instances
// starting together may both add one: 18.16 has no ADD COLUMN IF NOT
// EXISTS, so the second's "already exists" (code 44) is no error.
func (s *Store) ensureColumns(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, `SELECT name FROM system.columns WHERE database = ? AND table = 'results'`, s.db)
	if err != nil {
		return s.wrap(ctx, "read the results table's columns", err)
	}
	have, err := store.ScanStrings(rows)
	rows.Close()
	if err != nil {
		return s.wrap(ctx, "read the results table's columns", err)
	}
	for _, c := range resultColumns {
		if slices.Contains(have, c.name) {
			continue
		}
		if err := s.conn.Exec(ctx, "ALTER TABLE results ADD COLUMN "+c.name+" "+c.typ); err != nil && !isCode(err, codeColumnExists) {
			return s.wrap(ctx, "add column "+c.name+" to results", err)
		}
		s.log.Info("clickhouse store: results column added", "database", s.db, "column", c.name)
	}
	return nil
}
