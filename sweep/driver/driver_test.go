package driver

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/sweep/catcher"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
	"github.com/catchmap/catchmap/sweep/rawsock"
	"github.com/catchmap/catchmap/sweep/rawsock/rawsocktest"
)

func TestMain(m *testing.M) { testutil.Main(m, "catchmap/sweep/") }

var (
	quiet   = slog.New(slog.NewTextHandler(io.Discard, nil))
	anycast = netip.MustParseAddr("192.0.2.53")
)

const token = "driver-test-token"

// world is a fake Internet: the second octet of an address picks the
// site that catches its replies (10.1 ams, 10.2 iad, 10.3 nrt); third
// octets that are multiples of 50 are silent, and those ending in 7
// answer from another address.
func world(_ string, dst netip.Addr) (string, netip.Addr, bool) {
	b := dst.As4()
	if b[2]%50 == 0 {
		return "", dst, false
	}
	from := dst
	if b[2]%10 == 7 {
		from = netip.AddrFrom4([4]byte{b[0], b[1], b[2], 200})
	}
	return map[byte]string{1: "ams", 2: "iad", 3: "nrt"}[b[1]], from, true
}

// sites starts a catcher per name on n, each served over HTTP.
func sites(t *testing.T, n *rawsocktest.Net, maxRate int, names ...string) ([]*control.Client, map[string]*catcher.Agent) {
	t.Helper()
	var cs []*control.Client
	agents := map[string]*catcher.Agent{}
	for _, name := range names {
		a, err := catcher.New(quiet, prometheus.NewRegistry(), catcher.Config{Site: name, Anycast: anycast, MaxRate: maxRate, Sockets: n.Site(name)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		srv := httptest.NewServer(catcher.NewHandler(quiet, a, token, prometheus.NewRegistry()))
		t.Cleanup(func() {
			srv.Close()
			cancel()
			<-done
		})
		cs = append(cs, control.NewClient(srv.URL, token, srv.Client()))
		agents[name] = a
	}
	return cs, agents
}

func hitlistOf(t *testing.T, text string) []uint32 {
	t.Helper()
	l, err := hitlist.Read(strings.NewReader(text), hitlist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Targets
}

// TestRun sweeps three regions from two senders and checks every /24.
func TestRun(t *testing.T) {
	n := rawsocktest.New(world)
	cs, _ := sites(t, n, 100_000, "ams", "iad", "nrt")
	targets := hitlistOf(t, "10.1.0.0/16\n10.2.0.0/16\n10.3.0.0/17\n")
	res, err := Run(context.Background(), quiet, Options{Catchers: cs, From: []string{"ams", "nrt"}, Rate: 20_000,
		Cooldown: 100 * time.Millisecond, Contact: "test", Targets: targets, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != len(targets) {
		t.Fatalf("%d rows for %d targets", len(res.Rows), len(targets))
	}
	want := Summary{Caught: map[string]int{}}
	for _, row := range res.Rows {
		site, from, ok := world("", row.Target)
		switch {
		case !ok:
			want.Unresponsive++
			if row.Status != Unresponsive {
				t.Fatalf("silent %s: %+v", row.Prefix, row)
			}
		case from != row.Target:
			want.OtherSource++
			if row.Status != control.OtherSource || row.Site != site || row.From != from.String() {
				t.Fatalf("%s answers from %s at %s: %+v", row.Prefix, from, site, row)
			}
		default:
			want.Caught[site]++
			if row.Status != control.Caught || row.Site != site || row.From != row.Target.String() {
				t.Fatalf("%s caught at %s: %+v", row.Prefix, site, row)
			}
		}
		if ok && (row.Sender != "ams" && row.Sender != "nrt" || (row.RTTMillis != nil) != (row.Sender == row.Site)) {
			t.Fatalf("%s: sender %s, RTT %v", row.Prefix, row.Sender, row.RTTMillis)
		}
	}
	s := res.Summary
	if s.Sent != len(targets) || s.Unresponsive != want.Unresponsive || s.OtherSource != want.OtherSource || s.Duplicates != 0 || s.Moved != 0 {
		t.Errorf("summary %+v\nwant %+v", s, want)
	}
	for site, c := range want.Caught {
		if s.Caught[site] != c {
			t.Errorf("caught at %s: %d, want %d", site, s.Caught[site], c)
		}
	}
	// Each /24 probed once, half by each sender.
	per := map[string]int{}
	seen := map[netip.Addr]bool{}
	for _, p := range n.Probes() {
		if seen[p.Dst] {
			t.Fatalf("%s probed twice", p.Dst)
		}
		seen[p.Dst] = true
		per[p.Site]++
	}
	if len(seen) != len(targets) || per["ams"]-per["nrt"] > 1 || per["nrt"]-per["ams"] > 1 || per["iad"] != 0 {
		t.Errorf("probes per site %v for %d targets", per, len(targets))
	}
	if !strings.Contains(s.Text(), "unresponsive "+itoa(want.Unresponsive)) {
		t.Errorf("summary text:\n%s", s.Text())
	}
	// Every catcher forgot the sweep.
	for _, c := range cs {
		if _, err := c.Sweep(context.Background(), s.Sweep); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("%s still knows the sweep: %v", c.Base(), err)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestBadInputSendsNothing: every input the sweep cannot run with is an
// ErrInput, and no site sends or even hears of the sweep.
func TestBadInputSendsNothing(t *testing.T) {
	n := rawsocktest.New(world)
	cs, agents := sites(t, n, 5000, "ams", "iad")
	good := Options{Catchers: cs, From: []string{"ams"}, Rate: 1000, Targets: hitlistOf(t, "10.1.0.0/24\n")}
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"empty hitlist", func(o *Options) { o.Targets = nil }, "no address"},
		{"rate above cap", func(o *Options) { o.Rate = 5001 }, "above site ams's cap of 5000"},
		{"unknown site", func(o *Options) { o.From = []string{"ams", "fra"} }, `unknown site "fra" in --from: the catchers are ams, iad`},
		{"site twice", func(o *Options) { o.From = []string{"ams", "ams"} }, "named twice"},
		{"no sender", func(o *Options) { o.From = nil }, "no sending site"},
		{"no catchers", func(o *Options) { o.Catchers = nil }, "no catchers"},
		{"zero rate", func(o *Options) { o.Rate = 0 }, "at least 1"},
		{"same site twice", func(o *Options) { o.Catchers = []*control.Client{cs[0], cs[0]} }, "both say they are site ams"},
		{"bad token", func(o *Options) { o.Catchers = []*control.Client{control.NewClient(cs[0].Base(), "wrong", nil)} }, "401"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.mod(&o)
			_, err := Run(context.Background(), quiet, o)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrInput with %q", err, c.want)
			}
		})
	}
	if p := n.Probes(); len(p) != 0 {
		t.Errorf("%d probes sent on bad input", len(p))
	}
	for name, a := range agents {
		if st := a.Status(); len(st.Sweeps) != 0 {
			t.Errorf("site %s knows %d sweeps", name, len(st.Sweeps))
		}
	}
}

// TestForgedNeverCaught: forged replies naming the sweep and a target,
// and strays, reach the catchers during a sweep and count as such; the
// target stays unresponsive.
func TestForgedNeverCaught(t *testing.T) {
	n := rawsocktest.New(func(string, netip.Addr) (string, netip.Addr, bool) { return "", netip.Addr{}, false })
	cs, agents := sites(t, n, 100_000, "ams")
	target := netip.MustParseAddr("10.1.5.1")
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		var id payload.ID
		testutil.WaitFor(t, 10*time.Second, "the sweep at the catcher", func() bool {
			st := agents["ams"].Status()
			if len(st.Sweeps) == 1 {
				id = st.Sweeps[0].ID
			}
			return len(st.Sweeps) == 1
		})
		enc, _ := payload.NewEncoder(id, payload.NewKey(), "ams", "forger")
		n.Inject("ams", rawsock.Reply{From: target, Data: enc.Append(nil, target, time.Now()), Received: time.Now()},
			rawsock.Reply{From: target, Data: []byte("not a payload"), Received: time.Now()})
	}()
	res, err := Run(context.Background(), quiet, Options{Catchers: cs, From: []string{"ams"}, Rate: 1000,
		Cooldown: 300 * time.Millisecond, Targets: hitlistOf(t, "10.1.5.0/24\n10.1.6.0/24\n"), Poll: 10 * time.Millisecond})
	<-injected
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Forged != 1 || s.Stray != 1 || s.CaughtTotal() != 0 || s.Unresponsive != 2 {
		t.Errorf("summary %+v: want 1 forged, 1 stray, 2 unresponsive", s)
	}
}

func TestWriters(t *testing.T) {
	ms := 12.5
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rows := []Row{
		{Prefix: netip.MustParsePrefix("10.1.0.0/24"), Target: netip.MustParseAddr("10.1.0.1"), Status: control.Caught, Site: "ams",
			From: "10.1.0.1", Sender: "ams", RTTMillis: &ms, Sent: at, Received: at.Add(12500 * time.Microsecond), Also: []string{"iad", "nrt"}},
		{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Target: netip.MustParseAddr("10.1.1.1"), Status: Unresponsive},
	}
	var b bytes.Buffer
	if err := WriteNDJSON(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := `{"prefix":"10.1.0.0/24","target":"10.1.0.1","status":"caught","site":"ams","from":"10.1.0.1","sender":"ams","rtt_ms":12.5,"sent":"2026-11-25T12:00:00Z","received":"2026-11-25T12:00:00.0125Z","also":["iad","nrt"]}
{"prefix":"10.1.1.0/24","target":"10.1.1.1","status":"unresponsive"}
`
	if b.String() != want {
		t.Errorf("NDJSON:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteCSV(&b, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") ||
		strings.Join(recs[1], ",") != "10.1.0.0/24,10.1.0.1,caught,ams,10.1.0.1,ams,12.500,2026-11-25T12:00:00Z,2026-11-25T12:00:00.0125Z,iad nrt" ||
		strings.Join(recs[2], ",") != "10.1.1.0/24,10.1.1.1,unresponsive,,,,,,," {
		t.Errorf("CSV: %q", recs)
	}
}
