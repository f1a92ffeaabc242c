// Package storetest is the conformance suite every store.Store backend
// passes, so that the aggregator behaves the same on SQLite and ClickHouse.
package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
	"golang.org/x/sync/errgroup"
)

// Run runs the suite. open must return a new, empty store for each call;
// Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Idempotent", testIdempotent},
		{"AppendCancelled", testAppendCancelled},
		{"AppendBatches", testAppendBatches},
		{"Window", testWindow},
		{"Filters", testFilters},
		{"Limit", testLimit},
		{"TimeOrder", testTimeOrder},
		{"Targets", testTargets},
		{"DeleteBefore", testDeleteBefore},
		{"ScanCancel", testScanCancel},
		{"ScanFnError", testScanFnError},
		{"Concurrent", testConcurrent},
		{"Probes", testProbes},
		{"Plan", testPlan},
		{"Annotations", testAnnotations},
		{"Events", testEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is a fixed moment with microsecond precision, the store's resolution.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }

func ptr[T any](v T) *T { return &v }

// rec is a small valid record.
func rec(id string, t time.Time, target, probe string) result.Record {
	return result.Record{ID: id, Time: t, Probe: probe, Target: target, Method: result.MethodDNS,
		AF: 4, Addr: "192.0.2.53", Identity: "s1.ams", Site: "ams", RTTMs: 12.5}
}

// series returns n records one minute apart from at(0), ids r000...
func series(n int, target, probe string) []result.Record {
	rs := make([]result.Record, n)
	for i := range rs {
		rs[i] = rec(fmt.Sprintf("%s-%s-r%03d", target, probe, i), at(i), target, probe)
	}
	return rs
}

func mustAppend(t *testing.T, s store.Store, rs []result.Record) int {
	t.Helper()
	n, err := s.Append(context.Background(), rs)
	if err != nil {
		t.Fatalf("append %d records: %v", len(rs), err)
	}
	return n
}

// clone deep-copies a record handed to a Scan callback, which is only valid
// during the call.
func clone(r *result.Record) result.Record {
	c := *r
	if r.Lat != nil {
		c.Lat = ptr(*r.Lat)
	}
	if r.Lon != nil {
		c.Lon = ptr(*r.Lon)
	}
	if r.DNS != nil {
		c.DNS = ptr(*r.DNS)
	}
	if r.HTTP != nil {
		c.HTTP = ptr(*r.HTTP)
	}
	if r.Ping != nil {
		c.Ping = ptr(*r.Ping)
	}
	return c
}

func scan(t *testing.T, s store.Store, q store.Query) []result.Record {
	t.Helper()
	var out []result.Record
	if err := s.Scan(context.Background(), q, func(r *result.Record) error {
		out = append(out, clone(r))
		return nil
	}); err != nil {
		t.Fatalf("scan %+v: %v", q, err)
	}
	return out
}

func ids(rs []result.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []result.Record, want ...string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) {
		t.Errorf("%s: got ids %q, want %q", what, g, want)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	cet := time.FixedZone("CET", 3600)
	full := result.Record{
		ID: "full", Time: base.In(cet), Probe: "probe-1", Target: "k.root-servers.net", Method: result.MethodDNS,
		AF: 6, Addr: "2001:db8::53", Identity: `ns1.ams "quoted" 'single' \back\slash ünïcødé 東京 🛰` + "\ttab\nnewline",
		Site: "ams", RTTMs: 12.345678, Error: `it said "no"`, ErrorKind: result.KindMismatch,
		Lat: ptr(52.3676), Lon: ptr(-4.9041), Country: "NL", ASN: 4294967295, Suspect: true,
		DNS: &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", NSID: "nsid é", TCP: true, Size: 512},
	}
	zero := result.Record{ID: "zero-place", Time: at(1), Probe: "probe-2", Target: "k.root-servers.net", Method: result.MethodHTTP,
		Lat: ptr(0.0), Lon: ptr(0.0),
		HTTP: &result.HTTP{Status: 200, DNSMs: 1.5, ConnectMs: 2.25, TLSMs: 3.125, FirstByteMs: 4, TotalMs: 10.0625, Proto: "HTTP/2.0"}}
	none := result.Record{ID: "no-place", Time: at(2), Probe: "probe-3", Target: "k.root-servers.net", Method: result.MethodICMP,
		ErrorKind: result.KindLoss, Error: "every echo lost",
		Ping: &result.Ping{Sent: 3, Received: 0, Loss: 1, MinMs: 0, AvgMs: 0, MaxMs: 0, StddevMs: 0}}
	ping := result.Record{ID: "ping", Time: at(3), Probe: "probe-3", Target: "k.root-servers.net", Method: result.MethodTCP,
		Ping: &result.Ping{Sent: 5, Received: 4, Loss: 0.2, MinMs: 1.1, AvgMs: 2.2, MaxMs: 3.3, StddevMs: 0.4}}
	// Same DNS question, other server: details that differ in one field
	// must not be mixed up by a backend's caching.
	other := full
	other.ID, other.Time, other.Lat, other.Lon = "other-server", at(4), nil, nil
	other.DNS = &result.DNS{QName: "id.server.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", NSID: "nsid è", TCP: true, Size: 512}
	again := other
	again.ID, again.Time, again.DNS = "first-server-again", at(5), ptr(*full.DNS)
	in := []result.Record{full, zero, none, ping, other, again}
	if n := mustAppend(t, s, in); n != len(in) {
		t.Fatalf("append stored %d, want %d", n, len(in))
	}
	got := scan(t, s, store.Query{})
	if len(got) != len(in) {
		t.Fatalf("scan returned %d records, want %d", len(got), len(in))
	}
	for i := range in {
		want, g := in[i], got[i]
		if !g.Time.Equal(want.Time) {
			t.Errorf("record %s: time %v, want %v", want.ID, g.Time, want.Time)
		}
		if g.Time.Location() != time.UTC {
			t.Errorf("record %s: time in %v, want UTC", want.ID, g.Time.Location())
		}
		want.Time, g.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, want) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(want)
			t.Errorf("record %s round trip:\n got  %s\n want %s", want.ID, gj, wj)
		}
	}
	if got[2].Lat != nil || got[2].Lon != nil {
		t.Errorf("unknown place came back as %v,%v; want nil", got[2].Lat, got[2].Lon)
	}
	if got[1].Lat == nil || got[1].Lon == nil {
		t.Errorf("place 0,0 came back as unknown (nil)")
	}
}

