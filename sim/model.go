// Package sim is a model, not a measurement: a simulated anycast DNS service
// and a simulated global fleet of probes that "measure" it, for demos, tests
// and capacity planning of an aggregator. Nothing here sends a packet to the
// service; its address (192.0.2.53, a documentation address) is only a string
// in the records.
//
// The model:
//   - Sites: an anycast service announced from a handful of airports on
//     several continents (DefaultSites), each answering with an identity such
//     as "ns1.nl-ams.example".
//   - Probes are placed where people and networks are: cities are drawn with
//     a weight that grows with the square of their number of airports in the
//     embedded site table (so that hubs outweigh the many one-strip towns), and
//     each probe gets a little jitter around its city.
//   - Each probe sits in a simulated network (an ASN from the private range);
//     networks have a home city and take the probes near it, so the probes of
//     one ASN are near each other, and a city is served by a few networks.
//   - Routing is BGP-like and per network: most networks reach the site
//     nearest to their home, some (20%) the second nearest and some (10%) the
//     third. Withdraw moves a site's networks to their next choice; Prepend
//     moves a share of the networks whose best is that site (deterministic per
//     network); Restore undoes both.
//   - RTT is the great-circle distance at 2/3 c, round trip, times the
//     network's path inflation (1.2 to 2.5), plus the probe's last-mile delay
//     and jitter; a small share of measurements time out.
//
// Everything is deterministic given the seed and the measurement times: the
// same seed gives the same probes, networks, catchment and records.
package sim

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// DefaultSites are the simulated service's sites: two or more per continent
// where a real anycast DNS operator would be.
var DefaultSites = []string{"ams", "fra", "lhr", "iad", "sjc", "gru", "sin", "nrt", "syd", "jnb"}

// Defaults of Config.
const (
	DefaultProbes    = 1000
	DefaultTarget    = "anycast-sim"
	DefaultErrorRate = 0.01
	// Addr is the simulated service's address: a documentation address,
	// never dialled.
	Addr = "192.0.2.53"
	// QName is what the simulated probes "ask": the CHAOS id.server. query.
	QName = "id.server."
	// firstASN starts the private 16-bit range (RFC 6996), so that no
	// simulated network is mistaken for a real one.
	firstASN = 64512
	maxASNs  = 1022
)

// Config sets up a Model. Zero values take defaults.
type Config struct {
	Seed   uint64
	Probes int      // DefaultProbes
	ASNs   int      // a quarter of the probes, at least 20 and at most 400
	Sites  []string // DefaultSites; codes the site table resolves
	Target string   // the target name records carry; DefaultTarget
	// ErrorRate is the share of measurements that time out; 0 means
	// DefaultErrorRate, a negative value none.
	ErrorRate float64
}

// Site is one site of the simulated service.
type Site struct {
	Code     string
	Identity string // what the site answers to id.server.
	Country  string
	Lat, Lon float64
}

// Probe is one simulated probe.
type Probe struct {
	Name       string // unique, e.g. "sim-0042-lhr"
	Lat, Lon   float64
	Country    string
	ASN        uint32
	LastMileMs float64
	// Interval is how often the probe measures in the demo: 10 to 30 s.
	Interval time.Duration
	// Offset places the probe's first measurement in its interval, so the
	// fleet does not measure in bursts.
	Offset time.Duration
	asn    int // index into Model.asns
}

// network is one simulated ASN.
type network struct {
	number    uint32
	lat, lon  float64
	inflation float64
	prefs     []int   // site indexes, most preferred first
	stick     float64 // [0,1): below the prepend share, a prepend moves it
}

// Model is the simulated service, fleet and routing. It is safe for
// concurrent use; the routing changes take effect for measurements made
// after them.
type Model struct {
	seed    uint64
	target  string
	errRate float64
	sites   []Site
	nets    []network
	probes  []Probe

	mu        sync.RWMutex
	withdrawn map[int]bool
	prepended map[int]int // site -> prepends
}

// city is a place probes are drawn from: the airports of one city (or one
// airport that names no city).
type city struct {
	code     string // its first airport, for probe names
	country  string
	lat, lon float64
	weight   float64
}

