package mapsapi

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// The benchmark's data: a quarter hour of one target as a busy deployment
// would send it.
const (
	benchResults = 1_000_000
	benchProbes  = 5_000
	benchWindow  = 15 * time.Minute
	benchBatch   = 10_000
	benchTarget  = "k-root"
)

var (
	benchT0    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	benchSites = []string{"ams", "fra", "lhr", "iad", "sin", "syd", "nrt", "gru"}

	// The store is built once per test binary run: it takes far longer than
	// any iteration, and both benchmarks read the same file.
	benchOnce sync.Once
	benchDir  string
	benchPath string
	benchErr  error
)

// cpuPerOp reports the process's CPU time per iteration beside ns/op: on
// a shared machine wall time swings with the load, CPU time much less.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchStore returns the path of a SQLite store holding benchResults
// results of benchProbes located probes over benchWindow: each probe
// mostly reaches one of 8 sites, 5% of its results another, 2% fail, and
// every result carries DNS details as the probe writes them.
func benchStore(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "catchmap-mapsapi-bench-")
		if benchErr != nil {
			return
		}
		benchPath = filepath.Join(benchDir, "bench.db")
		benchErr = seedBench(benchPath)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

func seedBench(path string) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	type probe struct {
		lat, lon float64
		country  string
		asn      uint32
		site     string
	}
	probes := make([]probe, benchProbes)
	for i := range probes {
		probes[i] = probe{lat: rng.Float64()*140 - 60, lon: rng.Float64()*360 - 180,
			country: fmt.Sprintf("C%d", i%150), asn: uint32(64500 + i%2000), site: benchSites[rng.IntN(len(benchSites))]}
	}
	gap := benchWindow / time.Duration(benchResults)
	batch := make([]result.Record, 0, benchBatch)
	for n := range benchResults {
		p := &probes[n%benchProbes]
		r := result.Record{ID: fmt.Sprintf("r%08d", n), Time: benchT0.Add(time.Duration(n) * gap),
			Probe: fmt.Sprintf("probe-%04d", n%benchProbes), Target: benchTarget, Method: result.MethodDNS, AF: 4,
			Addr: "193.0.14.129", Lat: &p.lat, Lon: &p.lon, Country: p.country, ASN: p.asn,
			DNS: &result.DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Size: 90}}
		switch x := rng.IntN(100); {
		case x < 2:
			r.Error, r.ErrorKind = "i/o timeout", result.KindTimeout
		case x < 7:
			r.Site = benchSites[rng.IntN(len(benchSites))]
		default:
			r.Site = p.site
		}
		if r.Site != "" {
			r.Identity, r.RTTMs = r.Site+"1.k.ripe.net", 5+rng.Float64()*200
			r.DNS.NSID = r.Identity
		}
		batch = append(batch, r)
		if len(batch) == benchBatch || n == benchResults-1 {
			if _, err := st.Append(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	// As the aggregator does within a minute of the quarter hour's end.
	return st.Compact(ctx, benchT0.Add(benchWindow+2*time.Minute))
}

// scanOnly hides the store's summaries, so the handler takes the Scan path.
type scanOnly struct{ store.Results }

// BenchmarkCatchmentFromStore is GET /api/v1/catchment at res 4 over the
// whole quarter hour, as the aggregator serves it: from the store's
// summaries (the handler's path for SQLite), from the records of Scan
// (the path for stores without summaries), and from summaries over a
// window that cuts minutes at both ends, so its edges are read raw. All
// paths must answer the same bytes; that is checked before timing.
func BenchmarkCatchmentFromStore(b *testing.B) {
	st, err := sqlite.Open(context.Background(), benchStore(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	serve := func(sr store.Results, from, to time.Time) func() *httptest.ResponseRecorder {
		h := New(slog.New(slog.DiscardHandler), sr, Sites(sites.Default()))
		mux := http.NewServeMux()
		h.Register(mux)
		q := url.Values{"target": {benchTarget}, "res": {"4"},
			"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/catchment?"+q.Encode(), nil)
		return func() *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			return rec
		}
	}
	from, to := benchT0, benchT0.Add(benchWindow)
	// Off the minutes by 30.5 s at each end, with a µs the store keeps.
	uFrom, uTo := from.Add(30500*time.Millisecond+time.Microsecond), to.Add(-30500*time.Millisecond)
	paths := []struct {
		name string
		get  func() *httptest.ResponseRecorder
		same func() *httptest.ResponseRecorder // the path whose answer it must equal
	}{
		{"summaries", serve(st, from, to), serve(scanOnly{st}, from, to)},
		{"scan", serve(scanOnly{st}, from, to), nil},
		{"summaries-unaligned", serve(st, uFrom, uTo), serve(scanOnly{st}, uFrom, uTo)},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			if p.same != nil {
				if got, want := p.get().Body.String(), p.same().Body.String(); got != want {
					b.Fatalf("the catchment from summaries differs from the one from records:\n got %.2000s\nwant %.2000s", got, want)
				}
			}
			cpu0 := cpuTime()
			for b.Loop() {
				p.get()
			}
			cpuPerOp(b, cpu0)
		})
	}
}