func testIdempotent(t *testing.T, s store.Store) {
	first := series(3, "a", "p")
	if n := mustAppend(t, s, first); n != 3 {
		t.Fatalf("first append stored %d, want 3", n)
	}
	if n := mustAppend(t, s, first); n != 0 {
		t.Fatalf("re-append of the same batch stored %d, want 0", n)
	}
	more := series(5, "a", "p")
	// Old records, new ones, and a new one twice in the same batch.
	batch := []result.Record{more[0], more[3], more[3], more[2], more[4]}
	if n := mustAppend(t, s, batch); n != 2 {
		t.Fatalf("append with partial duplicates stored %d, want 2", n)
	}
	wantIDs(t, "after duplicates", scan(t, s, store.Query{}), ids(more)...)
	if n, err := s.Append(context.Background(), nil); err != nil || n != 0 {
		t.Errorf("empty append: stored %d, err %v; want 0, nil", n, err)
	}
}

func testAppendCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Append(ctx, series(10, "a", "p"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: err %v, want context.Canceled", err)
	}
	if got := scan(t, s, store.Query{}); len(got) != 0 {
		t.Fatalf("a failed append stored %d records, want none", len(got))
	}
}

// testAppendBatches: batches stored at once count their new records each;
// a record stored before, or earlier in the call, counts in none; a bad
// record anywhere, or a cancelled context, stores nothing.
func testAppendBatches(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := series(3, "a", "old")
	mustAppend(t, s, old)
	a := series(5, "a", "p")
	b := append(series(4, "b", "p"), a[0], old[1], a[4], a[4])
	stored, err := s.AppendBatches(ctx, [][]result.Record{a, nil, b})
	if err != nil {
		t.Fatalf("append batches: %v", err)
	}
	if want := []int{5, 0, 4}; !slices.Equal(stored, want) {
		t.Errorf("stored %v, want %v", stored, want)
	}
	want := slices.Concat(ids(old), ids(a), ids(b[:4]))
	if stored, err := s.AppendBatches(ctx, [][]result.Record{nil, {}}); err != nil || !slices.Equal(stored, []int{0, 0}) {
		t.Errorf("empty batches: stored %v, err %v; want [0 0], nil", stored, err)
	}
	bad := series(2, "c", "p")
	bad[1].ID = ""
	if _, err := s.AppendBatches(ctx, [][]result.Record{series(3, "d", "p"), bad}); err == nil {
		t.Error("batches with a record without id: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendBatches(cancelled, [][]result.Record{series(3, "e", "p")}); !errors.Is(err, context.Canceled) {
		t.Errorf("append batches with a cancelled context: err %v, want context.Canceled", err)
	}
	got := ids(scan(t, s, store.Query{}))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stored ids %q, want %q", got, want)
	}
}

