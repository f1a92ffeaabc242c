package atlas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/probe/spec"
	"github.com/miekg/dns"
)

// Measurement types catchmap creates.
const (
	TypeDNS  = "dns"
	TypePing = "ping"
)

// Definition is one measurement definition as POST /api/v2/measurements/
// takes it: what to measure, in one address family.
type Definition struct {
	Type        string `json:"type"`
	AF          int    `json:"af"`
	Target      string `json:"target"`
	Description string `json:"description"`
	// Interval is in seconds; zero for a one-off.
	Interval int      `json:"interval,omitempty"`
	Tags     []string `json:"tags,omitempty"`

	// dns
	QueryClass    string `json:"query_class,omitempty"` // IN or CHAOS
	QueryType     string `json:"query_type,omitempty"`
	QueryArgument string `json:"query_argument,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // UDP or TCP
	SetNSIDBit    bool   `json:"set_nsid_bit,omitempty"`
	IncludeQbuf   bool   `json:"include_qbuf,omitempty"`
	IncludeAbuf   bool   `json:"include_abuf,omitempty"`

	// ping
	Packets int `json:"packets,omitempty"`
}

// Selection is one entry of a request's "probes": where to measure from.
type Selection struct {
	// Type is area, country, asn, prefix or probes.
	Type string `json:"type"`
	// Value is the area (WW, West, North-Central, South-Central,
	// North-East, South-East), the ISO country code, the AS number, the
	// prefix, or a comma-separated list of probe ids.
	Value string `json:"value"`
	// Requested is how many probes to take; for probes, zero means all
	// of the list.
	Requested int        `json:"requested"`
	Tags      *TagFilter `json:"tags,omitempty"`
}

// TagFilter keeps the probes with all Include tags and none of Exclude.
type TagFilter struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// CreateRequest is the body of POST /api/v2/measurements/.
type CreateRequest struct {
	Definitions []Definition `json:"definitions"`
	Probes      []Selection  `json:"probes"`
	IsOneoff    bool         `json:"is_oneoff,omitempty"`
}

// ProbesRequested is the most probes the request can get.
func (r *CreateRequest) ProbesRequested() int {
	n := 0
	for _, s := range r.Probes {
		n += s.Requested
	}
	return n
}

// Query is a DNS question in Atlas's words.
type Query struct {
	Class string // IN or CHAOS
	Type  string // TXT for catchmap's identities
	Name  string
}

// The CHAOS questions anycast DNS services answer with their site.
var (
	HostnameBind = Query{Class: "CHAOS", Type: "TXT", Name: "hostname.bind"}
	IDServer     = Query{Class: "CHAOS", Type: "TXT", Name: "id.server"}
)

// QueryFor is the question id expects an answer to, in Atlas's words, so
// that the measurement asks what the converter will read: a preset's
// question, or the one a spec gives.
func QueryFor(id *spec.Identifier) (Query, error) {
	q, err := id.DNSQuestion()
	if err != nil {
		return Query{}, err
	}
	class := map[uint16]string{dns.ClassINET: "IN", dns.ClassCHAOS: "CHAOS"}[q.Qclass]
	if class == "" {
		return Query{}, fmt.Errorf("DNS class %s: Atlas asks IN or CHAOS", dns.Class(q.Qclass))
	}
	return Query{Class: class, Type: dns.Type(q.Qtype).String(), Name: strings.TrimSuffix(q.Name, ".")}, nil
}

// Spec is what a plan entry asks of Atlas, for every address family of
// its target.
type Spec struct {
	// Target is the anycast service: an address or a name.
	Target string
	// AFs are the address families to measure: 4, 6 or both.
	AFs []int
	// Type is TypeDNS or TypePing.
	Type string
	// Query is the DNS question; the NSID bit is always set.
	Query Query
	// TCP asks DNS over TCP (which costs twice as much).
	TCP bool
	// Probes selects the probes; Requests adds the tag that keeps only
	// probes whose address family works.
	Probes []Selection
	// Interval between results of a probe; zero for a one-off.
	Interval time.Duration
	// Description names the measurements on Atlas; empty: one is made up.
	Description string
	// Tags are measurement tags, to find catchmap's measurements again.
	Tags []string
}

// Areas are Atlas's areas for Selection.Value.
var Areas = []string{"WW", "West", "North-Central", "South-Central", "North-East", "South-East"}

// Requests checks s and returns one request per address family: Atlas sets
// af per definition, and a request's probe selections apply to all its
// definitions, so only separate requests can ask IPv4 of probes whose IPv4
// works and IPv6 of probes whose IPv6 works.
func (s Spec) Requests() ([]CreateRequest, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("RIPE Atlas measurement of %q: %w", s.Target, err)
	}
	sels := make([]Selection, len(s.Probes))
	for i, sel := range s.Probes {
		n, err := normalize(sel)
		if err != nil {
			return nil, fmt.Errorf("RIPE Atlas measurement of %q: probes %d (%s %q): %w", s.Target, i+1, sel.Type, sel.Value, err)
		}
		sels[i] = n
	}
	var reqs []CreateRequest
	for _, af := range s.AFs {
		req := CreateRequest{Definitions: []Definition{s.definition(af)}, IsOneoff: s.Interval == 0}
		tag := fmt.Sprintf("system-ipv%d-works", af)
		for _, sel := range sels {
			f := TagFilter{Include: []string{tag}}
			if sel.Tags != nil {
				f.Include = append(slices.Clone(sel.Tags.Include), tag)
				f.Exclude = slices.Clone(sel.Tags.Exclude)
			}
			sel.Tags = &f
			req.Probes = append(req.Probes, sel)
		}
		reqs = append(reqs, req)
	}
	return reqs, nil
}

func (s Spec) check() error {
	if strings.TrimSpace(s.Target) == "" {
		return errors.New("no target: give the service's address or name")
	}
	if len(s.AFs) == 0 {
		return errors.New("no address family: give 4, 6 or both")
	}
	for i, af := range s.AFs {
		if af != 4 && af != 6 {
			return fmt.Errorf("address family %d: only 4 and 6 exist", af)
		}
		if slices.Contains(s.AFs[:i], af) {
			return fmt.Errorf("address family %d is given twice", af)
		}
	}
	switch s.Type {
	case TypeDNS:
		if s.Query.Name == "" || s.Query.Type == "" {
			return errors.New("a DNS measurement needs a question: name and type")
		}
		if s.Query.Class != "IN" && s.Query.Class != "CHAOS" {
			return fmt.Errorf("DNS class %q: Atlas asks IN or CHAOS", s.Query.Class)
		}
	case TypePing:
	default:
		return fmt.Errorf("measurement type %q: catchmap creates %s or %s measurements", s.Type, TypeDNS, TypePing)
	}
	if len(s.Probes) == 0 {
		return errors.New("no probes: select them by area, country, asn, prefix or probes")
	}
	if s.Interval < 0 || s.Interval%time.Second != 0 {
		return fmt.Errorf("interval %v: give whole seconds, or none for a one-off", s.Interval)
	}
	return nil
}

func (s Spec) definition(af int) Definition {
	d := Definition{Type: s.Type, AF: af, Target: s.Target, Description: s.Description,
		Interval: int(s.Interval / time.Second), Tags: s.Tags}
	what := "ping"
	if s.Type == TypeDNS {
		d.QueryClass, d.QueryType, d.QueryArgument = s.Query.Class, s.Query.Type, s.Query.Name
		d.Protocol = "UDP"
		if s.TCP {
			d.Protocol = "TCP"
		}
		d.SetNSIDBit, d.IncludeQbuf, d.IncludeAbuf = true, true, true
		what = s.Query.Class + " " + s.Query.Type + " " + s.Query.Name
	}
	if d.Description == "" {
		d.Description = fmt.Sprintf("catchmap: %s to %s over IPv%d", what, s.Target, af)
	}
	return d
}

// normalize checks a selection and writes its value as Atlas wants it.
func normalize(s Selection) (Selection, error) {
	s.Value = strings.TrimSpace(s.Value)
	if s.Requested < 0 || (s.Requested == 0 && s.Type != "probes") {
		return s, fmt.Errorf("requested %d: ask for one probe or more", s.Requested)
	}
	switch s.Type {
	case "area":
		i := slices.IndexFunc(Areas, func(a string) bool { return strings.EqualFold(a, s.Value) })
		if i < 0 {
			return s, fmt.Errorf("no such area: Atlas has %s", strings.Join(Areas, ", "))
		}
		s.Value = Areas[i]
	case "country":
		if len(s.Value) != 2 || strings.Trim(strings.ToUpper(s.Value), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return s, errors.New("give a two-letter ISO country code, such as NL")
		}
		s.Value = strings.ToUpper(s.Value)
	case "asn":
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(s.Value), "AS"), 10, 32)
		if err != nil || n == 0 {
			return s, errors.New("give an AS number, such as 3320")
		}
		s.Value = strconv.FormatUint(n, 10)
	case "prefix":
		p, err := netip.ParsePrefix(s.Value)
		if err != nil {
			return s, fmt.Errorf("give a prefix, such as 193.0.0.0/21: %w", err)
		}
		s.Value = p.Masked().String()
	case "probes":
		var ids []string
		for f := range strings.SplitSeq(s.Value, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 63)
			if err != nil || n == 0 {
				return s, fmt.Errorf("probe id %q: give a comma-separated list of probe ids", strings.TrimSpace(f))
			}
			ids = append(ids, strconv.FormatUint(n, 10))
		}
		s.Value = strings.Join(ids, ",")
		if s.Requested == 0 || s.Requested > len(ids) {
			s.Requested = len(ids)
		}
	default:
		return s, errors.New("the type is area, country, asn, prefix or probes")
	}
	return s, nil
}

// Create creates the measurements of req and returns their ids, one per
// definition in order. Like every request it is tried again after a 5xx
// or a network error; when a failed try had reached Atlas, that makes a
// second measurement, which the definitions' tags find again.
func (c *Client) Create(ctx context.Context, req CreateRequest) ([]int64, error) {
	const op = "creating a RIPE Atlas measurement"
	if err := c.needKey(op); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	b, err := c.call(ctx, op, http.MethodPost, c.endpoint("measurements"), body)
	if err != nil {
		return nil, err
	}
	ids, err := decodeCreated(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(ids) != len(req.Definitions) {
		return nil, fmt.Errorf("%s: Atlas created %d measurements (%v) for %d definitions: stop the extra ones on Atlas", op, len(ids), ids, len(req.Definitions))
	}
	return ids, nil
}

// decodeCreated reads the answer to a creation: {"measurements": [ids]}.
func decodeCreated(b []byte) ([]int64, error) {
	var v struct {
		Measurements []int64 `json:"measurements"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("the answer is not the documented {\"measurements\": [ids]}: %w", err)
	}
	if len(v.Measurements) == 0 {
		return nil, errors.New("the answer names no measurement")
	}
	for _, id := range v.Measurements {
		if id <= 0 {
			return nil, fmt.Errorf("the answer names measurement %d: ids are positive", id)
		}
	}
	return v.Measurements, nil
}

// Stop stops measurement id (DELETE /api/v2/measurements/{id}/).
func (c *Client) Stop(ctx context.Context, id int64) error {
	op := "stopping RIPE Atlas measurement " + idString(id)
	if id <= 0 {
		return fmt.Errorf("%s: %w", op, errNoID)
	}
	if err := c.needKey(op); err != nil {
		return err
	}
	_, err := c.call(ctx, op, http.MethodDelete, c.endpoint("measurements", idString(id)), nil)
	return err
}
