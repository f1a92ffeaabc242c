package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/maps"
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

// benchNames are the data set's strings, made once: formatting them per
// record would cost the benchmark more CPU than some stores' Append.
var benchNames = func() (n struct{ probes, targets, sites, identities []string }) {
	for p := range benchProbes {
		n.probes = append(n.probes, fmt.Sprintf("probe-%04d", p))
	}
	for t := range benchTargets {
		n.targets = append(n.targets, fmt.Sprintf("t%d.example", t))
	}
	for s := range benchSites {
		n.sites = append(n.sites, fmt.Sprintf("site%02d", s))
		n.identities = append(n.identities, fmt.Sprintf("s1.site%02d.example", s))
	}
	return n
}()

// benchID is the id of record i of batch k, as
// fmt.Sprintf("%08x-0000-7000-8000-%012x", k, i) but cheaper.
func benchID(k, i int) string {
	const hex = "0123456789abcdef"
	b := []byte("00000000-0000-7000-8000-000000000000")
	for j, v := 7, k; j >= 0; j, v = j-1, v>>4 {
		b[j] = hex[v&15]
	}
	for j, v := len(b)-1, i; j >= 24; j, v = j-1, v>>4 {
		b[j] = hex[v&15]
	}
	return string(b)
}

// benchBatchOf fills rs with batch k of the data set. Records are 5ms
// apart (10M span 14 hours), ids deterministic so that every store gets the
// same data; a probe reaches one site of each target, and one probe in ten
// flaps to a second site.
func benchBatchOf(rs []result.Record, k int, lat, lon *float64) {
	nm := &benchNames
	// k*len(rs) is the batch's first record: batch sizes must not change within a data set.
	for j := range rs {
		i := k*len(rs) + j
		p, t := i%benchProbes, (i/benchProbes)%benchTargets
		site := (p*7 + t) % benchSites
		if p%10 == 0 && i%3 == 0 {
			site = (site + 1) % benchSites
		}
		rs[j] = result.Record{ID: benchID(k, i),
			Time:  benchStart.Add(time.Duration(i) * 5 * time.Millisecond),
			Probe: nm.probes[p], Target: nm.targets[t],
			Method: result.MethodDNS, AF: 4, Addr: "192.0.2.53", Identity: nm.identities[site],
			Site: nm.sites[site], RTTMs: float64(10 + i%50), Lat: lat, Lon: lon, Country: "NL", ASN: 64500,
			DNS: &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", NSID: nm.identities[site][:9], Size: 80 + i%7}}
	}
}

// ingest appends the data set through s in batches from writers
// goroutines at once. It returns the wall time of the whole load (making
// the records included: a few percent) and the CPU time of this process
// plus that of other (the ClickHouse server: its merges included) over it.
func ingest(b *testing.B, s store.Store, n, batch, writers int, other func() time.Duration) (wall, cpu time.Duration) {
	ctx := context.Background()
	var next atomic.Int64
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	t0, c0, o0 := time.Now(), selfCPU(), other()
	for range writers {
		wg.Go(func() {
			lat, lon := 52.37, 4.9
			rs := make([]result.Record, batch)
			for {
				k := int(next.Add(1) - 1)
				if k >= n/batch {
					return
				}
				benchBatchOf(rs, k, &lat, &lon)
				stored, err := s.Append(ctx, rs)
				if err == nil && stored != len(rs) {
					err = fmt.Errorf("stored %d of %d", stored, len(rs))
				}
				if err != nil {
					errs <- fmt.Errorf("ingest batch %d: %w", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	wall = time.Since(t0)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return wall, selfCPU() - c0 + other() - o0
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

// mapTimes are the best of three runs of a catchment map of the whole
// window and of a diff of its two halves, built as mapsapi builds them:
// summaries from the store (ScanSummaries) into maps.Builder, then Build
// (and Compare). The catchment's JSON is returned so that the stores can
// be checked against each other.
func mapTimes(b *testing.B, st store.Summarizer, from, to time.Time) (catchment, diff time.Duration, results int, doc []byte) {
	ctx := context.Background()
	build := func(from, to time.Time) *maps.Catchment {
		bl, err := maps.NewBuilder(maps.Options{From: from, To: to}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.ScanSummaries(ctx, store.Query{From: from, To: to}, bl.AddSummary); err != nil {
			b.Fatalf("scan summaries: %v", err)
		}
		return bl.Build()
	}
	catchment, diff = time.Duration(1<<62), time.Duration(1<<62)
	for range 3 {
		t0 := time.Now()
		c := build(from, to)
		catchment = min(catchment, time.Since(t0))
		results = c.Results
		var err error
		if doc, err = json.Marshal([]any{c, c.ProbeList}); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		mid := from.Add(to.Sub(from) / 2)
		if _, err := maps.Compare(build(from, mid), build(mid, to)); err != nil {
			b.Fatal(err)
		}
		diff = min(diff, time.Since(t0))
	}
	return catchment, diff, results, doc
}

// compactBench waits out the rollup's margin (the records came late, so
// their buckets are dirty until then) and compacts until a call makes
// nothing, returning the time of the calls.
func compactBench(b *testing.B, s *Store) time.Duration {
	time.Sleep(s.cfg.margin + time.Second)
	var spent time.Duration
	for range 100 {
		t0 := time.Now()
		n, err := s.compact(context.Background(), time.Now())
		spent += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return spent
		}
	}
	b.Fatal("compaction does not end")
	return 0
}

// BenchmarkStoreCompare loads the same N records into SQLite and
// ClickHouse through store.Append, from several goroutines as the
// aggregator's concurrent uploads do, compacts each store's rollup (as the
// aggregator does every minute), then times a catchment map of all N and a
// diff of the two halves, as mapsapi computes them, on each, and checks
// that both stores' maps are the same bytes; it prints a Markdown table. One run is the measurement:
//
//	export CATCHMAP_CLICKHOUSE_DSN=$(scripts/clickhouse.sh start)
//	CATCHMAP_BENCH_N=10000000 go test -run '^$' -bench StoreCompare -benchtime 1x -timeout 60m ./aggregator/store/clickhouse/
//
// or bench/storecompare.sh. CATCHMAP_BENCH_STORES=clickhouse (or sqlite)
// runs one store only.
func BenchmarkStoreCompare(b *testing.B) {
	batch := benchEnv(b, "CATCHMAP_BENCH_BATCH", 100_000, 1000, 1_000_000)
	n := benchEnv(b, "CATCHMAP_BENCH_N", 1_000_000, batch, benchMaxN) / batch * batch
	writers := benchEnv(b, "CATCHMAP_BENCH_WRITERS", 4, 1, 64)
	stores := cmp.Or(os.Getenv("CATCHMAP_BENCH_STORES"), "sqlite,clickhouse")
	from, to := benchStart, benchStart.Add(time.Duration(n)*5*time.Millisecond)
	type line struct {
		store, ingest, perCPU, compact, catchment, diff string
		results                                         int
	}
	var lines []line
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.0f results/s (%.1f s)", float64(n)/d.Seconds(), d.Seconds())
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
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
		var docs [][]byte
		if strings.Contains(stores, "sqlite") {
			sq, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			wall, cpu := ingest(b, sq, n, batch, writers, none)
			t0 := time.Now()
			if err := sq.Compact(context.Background(), time.Now()); err != nil {
				b.Fatal(err)
			}
			comp := time.Since(t0)
			c, d, res, doc := mapTimes(b, sq, from, to)
			sq.Close()
			lines = append(lines, line{"SQLite", rate(wall), perCPU(cpu, true), ms(comp), ms(c), ms(d), res})
			docs = append(docs, doc)
		}
		if strings.Contains(stores, "clickhouse") {
			ch := openStore(b, freshDSN(b))
			wall, cpu := ingest(b, ch, n, batch, writers, server)
			comp := compactBench(b, ch)
			c, d, res, doc := mapTimes(b, ch, from, to)
			ch.Close()
			lines = append(lines, line{"ClickHouse", rate(wall), perCPU(cpu, known), ms(comp), ms(c), ms(d), res})
			docs = append(docs, doc)
		}
		if len(docs) == 2 && !bytes.Equal(docs[0], docs[1]) {
			b.Fatalf("the stores' catchment maps differ:\n SQLite     %.300s\n ClickHouse %.300s", docs[0], docs[1])
		}
	}
	var out strings.Builder
	load, _ := os.ReadFile("/proc/loadavg") // the machine may be shared: say how busy it was
	fmt.Fprintf(&out, "\nload average at the end: %s", load)
	fmt.Fprintf(&out, "%d results, %d probes x %d targets; ingest: batches of %d through store.Append from %d goroutines at once "+
		"(the aggregator appends each upload as it comes); maps: best of 3, summaries (ScanSummaries) into maps.Builder, "+
		"catchment of all %d results (every target), diff of the two halves; compaction: Compact after ingest, "+
		"as the aggregator runs it every minute (ClickHouse: calls until one makes nothing, after waiting out the "+
		"rollup's clock-skew margin, since the whole data set arrives late)\n\n",
		n, benchProbes, benchTargets, batch, writers, n)
	fmt.Fprintln(&out, "| store | ingest (wall) | ingest per CPU-second, catchmap + server | compaction | catchment map | diff | results in map |")
	fmt.Fprintln(&out, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, l := range lines {
		fmt.Fprintf(&out, "| %s | %s | %s | %s | %s | %s | %d |\n", l.store, l.ingest, l.perCPU, l.compact, l.catchment, l.diff, l.results)
	}
	fmt.Print(out.String())
}