func testWindow(t *testing.T, s store.Store) {
	rs := series(10, "a", "p")
	mustAppend(t, s, rs)
	all := ids(rs)
	wantIDs(t, "[2,5)", scan(t, s, store.Query{From: at(2), To: at(5)}), all[2:5]...)
	wantIDs(t, "[7,open)", scan(t, s, store.Query{From: at(7)}), all[7:]...)
	wantIDs(t, "(open,3)", scan(t, s, store.Query{To: at(3)}), all[:3]...)
	wantIDs(t, "[3,3)", scan(t, s, store.Query{From: at(3), To: at(3)}))
	// One microsecond either side of a record's time.
	us := time.Microsecond
	wantIDs(t, "just after from", scan(t, s, store.Query{From: at(4).Add(us), To: at(6)}), all[5])
	wantIDs(t, "just after to", scan(t, s, store.Query{From: at(4), To: at(4).Add(us)}), all[4])
}

func testFilters(t *testing.T, s store.Store) {
	var rs []result.Record
	for _, tg := range []string{"a", "b"} {
		for _, p := range []string{"p1", "p2"} {
			rs = append(rs, series(3, tg, p)...)
		}
	}
	mustAppend(t, s, rs)
	for _, q := range []store.Query{
		{Target: "a"}, {Target: "b"}, {Probe: "p1"}, {Target: "b", Probe: "p2"},
		{Target: "a", Probe: "p2", From: at(1)}, {Target: "nope"}, {Probe: "nope"},
	} {
		got := scan(t, s, q)
		n := 0
		for _, r := range rs {
			if (q.Target == "" || r.Target == q.Target) && (q.Probe == "" || r.Probe == q.Probe) && !r.Time.Before(q.From) {
				n++
			}
		}
		if len(got) != n {
			t.Errorf("query %+v: %d records, want %d", q, len(got), n)
		}
		for _, r := range got {
			if q.Target != "" && r.Target != q.Target || q.Probe != "" && r.Probe != q.Probe {
				t.Errorf("query %+v returned target %q probe %q", q, r.Target, r.Probe)
			}
		}
	}
}

func testLimit(t *testing.T, s store.Store) {
	rs := series(10, "a", "p")
	mustAppend(t, s, rs)
	wantIDs(t, "limit 3", scan(t, s, store.Query{Limit: 3}), ids(rs)[:3]...)
	wantIDs(t, "limit 2 from 5", scan(t, s, store.Query{Limit: 2, From: at(5)}), ids(rs)[5:7]...)
	if got := scan(t, s, store.Query{Limit: 100}); len(got) != 10 {
		t.Errorf("limit above the count: %d records, want 10", len(got))
	}
}

func testTimeOrder(t *testing.T, s store.Store) {
	rs := series(20, "a", "p")
	rs = append(rs, series(20, "b", "p")...)
	// Later records first, in several batches, interleaved across targets.
	shuffled := slices.Clone(rs)
	slices.Reverse(shuffled)
	for i := 0; i < len(shuffled); i += 7 {
		mustAppend(t, s, shuffled[i:min(i+7, len(shuffled))])
	}
	for _, q := range []store.Query{{}, {Target: "a"}, {Probe: "p"}} {
		got := scan(t, s, q)
		if !slices.IsSortedFunc(got, func(x, y result.Record) int { return x.Time.Compare(y.Time) }) {
			t.Errorf("query %+v: records not in time order", q)
		}
	}
}

