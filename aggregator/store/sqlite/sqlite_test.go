package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/storetest"
	"github.com/catchmap/catchmap/probe/result"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, discard(), opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	})
}

func TestConformanceSynchronousFull(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "catchmap.db"), WithSynchronousFull(), WithReadConns(1))
	})
}

// batch makes n records one millisecond apart, ids prefixed.
func batch(prefix string, n int) []result.Record {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]result.Record, n)
	for i := range rs {
		rs[i] = result.Record{ID: fmt.Sprintf("%s-%07d", prefix, i), Time: base.Add(time.Duration(i) * time.Millisecond),
			Probe: fmt.Sprintf("p%d", i%50), Target: fmt.Sprintf("t%d.example", i%5), Method: result.MethodDNS, AF: 4,
			Addr: "192.0.2.53", Identity: "s1.ams.example", Site: "ams", RTTMs: 12.5,
			DNS: &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT"}}
	}
	return rs
}

func count(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Scan(context.Background(), store.Query{}, func(*result.Record) error { n++; return nil }); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return n
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catchmap.db")
	s := open(t, path)
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	if n, err := s.Append(context.Background(), batch("a", 100)); err != nil || n != 100 {
		t.Fatalf("append: %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	if n := count(t, s); n != 100 {
		t.Fatalf("after reopen: %d records, want 100", n)
	}
	var v int
	if err := s.r.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Errorf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	var mode string
	if err := s.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
	if _, err := s.r.Exec(`DELETE FROM results`); err == nil {
		t.Errorf("a read pool connection could write")
	}
	st, err := s.Stats(context.Background())
	if err != nil || st.Bytes <= 0 {
		t.Errorf("stats: %+v, %v", st, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catchmap.db")
	s := open(t, path)
	if _, err := s.w.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), path, discard())
	if err == nil || !strings.Contains(err.Error(), "run a newer catchmap") {
		t.Fatalf("open of a newer schema: %v, want a refusal naming the fix", err)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "x.db"), discard())
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("open in a missing directory: %v", err)
	}
	if _, err := Open(context.Background(), "", discard()); err == nil {
		t.Errorf("open of an empty path succeeded")
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), junk, discard())
	if err == nil || !strings.Contains(err.Error(), junk) || !strings.Contains(err.Error(), "not a database") {
		t.Errorf("open of a file that is not a database: %v; want an error naming it", err)
	}
}

