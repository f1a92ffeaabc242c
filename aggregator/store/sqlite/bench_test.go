package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// benchBatch is the transaction size of the insert benchmarks.
const benchBatch = 10000

// benchRecords is a realistic batch: DNS results with a place from 500
// probes on 5 targets answered by 80 servers, ids fresh UUIDv7s filled in by
// refreshIDs.
func benchRecords(start time.Time) []result.Record {
	rs := make([]result.Record, benchBatch)
	lat, lon := 52.37, 4.9
	for i := range rs {
		rs[i] = result.Record{Time: start.Add(time.Duration(i) * time.Millisecond),
			Probe: fmt.Sprintf("probe-%03d", i%500), Target: fmt.Sprintf("t%d.example", i%5),
			Method: result.MethodDNS, AF: 4, Addr: "192.0.2.53", Identity: "s1.ams.example", Site: "ams",
			RTTMs: 12.5, Lat: &lat, Lon: &lon, Country: "NL", ASN: 64500,
			DNS: &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", NSID: fmt.Sprintf("s%d.site%d", i%4, i%20), Size: 80 + i%7}}
	}
	return rs
}

func refreshIDs(rs []result.Record, shift time.Duration) {
	for i := range rs {
		rs[i].ID = result.NewID()
		rs[i].Time = rs[i].Time.Add(shift)
	}
}

// meter counts rows and the CPU time spent on them. rows/cpu-s stays
// comparable when the machine is shared and wall-clock rows/s is not.
type meter struct {
	rows     int
	cpu, at0 time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *meter) start() { m.at0 = cpuTime() }

func (m *meter) stop(rows int) {
	m.cpu += cpuTime() - m.at0
	m.rows += rows
}

func (m *meter) report(b *testing.B) {
	b.ReportMetric(float64(m.rows)/b.Elapsed().Seconds(), "rows/s")
	if m.cpu > 0 {
		b.ReportMetric(float64(m.rows)/m.cpu.Seconds(), "rows/cpu-s")
	}
}

// BenchmarkAppend: Store.Append of 10k-record batches.
func BenchmarkAppend(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	benchAppend(b, s, benchRecords(time.Now()))
}

// benchAppend appends rs again and again, with fresh ids each time.
func benchAppend(b *testing.B, s *Store, rs []result.Record) {
	ctx := context.Background()
	var m meter
	for b.Loop() {
		b.StopTimer()
		refreshIDs(rs, benchBatch*time.Millisecond)
		b.StartTimer()
		m.start()
		n, err := s.Append(ctx, rs)
		if err != nil || n != len(rs) {
			b.Fatalf("append: %d, %v", n, err)
		}
		m.stop(n)
	}
	m.report(b)
}

// BenchmarkAppendSpread: Store.Append of 10k-record batches that each hold
// 2 records of every one of 5,000 probes, so that every batch touches 5,000
// per-minute summaries: the rollup's worst case, where BenchmarkAppend's
// batches (20 records a probe) are its common one.
func BenchmarkAppendSpread(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	rs := benchRecords(time.Now())
	for i := range rs {
		rs[i].Probe = fmt.Sprintf("probe-%04d", i%5000)
	}
	benchAppend(b, s, rs)
}

// BenchmarkRawInsert is the floor Append is measured against: the same
// schema and pragmas, a plain prepared INSERT in 10k-row transactions,
// values already converted, no catchmap code. no-unique-id drops the
// idempotency index to show its cost.
func BenchmarkRawInsert(b *testing.B) {
	schema := strings.Join(migrations, ";\n")
	noUnique := strings.Replace(schema, "id         TEXT    NOT NULL UNIQUE", "id TEXT NOT NULL", 1)
	if noUnique == schema {
		b.Fatal("the no-unique-id edit no longer matches the results table of migrations[0]: update it")
	}
	for _, v := range []struct {
		name, schema string
	}{
		{"schema", schema},
		{"no-unique-id", noUnique},
	} {
		b.Run(v.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "raw.db")
			db, err := sql.Open("sqlite3", dsn(path, "_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(v.schema); err != nil {
				b.Fatal(err)
			}
			rs := benchRecords(time.Now())
			args := make([][]any, len(rs))
			var m meter
			for b.Loop() {
				b.StopTimer()
				refreshIDs(rs, benchBatch*time.Millisecond)
				codecs := newDetailCodecs()
				for i := range rs {
					args[i] = make([]any, resultArgs)
					if err := recordArgs(&rs[i], args[i], codecs); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				m.start()
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				st, err := tx.Prepare(insertResult)
				if err != nil {
					b.Fatal(err)
				}
				for i := range rs {
					if _, err := st.Exec(args[i]...); err != nil {
						b.Fatal(err)
					}
				}
				st.Close()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				m.stop(len(rs))
			}
			m.report(b)
		})
	}
}

// BenchmarkScan: one Scan over a window of 1M records, all targets, and
// one target's fifth of them.
func BenchmarkScan(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "scan.db"))
	defer s.Close()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := benchRecords(start)
	const total = 1000000
	for i := 0; i < total/benchBatch; i++ {
		refreshIDs(rs, benchBatch*time.Millisecond)
		if _, err := s.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []struct {
		name string
		q    store.Query
	}{
		{"all", store.Query{From: start, To: start.Add(total * 2 * time.Millisecond)}},
		{"target", store.Query{Target: "t3.example", From: start, To: start.Add(total * 2 * time.Millisecond)}},
	} {
		b.Run(q.name, func(b *testing.B) {
			var m meter
			for b.Loop() {
				m.start()
				rows := 0
				if err := s.Scan(ctx, q.q, func(*result.Record) error { rows++; return nil }); err != nil {
					b.Fatal(err)
				}
				m.stop(rows)
			}
			m.report(b)
		})
	}
}
