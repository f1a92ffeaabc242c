// Command ingestbench times the aggregator's ingest path beside the raw
// insert rate of the same SQLite driver, settings, schema and indexes, in
// one run, so that their ratio means something on a shared machine:
//
//   - raw: database/sql, one prepared INSERT, -raw-tx rows per transaction,
//     values already converted (the floor any ingest is measured against);
//   - http: a real aggregator on 127.0.0.1:0, -senders concurrent probes
//     uploading gzip NDJSON batches of -batch records through the API;
//   - with -clickhouse, the same uploads into an aggregator on ClickHouse
//     (CPU per second then counts this process only, not the server).
//
// Both store the same -records records, each into a new database. It
// prints a Markdown table with results/s (wall clock) and results per CPU
// second of the whole process (steadier when other work shares the CPUs).
// Every loop is bounded by -timeout; traffic stays on loopback.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/clickhouse"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/result"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingestbench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	records, batch, senders, rawTx int
	dir, profile, clickhouse       string
	timeout                        time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("ingestbench", flag.ContinueOnError)
	fs.IntVar(&o.records, "records", 500000, "records each way stores")
	fs.IntVar(&o.batch, "batch", 1000, "records per HTTP upload")
	fs.IntVar(&o.senders, "senders", 4, "concurrent uploaders (one probe each)")
	fs.IntVar(&o.rawTx, "raw-tx", 10000, "rows per transaction of the raw insert")
	fs.StringVar(&o.dir, "dir", "", "directory for the databases (default: a new temporary one, removed after)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the HTTP phase to this file")
	fs.StringVar(&o.clickhouse, "clickhouse", "", "also ingest through the API into ClickHouse at this DSN (a new database: the bench fills it)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.records < o.batch || o.batch < 1 || o.senders < 1 || o.rawTx < 1 {
		return errors.New("need -records >= -batch >= 1, -senders >= 1 and -raw-tx >= 1")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "ingestbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	rs := makeRecords(o.records)
	raw, err := rawInsert(ctx, filepath.Join(o.dir, "raw.db"), rs, o.rawTx)
	if err != nil {
		return fmt.Errorf("raw insert: %w", err)
	}
	// Fresh ids: the API must store every record, not find them stored.
	for i := range rs {
		rs[i].ID = result.NewID()
	}
	sq, err := sqlite.Open(ctx, filepath.Join(o.dir, "http.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	web, err := httpIngest(ctx, sq, rs, o)
	sq.Close()
	if err != nil {
		return fmt.Errorf("HTTP ingest: %w", err)
	}
	var onCH timing
	if o.clickhouse != "" {
		ch, err := clickhouse.Open(ctx, o.clickhouse, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		for i := range rs {
			rs[i].ID = result.NewID()
		}
		o.profile = "" // the SQLite phase's
		onCH, err = httpIngest(ctx, ch, rs, o)
		ch.Close()
		if err != nil {
			return fmt.Errorf("HTTP ingest into ClickHouse: %w", err)
		}
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(out, "### Ingest into SQLite: %d records, %d CPUs, GOMAXPROCS %d, load %s\n\n",
		o.records, runtime.NumCPU(), runtime.GOMAXPROCS(0), bytes.Fields(load)[0])
	fmt.Fprintln(out, "| path | results/s | results/CPU-s | seconds |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	fmt.Fprintf(out, "| raw insert (database/sql prepared, %d-row tx) | %.0f | %.0f | %.2f |\n",
		o.rawTx, raw.rate(), raw.cpuRate(), raw.wall.Seconds())
	fmt.Fprintf(out, "| HTTP API (gzip NDJSON, %d-record batches, %d senders) | %.0f | %.0f | %.2f |\n",
		o.batch, o.senders, web.rate(), web.cpuRate(), web.wall.Seconds())
	if o.clickhouse != "" {
		fmt.Fprintf(out, "| HTTP API into ClickHouse (same uploads; CPU of catchmap only) | %.0f | %.0f | %.2f |\n",
			onCH.rate(), onCH.cpuRate(), onCH.wall.Seconds())
	}
	fmt.Fprintf(out, "\nHTTP / raw = **%.2fx** wall, **%.2fx** per CPU-second (target: >= 150000 results/s through the API)\n",
		web.rate()/raw.rate(), web.cpuRate()/raw.cpuRate())
	return nil
}

// timing is one phase: rows stored, wall time and CPU time of the process.
type timing struct {
	rows      int
	wall, cpu time.Duration
}

func (t timing) rate() float64    { return float64(t.rows) / t.wall.Seconds() }
func (t timing) cpuRate() float64 { return float64(t.rows) / t.cpu.Seconds() }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(rows int, fn func() error) (timing, error) {
	runtime.GC() // the garbage of the previous phase is not this one's
	t0, c0 := time.Now(), cpuTime()
	err := fn()
	return timing{rows: rows, wall: time.Since(t0), cpu: cpuTime() - c0}, err
}

// makeRecords is DNS results of 5 targets answered by 80 servers, as the
// store's own benchmarks use.
func makeRecords(n int) []result.Record {
	start := time.Now().Add(-time.Hour)
	rs := make([]result.Record, n)
	for i := range rs {
		rs[i] = result.Record{ID: result.NewID(), Time: start.Add(time.Duration(i) * time.Millisecond).UTC(),
			Target: fmt.Sprintf("t%d.example", i%5), Method: result.MethodDNS, AF: 4, Addr: "192.0.2.53",
			Identity: fmt.Sprintf("s%d.site%d.example", i%4, i%20), Site: fmt.Sprintf("site%d", i%20),
			RTTMs: 5 + float64(i%400)/10,
			DNS:   &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", NSID: fmt.Sprintf("s%d.site%d", i%4, i%20), Size: 80 + i%7}}
	}
	return rs
}

// rawInsert creates the store's schema with sqlite.Open, then inserts with
// nothing of catchmap in the loop.
func rawInsert(ctx context.Context, path string, rs []result.Record, txRows int) (timing, error) {
	st, err := sqlite.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		return timing{}, err
	}
	if err := st.Close(); err != nil {
		return timing{}, err
	}
	// The parameters sqlite.Open uses for its writer.
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate")
	if err != nil {
		return timing{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	type row struct {
		t   int64
		dns string
	}
	conv := make([]row, len(rs))
	for i := range rs {
		j, _ := json.Marshal(rs[i].DNS)
		conv[i] = row{rs[i].Time.UnixMicro(), string(j)}
	}
	const insert = `INSERT OR IGNORE INTO results (id, time, probe, target, method, af, addr, identity, site, rtt_ms, error, error_kind,
		lat, lon, country, asn, suspect, dns, http, ping) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	lat, lon := 52.37, 4.9
	return measure(len(rs), func() error {
		for lo := 0; lo < len(rs); lo += txRows {
			if err := ctx.Err(); err != nil {
				return err
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			stmt, err := tx.Prepare(insert)
			if err != nil {
				tx.Rollback()
				return err
			}
			for i := lo; i < min(lo+txRows, len(rs)); i++ {
				r := &rs[i]
				if _, err := stmt.Exec(r.ID, conv[i].t, "0196f0c2-7a51-7c1e-9a0b-5f1e2d3c4b5a", r.Target, r.Method, r.AF, r.Addr, r.Identity,
					r.Site, r.RTTMs, r.Error, string(r.ErrorKind), lat, lon, "", 0, false, conv[i].dns, nil, nil); err != nil {
					tx.Rollback()
					return err
				}
			}
			stmt.Close()
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		return nil
	})
}

// httpIngest serves a real aggregator on loopback and uploads rs through
// its API, each sender with its own probe token.
func httpIngest(ctx context.Context, st store.Store, rs []result.Record, o options) (timing, error) {
	log := slog.New(slog.DiscardHandler)
	admin, err := token.New()
	if err != nil {
		return timing{}, err
	}
	cfg := config.Default()
	cfg.AdminToken = admin
	srv, err := server.New(log, prometheus.NewRegistry(), st, server.WithConfig(cfg))
	if err != nil {
		return timing{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return timing{}, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()
	base := "http://" + ln.Addr().String()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.senders}, Timeout: time.Minute}
	if err := waitReady(ctx, c, base+"/healthz"); err != nil {
		return timing{}, err
	}
	ac, err := api.NewClient(base, admin, c)
	if err != nil {
		return timing{}, err
	}
	senders := make([]*api.Client, o.senders)
	for i := range senders {
		lat, lon := 52.37, 4.9
		created, err := ac.RegisterProbe(ctx, api.ProbeRegistration{Name: fmt.Sprintf("bench-%d", i), Lat: &lat, Lon: &lon})
		if err != nil {
			return timing{}, fmt.Errorf("registering a probe: %w", err)
		}
		if senders[i], err = api.NewClient(base, token.Parse(created.Token), c); err != nil {
			return timing{}, err
		}
	}
	// Bodies are made before the clock starts: the probes' encoding is not
	// the aggregator's cost.
	var bodies [][]byte
	for lo := 0; lo < len(rs); lo += o.batch {
		b, err := api.EncodeResults(rs[lo:min(lo+o.batch, len(rs))])
		if err != nil {
			return timing{}, err
		}
		bodies = append(bodies, b)
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return timing{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return timing{}, err
		}
		defer pprof.StopCPUProfile()
	}
	var next, stored atomic.Int64
	return measure(len(rs), func() error {
		errs := make(chan error, o.senders)
		var wg sync.WaitGroup
		for s := range o.senders {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(bodies) {
						return
					}
					got, err := senders[s].PostEncodedResults(ctx, bodies[i])
					if err != nil {
						errs <- fmt.Errorf("upload %d: %w", i, err)
						return
					}
					stored.Add(int64(got.Stored))
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		if n := stored.Load(); n != int64(len(rs)) {
			return fmt.Errorf("the API stored %d records, want %d", n, len(rs))
		}
		return nil
	})
}

// waitReady polls the health check until it answers, for at most 10s.
func waitReady(ctx context.Context, c *http.Client, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the aggregator did not answer %s within 10s: %v", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
