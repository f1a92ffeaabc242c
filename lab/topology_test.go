package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultTopology(t *testing.T) {
	topo := DefaultTopology()
	if len(topo.Sites) < 4 || len(topo.Routers) < 3 || len(topo.Probes) < 6 {
		t.Errorf("default lab has %d sites, %d routers, %d probes: want at least 4, 3, 6",
			len(topo.Sites), len(topo.Routers), len(topo.Probes))
	}
	for _, w := range topo.Wires() {
		if w.Delay <= 0 {
			t.Errorf("link %s-%s has no delay", w.A, w.B)
		}
	}
	addr, ok := topo.OpsAddr()
	if !ok || !strings.HasPrefix(addr.String(), "10.") {
		t.Errorf("ops address %v, %v: want one in 10/8", addr, ok)
	}
	if len(topo.Regions) != 3 || len(topo.RegionsOf("t-eu")) != 1 {
		t.Errorf("default lab has %d regions, want one behind each router", len(topo.Regions))
	}
}

func TestRegions(t *testing.T) {
	topo := DefaultTopology()
	na := topo.RegionsOf("t-us")[0]
	for a, want := range map[string]bool{"10.65.199.1": false, "10.65.200.1": true, "10.65.203.255": true, "10.65.204.1": false} {
		if got := na.IsSilent(netip.MustParseAddr(a)); got != want {
			t.Errorf("region %s: IsSilent(%s) = %v", na.Name, a, got)
		}
	}
	eu, _ := topo.Node("t-eu")
	conf := topo.birdConfig("/run/lab", eu, SiteState{})
	if !strings.Contains(conf, "protocol static regions {") || !strings.Contains(conf, "route 10.64.0.0/16 blackhole;") {
		t.Errorf("t-eu does not announce its region:\n%s", conf)
	}
	ams, _ := topo.Node("ams")
	if strings.Contains(topo.birdConfig("/run/lab", ams, SiteState{}), "regions") {
		t.Error("a site announces a region")
	}
	b, err := marshalTopology(topo)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTopology(b)
	if err != nil || len(back.Regions) != 3 || back.Regions[1].Silent[0] != "10.65.200.0/22" {
		t.Errorf("regions after a round trip: %+v, %v", back.Regions, err)
	}
	small, _ := ReadTopology(filepath.Join("testdata", "small.yaml"))
	if b, _ := marshalTopology(small); strings.Contains(string(b), "regions") {
		t.Errorf("a topology without regions writes them:\n%s", b)
	}
}

// TestWires checks the addressing: a /30 per link, router on side A.
func TestWires(t *testing.T) {
	topo, err := ReadTopology(filepath.Join("testdata", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ws := topo.Wires()
	if len(ws) != 3 {
		t.Fatalf("%d wires, want 3 (two sites, one probe)", len(ws))
	}
	w, ok := topo.Uplink("p1")
	if !ok || w.A != "r1" || w.Delay != 2*time.Millisecond {
		t.Fatalf("uplink of p1: %+v %v", w, ok)
	}
	if w.Subnet().String() != "10.0.0.8/30" || w.AddrA().String() != "10.0.0.9" || w.AddrB().String() != "10.0.0.10" {
		t.Errorf("p1's link: subnet %s, A %s, B %s", w.Subnet(), w.AddrA(), w.AddrB())
	}
	if got := IfName("cdg"); got != "cm-cdg" || len(IfName("abcdefghijkl")) > 15 {
		t.Errorf("interface names: %q, and %d bytes for the longest name (Linux allows 15)", got, len(IfName("abcdefghijkl")))
	}
	if n, ok := topo.Node("cdg"); !ok || n.NS != "cmsmall-cdg" || n.Kind != KindSite {
		t.Errorf("node cdg: %+v", n)
	}
	if s, ok := topo.SiteByAS(64702); !ok || s.Name != "cdg" {
		t.Errorf("site of AS64702: %+v", s)
	}
	if _, ok := topo.OpsAddr(); ok {
		t.Error("a lab without ops has an ops address")
	}
}

// TestBadTopologies: every testdata/*.bad.yaml is refused with a message
// naming what is wrong.
func TestBadTopologies(t *testing.T) {
	want := map[string]string{
		"anycast_public": "documentation ranges",
		"bad_name":       `router "Router_1": a name is`,
		"collector_port": "collector_port 70000",
		"delay_negative": "delay -5ms is out of range",
		"duplicate_as":   "as 1 is already used by router r1",
		"duplicate_link": "already linked",
		"no_sites":       "sites: none",
		"ops_name":       "the name ops is taken",
		"two_docs":       "more than one YAML document",
		"unknown_key":    "field colour not found",
		"unknown_router": `router "r9" is not in routers`,
		"region_outside": "must be a /9 to /24 inside 10.0.0.0/8",
		"region_links":   "overlaps the links' 10.0.0.0/16",
		"region_overlap": "overlaps regions[0]'s 10.64.0.0/12",
		"region_silent":  "silent 10.65.1.0/24 is not inside the region's 10.64.0.0/16",
		"region_router":  `regions[0] (c1): router "r7" is not in routers`,
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if len(files) != len(want) {
		t.Errorf("%d bad topologies in testdata, %d expected messages", len(files), len(want))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		t.Run(name, func(t *testing.T) {
			_, err := ReadTopology(f)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), want[name]) || want[name] == "" {
				t.Errorf("error %q does not say %q", err, want[name])
			}
		})
	}
}

// TestTopologyRoundTrip: lab up writes the topology it was given into its
// directory, and every later command reads it back.
func TestTopologyRoundTrip(t *testing.T) {
	topo := DefaultTopology()
	b, err := marshalTopology(topo)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTopology(b)
	if err != nil {
		t.Fatalf("reading back the written topology: %v\n%s", err, b)
	}
	if len(back.Wires()) != len(topo.Wires()) || back.Ops.CollectorPort != topo.Ops.CollectorPort {
		t.Errorf("round trip changed the topology:\n%s", b)
	}
	for i, w := range back.Wires() {
		if w != topo.Wires()[i] {
			t.Errorf("wire %d: %+v, was %+v", i, w, topo.Wires()[i])
		}
	}
}

func FuzzParseTopology(f *testing.F) {
	for _, p := range []string{"small.yaml", "unknown_key.bad.yaml", "duplicate_link.bad.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(defaultTopology)
	f.Fuzz(func(t *testing.T, b []byte) {
		topo, err := ParseTopology(b)
		if err != nil {
			return
		}
		// A topology that validates can be built: names fit interfaces
		// and namespaces, and addresses do not run out.
		for _, n := range topo.Nodes() {
			if len(IfName(n.Name)) > 15 || len(n.NS) > 32 {
				t.Errorf("node %q: names too long for Linux", n.Name)
			}
		}
		if len(topo.Wires()) > 16384 {
			t.Errorf("%d links: more than 10.0.0.0/16 holds", len(topo.Wires()))
		}
		for _, n := range topo.Nodes() {
			if n.AS != 0 {
				_ = topo.birdConfig("/run/x", n, SiteState{Prepend: 2})
			}
		}
	})
}