// BenchmarkScanOnly is the store's share of the above: Scan alone, with a
// callback that does nothing.
func BenchmarkScanOnly(b *testing.B) {
	st, err := sqlite.Open(context.Background(), benchStore(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	q := store.Query{Target: benchTarget, From: benchT0, To: benchT0.Add(benchWindow)}
	cpu0 := cpuTime()
	for b.Loop() {
		n := 0
		if err := st.Scan(context.Background(), q, func(*result.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != benchResults {
			b.Fatalf("scanned %d results, want %d", n, benchResults)
		}
	}
	cpuPerOp(b, cpu0)
}

// BenchmarkScanSummariesOnly is the store's share of the summaries path:
// ScanSummaries alone over the quarter hour, with a callback that only
// counts the results the summaries hold.
func BenchmarkScanSummariesOnly(b *testing.B) {
	st, err := sqlite.Open(context.Background(), benchStore(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	q := store.Query{Target: benchTarget, From: benchT0, To: benchT0.Add(benchWindow)}
	cpu0 := cpuTime()
	for b.Loop() {
		n := 0
		if err := st.ScanSummaries(context.Background(), q, func(s *summary.Summary) error { n += s.Results; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != benchResults {
			b.Fatalf("summaries hold %d results, want %d", n, benchResults)
		}
	}
	cpuPerOp(b, cpu0)
}

// BenchmarkPlainSQLGroupBy is the floor a map could reach by pushing the
// counting into SQLite: one GROUP BY over the same rows.
func BenchmarkPlainSQLGroupBy(b *testing.B) {
	db, err := sql.Open("sqlite3", "file:"+benchStore(b)+"?mode=ro&_query_only=on")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	from, to := benchT0.UnixMicro(), benchT0.Add(benchWindow).UnixMicro()
	cpu0 := cpuTime()
	for b.Loop() {
		rows, err := db.Query(`SELECT probe, site, count(*) FROM results WHERE target=? AND time>=? AND time<? GROUP BY probe, site`,
			benchTarget, from, to)
		if err != nil {
			b.Fatal(err)
		}
		groups := 0
		for rows.Next() {
			var probe, site string
			var n int
			if err := rows.Scan(&probe, &site, &n); err != nil {
				b.Fatal(err)
			}
			groups++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		if groups < benchProbes {
			b.Fatalf("%d groups, want at least one per probe", groups)
		}
	}
	cpuPerOp(b, cpu0)
}

// BenchmarkLeanSQLToBuilder measures what a narrower Scan would give: the
// same rows streamed into the same Builder, but reading only the columns
// maps uses (no id, addr, identity or details JSON). It is the evidence for
// a store option to scan fewer columns, not a code path the handler takes.
func BenchmarkLeanSQLToBuilder(b *testing.B) {
	db, err := sql.Open("sqlite3", "file:"+benchStore(b)+"?mode=ro&_query_only=on")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	from, to := benchT0.UnixMicro(), benchT0.Add(benchWindow).UnixMicro()
	loc := Sites(sites.Default())
	cpu0 := cpuTime()
	for b.Loop() {
		bld, err := maps.NewBuilder(maps.Options{Target: benchTarget, From: benchT0, To: benchT0.Add(benchWindow), Res: 4}, loc)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := db.Query(`SELECT time, probe, site, rtt_ms, error, error_kind, lat, lon, country, asn, suspect
			FROM results WHERE target=? AND time>=? AND time<? ORDER BY time, seq`, benchTarget, from, to)
		if err != nil {
			b.Fatal(err)
		}
		var (
			rec      result.Record
			t, asn   int64
			kind     string
			lat, lon sql.NullFloat64
		)
		for rows.Next() {
			rec = result.Record{Target: benchTarget}
			if err := rows.Scan(&t, &rec.Probe, &rec.Site, &rec.RTTMs, &rec.Error, &kind, &lat, &lon, &rec.Country, &asn, &rec.Suspect); err != nil {
				b.Fatal(err)
			}
			rec.Time, rec.ASN, rec.ErrorKind = time.UnixMicro(t).UTC(), uint32(asn), result.ErrorKind(kind)
			if lat.Valid && lon.Valid {
				rec.Lat, rec.Lon = &lat.Float64, &lon.Float64
			}
			bld.Add(&rec)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		if c := bld.Build(); c.Results != benchResults {
			b.Fatalf("%d results, want %d", c.Results, benchResults)
		}
	}
	cpuPerOp(b, cpu0)
}
