// Package lab builds a small real Internet on one Linux machine: network
// namespaces for transit routers, anycast sites, probes and an operations
// network, joined by point-to-point links that each carry a one-way delay,
// with BIRD speaking eBGP between them. BGP, not the test, decides which site
// each probe reaches, so catchmap's maps can be checked against the routers'
// own tables.
//
// The kernel it runs on has no netem qdisc, so a link is a TUN device in each
// of its two namespaces and a forwarder process (`catchmap lab forward`)
// that copies packets between them, holding each for the link's delay.
package lab

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultTopology []byte

// DefaultPrefix starts the name of every namespace of a lab without a prefix.
const DefaultPrefix = "cmlab"

// maxDelay bounds a link's one-way delay: longer is a typo.
const maxDelay = 2 * time.Second

// Topology is the lab's YAML file. Unknown keys are errors.
type Topology struct {
	// Prefix starts every namespace name (prefix-name), so that lab down
	// finds them all; DefaultPrefix when empty.
	Prefix string `yaml:"prefix"`
	// Anycast is the address every site announces as a /32.
	Anycast string `yaml:"anycast"`
	// Routers are transit networks, one router and one AS each.
	Routers []Router `yaml:"routers"`
	// Links join routers to each other.
	Links []Link `yaml:"links"`
	// Sites announce Anycast from their own AS, single-homed to a router.
	Sites []Site `yaml:"sites"`
	// Probes are hosts behind a router, with a default route to it.
	Probes []Probe `yaml:"probes"`
	// Ops is the operations network where the aggregator runs.
	Ops *Ops `yaml:"ops"`
	// Regions are client networks for sweeps: address ranges a router
	// answers ICMP for and announces.
	Regions []Region `yaml:"regions,omitempty"`
}

// Router is a transit network.
type Router struct {
	Name   string `yaml:"name"`
	AS     uint32 `yaml:"as"`
	Region string `yaml:"region"`
}

// Link joins two routers.
type Link struct {
	A     string   `yaml:"a"`
	B     string   `yaml:"b"`
	Delay Duration `yaml:"delay"`
}

// Site is one site of the anycast service.
type Site struct {
	// Name is the site code (an airport code such as ams) and the
	// responder's identity is Name + ".lab".
	Name   string   `yaml:"name"`
	AS     uint32   `yaml:"as"`
	Router string   `yaml:"router"`
	Delay  Duration `yaml:"delay"`
}

// Probe is a measuring host.
type Probe struct {
	Name   string   `yaml:"name"`
	Router string   `yaml:"router"`
	Delay  Duration `yaml:"delay"`
	Lat    float64  `yaml:"lat"`
	Lon    float64  `yaml:"lon"`
}

// Ops is the operations network: one host behind Router. When CollectorAS
// is set, Router also opens an eBGP session to the host on CollectorPort,
// for catchmap's passive BGP listener.
type Ops struct {
	Router        string   `yaml:"router"`
	Delay         Duration `yaml:"delay"`
	CollectorAS   uint32   `yaml:"collector_as"`
	CollectorPort int      `yaml:"collector_port"`
}

// Region is a client network behind a router: the router answers ICMP
// echo for every address of Prefix (a local route on lo), except those of
// Silent, and announces Prefix over BGP. A sweep's replies from the region
// go to whichever site BGP picks from that router. Regions add no
// namespaces, so one can hold tens of thousands of /24s.
type Region struct {
	Name   string `yaml:"name"`
	Router string `yaml:"router"`
	// Prefix is inside 10.0.0.0/8, outside the links' 10.0.0.0/16, /9 to
	// /24.
	Prefix string `yaml:"prefix"`
	// Silent are prefixes of Prefix, each of whole /24s, that never answer.
	Silent []string `yaml:"silent,omitempty"`
}

// Net is the region's prefix.
func (r Region) Net() netip.Prefix { return netip.MustParsePrefix(r.Prefix) }