// New builds the model from the site table (sites.Default() if nil).
func New(cfg Config, table *sites.Table) (*Model, error) {
	if table == nil {
		table = sites.Default()
	}
	if cfg.Probes == 0 {
		cfg.Probes = DefaultProbes
	}
	if cfg.Probes < 0 || cfg.Probes > 1_000_000 {
		return nil, fmt.Errorf("sim: %d probes: use 1 to 1000000", cfg.Probes)
	}
	if cfg.ASNs == 0 {
		cfg.ASNs = min(max(cfg.Probes/4, 20), 400)
	}
	if cfg.ASNs < 1 || cfg.ASNs > maxASNs {
		return nil, fmt.Errorf("sim: %d networks: use 1 to %d", cfg.ASNs, maxASNs)
	}
	if len(cfg.Sites) == 0 {
		cfg.Sites = DefaultSites
	}
	if cfg.Target == "" {
		cfg.Target = DefaultTarget
	}
	switch {
	case cfg.ErrorRate == 0:
		cfg.ErrorRate = DefaultErrorRate
	case cfg.ErrorRate < 0:
		cfg.ErrorRate = 0
	case cfg.ErrorRate > 1:
		return nil, fmt.Errorf("sim: error rate %v: use a share from 0 to 1", cfg.ErrorRate)
	}
	m := &Model{seed: cfg.Seed, target: cfg.Target, errRate: cfg.ErrorRate,
		withdrawn: map[int]bool{}, prepended: map[int]int{}}
	seen := map[string]bool{}
	for _, code := range cfg.Sites {
		code = strings.ToLower(strings.TrimSpace(code))
		s, ok := table.Lookup(code)
		if !ok {
			return nil, fmt.Errorf("sim: site %q is not in the site table: use IATA airport codes such as ams", code)
		}
		if seen[code] {
			return nil, fmt.Errorf("sim: site %q is listed twice", code)
		}
		seen[code] = true
		m.sites = append(m.sites, Site{Code: code, Country: s.Country, Lat: s.Lat, Lon: s.Lon,
			Identity: "ns1." + strings.ToLower(s.Country) + "-" + code + ".example"})
	}

	cities := citiesOf(table)
	if len(cities) == 0 {
		return nil, errors.New("sim: the site table has no airports to place probes at")
	}
	pick := weighted(cities)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i := range cfg.ASNs {
		c := cities[pick(rng)]
		n := network{number: uint32(firstASN + i), lat: c.lat, lon: c.lon,
			inflation: 1.2 + 1.3*rng.Float64(), stick: rng.Float64()}
		n.prefs = m.byDistance(c.lat, c.lon)
		// The BGP-like rule: the nearest site, unless the network's
		// peering makes the second or third nearest win.
		switch u := rng.Float64(); {
		case u < 0.1 && len(n.prefs) > 2:
			n.prefs[0], n.prefs[2] = n.prefs[2], n.prefs[0]
		case u < 0.3 && len(n.prefs) > 1:
			n.prefs[0], n.prefs[1] = n.prefs[1], n.prefs[0]
		}
		m.nets = append(m.nets, n)
	}
	for i := range cfg.Probes {
		c := cities[pick(rng)]
		lat := clamp(c.lat+(rng.Float64()-0.5)*0.4, -89.9, 89.9)
		lon := wrapLon(c.lon + (rng.Float64()-0.5)*0.4)
		p := Probe{
			Name:       fmt.Sprintf("sim-%04d-%s", i, c.code),
			Lat:        round(lat, 4),
			Lon:        round(lon, 4),
			Country:    c.country,
			LastMileMs: 1 + math.Min(rng.ExpFloat64()*4, 40),
			Interval:   10*time.Second + time.Duration(rng.IntN(21))*time.Second,
		}
		p.Offset = time.Duration(rng.Int64N(int64(p.Interval)))
		p.asn = m.nearNetwork(lat, lon, rng)
		p.ASN = m.nets[p.asn].number
		m.probes = append(m.probes, p)
	}
	return m, nil
}

