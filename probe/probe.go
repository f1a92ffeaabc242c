// Package probe measures anycast targets: it asks each one who it is (DNS
// CHAOS TXT, NSID, an HTTP header or body) and how far away it is (DNS, ICMP,
// TCP connect and HTTP phase timings), and fills a result.Record.
//
// One file per method (dns.go, http.go, icmp.go, tcp.go), each a Method
// dispatched from one map. The deadline comes from the context only.
//
// The package is free of cgo so that the probe agent builds as a static binary.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Target is one address of a Spec, resolved and ready to measure.
type Target struct {
	Spec *spec.Spec
	// Addr is the address and port to measure.
	Addr netip.AddrPort
	// Host is the name the user gave (for HTTP's Host header and SNI, and
	// for display); it may be an address literal.
	Host string
	// URL is set for http targets.
	URL *url.URL
	// Ident reads the site from the identity; never nil.
	Ident *spec.Identifier
}

// Method measures one target and fills r. It returns an error when the
// measurement failed; r.Error and r.ErrorKind then say how, so the reason
// travels with the result and not only in a log line.
type Method func(ctx context.Context, t Target, r *result.Record) error

// Measurer runs specs. The zero value is not usable: use NewMeasurer.
type Measurer struct {
	log      *slog.Logger
	resolver *net.Resolver
	probe    string
	now      func() time.Time
	methods  map[string]Method
	// dnsSockets is the WithDNSSockets setting; dnsConns is the pool it sizes.
	dnsSockets int
	dnsConns   *dnsPool
}

// Option configures a Measurer.
type Option func(*Measurer)

// WithResolver sets the resolver for target host names.
func WithResolver(r *net.Resolver) Option { return func(m *Measurer) { m.resolver = r } }

// WithProbeName sets the record's probe field ("local" by default).
func WithProbeName(name string) Option { return func(m *Measurer) { m.probe = name } }

// WithClock sets the clock that stamps records.
func WithClock(now func() time.Time) Option { return func(m *Measurer) { m.now = now } }

// WithDNSSockets keeps at most n idle UDP sockets per DNS server for reuse
// (DefaultDNSSockets when not given); 0 opens a fresh socket for every query.
func WithDNSSockets(n int) Option { return func(m *Measurer) { m.dnsSockets = max(n, 0) } }

// NewMeasurer returns a Measurer that logs to log. Close it to release the
// sockets it keeps for reuse.
func NewMeasurer(log *slog.Logger, opts ...Option) *Measurer {
	m := &Measurer{
		log:        log,
		resolver:   net.DefaultResolver,
		probe:      "local",
		now:        time.Now,
		dnsSockets: DefaultDNSSockets,
	}
	m.methods = map[string]Method{
		result.MethodDNS:  m.measureDNS,
		result.MethodHTTP: measureHTTP,
		result.MethodICMP: measureICMP,
		result.MethodTCP:  measureTCP,
	}
	for _, o := range opts {
		o(m)
	}
	m.dnsConns = newDNSPool(m.dnsSockets, dnsIdleTimeout)
	return m
}

// Close releases the sockets the Measurer keeps for reuse. The Measurer
// stays usable, but keeps no socket after Close.
func (m *Measurer) Close() error {
	m.dnsConns.close()
	return nil
}

// Measure resolves the spec's target and measures every address it names
// (one per family unless AF restricts it). A resolution failure yields a
// record with the error, so nothing a user asked for goes unreported. The
// error return is only for a spec that is wrong in itself (spec.ErrBadSpec).
func (m *Measurer) Measure(ctx context.Context, sp spec.Spec) ([]result.Record, error) {
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	ident, err := spec.NewIdentifier(&sp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", spec.ErrBadSpec, err)
	}
	host, u, err := sp.SplitTarget()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", spec.ErrBadSpec, err)
	}
	addrs, err := m.resolve(ctx, &sp, host, u)
	if err != nil {
		r := m.newRecord(&sp)
		r.Error = err.Error()
		r.ErrorKind = result.KindNetwork
		if errors.Is(err, context.DeadlineExceeded) {
			r.ErrorKind = result.KindTimeout
		}
		return []result.Record{r}, nil
	}
	out := make([]result.Record, 0, len(addrs))
	for _, a := range addrs {
		t := Target{Spec: &sp, Addr: a, Host: host, URL: u, Ident: ident}
		out = append(out, m.measureOne(ctx, t))
	}
	return out, nil
}

