// Package gate is catchmap's regression gate for CI: it freezes a target's
// catchment into a snapshot (a stable, versioned, diff-friendly JSON file),
// and judges a later catchment against that baseline with declarative rules
// (how many probes may move, which sites must keep which share, which
// regions must stay on which sites, how far RTT may rise), reporting each
// rule in plain words, as Markdown, as JUnit XML or as JSON.
//
// Catchments come from maps; gate only reads them. Client fetches results
// and timelines from an aggregator and posts annotations.
package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// SnapshotVersion is the version of the snapshot format this package writes
// and the only one it reads.
const SnapshotVersion = 1

// Snapshot is a target's catchment in one window, as the gate compares it.
// JSON keys are in alphabetical order and every list is sorted, so that two
// snapshots diff line by line.
type Snapshot struct {
	Cells []SnapshotCell `json:"cells"` // by cell id
	// ErrorShare is failed results / results in the window.
	ErrorShare float64 `json:"error_share"`
	// From and To are the window: as asked of the aggregator, or the first
	// and last record of a file.
	From       time.Time       `json:"from"`
	ProbeCount int             `json:"probe_count"` // probes with a record in the window
	Probes     []SnapshotProbe `json:"probes"`      // by id
	Resolution int             `json:"resolution"`  // H3 resolution of the cells
	Results    int             `json:"results"`
	// RTTP50 is the median of the served probes' median RTTs.
	RTTP50  *float64       `json:"rtt_p50_ms"`
	Served  int            `json:"served"` // probes with a successful result naming a site
	Sites   []SnapshotSite `json:"sites"`  // by code
	Target  string         `json:"target"`
	To      time.Time      `json:"to"`
	Version int            `json:"version"`
}

// SnapshotCell is one H3 cell: its dominant site and that site's share.
type SnapshotCell struct {
	Cell   string   `json:"cell"`
	Probes int      `json:"probes"` // served probes in the cell
	RTTP50 *float64 `json:"rtt_p50_ms"`
	RTTP90 *float64 `json:"rtt_p90_ms"`
	Share  float64  `json:"share"`
	Site   string   `json:"site"`
}

// SnapshotSite is one site: its share of the served probes.
type SnapshotSite struct {
	Probes int      `json:"probes"`
	RTTP50 *float64 `json:"rtt_p50_ms"`
	Share  float64  `json:"share"`
	Site   string   `json:"site"`
}

// SnapshotProbe is one probe: where it is and which site served it.
type SnapshotProbe struct {
	Cell    string   `json:"cell"` // "" when unlocated
	Country string   `json:"country"`
	Errors  int      `json:"errors"`
	ID      string   `json:"id"`
	Lat     *float64 `json:"lat"`
	Lon     *float64 `json:"lon"`
	Results int      `json:"results"`
	RTTMs   *float64 `json:"rtt_ms"` // median RTT from Site
	Site    string   `json:"site"`   // "" when unserved
}

// FromCatchment turns an H3 catchment (with its ProbeList, as Compute and
// Builder.Build fill it) into a snapshot.
func FromCatchment(c *maps.Catchment) (*Snapshot, error) {
	if c.By != maps.ByH3 {
		return nil, fmt.Errorf("snapshot of a catchment binned by %s: snapshots are binned by H3 cells", c.By)
	}
	s := &Snapshot{Version: SnapshotVersion, Target: c.Target, From: c.From.UTC(), To: c.To.UTC(),
		Resolution: c.Resolution, ProbeCount: c.Probes, Served: c.Probes - c.Unserved, Results: c.Results,
		RTTP50: c.RTTP50, Cells: []SnapshotCell{}, Sites: []SnapshotSite{}, Probes: []SnapshotProbe{}}
	for _, cs := range c.Cells {
		s.Cells = append(s.Cells, SnapshotCell{Cell: cs.Cell, Site: cs.Site, Share: round6(cs.Share),
			Probes: cs.Probes, RTTP50: cs.RTTP50, RTTP90: cs.RTTP90})
	}
	for _, ss := range c.Sites {
		s.Sites = append(s.Sites, SnapshotSite{Site: ss.Site, Share: round6(ss.Share), Probes: ss.Probes, RTTP50: ss.RTTP50})
	}
	errs := 0
	for _, p := range c.ProbeList {
		errs += p.Errors
		s.Probes = append(s.Probes, SnapshotProbe{ID: p.ID, Site: p.Site, RTTMs: p.RTTMedian, Lat: p.Lat, Lon: p.Lon,
			Country: p.Country, Cell: p.Cell, Results: p.Results, Errors: p.Errors})
	}
	if c.Results > 0 {
		s.ErrorShare = round6(float64(errs) / float64(c.Results))
	}
	s.sort()
	return s, nil
}

// round6 keeps shares to a millionth: enough for any probe count, and
// stable across platforms in golden files and diffs.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func (s *Snapshot) sort() {
	slices.SortFunc(s.Cells, func(a, b SnapshotCell) int { return strings.Compare(a.Cell, b.Cell) })
	slices.SortFunc(s.Sites, func(a, b SnapshotSite) int { return strings.Compare(a.Site, b.Site) })
	slices.SortFunc(s.Probes, func(a, b SnapshotProbe) int { return strings.Compare(a.ID, b.ID) })
}