// SQLite reads ?, # and % in a file: URI; a path holding them must still
// name the file itself.
func TestPathWithURISyntax(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd?name#x%20.db")
	s := open(t, path)
	defer s.Close()
	if _, err := s.Append(context.Background(), batch("a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

// The scans ask SQLite for time order; it must come from an index, not a
// sort of the window in memory or a temp file.
func TestScanUsesIndexOrder(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	for _, where := range []string{"time >= 0 AND time < 1", "time >= 0 AND time < 1 AND target = 'x'",
		"time >= 0 AND time < 1 AND probe = 'p'", "time >= 0 AND time < 1 AND target = 'x' AND probe = 'p'"} {
		rows, err := s.r.Query(`EXPLAIN QUERY PLAN SELECT ` + resultColumns + ` FROM results WHERE ` + where + ` ORDER BY time, seq LIMIT -1`)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "USING INDEX") {
			t.Errorf("WHERE %s: plan %q sorts or scans the table", where, p)
		}
	}
}

// killEnv makes the test binary a child that appends batches and reports
// each commit, so that the parent can kill it mid-flight.
const killEnv = "CATCHMAP_SQLITE_KILL_CHILD"

const (
	killBatch   = 5000
	killBatches = 200 // bounds the child if the parent never kills it
)

func TestMain(m *testing.M) {
	if path := os.Getenv(killEnv); path != "" {
		os.Exit(killChild(path))
	}
	os.Exit(m.Run())
}

func killChild(path string) int {
	s, err := Open(context.Background(), path, discard())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	total := 0
	for i := range killBatches {
		n, err := s.Append(context.Background(), batch(fmt.Sprintf("kill%03d", i), killBatch))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		total += n
		fmt.Printf("committed %d\n", total)
	}
	// Keep the store open, connections and WAL and all, until the parent
	// kills us: no Close, no checkpoint, no clean exit.
	time.Sleep(time.Minute)
	return 1
}

// Batches Append reported as committed survive kill -9 of the process,
// and the batch being written when it died is all there or not at all.
func TestSurvivesKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catchmap.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // in case a check below fails first
	lines := bufio.NewReader(out)
	committed := 0
	// Kill right after the third commit, while the fourth batch is in flight.
	for range 3 {
		line, err := readLine(lines, 30*time.Second)
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		if committed, err = strconv.Atoi(strings.TrimPrefix(line, "committed ")); err != nil {
			t.Fatalf("child said %q, want committed N", line)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no WAL left behind (%v): the kill did not catch the store open", err)
	}
	s := open(t, path)
	defer s.Close()
	n := count(t, s)
	if n < committed {
		t.Fatalf("after kill -9: %d records, want at least the %d committed", n, committed)
	}
	if n%killBatch != 0 {
		t.Fatalf("after kill -9: %d records, not a whole number of %d-record batches: a batch was torn", n, killBatch)
	}
	t.Logf("child reported %d committed; %d present after kill -9", committed, n)
}

// readLine reads one line from r, giving up after d.
func readLine(r *bufio.Reader, d time.Duration) (string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := r.ReadString('\n')
		ch <- res{strings.TrimSpace(line), err}
	}()
	select {
	case x := <-ch:
		return x.line, x.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %v", d)
	}
}

// A full disk fails Append with store.ErrUnavailable saying so, and leaves
// the database readable.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tiny tmpfs to fill needs root; CI runs this as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): %v: %s", err, out)
	}
	path := filepath.Join(dir, "catchmap.db")
	s := open(t, path)
	// Registered after the mount's cleanup would run, so the store closes first.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	stored := 0
	var err error
	for i := range 1000 {
		var n int
		n, err = s.Append(context.Background(), batch(fmt.Sprintf("full%04d", i), 200))
		if err != nil {
			break
		}
		stored += n
	}
	if err == nil {
		t.Fatalf("appended %d records to a 512k tmpfs without an error", stored)
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("append on a full disk: %v; want store.ErrUnavailable saying the disk is full", err)
	}
	t.Logf("full after %d records: %v", stored, err)
	if n := count(t, s); n != stored {
		t.Errorf("full database has %d readable records, want the %d stored", n, stored)
	}
	closed = true
	s.Close()
	s = open(t, path)
	defer s.Close()
	if n := count(t, s); n != stored {
		t.Errorf("after reopening a full database: %d records, want %d", n, stored)
	}
}

// A write lock held by another process makes Append fail with
// store.ErrUnavailable once the busy timeout runs out.
func TestLockedIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catchmap.db")
	s := open(t, path, WithBusyTimeout(50*time.Millisecond))
	defer s.Close()
	// A second pool stands in for another process (the sqlite3 shell, a backup).
	other, err := sql.Open("sqlite3", dsn(path, "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	defer tx.Rollback()
	_, err = s.Append(context.Background(), batch("locked", 10))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("append while another process writes: %v; want store.ErrUnavailable saying it is locked", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(context.Background(), batch("locked", 10)); err != nil || n != 10 {
		t.Fatalf("append after the lock is gone: %d, %v", n, err)
	}
}

// TestFilesOwnerOnly: a new database, its WAL and its shared memory are
// created 0600 whatever the umask, since they hold the token hashes.
func TestFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "catchmap.db")
	s := open(t, path)
	defer s.Close()
	if _, err := s.Append(context.Background(), batch("perm", 3)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(f), m)
		}
	}
}