// SilentNets are the region's silent prefixes.
func (r Region) SilentNets() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range r.Silent {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// IsSilent reports whether a is in one of the region's silent prefixes.
func (r Region) IsSilent(a netip.Addr) bool {
	for _, p := range r.SilentNets() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Duration reads "5ms" in YAML.
type Duration time.Duration

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad delay %q: use a duration such as 5ms", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultTopology returns the built-in lab: four sites announcing
// 192.0.2.53/32 behind three transit regions, and six probes.
func DefaultTopology() *Topology {
	t, err := ParseTopology(defaultTopology)
	if err != nil {
		panic("lab: the embedded default topology is invalid: " + err.Error())
	}
	return t
}

// ReadTopology reads and checks a topology file.
func ReadTopology(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the lab topology: %w", err)
	}
	t, err := ParseTopology(b)
	if err != nil {
		return nil, fmt.Errorf("lab topology %s: %w", path, err)
	}
	return t, nil
}

// ParseTopology reads a topology strictly and validates it.
func ParseTopology(b []byte) (*Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty topology: give routers, sites and probes")
		}
		return nil, err
	}
	var extra any
	if dec.Decode(&extra) == nil {
		return nil, errors.New("more than one YAML document: keep one")
	}
	if t.Prefix == "" {
		t.Prefix = DefaultPrefix
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)
	prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)
)

// Validate checks the topology; each error names the entry and field.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !prefixRE.MatchString(t.Prefix) {
		bad("prefix: %q must be 1-8 lower-case letters and digits, starting with a letter", t.Prefix)
	}
	if a, err := netip.ParseAddr(t.Anycast); err != nil || !a.Is4() {
		bad("anycast: %q is not an IPv4 address such as 192.0.2.53", t.Anycast)
	} else if !documentation(a) {
		bad("anycast: %s is outside the documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24: the lab must not shadow real addresses", a)
	}
	names := map[string]string{}
	name := func(kind, n string) {
		switch {
		case !nameRE.MatchString(n):
			bad("%s %q: a name is 1-12 lower-case letters, digits and dashes, starting with a letter", kind, n)
		case n == "ops":
			bad("%s %q: the name ops is taken by the operations network", kind, n)
		case names[n] != "":
			bad("%s %q: the name is already used by a %s", kind, n, names[n])
		}
		names[n] = kind
	}
	ases := map[uint32]string{}
	as := func(owner string, n uint32) {
		switch {
		case n == 0:
			bad("%s: as is missing", owner)
		case ases[n] != "":
			bad("%s: as %d is already used by %s", owner, n, ases[n])
		}
		ases[n] = owner
	}
	delay := func(owner string, d Duration) {
		if d < 0 || d.D() > maxDelay {
			bad("%s: delay %s is out of range 0-%s", owner, d.D(), maxDelay)
		}
	}
	routers := map[string]bool{}
	for _, r := range t.Routers {
		name("router", r.Name)
		as("router "+r.Name, r.AS)
		routers[r.Name] = true
	}
	if len(t.Routers) == 0 {
		bad("routers: none: the lab needs at least one transit router")
	}
	router := func(owner, r string) {
		if !routers[r] {
			bad("%s: router %q is not in routers", owner, r)
		}
	}
	pairs := map[[2]string]bool{}
	for i, l := range t.Links {
		owner := fmt.Sprintf("links[%d] (%s-%s)", i, l.A, l.B)
		router(owner, l.A)
		router(owner, l.B)
		delay(owner, l.Delay)
		k := [2]string{min(l.A, l.B), max(l.A, l.B)}
		switch {
		case l.A == l.B:
			bad("%s: a link joins two different routers", owner)
		case pairs[k]:
			bad("%s: the two routers are already linked", owner)
		}
		pairs[k] = true
	}
	for _, s := range t.Sites {
		owner := "site " + s.Name
		name("site", s.Name)
		as(owner, s.AS)
		router(owner, s.Router)
		delay(owner, s.Delay)
	}
	if len(t.Sites) == 0 {
		bad("sites: none: the lab needs at least one anycast site")
	}
	for _, p := range t.Probes {
		owner := "probe " + p.Name
		name("probe", p.Name)
		router(owner, p.Router)
		delay(owner, p.Delay)
		if !(p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180) {
			bad("%s: lat %v, lon %v out of range", owner, p.Lat, p.Lon)
		}
	}
	if t.Ops != nil {
		router("ops", t.Ops.Router)
		delay("ops", t.Ops.Delay)
		if t.Ops.CollectorAS != 0 {
			as("ops collector", t.Ops.CollectorAS)
			if t.Ops.CollectorPort < 1 || t.Ops.CollectorPort > 65535 {
				bad("ops: collector_port %d is out of range 1-65535", t.Ops.CollectorPort)
			}
		}
	}
	t.validateRegions(bad, router)
	if n := len(t.nodes()); n > 200 {
		bad("the lab has %d hosts: at most 200 fit one machine", n)
	}
	return errors.Join(errs...)
}