// citiesOf groups the table's airports by country and city, in a fixed order.
func citiesOf(table *sites.Table) []city {
	type acc struct {
		city
		n        int
		lat, lon float64
	}
	groups := map[string]*acc{}
	var keys []string
	for _, a := range table.Airports() {
		key := a.Country + "|" + a.City
		if a.City == "" {
			key = "|" + a.Code
		}
		g, ok := groups[key]
		if !ok {
			g = &acc{city: city{code: a.Code, country: a.Country}}
			groups[key] = g
			keys = append(keys, key)
		}
		g.n++
		g.lat += a.Lat
		g.lon += a.Lon
	}
	slices.Sort(keys)
	out := make([]city, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		c := g.city
		c.lat, c.lon = g.lat/float64(g.n), g.lon/float64(g.n)
		c.weight = float64(g.n * g.n)
		out = append(out, c)
	}
	return out
}

// weighted returns a sampler of cities by weight.
func weighted(cs []city) func(*rand.Rand) int {
	cum := make([]float64, len(cs))
	var sum float64
	for i, c := range cs {
		sum += c.weight
		cum[i] = sum
	}
	return func(rng *rand.Rand) int {
		i, _ := slices.BinarySearch(cum, rng.Float64()*sum)
		return min(i, len(cs)-1)
	}
}

// byDistance lists the sites by distance from a place, nearest first.
func (m *Model) byDistance(lat, lon float64) []int {
	idx := make([]int, len(m.sites))
	d := make([]float64, len(m.sites))
	for i, s := range m.sites {
		idx[i], d[i] = i, DistanceKm(lat, lon, s.Lat, s.Lon)
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(d[a], d[b]) })
	return idx
}

// nearNetwork picks a probe's network among the three whose homes are
// nearest: mostly the nearest, since a city has a few networks but one
// tends to dominate.
func (m *Model) nearNetwork(lat, lon float64, rng *rand.Rand) int {
	best := [3]int{-1, -1, -1}
	var dist [3]float64
	for i, n := range m.nets {
		d := DistanceKm(lat, lon, n.lat, n.lon)
		for k := range best {
			if best[k] < 0 || d < dist[k] {
				copy(best[k+1:], best[k:2])
				copy(dist[k+1:], dist[k:2])
				best[k], dist[k] = i, d
				break
			}
		}
	}
	switch u := rng.Float64(); {
	case u < 0.15 && best[2] >= 0:
		return best[2]
	case u < 0.4 && best[1] >= 0:
		return best[1]
	}
	return best[0]
}

// Sites returns the service's sites.
func (m *Model) Sites() []Site { return slices.Clone(m.sites) }

// Probes returns the fleet.
func (m *Model) Probes() []Probe { return slices.Clone(m.probes) }

// Target is the target name the records carry.
func (m *Model) Target() string { return m.target }

// ASNs returns the number of simulated networks.
func (m *Model) ASNs() int { return len(m.nets) }

func (m *Model) site(code string) (int, error) {
	for i, s := range m.sites {
		if s.Code == code {
			return i, nil
		}
	}
	codes := make([]string, len(m.sites))
	for i, s := range m.sites {
		codes[i] = s.Code
	}
	return -1, fmt.Errorf("sim: no site %q: the sites are %s", code, strings.Join(codes, ", "))
}

// Withdraw stops announcing the service at a site: each network it served
// moves to its next choice. Withdrawing the last announced site is refused.
func (m *Model) Withdraw(code string) error {
	i, err := m.site(code)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.withdrawn[i] && len(m.withdrawn) == len(m.sites)-1 {
		return fmt.Errorf("sim: %s is the last announced site: withdrawing it would take the service down", code)
	}
	m.withdrawn[i] = true
	return nil
}

