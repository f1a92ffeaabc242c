package globalping

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Measurement types catchmap creates.
const (
	TypeDNS  = "dns"
	TypeHTTP = "http"
)

// Location is one entry of a request's locations: where to measure from.
// Its fields must all hold for a probe (they AND together); at least one
// besides Limit is set.
type Location struct {
	// Magic is Globalping's fuzzy match of any of the fields below in one
	// string, with + for AND: "Germany", "AS3320", "Berlin+Germany",
	// "eyeball-network".
	Magic string `json:"magic,omitempty"`
	// Continent is a two-letter code (AF, AN, AS, EU, NA, OC, SA).
	Continent string `json:"continent,omitempty"`
	// Region is a UN M49 region name, e.g. "Western Europe".
	Region string `json:"region,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code.
	Country string `json:"country,omitempty"`
	// State is a two-letter US state code.
	State   string `json:"state,omitempty"`
	City    string `json:"city,omitempty"`
	ASN     uint32 `json:"asn,omitempty"`
	Network string `json:"network,omitempty"`
	// Tags are probe tags, e.g. "eyeball-network", "datacenter-network",
	// "aws-eu-west-1".
	Tags []string `json:"tags,omitempty"`
	// Limit is how many probes to take here (1 when zero); it excludes
	// the request's Limit.
	Limit int `json:"limit,omitempty"`
}

// Where is what a plan entry says of the probes to use.
type Where struct {
	// Locations select the probes; none: anywhere.
	Locations []Location
	// Limit is how many probes to take in all, spread over the locations;
	// zero: one a location, or each location's own Limit.
	Limit int
}

// DNSOptions are a DNS measurement's options. The question's name is the
// request's Target; its class is always IN.
type DNSOptions struct {
	Query struct {
		Type string `json:"type"`
	} `json:"query"`
	// Resolver is the server asked: the anycast service.
	Resolver string `json:"resolver,omitempty"`
	Protocol string `json:"protocol,omitempty"` // UDP or TCP
	Port     int    `json:"port,omitempty"`
	// IPVersion is 4 or 6, for a resolver given by name only.
	IPVersion int `json:"ipVersion,omitempty"`
}

// HTTPOptions are an HTTP measurement's options. The request goes to the
// request's Target.
type HTTPOptions struct {
	Request struct {
		// Host overrides the Host header and the TLS server name.
		Host    string            `json:"host,omitempty"`
		Path    string            `json:"path,omitempty"`
		Query   string            `json:"query,omitempty"`
		Method  string            `json:"method"` // GET or HEAD
		Headers map[string]string `json:"headers,omitempty"`
	} `json:"request"`
	Protocol string `json:"protocol,omitempty"` // HTTP or HTTPS
	Port     int    `json:"port,omitempty"`
	// IPVersion is 4 or 6, for a target given by name only.
	IPVersion int `json:"ipVersion,omitempty"`
}

// Request is the body of POST /v1/measurements.
type Request struct {
	Type   string
	Target string
	Where
	// DNS or HTTP, as Type says.
	DNS  *DNSOptions
	HTTP *HTTPOptions
}

// MarshalJSON writes the documented body.
func (r *Request) MarshalJSON() ([]byte, error) {
	body := struct {
		Type      string     `json:"type"`
		Target    string     `json:"target"`
		Locations []Location `json:"locations,omitempty"`
		Limit     int        `json:"limit,omitempty"`
		Options   any        `json:"measurementOptions,omitempty"`
	}{Type: r.Type, Target: r.Target, Locations: r.Locations, Limit: r.Limit}
	switch {
	case r.DNS != nil:
		body.Options = r.DNS
	case r.HTTP != nil:
		body.Options = r.HTTP
	}
	return json.Marshal(body)
}

// Tests is the most tests the request can spend, as Globalping counts
// them before it looks for probes: its Limit, else the sum of the
// locations' limits (one each by default), else one.
func (w Where) Tests() int {
	if w.Limit > 0 {
		return w.Limit
	}
	n := 0
	for _, l := range w.Locations {
		n += max(l.Limit, 1)
	}
	return max(n, 1)
}

// maxLocations and maxMagic are Globalping's bounds on locations.
const (
	maxLocations = 128
	maxMagic     = 4
)

// Check refuses, before anything is sent, a request Globalping would
// refuse or that goes beyond lim; the errors of limits wrap ErrLimit.
func (r *Request) Check(lim Limits) error {
	switch {
	case r.Type != TypeDNS && r.Type != TypeHTTP:
		return fmt.Errorf("measurement type %q: catchmap creates %s or %s measurements on Globalping", r.Type, TypeDNS, TypeHTTP)
	case strings.TrimSpace(r.Target) == "":
		return errors.New("no target: give what to measure")
	case (r.Type == TypeDNS) != (r.DNS != nil) || (r.Type == TypeHTTP) != (r.HTTP != nil):
		return fmt.Errorf("a %s measurement takes %s options only", r.Type, r.Type)
	}
	return r.Where.check(lim)
}

func (w Where) check(lim Limits) error {
	if w.Limit < 0 {
		return fmt.Errorf("limit %d: ask for one probe or more", w.Limit)
	}
	if len(w.Locations) > maxLocations {
		return fmt.Errorf("%d locations: Globalping takes %d at most", len(w.Locations), maxLocations)
	}
	for i, l := range w.Locations {
		at := fmt.Sprintf("location %d", i+1)
		switch {
		case l.Limit < 0:
			return fmt.Errorf("%s: limit %d: ask for one probe or more", at, l.Limit)
		case l.Limit > 0 && w.Limit > 0:
			return fmt.Errorf("%s: a location's limit and the entry's limit exclude each other: give one or the other", at)
		case l.Limit > lim.ProbesPerMeasurement:
			return fmt.Errorf("%s asks for %d probes: %w: %s", at, l.Limit, ErrLimit, lim)
		case strings.Count(l.Magic, "+") >= maxMagic:
			return fmt.Errorf("%s: magic %q combines more than %d conditions", at, l.Magic, maxMagic)
		}
		if l.Magic == "" && l.Continent == "" && l.Region == "" && l.Country == "" && l.State == "" &&
			l.City == "" && l.ASN == 0 && l.Network == "" && len(l.Tags) == 0 {
			return fmt.Errorf("%s says nowhere: give magic, continent, region, country, state, city, asn, network or tags", at)
		}
	}
	if n := w.Tests(); n > lim.ProbesPerMeasurement {
		return fmt.Errorf("the measurement asks for %d probes: %w: %s", n, ErrLimit, lim)
	}
	return nil
}

// ErrUnsupported is wrapped by every error for a spec that Globalping
// cannot measure.
var ErrUnsupported = errors.New("not measurable through Globalping")

// dnsTypes are the query types Globalping's DNS measurement takes.
var dnsTypes = []string{"A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NS", "NSEC", "PTR", "RRSIG", "SOA", "TXT", "SRV", "SVCB"}

// NewRequest is the measurement a plan entry asks of Globalping: s says
// what to measure (a dns or http spec, with its preset), w where from.
//
// A dns spec becomes a DNS measurement of its identity question, asked of
// the spec's target as the resolver; Globalping's dig always asks for the
// NSID. Globalping asks class IN only, so a CHAOS question (hostname.bind,
// id.server) is refused. An http spec becomes an HTTP measurement of its
// URL, connect_to going in the target with the URL's host in Host.
func NewRequest(s spec.Spec, w Where) (*Request, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	id, err := spec.NewIdentifier(&s)
	if err != nil {
		return nil, err
	}
	req := &Request{Where: w}
	switch s.Method {
	case result.MethodDNS:
		err = dnsRequest(req, &s, id)
	case result.MethodHTTP:
		err = httpRequest(req, &s, id)
	default:
		err = fmt.Errorf("%w: method %s: catchmap measures dns and http through Globalping", ErrUnsupported, s.Method)
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

func dnsRequest(req *Request, s *spec.Spec, id *spec.Identifier) error {
	q, err := id.DNSQuestion()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s %s %s", q.Name, spec.ClassName(q.Qclass), spec.TypeName(q.Qtype))
	if s.Preset != "" {
		what = fmt.Sprintf("preset %s asks %s", s.Preset, what)
	}
	if q.Qclass != dns.ClassINET {
		return fmt.Errorf("%w: %s, and Globalping asks class IN only (its DNS query takes a type, no class): "+
			"ask an IN question the service answers (an IN TXT identity name, or any whose answer carries "+
			"an NSID) with a site_regex that reads it", ErrUnsupported, what)
	}
	typ := spec.TypeName(q.Qtype)
	if !slices.Contains(dnsTypes, typ) {
		return fmt.Errorf("%w: %s, and Globalping asks only %s", ErrUnsupported, what, strings.Join(dnsTypes, ", "))
	}
	host, _, err := s.SplitTarget()
	if err != nil {
		return err
	}
	o := &DNSOptions{Resolver: host, Protocol: "UDP"}
	o.Query.Type = typ
	if s.TCP {
		o.Protocol = "TCP"
	}
	if p := s.DefaultPort(nil); p != 53 {
		o.Port = int(p)
	}
	if o.IPVersion, err = ipVersion(host, s.AF); err != nil {
		return err
	}
	req.Type, req.DNS = TypeDNS, o
	req.Target = q.Name
	if q.Name != "." {
		req.Target = strings.TrimSuffix(q.Name, ".")
	}
	return nil
}

// reservedHeaders are the request headers Globalping sets itself.
var reservedHeaders = []string{"Host", "User-Agent"}

func httpRequest(req *Request, s *spec.Spec, id *spec.Identifier) error {
	host, u, err := s.SplitTarget()
	if err != nil {
		return err
	}
	method, err := s.HTTPRequestMethod()
	if err != nil {
		return err
	}
	if id.Body && method == "HEAD" {
		return fmt.Errorf("%w: HEAD has no body, and the site is read from the body: use GET", spec.ErrBadSpec)
	}
	o := &HTTPOptions{Protocol: strings.ToUpper(u.Scheme)}
	o.Request.Method = method
	o.Request.Path, o.Request.Query = u.EscapedPath(), u.RawQuery
	if id.Path != "" {
		o.Request.Path = id.Path
	}
	mime, err := spec.ParseRequestHeaders(id.RequestHeaders)
	if err != nil {
		return fmt.Errorf("%w: %v", spec.ErrBadSpec, err)
	}
	for name, values := range mime {
		if slices.Contains(reservedHeaders, name) {
			return fmt.Errorf("%w: request header %s: Globalping sets it itself", ErrUnsupported, name)
		}
		if o.Request.Headers == nil {
			o.Request.Headers = map[string]string{}
		}
		o.Request.Headers[name] = strings.Join(values, ", ")
	}
	target, port := host, s.Port
	if s.ConnectTo != "" {
		dial, dialPort, err := s.DialHost()
		if err != nil {
			return err
		}
		target, o.Request.Host = dial, host
		if dialPort != 0 {
			port = dialPort
		}
	}
	if def := map[string]int{"HTTP": 80, "HTTPS": 443}[o.Protocol]; port != def {
		o.Port = port
	}
	if o.IPVersion, err = ipVersion(target, s.AF); err != nil {
		return err
	}
	req.Type, req.HTTP, req.Target = TypeHTTP, o, target
	return nil
}

// ipVersion is the ipVersion option for host and the spec's address
// family: Globalping takes one for a name only, and an address says its
// own.
func ipVersion(host string, af int) (int, error) {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return af, nil
	}
	if own := map[bool]int{true: 4, false: 6}[a.Unmap().Is4()]; af != 0 && af != own {
		return 0, fmt.Errorf("%w: address family %d, and the target %s is an IPv%d address", spec.ErrBadSpec, af, host, own)
	}
	return 0, nil
}