// TestDetailsMigrated: a database whose results keep their method details
// as JSON (schema 3) reads back the same records after Open moves them
// into columns, and takes new ones beside them.
func TestDetailsMigrated(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lat, lon := 52.37, 4.9
	old := []result.Record{
		{ID: "dns", Time: base, Probe: "p", Target: "t", Method: result.MethodDNS, AF: 4, Site: "ams", RTTMs: 3, Lat: &lat, Lon: &lon,
			DNS: &result.DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", NSID: "n1", TCP: true, Size: 93}},
		{ID: "dns-bare", Time: base.Add(time.Second), Probe: "p", Target: "t", Method: result.MethodDNS,
			DNS: &result.DNS{QName: ".", QClass: "IN", QType: "SOA"}},
		{ID: "http", Time: base.Add(2 * time.Second), Probe: "p", Target: "t", Method: result.MethodHTTP, ErrorKind: result.KindHTTPStatus, Error: "503",
			HTTP: &result.HTTP{Status: 503, DNSMs: 1.5, ConnectMs: 2, TLSMs: 3, FirstByteMs: 4, TotalMs: 5.25, Proto: "HTTP/2.0"}},
		{ID: "ping", Time: base.Add(3 * time.Second), Probe: "p", Target: "t", Method: result.MethodICMP,
			Ping: &result.Ping{Sent: 3, Received: 2, Loss: 1.0 / 3, MinMs: 1, AvgMs: 2, MaxMs: 3, StddevMs: 0.5}},
		{ID: "none", Time: base.Add(4 * time.Second), Probe: "p", Target: "t", Method: result.MethodTCP, RTTMs: 7},
	}
	s := open(t, oldDatabase(t, 3, old, nil))
	defer s.Close()
	fresh := old[0]
	fresh.ID, fresh.Time = "new", base.Add(5*time.Second)
	if _, err := s.Append(context.Background(), []result.Record{fresh}); err != nil {
		t.Fatal(err)
	}
	var got []result.Record
	if err := s.Scan(context.Background(), store.Query{}, func(r *result.Record) error {
		got = append(got, clone(*r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := append(old, fresh)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the migration:\n got %s\nwant %s", recordsJSON(got), recordsJSON(want))
	}
}

// clone copies r and the details it points at.
func clone(r result.Record) result.Record {
	if r.Lat != nil {
		lat, lon := *r.Lat, *r.Lon
		r.Lat, r.Lon = &lat, &lon
	}
	if r.DNS != nil {
		d := *r.DNS
		r.DNS = &d
	}
	if r.HTTP != nil {
		h := *r.HTTP
		r.HTTP = &h
	}
	if r.Ping != nil {
		p := *r.Ping
		r.Ping = &p
	}
	return r
}

func recordsJSON(rs []result.Record) string {
	b, _ := json.Marshal(rs)
	return string(b)
}

// TestMissingColumnsAdded: a column the record has and the table lacks (as
// for a field or a details group added to the record) is added at Open,
// NULL in the rows the table holds, and stored from then on.
func TestMissingColumnsAdded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catchmap.db")
	s := open(t, path)
	rs := batch("before", 2)
	rs[0].Source, rs[1].Ping = result.SourceSweep, &result.Ping{Sent: 3, Received: 3}
	if _, err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"source", "ping"} {
		if _, err := s.w.Exec(`ALTER TABLE results DROP COLUMN ` + c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	after := batch("after", 1)
	after[0].Source, after[0].Ping = result.SourceGlobalping, &result.Ping{Sent: 3, Received: 2, Loss: 1.0 / 3}
	if _, err := s.Append(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	got := map[string]result.Record{}
	if err := s.Scan(context.Background(), store.Query{}, func(r *result.Record) error {
		got[r.ID] = clone(*r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := got[rs[0].ID]; r.Source != "" || got[rs[1].ID].Ping != nil {
		t.Errorf("rows from before the columns: source %q, ping %+v: want both lost with their columns", r.Source, got[rs[1].ID].Ping)
	}
	if r := got[after[0].ID]; r.Source != result.SourceGlobalping || r.Ping == nil || r.Ping.Received != 2 {
		t.Errorf("row stored with the columns back: %+v", r)
	}
}
