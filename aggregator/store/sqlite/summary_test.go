package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/storetest"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

var (
	_ store.Summarizer     = (*Store)(nil)
	_ store.StepSummarizer = (*Store)(nil)
)

// The summary tests' records, from the conformance suite's generator.
var (
	sumT0          = storetest.SumT0
	sumRecords     = storetest.SumRecords
	sumRecordsOver = storetest.SumRecordsOver
)

// catchments builds the catchment of w both ways: from Scan's records and
// from ScanSummaries.
func catchments(t *testing.T, s *Store, o maps.Options, probe string) (raw, sum *maps.Catchment) {
	t.Helper()
	ctx := context.Background()
	q := store.Query{Target: o.Target, Probe: probe, From: o.From, To: o.To}
	br, err := maps.NewBuilder(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Scan(ctx, q, func(r *result.Record) error { br.Add(r); return nil }); err != nil {
		t.Fatal(err)
	}
	bs, err := maps.NewBuilder(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ScanSummaries(ctx, q, bs.AddSummary); err != nil {
		t.Fatal(err)
	}
	return br.Build(), bs.Build()
}

// sameCatchments fails t unless the catchments of o from summaries and from
// records are the same, and reports whether they hold any result.
func sameCatchments(t *testing.T, s *Store, o maps.Options, probe, stage string) bool {
	t.Helper()
	raw, sum := catchments(t, s, o, probe)
	if !reflect.DeepEqual(raw, sum) || encode(t, raw) != encode(t, sum) {
		t.Fatalf("%s, window %s to %s of %s, probe %q: catchment from summaries differs from the raw one:\n sum %+v\n raw %+v",
			stage, o.From, o.To, o.Target, probe, sum, raw)
	}
	return raw.Results > 0
}

// encode is c's JSON and that of its probes, which tells -0 from 0 where
// reflect.DeepEqual does not.
func encode(t *testing.T, c *maps.Catchment) string {
	t.Helper()
	b, err := json.Marshal([]any{c, c.ProbeList})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSummaryConformance: the summaries hold exactly what Scan gives.
func TestSummaryConformance(t *testing.T) {
	storetest.RunSummaries(t, func(t *testing.T) storetest.Summarizing {
		return open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	}, nil)
}

// TestSummariesOfOlderSchema: results stored before summaries existed are
// served raw after the migration, and new ones from summaries.
func TestSummariesOfOlderSchema(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	path := oldDatabase(t, 1, sumRecords(rng, "old", 800), nil)
	s := open(t, path)
	defer s.Close()
	if _, err := s.Append(context.Background(), sumRecords(rng, "new", 800)); err != nil {
		t.Fatal(err)
	}
	o := maps.Options{Target: "t1", From: sumT0, To: sumT0.Add(10 * time.Minute)}
	raw, sum := catchments(t, s, o, "")
	if !reflect.DeepEqual(raw, sum) || encode(t, raw) != encode(t, sum) || raw.Results == 0 {
		t.Fatalf("catchment over records from before the migration: from summaries %+v\nraw %+v", sum, raw)
	}
}

// oldDatabase makes a database of the schema version given, holding recs as
// a catchmap of that schema stored them (insertOld), and returns its path;
// more, when set, adds rows of its own.
func oldDatabase(t *testing.T, version int, recs []result.Record, more func(*sql.DB)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catchmap.db")
	db, err := sql.Open("sqlite3", dsn(path, "_journal_mode=WAL"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(strings.Join(migrations[:version], ";")+
		`; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (?)`, version); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		insertOld(t, db, &recs[i])
	}
	if more != nil {
		more(db)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// insertOld stores r in a results table of migration 1's layout, details
// as JSON, as a catchmap of that schema did.
func insertOld(t *testing.T, db *sql.DB, r *result.Record) {
	t.Helper()
	details := func(v any, present bool) any {
		if !present {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := db.Exec(`INSERT OR IGNORE INTO results (id, time, probe, target, method, af, addr, identity, site, rtt_ms,
		error, error_kind, lat, lon, country, asn, suspect, dns, http, ping) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Time.UnixMicro(), r.Probe, r.Target, r.Method, r.AF, r.Addr, r.Identity, r.Site, r.RTTMs, r.Error,
		string(r.ErrorKind), floatArg(r.Lat), floatArg(r.Lon), r.Country, int64(r.ASN), r.Suspect,
		details(r.DNS, r.DNS != nil), details(r.HTTP, r.HTTP != nil), details(r.Ping, r.Ping != nil)); err != nil {
		t.Fatal(err)
	}
}