// Take computes the snapshot of the records that each hands to its
// callback: a file read with result.ReadNDJSON, or Client.Results. opts
// must bin by H3 (the default). A window with no records is an error, and
// so are records of several targets when opts names none.
func Take(opts maps.Options, each func(fn func(*result.Record) error) error) (*Snapshot, error) {
	b, err := maps.NewBuilder(opts, nil)
	if err != nil {
		return nil, err
	}
	if err := each(func(r *result.Record) error { b.Add(r); return nil }); err != nil {
		return nil, err
	}
	c := b.Build()
	if c.Results == 0 {
		return nil, ErrNoResults
	}
	if c.Target == "" {
		return nil, errors.New("the results are of several targets: choose one with --target")
	}
	return FromCatchment(c)
}

// ErrNoResults means a window held no result of the target.
var ErrNoResults = errors.New("no results in the window: check the target name (as in the plan) and that probes are running")

// Site returns the snapshot's entry for a site code, and whether it has one.
func (s *Snapshot) Site(code string) (SnapshotSite, bool) {
	i := slices.IndexFunc(s.Sites, func(x SnapshotSite) bool { return x.Site == code })
	if i < 0 {
		return SnapshotSite{}, false
	}
	return s.Sites[i], true
}

// Write writes s as JSON with one key per line at the top, and one list
// element per line, keys sorted everywhere.
func (s *Snapshot) Write(w io.Writer) error {
	top, err := sortedObject(s)
	if err != nil {
		return fmt.Errorf("encoding the snapshot: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, k := range top.keys {
		fmt.Fprintf(&buf, "  %q: ", k)
		v := top.vals[k]
		var list []json.RawMessage
		if len(v) > 0 && v[0] == '[' && json.Unmarshal(v, &list) == nil && len(list) > 0 {
			buf.WriteString("[\n")
			for j, el := range list {
				line, err := sortedJSON(el)
				if err != nil {
					return fmt.Errorf("encoding the snapshot: %w", err)
				}
				buf.WriteString("    ")
				buf.Write(line)
				if j < len(list)-1 {
					buf.WriteByte(',')
				}
				buf.WriteByte('\n')
			}
			buf.WriteString("  ]")
		} else {
			buf.Write(v)
		}
		if i < len(top.keys)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("}\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing the snapshot: %w", err)
	}
	return nil
}

type object struct {
	keys []string
	vals map[string]json.RawMessage
}

// sortedObject encodes v, an object, and splits it into its sorted keys.
func sortedObject(v any) (object, error) {
	raw, err := marshal(v)
	if err != nil {
		return object{}, err
	}
	o := object{vals: map[string]json.RawMessage{}}
	if err := json.Unmarshal(raw, &o.vals); err != nil {
		return object{}, err
	}
	for k := range o.vals {
		o.keys = append(o.keys, k)
	}
	slices.Sort(o.keys)
	return o, nil
}

// sortedJSON re-encodes one JSON value compactly: objects (the only nesting
// a snapshot has at this level) come out with sorted keys, since
// encoding/json sorts map keys.
func sortedJSON(raw json.RawMessage) ([]byte, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keep numbers exactly as first encoded
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return marshal(v)
}

// marshal is json.Marshal without HTML escaping or the trailing newline:
// targets and ids stay as typed.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// MaxSnapshotBytes bounds a snapshot read, so a wrong file cannot exhaust
// memory; a snapshot of 100 000 probes is about 25 MB.
const MaxSnapshotBytes = 256 << 20

// ReadSnapshot reads a snapshot written by Write (or by hand). It refuses
// other versions and unknown keys, since a misread baseline would judge a
// change wrongly.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the snapshot: %w", err)
	}
	if len(data) > MaxSnapshotBytes {
		return nil, fmt.Errorf("snapshot is larger than %d bytes: is this a snapshot file?", MaxSnapshotBytes)
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a snapshot (JSON object expected): %w", err)
	}
	if head.Version == nil {
		return nil, errors.New("not a snapshot: it has no \"version\": make one with catchmap snapshot")
	}
	if *head.Version != SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is unknown to this catchmap (it reads version %d): take the baseline again with this catchmap, or use the catchmap that wrote it",
			*head.Version, SnapshotVersion)
	}
	s := new(Snapshot)
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(s); err != nil {
		return nil, fmt.Errorf("snapshot version %d: %w", SnapshotVersion, err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	s.sort()
	return s, nil
}

// validate refuses what would make rules misjudge: unknown resolution,
// shares out of range, duplicate probes.
func (s *Snapshot) validate() error {
	if s.Resolution < maps.MinRes || s.Resolution > maps.MaxRes {
		return fmt.Errorf("snapshot resolution %d is out of range %d..%d", s.Resolution, maps.MinRes, maps.MaxRes)
	}
	share := func(what string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("snapshot %s %v is not a share in [0, 1]", what, v)
		}
		return nil
	}
	if err := share("error_share", s.ErrorShare); err != nil {
		return err
	}
	for _, x := range s.Sites {
		if err := share("share of site "+x.Site, x.Share); err != nil {
			return err
		}
	}
	seen := make(map[string]bool, len(s.Probes))
	for _, p := range s.Probes {
		if p.ID == "" {
			return errors.New("snapshot lists a probe with no id")
		}
		if seen[p.ID] {
			return fmt.Errorf("snapshot lists probe %q twice", p.ID)
		}
		seen[p.ID] = true
		if (p.Lat == nil) != (p.Lon == nil) {
			return fmt.Errorf("snapshot probe %q has lat or lon but not both", p.ID)
		}
		if p.Lat != nil {
			if err := result.ValidLatLon(*p.Lat, *p.Lon); err != nil {
				return fmt.Errorf("snapshot probe %q: %w", p.ID, err)
			}
		}
	}
	return nil
}