// Prepend prepends the service's AS n times at a site (n from 1 to 10;
// 0 removes the prepend): a share 1-2^-n of the networks whose best is that
// site move to their next choice, the same networks every time.
func (m *Model) Prepend(code string, n int) error {
	i, err := m.site(code)
	if err != nil {
		return err
	}
	if n < 0 || n > 10 {
		return fmt.Errorf("sim: prepend %d times: use 0 to 10", n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n == 0 {
		delete(m.prepended, i)
	} else {
		m.prepended[i] = n
	}
	return nil
}

// Restore announces every site again, without prepends.
func (m *Model) Restore() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.withdrawn)
	clear(m.prepended)
}

// siteOf is the site a network reaches now; -1 when none is announced.
// The caller holds mu.
func (m *Model) siteOf(n *network) int {
	first := -1
	for _, s := range n.prefs {
		if m.withdrawn[s] {
			continue
		}
		if first < 0 {
			first = s
		}
		if p := m.prepended[s]; p > 0 && n.stick < 1-math.Pow(2, -float64(p)) {
			continue // a longer path here: the next choice wins
		}
		return s
	}
	return first // every choice prepended away: the least bad one
}

// SiteOf returns the site probe i (an index into Probes) reaches now.
func (m *Model) SiteOf(i int) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if s := m.siteOf(&m.nets[m.probes[i].asn]); s >= 0 {
		return m.sites[s].Code
	}
	return ""
}

// fibreKmPerMs is how far light goes in fibre (2/3 c) in a millisecond.
const fibreKmPerMs = 299792.458 * 2 / 3 / 1000

// FibreBoundMs is the least round trip over km of fibre: no RTT is lower.
func FibreBoundMs(km float64) float64 { return 2 * km / fibreKmPerMs }

// Measure returns probe i's (an index into Probes) measurement at t, with
// the routing as it is now. The same model, probe and t give the same
// record, id included.
func (m *Model) Measure(i int, t time.Time) result.Record {
	p := &m.probes[i]
	rng := rand.New(rand.NewPCG(mix(m.seed, uint64(i)), uint64(t.UnixNano())))
	lat, lon := p.Lat, p.Lon
	r := result.Record{
		ID:      uuidV7(t, rng),
		Time:    t.UTC(),
		Probe:   p.Name,
		Target:  m.target,
		Method:  result.MethodDNS,
		AF:      4,
		Addr:    Addr,
		Lat:     &lat,
		Lon:     &lon,
		Country: p.Country,
		ASN:     p.ASN,
		DNS:     &result.DNS{QName: QName, QClass: "CH", QType: "TXT"},
	}
	m.mu.RLock()
	s := m.siteOf(&m.nets[p.asn])
	m.mu.RUnlock()
	if s < 0 || rng.Float64() < m.errRate {
		r.Error = "simulated: no answer within the timeout"
		r.ErrorKind = result.KindTimeout
		return r
	}
	site := &m.sites[s]
	km := DistanceKm(p.Lat, p.Lon, site.Lat, site.Lon)
	rtt := FibreBoundMs(km)*m.nets[p.asn].inflation + p.LastMileMs + rng.ExpFloat64()*2
	r.RTTMs = round(rtt, 3)
	r.Site = site.Code
	r.Identity = site.Identity
	r.DNS.Rcode = "NOERROR"
	r.DNS.NSID = site.Identity
	r.DNS.Size = 80 + len(site.Identity)
	return r
}

// mix combines two values into a well-spread seed (SplitMix64's finaliser).
func mix(a, b uint64) uint64 {
	z := a ^ (b+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uuidV7 is a UUIDv7 made from t and rng rather than the wall clock and
// crypto/rand, so that a record's id is as reproducible as the record.
func uuidV7(t time.Time, rng *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(t.UnixMilli())<<16|rng.Uint64()&0xffff)
	binary.BigEndian.PutUint64(b[8:16], rng.Uint64())
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return uuid.UUID(b).String()
}

const earthRadiusKm = 6371.0088

// DistanceKm is the great-circle (haversine) distance.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dlat := (lat2 - lat1) * rad
	dlon := (lon2 - lon1) * rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func wrapLon(lon float64) float64 {
	switch {
	case lon > 180:
		return lon - 360
	case lon < -180:
		return lon + 360
	}
	return lon
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