func (m *Measurer) measureOne(ctx context.Context, t Target) result.Record {
	r := m.newRecord(t.Spec)
	r.Addr = t.Addr.Addr().String()
	r.AF = 4
	if t.Addr.Addr().Is6() && !t.Addr.Addr().Is4In6() {
		r.AF = 6
	}
	timeout := t.Spec.Timeout.D()
	if timeout <= 0 {
		timeout = spec.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := m.methods[t.Spec.Method](ctx, t, &r); err != nil {
		if r.Error == "" {
			r.Error = err.Error()
		}
		if r.ErrorKind == result.KindNone {
			r.ErrorKind = classify(err)
		}
		m.log.Debug("measurement failed", "target", t.Spec.Target, "addr", r.Addr, "method", t.Spec.Method, "kind", r.ErrorKind, "err", err)
	}
	return r
}

func (m *Measurer) newRecord(s *spec.Spec) result.Record {
	return result.Record{
		ID:     result.NewID(),
		Time:   m.now().UTC(),
		Probe:  m.probe,
		Target: s.Target,
		Method: s.Method,
	}
}

// MeasureAll measures specs concurrently, at most limit at a time, and
// returns the records in the order of specs. Bad specs fail the whole call
// before anything is sent.
func (m *Measurer) MeasureAll(ctx context.Context, specs []spec.Spec, limit int) ([]result.Record, error) {
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, fmt.Errorf("target %q: %w", specs[i].Target, err)
		}
	}
	if limit < 1 {
		limit = 1
	}
	per := make([][]result.Record, len(specs))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			per[i], _ = m.Measure(ctx, specs[i]) // validated above
		}()
	}
	wg.Wait()
	var out []result.Record
	for _, rs := range per {
		out = append(out, rs...)
	}
	return out, nil
}

// resolve finds the addresses to measure: the --connect-to address for http,
// else the host itself when it is a literal, else one address per family.
func (m *Measurer) resolve(ctx context.Context, s *spec.Spec, host string, u *url.URL) ([]netip.AddrPort, error) {
	port := s.DefaultPort(u)
	name := host
	if s.ConnectTo != "" {
		name = s.ConnectTo
		if h, p, err := net.SplitHostPort(s.ConnectTo); err == nil {
			n, perr := strconv.Atoi(p)
			if perr != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("connect-to %q: bad port %q", s.ConnectTo, p)
			}
			name, port = h, uint16(n)
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")); err == nil {
		a = a.Unmap()
		if s.AF == 4 && !a.Is4() || s.AF == 6 && a.Is4() {
			return nil, fmt.Errorf("address %s is not IPv%d", a, s.AF)
		}
		return []netip.AddrPort{netip.AddrPortFrom(a.WithZone(""), port)}, nil
	}
	network := "ip"
	switch s.AF {
	case 4:
		network = "ip4"
	case 6:
		network = "ip6"
	}
	ips, err := m.resolver.LookupNetIP(ctx, network, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	var v4, v6 *netip.Addr
	for i := range ips {
		a := ips[i].Unmap()
		switch {
		case a.Is4() && v4 == nil:
			v4 = &a
		case a.Is6() && v6 == nil:
			v6 = &a
		}
	}
	var out []netip.AddrPort
	for _, a := range []*netip.Addr{v4, v6} {
		if a != nil {
			out = append(out, netip.AddrPortFrom(*a, port))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolve %s: no %s address", name, network)
	}
	return out, nil
}

// classify maps an error from the network stack to an error kind.
func classify(err error) result.ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return result.KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return result.KindRefused
	}
	return result.KindNetwork
}
