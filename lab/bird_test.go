package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParseRoutes reads `show route for ... all` as BIRD 2.0.12 printed it
// in the default lab (router t-eu).
func TestParseRoutes(t *testing.T) {
	rs, err := ParseRoutes(readFile(t, "show_route_for.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d routes, want 4 (ams, lhr, via t-us, via t-ap): %+v", len(rs), rs)
	}
	best, ok := Best(rs)
	if !ok || best.Proto != "n_ams" || !slices.Equal(best.ASPath, []uint32{65001}) || best.MED != 2 ||
		best.Via.String() != "10.0.0.14" || best.Iface != "cm-ams" || best.Net != "192.0.2.53/32" {
		t.Errorf("best route %+v", best)
	}
	if best.Since.IsZero() || best.Since.Year() != 2026 {
		t.Errorf("route time %v: want the time BIRD printed", best.Since)
	}
	for _, r := range rs[1:] {
		if r.Primary || r.Net != "192.0.2.53/32" {
			t.Errorf("alternative %+v: want a non-primary route for the same net", r)
		}
	}
	if !slices.Equal(rs[2].ASPath, []uint32{65102, 65003}) || rs[2].MED != 33 {
		t.Errorf("route via t-us %+v", rs[2])
	}
}

func TestParseRoutesTable(t *testing.T) {
	rs, err := ParseRoutes(readFile(t, "show_route_all.txt"))
	if err != nil {
		t.Fatal(err)
	}
	nets := map[string]bool{}
	for _, r := range rs {
		if r.Primary {
			if nets[r.Net] {
				t.Errorf("two best routes for %s", r.Net)
			}
			nets[r.Net] = true
		}
	}
	if !nets["192.0.2.53/32"] || !nets["10.0.0.28/30"] {
		t.Errorf("best routes for %v: want the anycast /32 and the probe links", nets)
	}
}

func TestParseRoutesErrors(t *testing.T) {
	for _, in := range []string{
		"\tvia 10.0.0.1 on cm-x\n",
		"192.0.2.53/32 unicast [n_a 2026-01-01 00:00:00.000] * (100)\n\tvia nonsense on x\n",
		"192.0.2.53/32 unicast [n_a 2026-01-01 00:00:00.000] * (100)\n\tBGP.as_path: 1 x\n",
		"192.0.2.53/32 unicast [n_a 2026-01-01 00:00:00.000] * (100)\n\tBGP.med: ten\n",
		"192.0.2.53/32 unicast\n",
	} {
		if rs, err := ParseRoutes(in); err == nil && len(rs) > 0 {
			t.Errorf("ParseRoutes(%q) = %+v, want an error", in, rs)
		}
	}
}

func TestParseProtocols(t *testing.T) {
	ps := ParseProtocols(readFile(t, "show_protocols.txt"))
	state := map[string]string{}
	for _, p := range ps {
		if p.Proto == "BGP" {
			state[p.Name] = strings.Fields(p.Info + " -")[0]
		}
	}
	want := map[string]string{"n_t_us": "Established", "n_t_ap": "Established", "n_ams": "Established", "n_lhr": "Established", "collector": "Active"}
	for k, v := range want {
		if state[k] != v {
			t.Errorf("session %s: %q, want %q (all: %v)", k, state[k], v, state)
		}
	}
}

// TestBirdConfig checks what the configurations promise: short timers,
// MED from link delay, prepends and withdrawals at sites, and the
// collector session at the ops router only.
func TestBirdConfig(t *testing.T) {
	topo := DefaultTopology()
	eu, _ := topo.Node("t-eu")
	us, _ := topo.Node("t-us")
	ams, _ := topo.Node("ams")
	conf := topo.birdConfig("/run/lab", eu, SiteState{})
	for _, want := range []string{
		"connect delay time 1; connect retry time 1;",
		"hold time 6; keepalive time 2;",
		"med metric on;",
		"protocol bgp n_ams from lab",
		"neighbor 10.0.0.14 as 65001;",
		"bgp_med = bgp_med + 2; else bgp_med = 2;",
		"neighbor 10.0.0.54 port 1179 as 65500;",
		`log "/run/lab/t-eu.bird.log"`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("t-eu's configuration lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(topo.birdConfig("/run/lab", us, SiteState{}), collectorProto) {
		t.Error("t-us peers with the collector: only the ops router should")
	}
	site := topo.birdConfig("/run/lab", ams, SiteState{Prepend: 3})
	if n := strings.Count(site, "bgp_path.prepend(65001);"); n != 3 {
		t.Errorf("ams with prepend 3 prepends %d times:\n%s", n, site)
	}
	if !strings.Contains(site, "route 192.0.2.53/32 blackhole;") || !strings.Contains(site, "if net = 192.0.2.53/32 then reject;") {
		t.Errorf("ams does not originate the anycast /32, or accepts it from others:\n%s", site)
	}
	if w := topo.birdConfig("/run/lab", ams, SiteState{Withdrawn: true}); !strings.Contains(w, "export none;") {
		t.Errorf("withdrawn ams still exports:\n%s", w)
	}
}

func TestRouteTime(t *testing.T) {
	got := routeTime("192.0.2.53/32 unicast [n_ams 2026-11-25 19:54:12.886] * (100) [AS65001i]")
	want := time.Date(2026, 11, 25, 19, 54, 12, 886e6, time.Local)
	if !got.Equal(want) {
		t.Errorf("routeTime = %v, want %v", got, want)
	}
	if !routeTime("x unicast [n_ams 19:54:12.886] *").IsZero() {
		t.Error("a time without a date should read as unknown")
	}
}

func FuzzParseRoutes(f *testing.F) {
	for _, n := range []string{"show_route_for.txt", "show_route_all.txt", "show_protocols.txt"} {
		f.Add(readFile(f, n))
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := ParseRoutes(in)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Proto == "" && r.Net == "" && r.Via.IsValid() {
				t.Errorf("route with a next hop but no net or protocol: %+v", r)
			}
		}
		ParseProtocols(in)
	})
}
