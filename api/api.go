// Package api is the contract between the aggregator and everything that
// talks to it: the JSON shapes of its HTTP API under /api/v1 and one typed
// client of them, shared by the server, the probe agent, the simulator,
// importers, the gate and the CLI. The client carries the base URL, the
// bearer token, JSON and gzip NDJSON bodies, and errors that hold the
// aggregator's own Error message and say whether a retry can help.
//
// It imports only the standard library, the record, the spec and the token
// packages, so that the probe agent stays free of cgo and of the
// aggregator's code.
package api

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"github.com/catchmap/catchmap/probe/spec"
)

// Prefix is the path every API route lives under.
const Prefix = "/api/v1"

// ProbeRegistration is the body of POST /api/v1/probes.
type ProbeRegistration struct {
	Name   string            `json:"name"`
	Lat    *float64          `json:"lat,omitempty"`
	Lon    *float64          `json:"lon,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// ProbeCreated answers a registration. The token is shown only here: the
// aggregator keeps its hash.
type ProbeCreated struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// Probe is a registered probe as GET /api/v1/probes lists it.
type Probe struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Lat      *float64          `json:"lat,omitempty"`
	Lon      *float64          `json:"lon,omitempty"`
	Country  string            `json:"country,omitempty"`
	ASN      uint32            `json:"asn,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	LastSeen *time.Time        `json:"last_seen,omitempty"`
	Addr     string            `json:"addr,omitempty"` // last address it uploaded from
	Revoked  bool              `json:"revoked,omitempty"`
}

// Target is one entry of the measurement plan.
type Target struct {
	spec.Spec `yaml:",inline"`
	// Name identifies the entry in maps and queries; it defaults to Target.
	Name     string        `json:"name,omitempty" yaml:"name,omitempty"`
	Interval spec.Duration `json:"interval,omitempty" yaml:"interval,omitempty"` // default 60s
	// Probes selects who runs it: empty or ["all"] for every probe, else
	// "key=value" labels, any of which selects a probe.
	Probes []string `json:"probes,omitempty" yaml:"probes,omitempty"`
	// Prefixes are the anycast prefixes the target lives in; BGP events
	// for them are shown beside its catchment.
	Prefixes []string `json:"prefixes,omitempty" yaml:"prefixes,omitempty"`
}

// Plan is the body of PUT/GET /api/v1/targets and of GET /api/v1/plan.
type Plan struct {
	Targets []Target `json:"targets"`
	// Refresh tells agents how often to fetch the plan again (plan only).
	Refresh spec.Duration `json:"refresh,omitempty"`
	// Version changes whenever the plan changes, so agents can skip work.
	Version string `json:"version,omitempty"`
}

// Lookup finds the plan entry a map or a query names: the entry of that
// name, else the one entry that measures that address (an entry's target,
// or its connect_to). An address two entries measure names neither.
func (p Plan) Lookup(name string) (*Target, bool) {
	for i := range p.Targets {
		if p.Targets[i].Name == name {
			return &p.Targets[i], true
		}
	}
	var found *Target
	for i := range p.Targets {
		host, _, err := p.Targets[i].DialHost()
		if err != nil || !sameHost(host, name) {
			continue
		}
		if found != nil {
			return nil, false
		}
		found = &p.Targets[i]
	}
	return found, found != nil
}

// sameHost compares host names as DNS does and addresses as addresses.
func sameHost(a, b string) bool {
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x.Unmap() == y.Unmap()
	}
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// Prefixes lists the anycast prefixes of every entry of the plan, in
// order, for the BGP events that belong on its timelines.
func (p Plan) Prefixes() []string {
	var out []string
	for _, t := range p.Targets {
		out = append(out, t.Prefixes...)
	}
	return out
}

// IngestResponse answers POST /api/v1/results.
type IngestResponse struct {
	Accepted  int `json:"accepted"`  // records in the batch
	Stored    int `json:"stored"`    // new records stored
	Duplicate int `json:"duplicate"` // ids already stored
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}

// Annotation marks a moment on a target's timeline.
type Annotation struct {
	ID     string    `json:"id,omitempty"`
	Time   time.Time `json:"time"`
	Target string    `json:"target,omitempty"` // empty: every target
	Text   string    `json:"text"`
}

// Event is a BGP update for an anycast prefix.
type Event struct {
	ID     string    `json:"id,omitempty"`
	Time   time.Time `json:"time"`
	Prefix string    `json:"prefix"`
	Kind   string    `json:"kind"` // EventAnnounce or EventWithdraw
	ASPath []uint32  `json:"as_path,omitempty"`
	Peer   string    `json:"peer,omitempty"`
	Source string    `json:"source,omitempty"` // SourceMRT or SourceBGP
}

// MaxEvents is the most events one POST /api/v1/events may carry.
const MaxEvents = 10_000

// Event kinds and sources.
const (
	EventAnnounce = "announce"
	EventWithdraw = "withdraw"
	SourceMRT     = "mrt"
	SourceBGP     = "bgp"
)

// DerivedID is a digest of the event and the route it is about, so that
// importing the same file twice, or a file that overlaps what the listener
// saw, stores each update once.
func (e *Event) DerivedID(route netip.Prefix) string {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(e.Time.UnixMicro()))
	h.Write(b[:])
	for _, s := range []string{e.Prefix, route.String(), e.Kind, e.Peer, e.Source} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, as := range e.ASPath {
		binary.BigEndian.PutUint32(b[:4], as)
		h.Write(b[:4])
	}
	return "bgp-" + hex.EncodeToString(h.Sum(nil)[:16])
}