func testTargets(t *testing.T, s store.Store) {
	mustAppend(t, s, []result.Record{
		rec("1", at(0), "c", "p"), rec("2", at(1), "a", "p"), rec("3", at(2), "b", "p"),
		rec("4", at(3), "a", "p"), rec("5", at(5), "d", "p"),
	})
	check := func(from, to time.Time, want ...string) {
		t.Helper()
		got, err := s.Targets(context.Background(), from, to)
		if err != nil {
			t.Fatalf("targets: %v", err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("targets in [%v, %v): %q, want %q", from, to, got, want)
		}
	}
	check(time.Time{}, time.Time{}, "a", "b", "c", "d")
	check(at(1), at(3), "a", "b")
	check(at(3), at(5), "a")
	check(at(6), time.Time{})
}

func testDeleteBefore(t *testing.T, s store.Store) {
	rs := series(10, "a", "p")
	mustAppend(t, s, rs)
	n, err := s.DeleteBefore(context.Background(), at(4))
	if err != nil {
		t.Fatalf("delete before: %v", err)
	}
	if n != 4 {
		t.Errorf("deleted %d, want 4", n)
	}
	wantIDs(t, "after delete", scan(t, s, store.Query{}), ids(rs)[4:]...)
	if n, err := s.DeleteBefore(context.Background(), at(4)); err != nil || n != 0 {
		t.Errorf("second delete: %d, %v; want 0, nil", n, err)
	}
	// A deleted id may be stored again: retention is not idempotency.
	if n := mustAppend(t, s, rs[:1]); n != 1 {
		t.Errorf("re-append of a deleted record stored %d, want 1", n)
	}
}

func testScanCancel(t *testing.T, s store.Store) {
	const n = 5000
	rs := make([]result.Record, n)
	for i := range rs {
		rs[i] = rec(fmt.Sprintf("r%05d", i), base.Add(time.Duration(i)*time.Second), "a", "p")
	}
	mustAppend(t, s, rs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	err := s.Scan(ctx, store.Query{}, func(*result.Record) error {
		seen++
		if seen == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("scan cancelled after 10 rows: err %v, want context.Canceled", err)
	}
	if seen >= n {
		t.Errorf("scan went on through all %d rows after cancel", seen)
	}
}

func testScanFnError(t *testing.T, s store.Store) {
	mustAppend(t, s, series(10, "a", "p"))
	stop := errors.New("enough")
	calls := 0
	err := s.Scan(context.Background(), store.Query{}, func(*result.Record) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("scan: err %v, want the callback's error", err)
	}
	if calls != 3 {
		t.Errorf("callback called %d times after returning an error at 3", calls)
	}
}

// testConcurrent appends from several goroutines while others scan: no
// busy or locked errors, nothing lost.
func testConcurrent(t *testing.T, s store.Store) {
	const writers, batches, size = 4, 10, 50
	ctx := context.Background()
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for b := range batches {
				rs := series(size, fmt.Sprintf("w%d", w), fmt.Sprintf("b%d", b))
				if n, err := s.Append(ctx, rs); err != nil || n != size {
					return fmt.Errorf("writer %d batch %d: stored %d, %w", w, b, n, err)
				}
			}
			return nil
		})
	}
	for range 2 {
		g.Go(func() error {
			for range batches {
				if err := s.Scan(ctx, store.Query{}, func(*result.Record) error { return nil }); err != nil {
					return fmt.Errorf("scan beside writers: %w", err)
				}
				if _, err := s.Targets(ctx, time.Time{}, time.Time{}); err != nil {
					return fmt.Errorf("targets beside writers: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s, store.Query{}); len(got) != writers*batches*size {
		t.Errorf("after concurrent appends: %d records, want %d", len(got), writers*batches*size)
	}
}

func testProbes(t *testing.T, s store.Store) {
	ctx := context.Background()
	p1 := api.Probe{ID: "p1", Name: "ams-1", Lat: ptr(52.37), Lon: ptr(4.9), Country: "NL", ASN: 64500,
		Labels: map[string]string{"site": "ams", "net": `"home"`}, Created: at(0)}
	p2 := api.Probe{ID: "p2", Name: "null-island", Lat: ptr(0.0), Lon: ptr(0.0), Created: at(1)}
	p3 := api.Probe{ID: "p3", Name: "nowhere", Created: at(2)}
	h1, h2, h3 := []byte{0, 1, 2, 0xff}, []byte{0, 1, 2, 0xfe}, []byte("h3")
	for _, c := range []struct {
		p api.Probe
		h []byte
	}{{p1, h1}, {p2, h2}, {p3, h3}} {
		if err := s.CreateProbe(ctx, c.p, c.h); err != nil {
			t.Fatalf("create probe %s: %v", c.p.ID, err)
		}
	}
	if err := s.CreateProbe(ctx, api.Probe{ID: "p1", Created: at(3)}, []byte("other")); err == nil {
		t.Errorf("creating probe p1 twice succeeded")
	}

	equal := func(what string, got, want api.Probe) {
		t.Helper()
		if !got.Created.Equal(want.Created) || (got.LastSeen == nil) != (want.LastSeen == nil) ||
			got.LastSeen != nil && !got.LastSeen.Equal(*want.LastSeen) {
			t.Errorf("%s: times %v/%v, want %v/%v", what, got.Created, got.LastSeen, want.Created, want.LastSeen)
		}
		got.Created, want.Created, got.LastSeen, want.LastSeen = time.Time{}, time.Time{}, nil, nil
		if len(got.Labels) == 0 && len(want.Labels) == 0 {
			got.Labels, want.Labels = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
		}
	}
	got, err := s.ProbeByToken(ctx, h1)
	if err != nil {
		t.Fatalf("probe by token: %v", err)
	}
	equal("probe by token", got, p1)
	if got, err = s.Probe(ctx, "p2"); err != nil {
		t.Fatalf("probe p2: %v", err)
	}
	equal("probe p2", got, p2)
	if got.Lat == nil || got.Lon == nil {
		t.Errorf("probe at 0,0 came back without a place")
	}
	if got, err = s.Probe(ctx, "p3"); err != nil || got.Lat != nil {
		t.Errorf("probe p3: lat %v, err %v; want nil, nil", got.Lat, err)
	}
	if _, err := s.ProbeByToken(ctx, []byte{0, 1, 2}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: err %v, want ErrNotFound", err)
	}
	if _, err := s.Probe(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown probe: err %v, want ErrNotFound", err)
	}

	seen := at(10)
	if err := s.TouchProbes(ctx, []store.Touch{{ID: "p1", Seen: at(9), Addr: "198.51.100.6"}, {ID: "p1", Seen: seen, Addr: "198.51.100.7"}}); err != nil {
		t.Fatalf("touch: %v", err)
	}
	if err := s.TouchProbes(ctx, nil); err != nil {
		t.Errorf("no touches: %v", err)
	}
	// The unknown probe fails the call, not the touch beside it.
	err = s.TouchProbes(ctx, []store.Touch{{ID: "nope", Seen: seen, Addr: "198.51.100.7"}, {ID: "p2", Seen: seen, Addr: "198.51.100.8"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("touch unknown probe: err %v, want ErrNotFound", err)
	}
	p1.LastSeen, p1.Addr = &seen, "198.51.100.7"
	if got, err = s.Probe(ctx, "p1"); err != nil {
		t.Fatalf("probe p1: %v", err)
	}
	equal("touched probe", got, p1)
	if got, err = s.Probe(ctx, "p2"); err != nil || got.LastSeen == nil || !got.LastSeen.Equal(seen) || got.Addr != "198.51.100.8" {
		t.Errorf("probe p2 touched beside an unknown one: %+v, %v", got, err)
	}

	if err := s.RevokeProbe(ctx, "p1"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := s.RevokeProbe(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown probe: err %v, want ErrNotFound", err)
	}
	if _, err := s.ProbeByToken(ctx, h1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token of a revoked probe: err %v, want ErrNotFound", err)
	}
	if got, err = s.Probe(ctx, "p1"); err != nil || !got.Revoked {
		t.Errorf("revoked probe by id: revoked %v, err %v; want true, nil", got.Revoked, err)
	}
	if _, err := s.ProbeByToken(ctx, h2); err != nil {
		t.Errorf("revoking p1 broke p2's token: %v", err)
	}

	list, err := s.ListProbes(ctx)
	if err != nil {
		t.Fatalf("list probes: %v", err)
	}
	slices.SortFunc(list, func(a, b api.Probe) int { return cmp.Compare(a.ID, b.ID) })
	if len(list) != 3 {
		t.Fatalf("list: %d probes, want 3", len(list))
	}
	p1.Revoked = true
	equal("listed p1", list[0], p1)
	equal("listed p3", list[2], p3)
}

func testPlan(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, err := s.Plan(ctx)
	if err != nil {
		t.Fatalf("plan before any put: %v", err)
	}
	if len(p.Targets) != 0 || p.Version != "" {
		t.Errorf("plan before any put: %+v, want empty", p)
	}
	want := api.Plan{Refresh: spec.Duration(5 * time.Minute), Version: "v1", Targets: []api.Target{
		{Spec: spec.Spec{Target: "k.root-servers.net", Method: "dns", QName: "id.server.", QClass: "CH", QType: "TXT",
			Timeout: spec.Duration(2 * time.Second)},
			Name: "k-root", Interval: spec.Duration(time.Minute), Probes: []string{"all"}, Prefixes: []string{"193.0.14.0/24", "2001:7fd::/48"}},
		{Spec: spec.Spec{Target: "https://example.net/", Method: "http", SiteHeader: "X-Served-By"}},
	}}
	for _, v := range []string{"v1", "v2"} {
		want.Version = v
		if err := s.PutPlan(ctx, want); err != nil {
			t.Fatalf("put plan %s: %v", v, err)
		}
		got, err := s.Plan(ctx)
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("plan round trip:\n got  %+v\n want %+v", got, want)
		}
	}
}

func testAnnotations(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := []api.Annotation{
		{ID: "n3", Time: at(3), Target: "a", Text: `moved "ams" to fra ✈`},
		{ID: "n1", Time: at(1), Text: "global maintenance"},
		{ID: "n2", Time: at(2), Target: "b", Text: "b only"},
		{ID: "n5", Time: at(5), Target: "a", Text: "outside the window"},
	}
	for _, a := range in {
		if err := s.AddAnnotation(ctx, a); err != nil {
			t.Fatalf("add annotation %s: %v", a.ID, err)
		}
	}
	got, err := s.Annotations(ctx, "a", at(0), at(5))
	if err != nil {
		t.Fatalf("annotations: %v", err)
	}
	if len(got) != 2 || got[0].ID != "n1" || got[1].ID != "n3" {
		t.Fatalf("annotations of a in [0,5): %+v, want n1 (global) then n3", got)
	}
	if got[1].Text != in[0].Text || got[1].Target != "a" || !got[1].Time.Equal(at(3)) {
		t.Errorf("annotation round trip: %+v, want %+v", got[1], in[0])
	}
	if got, err = s.Annotations(ctx, "b", at(2), at(3)); err != nil || len(got) != 1 || got[0].ID != "n2" {
		t.Errorf("annotations of b in [2,3): %+v, %v; want n2", got, err)
	}
	if got, err = s.Annotations(ctx, "c", time.Time{}, time.Time{}); err != nil || len(got) != 1 || got[0].ID != "n1" {
		t.Errorf("annotations of c: %+v, %v; want only the global n1", got, err)
	}
	if err := s.AddAnnotation(ctx, api.Annotation{Time: at(4), Target: "a", Text: "no id given"}); err != nil {
		t.Fatalf("add annotation without id: %v", err)
	}
	if got, err = s.Annotations(ctx, "a", at(4), at(5)); err != nil || len(got) != 1 || got[0].Text != "no id given" {
		t.Errorf("annotation without id: %+v, %v", got, err)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := []api.Event{
		{ID: "e2", Time: at(2), Prefix: "193.0.14.0/24", Kind: "withdraw", Peer: "192.0.2.1", Source: "mrt"},
		{ID: "e1", Time: at(1), Prefix: "193.0.14.0/24", Kind: "announce", ASPath: []uint32{64500, 25152, 4294967295}, Peer: "192.0.2.1", Source: "bgp"},
		{ID: "e3", Time: at(3), Prefix: "2001:7fd::/48", Kind: "announce", ASPath: []uint32{25152}},
		{ID: "e4", Time: at(4), Prefix: "198.51.100.0/24", Kind: "announce"},
		{ID: "e9", Time: at(9), Prefix: "193.0.14.0/24", Kind: "announce"},
	}
	if err := s.AddEvents(ctx, in); err != nil {
		t.Fatalf("add events: %v", err)
	}
	got, err := s.Events(ctx, []string{"193.0.14.0/24", "2001:7fd::/48"}, at(0), at(9))
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	var gotIDs []string
	for _, e := range got {
		gotIDs = append(gotIDs, e.ID)
	}
	if !slices.Equal(gotIDs, []string{"e1", "e2", "e3"}) {
		t.Fatalf("events for two prefixes in [0,9): %q, want e1 e2 e3", gotIDs)
	}
	want := in[1]
	if g := got[0]; !g.Time.Equal(want.Time) || g.Prefix != want.Prefix || g.Kind != want.Kind ||
		!slices.Equal(g.ASPath, want.ASPath) || g.Peer != want.Peer || g.Source != want.Source {
		t.Errorf("event round trip: %+v, want %+v", g, want)
	}
	if got, err = s.Events(ctx, []string{"198.51.100.0/24"}, at(4), at(5)); err != nil || len(got) != 1 || got[0].ID != "e4" {
		t.Errorf("events for one prefix in [4,5): %+v, %v; want e4", got, err)
	}
	if got, err = s.Events(ctx, []string{"203.0.113.0/24"}, time.Time{}, time.Time{}); err != nil || len(got) != 0 {
		t.Errorf("events for an unknown prefix: %+v, %v; want none", got, err)
	}
}
