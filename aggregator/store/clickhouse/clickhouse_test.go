package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/aggregator/store/clickhouse/chtest"
	"github.com/catchmap/catchmap/aggregator/store/storetest"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// freshDSN returns a DSN to a new database, dropped when the test ends.
func freshDSN(tb testing.TB) string {
	tb.Helper()
	return chtest.FreshDSN(tb, "catchmap_test")
}

func openStore(tb testing.TB, dsn string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dsn, nil)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	chtest.ServerDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openStore(t, freshDSN(t)) })
}

// TestSchemaMatchesColumns checks the column table that drives inserts and
// scans against the table the migrations create.
func TestSchemaMatchesColumns(t *testing.T) {
	s := openStore(t, freshDSN(t))
	defer s.Close()
	rows, err := s.conn.Query(context.Background(),
		`SELECT name, type FROM system.columns WHERE database = ? AND table = 'results'`, s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got, want []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		got = append(got, name+" "+typ)
	}
	for _, c := range resultColumns {
		want = append(want, c.name+" "+c.typ)
	}
	if !slices.Equal(got, want) {
		t.Errorf("results table columns:\n got  %q\n want %q", got, want)
	}
}

// TestTwoInstances: two stores on one database, as two `catchmap serve`
// processes would have, share probes and results, and a batch appended
// through both is counted once.
func TestTwoInstances(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()

	hash := []byte{1, 2, 3, 0}
	if err := a.CreateProbe(ctx, api.Probe{ID: "p1", Name: "ams", Created: time.Now()}, hash); err != nil {
		t.Fatal(err)
	}
	if p, err := b.ProbeByToken(ctx, hash); err != nil || p.ID != "p1" {
		t.Fatalf("instance b finds a's token: %+v, %v; want p1", p, err)
	}
	if err := b.CreateProbe(ctx, api.Probe{ID: "p2", Created: time.Now()}, hash); err == nil {
		t.Errorf("instance b registered a second probe with a's token")
	}
	if err := b.RevokeProbe(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	// A touch after the revocation, from the other instance, must not
	// bring the token back.
	if err := a.TouchProbes(ctx, []store.Touch{{ID: "p1", Seen: time.Now(), Addr: "198.51.100.1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ProbeByToken(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("instance a after b revoked: err %v, want ErrNotFound", err)
	}

	base := time.Date(2026, 3, 14, 23, 50, 0, 0, time.UTC) // the batch spans midnight: two partitions
	batch := make([]result.Record, 1000)
	for i := range batch {
		batch[i] = result.Record{ID: result.NewID(), Time: base.Add(time.Duration(i) * time.Second),
			Probe: fmt.Sprintf("p%d", i%7), Target: fmt.Sprintf("t%d", i%3), Method: result.MethodDNS, Site: "ams"}
	}
	var wg sync.WaitGroup
	var stored [2]int
	var errs [2]error
	for i, s := range []*Store{a, b} {
		wg.Go(func() { stored[i], errs[i] = s.Append(ctx, batch) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent appends: %v, %v", errs[0], errs[1])
	}
	// Both may report the batch stored (see the package comment), never
	// less than once in total.
	if stored[0]+stored[1] < len(batch) {
		t.Errorf("concurrent appends stored %d + %d, want at least %d", stored[0], stored[1], len(batch))
	}
	if n, err := b.Append(ctx, batch); err != nil || n != 0 {
		t.Errorf("re-send to b after both: stored %d, %v; want 0", n, err)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		n := 0
		if err := s.Scan(ctx, store.Query{}, func(*result.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != len(batch) {
			t.Errorf("instance %s scans %d records, want %d", name, n, len(batch))
		}
		n = 0
		if err := s.Scan(ctx, store.Query{Target: "t1"}, func(*result.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != len(batch)/3 {
			t.Errorf("instance %s scans %d records of t1, want %d", name, n, len(batch)/3)
		}
		targets, err := s.Targets(ctx, time.Time{}, time.Time{})
		if err != nil || !slices.Equal(targets, []string{"t0", "t1", "t2"}) {
			t.Errorf("instance %s targets: %q, %v", name, targets, err)
		}
	}
	if n, err := a.DeleteBefore(ctx, base.Add(time.Hour)); err != nil || n != int64(len(batch)) {
		t.Errorf("delete all: %d, %v; want %d (duplicates counted once)", n, err, len(batch))
	}
}

// TestDeleteBeforeAcrossDays: whole days go by partition, the rest of the
// cut-off day by a mutation; both exact.
func TestDeleteBeforeAcrossDays(t *testing.T) {
	s := openStore(t, freshDSN(t))
	defer s.Close()
	ctx := context.Background()
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	var rs []result.Record
	for h := range 72 { // three days, one record an hour
		rs = append(rs, result.Record{ID: fmt.Sprintf("r%02d", h), Time: day.Add(time.Duration(h) * time.Hour), Target: "t"})
	}
	if _, err := s.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	cut := day.Add(36*time.Hour + time.Microsecond) // day two, 12:00:00.000001
	n, err := s.DeleteBefore(ctx, cut)
	if err != nil || n != 37 {
		t.Fatalf("delete before %v: %d, %v; want 37", cut, n, err)
	}
	var left []string
	if err := s.Scan(ctx, store.Query{}, func(r *result.Record) error { left = append(left, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 35 || left[0] != "r37" {
		t.Errorf("after delete: %d records from %v, want 35 from r37", len(left), left[:min(len(left), 1)])
	}
	if n, err := s.DeleteBefore(ctx, day.Add(48*time.Hour)); err != nil || n != 11 {
		t.Errorf("delete at midnight: %d, %v; want 11", n, err)
	}
}

func TestReopenKeepsSchema(t *testing.T) {
	dsn := freshDSN(t)
	s := openStore(t, dsn)
	if _, err := s.Append(context.Background(), []result.Record{{ID: "x", Time: time.Now(), Target: "t"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dsn)
	defer s.Close()
	var v uint32
	if err := s.conn.QueryRow(context.Background(), `SELECT max(version) FROM schema_version`).Scan(&v); err != nil || int(v) != len(migrations) {
		t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
	}
	if ts, err := s.Targets(context.Background(), time.Time{}, time.Time{}); err != nil || len(ts) != 1 {
		t.Errorf("after reopen: targets %q, %v", ts, err)
	}
	if err := s.insertRows(context.Background(), "test", `INSERT INTO schema_version (version, applied)`, []any{uint32(99), uint64(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dsn, nil); err == nil || !strings.Contains(err.Error(), "run a newer catchmap") {
		t.Errorf("open of a newer schema: %v, want a refusal", err)
	}
}

// TestUnavailable: a ClickHouse that does not answer is store.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	_, err = Open(context.Background(), "clickhouse://default@"+addr+"/x", nil, WithDialTimeout(2*time.Second))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("open on a closed port: %v, want ErrUnavailable", err)
	}
}

func TestParseDSN(t *testing.T) {
	for _, c := range []struct{ dsn, db, err string }{
		{"clickhouse://u:secret@127.0.0.1:9000/metrics", "metrics", ""},
		{"clickhouse://127.0.0.1:9000", DefaultDatabase, ""},
		{"clickhouse://a:9000,b:9000/db?dial_timeout=1s", "db", ""},
		{"http://u:secret@127.0.0.1:8123/db", "", "HTTP interface is not supported"},
		{"https://127.0.0.1:8443/db", "", "HTTP interface is not supported"},
		{"clickhouse://u:secret@127.0.0.1:8123/db", "", "port 8123 is ClickHouse's HTTP interface"},
		{"clickhouse://127.0.0.1/db", "", "has no port"},
		{"clickhouse:///db", "", "no host"},
		{"sqlite:///tmp/x.db", "", "not clickhouse"},
		{"clickhouse://127.0.0.1:9000/bad-name", "", "database name"},
		{"clickhouse://127.0.0.1:9000/x;DROP", "", "database name"},
		{"clickhouse://u:secret@127.0.0.1:9000/db?dial_timeout=soon", "", "dial timeout"},
		{"clickhouse://u:secret@[::1:9000/db", "", "bad DSN"},
	} {
		opt, err := parseDSN(c.dsn)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.dsn, err)
		case c.err == "" && opt.Auth.Database != c.db:
			t.Errorf("%s: database %q, want %q", c.dsn, opt.Auth.Database, c.db)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.dsn, err, c.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the password: %v", c.dsn, err)
		}
	}
}

// TestDefaultCompression: LZ4 unless every server is on this host; a DSN
// that names a method keeps it.
func TestDefaultCompression(t *testing.T) {
	for _, c := range []struct {
		addrs []string
		want  clickhouse.CompressionMethod
	}{
		{[]string{"127.0.0.1:9000"}, clickhouse.CompressionNone},
		{[]string{"localhost:9000", "[::1]:9000", "127.0.0.2"}, clickhouse.CompressionNone},
		{[]string{"ch1.example:9000"}, clickhouse.CompressionLZ4},
		{[]string{"127.0.0.1:9000", "192.0.2.7:9000"}, clickhouse.CompressionLZ4},
	} {
		if got := defaultCompression(c.addrs); got != c.want {
			t.Errorf("%v: compression %v, want %v", c.addrs, got, c.want)
		}
	}
	opt, err := parseDSN("clickhouse://127.0.0.1:9000/db?compress=lz4")
	if err != nil {
		t.Fatal(err)
	}
	if opt.Compression == nil || opt.Compression.Method != clickhouse.CompressionLZ4 {
		t.Errorf("compress=lz4 on loopback gave %+v, want LZ4 kept", opt.Compression)
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"clickhouse://u:p@127.0.0.1:9000/db", "http://h:8123/", "clickhouse://h:1,h2:2/x?compress=lz4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		opt, err := parseDSN(dsn)
		if err != nil {
			if u, perr := url.Parse(dsn); perr == nil {
				if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Errorf("error shows the password %q: %v", pw, err)
				}
			}
			return
		}
		if !identifier.MatchString(opt.Auth.Database) {
			t.Errorf("accepted database name %q", opt.Auth.Database)
		}
		if len(opt.Addr) == 0 {
			t.Errorf("accepted %q without an address", dsn)
		}
	})
}

// TestLargeAppend: an Append of several blocks' worth of records stores
// each record once and whole, and as one part, as one block would: the
// server squashes an INSERT's blocks (insertChunk), so that chunking costs
// no extra parts or merges. A part made of one INSERT has level 0; one
// made by merging several has a higher level.
func TestLargeAppend(t *testing.T) {
	s := openStore(t, freshDSN(t))
	defer s.Close()
	ctx := context.Background()
	start := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	rs := make([]result.Record, 3*insertChunk+5)
	for i := range rs {
		rs[i] = result.Record{ID: fmt.Sprintf("r%06d", i), Time: start.Add(time.Duration(i) * time.Millisecond),
			Probe: fmt.Sprintf("p%d", i%97), Target: "t", Site: fmt.Sprintf("s%d", i%13), RTTMs: float64(i)}
		switch i % 3 {
		case 0:
			rs[i].Method, rs[i].DNS = result.MethodDNS, &result.DNS{QName: "id.server.", NSID: fmt.Sprintf("n%d", i), Size: i}
		case 1:
			rs[i].Method, rs[i].Ping = result.MethodICMP, &result.Ping{Sent: 3, Received: i % 4, MinMs: float64(i)}
		}
	}
	if n, err := s.Append(ctx, rs); err != nil || n != len(rs) {
		t.Fatalf("append %d records: %d, %v", len(rs), n, err)
	}
	i := 0
	err := s.Scan(ctx, store.Query{}, func(r *result.Record) error {
		if i >= len(rs) || !reflect.DeepEqual(*r, rs[i]) {
			return fmt.Errorf("record %d: got %+v", i, *r)
		}
		i++
		return nil
	})
	if err != nil || i != len(rs) {
		t.Fatalf("scan: %d of %d records back, %v", i, len(rs), err)
	}
	var parts, rows, level uint64
	row := s.conn.QueryRow(ctx, `SELECT count(), sum(rows), toUInt64(max(level)) FROM system.parts
		WHERE database = ? AND table = 'results' AND active`, s.db)
	if err := row.Scan(&parts, &rows, &level); err != nil {
		t.Fatal(err)
	}
	if parts != 1 || rows != uint64(len(rs)) || level != 0 {
		t.Errorf("results table: %d parts, %d rows, level %d; want 1 part of %d rows, level 0", parts, rows, level, len(rs))
	}
}

// TestMissingColumnsAdded: a column the record has and the results table
// lacks (as for a field added to the record) is added at Open, with its
// type's default in the rows the table holds, and stored from then on.
func TestMissingColumnsAdded(t *testing.T) {
	dsn := freshDSN(t)
	s := openStore(t, dsn)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := result.Record{ID: "before", Time: t0, Target: "t", Method: result.MethodICMP, Ping: &result.Ping{Sent: 3, StddevMs: 0.25}}
	if _, err := s.Append(ctx, []result.Record{before}); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.Exec(ctx, `ALTER TABLE results DROP COLUMN ping_stddev_ms`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dsn)
	defer s.Close()
	after := before
	after.ID, after.Ping = "after", &result.Ping{Sent: 3, StddevMs: 0.5}
	if _, err := s.Append(ctx, []result.Record{after}); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	if err := s.Scan(ctx, store.Query{}, func(r *result.Record) error {
		got[r.ID] = r.Ping.StddevMs
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got["before"] != 0 || got["after"] != 0.5 {
		t.Errorf("stddev read back %v, want before 0 (lost with the column) and after 0.5", got)
	}
}