var (
	regionSpace = netip.MustParsePrefix("10.0.0.0/8")
	linkSpace   = netip.MustParsePrefix("10.0.0.0/16")
)

// validateRegions checks the regions' names, routers and prefixes: inside
// 10/8, clear of the links and of each other.
func (t *Topology) validateRegions(bad func(string, ...any), router func(string, string)) {
	names := map[string]bool{}
	var nets []netip.Prefix
	for i, r := range t.Regions {
		owner := fmt.Sprintf("regions[%d] (%s)", i, r.Name)
		if !nameRE.MatchString(r.Name) {
			bad("%s: a name is 1-12 lower-case letters, digits and dashes, starting with a letter", owner)
		} else if names[r.Name] {
			bad("%s: the name is already used by another region", owner)
		}
		names[r.Name] = true
		router(owner, r.Router)
		p, err := netip.ParsePrefix(r.Prefix)
		switch {
		case err != nil || !p.Addr().Is4():
			bad("%s: prefix %q is not an IPv4 prefix such as 10.64.0.0/12", owner, r.Prefix)
			continue
		case p.Masked() != p:
			bad("%s: prefix %s has host bits set: %s", owner, p, p.Masked())
			continue
		case !regionSpace.Contains(p.Addr()) || p.Bits() < 9 || p.Bits() > 24:
			bad("%s: prefix %s must be a /9 to /24 inside 10.0.0.0/8: the lab sends only there", owner, p)
			continue
		case p.Overlaps(linkSpace):
			bad("%s: prefix %s overlaps the links' 10.0.0.0/16", owner, p)
			continue
		}
		for j, q := range nets {
			if q.Overlaps(p) {
				bad("%s: prefix %s overlaps regions[%d]'s %s", owner, p, j, q)
			}
		}
		nets = append(nets, p)
		for _, s := range r.Silent {
			q, err := netip.ParsePrefix(s)
			switch {
			case err != nil || !q.Addr().Is4():
				bad("%s: silent %q is not an IPv4 prefix", owner, s)
			case q.Masked() != q || q.Bits() > 24:
				bad("%s: silent %s is not a whole number of /24s", owner, s)
			case !p.Contains(q.Addr()) || q.Bits() < p.Bits():
				bad("%s: silent %s is not inside the region's %s", owner, q, p)
			}
		}
	}
}

func documentation(a netip.Addr) bool {
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// Node kinds.
const (
	KindRouter = "router"
	KindSite   = "site"
	KindProbe  = "probe"
	KindOps    = "ops"
)

// OpsName is the name of the operations host.
const OpsName = "ops"

// Node is one namespace of the lab.
type Node struct {
	Name string
	Kind string
	AS   uint32 // routers and sites
	NS   string // namespace name
}

// Wire is one link as built: side A is always a router. Its addresses are
// a /30 taken from 10.0.0.0/16 by its index.
type Wire struct {
	Index int
	A, B  string
	Delay time.Duration
}

// AddrA and AddrB are the two ends' addresses.
func (w Wire) AddrA() netip.Addr { return wireBase(w.Index).Next() }

// AddrB is B's address.
func (w Wire) AddrB() netip.Addr { return wireBase(w.Index).Next().Next() }

// Subnet is the link's /30.
func (w Wire) Subnet() netip.Prefix { return netip.PrefixFrom(wireBase(w.Index), 30) }

func wireBase(i int) netip.Addr {
	n := 4 * i
	return netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)})
}

