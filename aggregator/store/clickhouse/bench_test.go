package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite side's catchment query

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/probe/result"
)

// Bench shape: what a deployment of a few thousand probes measuring a few
// anycast services sends.
const (
	benchProbes  = 2000
	benchTargets = 5
	benchSites   = 20
	benchMaxN    = 10_000_000
)

// benchEnv reads a positive number from the environment, def when unset.
func benchEnv(b *testing.B, name string, def, lo, hi int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		b.Fatalf("%s=%q: want a number from %d to %d", name, v, lo, hi)
	}
	return n
}

var benchStart = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// benchBatchOf fills rs with batch k of the data set. Records are 5ms
// apart (10M span 14 hours), ids deterministic so that every store gets the
// same data; a probe reaches one site of each target, and one probe in ten
// flaps to a second site.
func benchBatchOf(rs []result.Record, k int, lat, lon *float64) {
	// k*len(rs) is the batch's first record: batch sizes must not change within a data set.
	for j := range rs {
		i := k*len(rs) + j
		p, t := i%benchProbes, (i/benchProbes)%benchTargets
		site := (p*7 + t) % benchSites
		if p%10 == 0 && i%3 == 0 {
			site = (site + 1) % benchSites
		}
		rs[j] = result.Record{ID: fmt.Sprintf("%08x-0000-7000-8000-%012x", k, i),
			Time:  benchStart.Add(time.Duration(i) * 5 * time.Millisecond),
			Probe: fmt.Sprintf("probe-%04d", p), Target: fmt.Sprintf("t%d.example", t),
			Method: result.MethodDNS, AF: 4, Addr: "192.0.2.53", Identity: fmt.Sprintf("s1.site%02d.example", site),
			Site: fmt.Sprintf("site%02d", site), RTTMs: float64(10 + i%50), Lat: lat, Lon: lon, Country: "NL", ASN: 64500,
			DNS: &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", NSID: fmt.Sprintf("s1.site%02d", site), Size: 80 + i%7}}
	}
}

// ingest appends the data set through s in batches. It returns the wall
// time spent in Append (not in making records) and the CPU time of this
// process in Append plus that of other (the ClickHouse server: its merges
// included) over the whole load.
func ingest(b *testing.B, s store.Store, n, batch int, other func() time.Duration) (wall, cpu time.Duration) {
	ctx := context.Background()
	lat, lon := 52.37, 4.9
	rs := make([]result.Record, batch)
	o0 := other()
	for k := range n / batch {
		benchBatchOf(rs, k, &lat, &lon)
		t0, c0 := time.Now(), selfCPU()
		stored, err := s.Append(ctx, rs)
		wall += time.Since(t0)
		cpu += selfCPU() - c0
		if err != nil {
			b.Fatalf("ingest batch %d: %v", k, err)
		}
		if stored != len(rs) {
			b.Fatalf("ingest batch %d: stored %d of %d", k, stored, len(rs))
		}
	}
	return wall, cpu + other() - o0
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU reads the CPU time of the server scripts/clickhouse.sh
// started, from its pid file; it returns nil when there is none (another
// server), and ok false then.
func serverCPU() (fn func() time.Duration, ok bool) {
	dir := cmp.Or(os.Getenv("CATCHMAP_CLICKHOUSE_DIR"), filepath.Join(cmp.Or(os.Getenv("TMPDIR"), "/tmp"), "catchmap-clickhouse"))
	pid, err := os.ReadFile(filepath.Join(dir, "clickhouse.pid"))
	if err != nil {
		return func() time.Duration { return 0 }, false
	}
	stat := "/proc/" + strings.TrimSpace(string(pid)) + "/stat"
	return func() time.Duration {
		b, err := os.ReadFile(stat)
		if err != nil {
			return 0
		}
		// utime and stime, fields 14 and 15, in clock ticks (100 Hz on Linux);
		// the command name before them is in parentheses and may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(u+s) * 10 * time.Millisecond
	}, true
}

// catchmentSQL counts, per target, probe and site, the answers in a
// window: the per-probe site histogram a catchment map is drawn from.
// Every backend deduplicates (FINAL on ClickHouse).
const (
	catchmentCH = `SELECT target, probe, site, count() FROM results FINAL
		WHERE time >= ? AND time < ? AND site != '' GROUP BY target, probe, site`
	catchmentCHNoDedup = `SELECT target, probe, site, count() FROM results
		WHERE time >= ? AND time < ? AND site != '' GROUP BY target, probe, site`
	catchmentSQLite = `SELECT target, probe, site, count(*) FROM results
		WHERE time >= ? AND time < ? AND site != '' GROUP BY target, probe, site`
)

// timeQuery runs a catchment query, reads every group, and returns the
// best of three runs and the number of groups.
func timeQuery(b *testing.B, run func() (int, error)) (time.Duration, int) {
	best, groups := time.Duration(1<<62), 0
	for range 3 {
		t0 := time.Now()
		n, err := run()
		if err != nil {
			b.Fatalf("catchment query: %v", err)
		}
		best, groups = min(best, time.Since(t0)), n
	}
	return best, groups
}

// BenchmarkStoreCompare loads the same N records into SQLite and
// ClickHouse through store.Append and times the catchment query on each,
// printing a Markdown table. One run is the measurement:
//
//	export CATCHMAP_CLICKHOUSE_DSN=$(scripts/clickhouse.sh start)
//	CATCHMAP_BENCH_N=10000000 go test -run '^$' -bench StoreCompare -benchtime 1x -timeout 60m ./aggregator/store/clickhouse/
//
// or bench/storecompare.sh.
func BenchmarkStoreCompare(b *testing.B) {
	batch := benchEnv(b, "CATCHMAP_BENCH_BATCH", 100_000, 1000, 1_000_000)
	n := benchEnv(b, "CATCHMAP_BENCH_N", 1_000_000, batch, benchMaxN) / batch * batch
	ctx := context.Background()
	lo, hi := uint64(benchStart.UnixMicro()), uint64(benchStart.Add(time.Duration(n)*5*time.Millisecond).UnixMicro())
	type line struct {
		store, ingest, perCPU, query string
		groups                       int
	}
	var lines []line
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.0f results/s (%.1f s)", float64(n)/d.Seconds(), d.Seconds())
	}
	none := func() time.Duration { return 0 }
	server, known := serverCPU()
	perCPU := func(d time.Duration, known bool) string {
		if !known {
			return "n/a (server not started by scripts/clickhouse.sh)"
		}
		return fmt.Sprintf("%.0f results/CPU-s", float64(n)/d.Seconds())
	}
	for b.Loop() {
		lines = lines[:0]

		path := filepath.Join(b.TempDir(), "bench.db")
		sq, err := sqlite.Open(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		sqIngest, sqCPU := ingest(b, sq, n, batch, none)
		sq.Close()
		db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		sqQuery, groups := timeQuery(b, func() (int, error) { return sqlGroups(db.QueryContext(ctx, catchmentSQLite, int64(lo), int64(hi))) })
		db.Close()
		lines = append(lines, line{"SQLite", rate(sqIngest), perCPU(sqCPU, true), sqQuery.Round(time.Millisecond).String(), groups})

		ch := openStore(b, freshDSN(b))
		chIngest, chCPU := ingest(b, ch, n, batch, server)
		chQuery, groups := timeQuery(b, func() (int, error) { return chGroups(ch, catchmentCH, lo, hi) })
		lines = append(lines, line{"ClickHouse", rate(chIngest), perCPU(chCPU, known), chQuery.Round(time.Millisecond).String() + " (FINAL)", groups})
		raw, rawGroups := timeQuery(b, func() (int, error) { return chGroups(ch, catchmentCHNoDedup, lo, hi) })
		lines = append(lines, line{"ClickHouse, same data", "", "", raw.Round(time.Millisecond).String() + " (no dedup)", rawGroups})
		ch.Close()
	}
	var out strings.Builder
	load, _ := os.ReadFile("/proc/loadavg") // the machine may be shared: say how busy it was
	fmt.Fprintf(&out, "\nload average at the end: %s", load)
	fmt.Fprintf(&out, "%d results, batches of %d, %d probes x %d targets; ingest through store.Append, query = catchment GROUP BY target, probe, site (best of 3)\n\n",
		n, batch, benchProbes, benchTargets)
	fmt.Fprintln(&out, "| store | ingest (wall) | ingest per CPU-second, catchmap + server | catchment query | groups |")
	fmt.Fprintln(&out, "| --- | --- | --- | --- | --- |")
	for _, l := range lines {
		g := ""
		if l.groups > 0 {
			g = strconv.Itoa(l.groups)
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %s | %s |\n", l.store, l.ingest, l.perCPU, l.query, g)
	}
	fmt.Print(out.String())
}

func sqlGroups(rows *sql.Rows, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var target, probe, site string
	var c int64
	for rows.Next() {
		if err := rows.Scan(&target, &probe, &site, &c); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

func chGroups(s *Store, query string, lo, hi uint64) (int, error) {
	rows, err := s.conn.Query(context.Background(), query, lo, hi)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var target, probe, site string
	var c uint64
	for rows.Next() {
		if err := rows.Scan(&target, &probe, &site, &c); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}
