package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
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

// sumT0 is a minute boundary; records spread over ten minutes after it.
var sumT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// sumRecords makes n records of 3 targets and 12 probes with nanosecond
// times (the store keeps µs), failures, suspects, flips, moving places,
// -0 and NaN coordinates, and times on minute boundaries.
func sumRecords(rng *rand.Rand, prefix string, n int) []result.Record {
	return sumRecordsOver(rng, prefix, n, 10*time.Minute)
}

// sumRecordsOver is sumRecords over spread after sumT0.
func sumRecordsOver(rng *rand.Rand, prefix string, n int, spread time.Duration) []result.Record {
	sites := []string{"ams", "fra", "lhr", "sin"}
	rs := make([]result.Record, n)
	for i := range rs {
		p := rng.IntN(12)
		t := sumT0.Add(time.Duration(rng.Int64N(int64(spread))))
		if rng.IntN(10) == 0 {
			t = sumT0.Add(time.Duration(rng.Int64N(int64(spread/time.Minute)+1)) * time.Minute)
		}
		r := result.Record{ID: fmt.Sprintf("%s-%05d", prefix, i), Time: t, Probe: fmt.Sprintf("p%02d", p),
			Target: fmt.Sprintf("t%d", rng.IntN(3)), Method: result.MethodDNS, AF: 4, Site: sites[p%4],
			RTTMs: float64(1+rng.IntN(50)) + rng.Float64(), Country: []string{"", "NL", "DE"}[rng.IntN(3)],
			ASN: uint32(rng.IntN(3))}
		if rng.IntN(6) > 0 {
			lat, lon := float64(p*7-40)+float64(rng.IntN(2)), float64(p*13-80)
			switch rng.IntN(20) {
			case 0:
				lat = math.Copysign(0, -1)
			case 1:
				lon = math.NaN()
			case 2:
				lat = 91
			}
			r.Lat, r.Lon = &lat, &lon
		}
		switch k := rng.IntN(20); {
		case k == 0:
			r.Site, r.Error, r.ErrorKind = "", "timeout", result.KindTimeout
		case k == 1:
			r.Error, r.ErrorKind = "refused", result.KindRefused
		case k == 2:
			r.Suspect = true
		case k == 3:
			r.RTTMs = 0
		case k < 7:
			r.Site = sites[rng.IntN(len(sites))]
		}
		rs[i] = r
	}
	return rs
}

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
	path := filepath.Join(t.TempDir(), "catchmap.db")
	db, err := sql.Open("sqlite3", dsn(path, "_journal_mode=WAL"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0] + `; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	old := sumRecords(rng, "old", 800)
	for i := range old {
		insertOld(t, db, &old[i])
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

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