// IfName is the interface name, in node's namespace, of the link to peer.
func IfName(peer string) string { return "cm-" + peer }

// Peer returns the other end of w seen from node, and whether node is on w.
func (w Wire) Peer(node string) (string, bool) {
	switch node {
	case w.A:
		return w.B, true
	case w.B:
		return w.A, true
	}
	return "", false
}

// Addr returns node's address on w.
func (w Wire) Addr(node string) netip.Addr {
	if node == w.A {
		return w.AddrA()
	}
	return w.AddrB()
}

// nodes lists every namespace: routers, sites, probes, then ops.
func (t *Topology) nodes() []Node {
	var ns []Node
	add := func(n Node) {
		n.NS = t.Prefix + "-" + n.Name
		ns = append(ns, n)
	}
	for _, r := range t.Routers {
		add(Node{Name: r.Name, Kind: KindRouter, AS: r.AS})
	}
	for _, s := range t.Sites {
		add(Node{Name: s.Name, Kind: KindSite, AS: s.AS})
	}
	for _, p := range t.Probes {
		add(Node{Name: p.Name, Kind: KindProbe})
	}
	if t.Ops != nil {
		add(Node{Name: OpsName, Kind: KindOps})
	}
	return ns
}

// Nodes lists every namespace of the lab.
func (t *Topology) Nodes() []Node { return t.nodes() }

// Node returns the node called name.
func (t *Topology) Node(name string) (Node, bool) {
	for _, n := range t.nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Wires lists every link as built: router links, then sites, probes and ops.
func (t *Topology) Wires() []Wire {
	var ws []Wire
	add := func(a, b string, d Duration) {
		ws = append(ws, Wire{Index: len(ws), A: a, B: b, Delay: d.D()})
	}
	for _, l := range t.Links {
		add(l.A, l.B, l.Delay)
	}
	for _, s := range t.Sites {
		add(s.Router, s.Name, s.Delay)
	}
	for _, p := range t.Probes {
		add(p.Router, p.Name, p.Delay)
	}
	if t.Ops != nil {
		add(t.Ops.Router, OpsName, t.Ops.Delay)
	}
	return ws
}

// Wire returns the link between a and b.
func (t *Topology) Wire(a, b string) (Wire, bool) {
	for _, w := range t.Wires() {
		if p, ok := w.Peer(a); ok && p == b {
			return w, true
		}
	}
	return Wire{}, false
}

// Uplink returns the one link of a site, probe or the ops host.
func (t *Topology) Uplink(node string) (Wire, bool) {
	for _, w := range t.Wires() {
		if w.B == node {
			if n, _ := t.Node(node); n.Kind != KindRouter {
				return w, true
			}
		}
	}
	return Wire{}, false
}

// SiteByAS returns the site that owns as.
func (t *Topology) SiteByAS(as uint32) (Site, bool) {
	for _, s := range t.Sites {
		if s.AS == as {
			return s, true
		}
	}
	return Site{}, false
}

// NodeByAS returns the router or site that owns as.
func (t *Topology) NodeByAS(as uint32) (Node, bool) {
	for _, n := range t.nodes() {
		if n.AS == as && n.AS != 0 {
			return n, true
		}
	}
	return Node{}, false
}

// RegionsOf lists the regions behind router.
func (t *Topology) RegionsOf(router string) []Region {
	var rs []Region
	for _, r := range t.Regions {
		if r.Router == router {
			rs = append(rs, r)
		}
	}
	return rs
}

// OpsAddr is the operations host's address, where the aggregator listens.
func (t *Topology) OpsAddr() (netip.Addr, bool) {
	w, ok := t.Uplink(OpsName)
	if !ok {
		return netip.Addr{}, false
	}
	return w.AddrB(), true
}

// Identity is what site answers to CHAOS and NSID queries.
func Identity(site string) string { return site + ".lab" }

// SiteRegex extracts the site code from an Identity.
const SiteRegex = `^([a-z][a-z0-9-]*)\.lab$`
