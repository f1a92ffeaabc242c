package globalping

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/fleet/fleetutil"
	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Converter turns finished Globalping measurements into catchmap records,
// reading each answer as catchmap's own dns and http methods do
// (probe.IdentifyDNS, probe.HTTPIdentity), so that a record made here
// means what a record of catchmap's probes means. It is safe for
// concurrent use.
type Converter struct {
	spec  spec.Spec
	ident *spec.Identifier
	q     dns.Question
}

// NewConverter returns a converter for the measurements NewRequest makes
// of s.
func NewConverter(s spec.Spec) (*Converter, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	id, err := spec.NewIdentifier(&s)
	if err != nil {
		return nil, err
	}
	c := &Converter{spec: s, ident: id}
	if s.Method == result.MethodDNS {
		if c.q, err = id.DNSQuestion(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Records calls fn with one record per test of the finished measurement
// m, in m's order, and the probe that ran it (its network has no column in
// the record). Every test makes a record: a failed or offline one says so
// in its error kind rather than leaving a gap. Records are fresh: fn may
// keep them. It returns fn's error.
//
// Records carry source globalping and probe ids gp:.... Their ids are gp-<measurement>-<n>, n the
// test's place in m, so that reading one measurement twice stores it once.
func (c *Converter) Records(m *Measurement, fn func(*result.Record, *Probe) error) error {
	if m.Status == InProgress {
		return fmt.Errorf("converting Globalping measurement %q: it is in progress: wait for it to finish", m.ID)
	}
	if m.Type != map[string]string{result.MethodDNS: TypeDNS, result.MethodHTTP: TypeHTTP}[c.spec.Method] {
		return fmt.Errorf("converting Globalping measurement %q: it is of type %q, and the spec's method is %s: convert it with its own spec", m.ID, m.Type, c.spec.Method)
	}
	ids := probeIDs(m.Results)
	for i := range m.Results {
		res := &m.Results[i]
		r := &result.Record{
			ID:      "gp-" + m.ID + "-" + strconv.Itoa(i),
			Time:    m.CreatedAt,
			Probe:   ids[i],
			Source:  result.SourceGlobalping,
			Target:  c.spec.Target,
			Method:  c.spec.Method,
			Lat:     res.Probe.Lat,
			Lon:     res.Probe.Lon,
			Country: res.Probe.Country,
			ASN:     res.Probe.ASN,
		}
		c.convert(m, &res.Test, r)
		if err := fn(r, &res.Probe); err != nil {
			return err
		}
	}
	return nil
}

// convert fills r from one test.
func (c *Converter) convert(m *Measurement, t *Test, r *result.Record) {
	if c.spec.Method == result.MethodDNS {
		r.DNS = &result.DNS{QName: c.q.Name, QClass: spec.ClassName(c.q.Qclass), QType: spec.TypeName(c.q.Qtype),
			TCP: m.Protocol == "TCP"}
		setAddr(r, t.Resolver, m.Resolver)
	} else {
		setAddr(r, t.ResolvedAddress)
	}
	what := fmt.Sprintf("%s to %s via Globalping", r.Method, cmp.Or(r.Addr, c.spec.Target))
	fail := func(kind result.ErrorKind, why string) {
		r.ErrorKind, r.Error = kind, what+": "+why
	}
	switch {
	case t.unreadable != "":
		fail(result.KindMalformed, "the test's result does not read: "+t.unreadable)
	case t.Status == Offline:
		fail(result.KindNetwork, "the probe was offline and did not run the test")
	case t.Status == InProgress:
		fail(result.KindTimeout, "the test had not finished when the measurement did")
	case t.Status == Failed:
		source := ""
		if t.FailureSource != "" {
			source = " (Globalping blames the " + t.FailureSource + ")"
		}
		fail(failureKind(t.RawOutput), "the test failed"+source+": "+rawLine(t.RawOutput))
	case t.Status != Finished:
		fail(result.KindMalformed, fmt.Sprintf("the test's status is %q", t.Status))
	case r.Method == result.MethodDNS:
		c.dns(t, r, fail)
	default:
		c.http(t, r, fail)
	}
}

// setAddr sets the record's address to the first of addrs that is an IP
// address, and its address family from it.
func setAddr(r *result.Record, addrs ...string) {
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			r.Addr, r.AF = a.String(), 4
			if a.Is6() {
				r.AF = 6
			}
			return
		}
	}
}

func (c *Converter) dns(t *Test, r *result.Record, fail func(result.ErrorKind, string)) {
	r.RTTMs = deref(t.Timings.Total)
	m, err := dnsMessage(t)
	if err != nil {
		fail(result.KindMalformed, err.Error())
		return
	}
	if err := probe.IdentifyDNS(c.ident, c.q, m, r); err != nil {
		fail(r.ErrorKind, err.Error())
	}
}

// dnsMessage rebuilds the answer a DNS test got from what Globalping
// parsed of dig's output (the rcode, the answer section) and the NSID
// read from the output itself.
func dnsMessage(t *Test) (*dns.Msg, error) {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true}}
	switch rc, named := dns.StringToRcode[strings.ToUpper(t.StatusCodeName)]; {
	case t.StatusCode != nil && *t.StatusCode >= 0 && *t.StatusCode <= 0xfff:
		m.Rcode = *t.StatusCode
	case named:
		m.Rcode = rc
	default:
		return nil, errors.New("the test finished with no DNS status code")
	}
	for _, a := range t.Answers {
		rr, err := dns.NewRR(strings.Join([]string{a.Name, strconv.FormatUint(uint64(a.TTL), 10), a.Class, a.Type, a.Value}, " "))
		if err != nil || rr == nil {
			// A record dig printed in a form this parser does not take
			// (a type it does not know) says nothing of an identity.
			continue
		}
		m.Answer = append(m.Answer, rr)
	}
	if nsid, ok := NSID(t.RawOutput); ok {
		m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT},
			Option: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString(nsid)}}})
	}
	return m, nil
}

// NSID reads the NSID from dig's output, which Globalping hands over as
// the test's rawOutput (its dig asks with +nsid). dig prints it as hex
// bytes followed by the text, `; NSID: 67 70 ... ("gpdns-syd")`, or, in
// some versions, as the quoted text alone; the hex is preferred, since the
// text stands dots for bytes it cannot print.
func NSID(rawOutput string) ([]byte, bool) {
	for line := range strings.SplitSeq(rawOutput, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "; NSID:")
		if !ok {
			continue
		}
		var b []byte
		fields := strings.Fields(rest)
		for _, f := range fields {
			v, err := hex.DecodeString(f)
			if err != nil || len(v) != 1 {
				break
			}
			b = append(b, v[0])
		}
		if len(b) > 0 {
			return b, true
		}
		if q, err := strconv.Unquote(strings.TrimSpace(rest)); err == nil && q != "" {
			return []byte(q), true
		}
		return nil, false
	}
	return nil, false
}

func (c *Converter) http(t *Test, r *result.Record, fail func(result.ErrorKind, string)) {
	h := &result.HTTP{DNSMs: deref(t.Timings.DNS), ConnectMs: deref(t.Timings.TCP), TLSMs: deref(t.Timings.TLS),
		TotalMs: deref(t.Timings.Total)}
	if fb := t.Timings.FirstByte; fb != nil {
		// Globalping counts the first byte from the connection; catchmap
		// from the start of the request.
		h.FirstByteMs = h.DNSMs + h.ConnectMs + h.TLSMs + *fb
	}
	if t.StatusCode != nil {
		h.Status = *t.StatusCode
	}
	if proto, _, ok := strings.Cut(t.RawOutput, " "); ok && strings.HasPrefix(proto, "HTTP/") && len(proto) <= len("HTTP/1.1") {
		h.Proto = proto
	}
	r.HTTP = h
	// As the http method: the connect time is one round trip to the site.
	r.RTTMs = h.ConnectMs
	if t.TLS != nil && !t.TLS.Authorized && !c.spec.Insecure {
		fail(result.KindTLS, "the certificate is not trusted: "+cmp.Or(t.TLS.Error, "Globalping gives no reason")+
			" (set insecure to accept it)")
		return
	}
	var body []byte
	if t.RawBody != nil {
		body = []byte(*t.RawBody)
	}
	identity, missing := probe.HTTPIdentity(c.ident, t.Headers, body)
	r.Identity = identity
	r.Site = c.ident.Site(identity)
	switch {
	case h.Status >= 400:
		fail(result.KindHTTPStatus, fmt.Sprintf("status %d %s", h.Status, http.StatusText(h.Status)))
	case h.Status == 0:
		fail(result.KindMalformed, "the test finished with no HTTP status")
	case missing != "" && c.ident.Body && t.Truncated:
		fail(result.KindNoIdentity, missing+" in the first 10 kB Globalping keeps")
	case missing != "":
		fail(result.KindNoIdentity, missing)
	}
}

// failureKind classifies a failed test by the words of its output: dig's
// (";; connection timed out; no servers could be reached",
// "communications error ... connection refused") or the HTTP client's
// ("Request timeout.", "connect ECONNREFUSED ...", TLS errors).
func failureKind(rawOutput string) result.ErrorKind {
	out := strings.ToLower(rawOutput)
	has := func(words ...string) bool {
		return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(out, w) })
	}
	switch {
	case has("private ip ranges are not allowed"):
		return result.KindNotAllowed
	case has("timed out", "timeout", "etimedout"):
		return result.KindTimeout
	case has("refused"):
		return result.KindRefused
	case has("certificate", "tls", "ssl", "handshake"):
		return result.KindTLS
	}
	return result.KindNetwork
}

// rawLine is the gist of a failed test's output for an error: its last
// line that says something, which is where dig and the HTTP client put
// the failure, cleaned of what a terminal would act on.
func rawLine(rawOutput string) string {
	lines := strings.Split(strings.TrimSpace(rawOutput), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	last = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, last)
	return cmp.Or(fleetutil.Clip(last, 200), "Globalping gives no reason")
}

func deref(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

// probeIDs names the probes of rs, which have no id of their own:
// gp:<asn>:<city>:<n>, where n (from 1) tells apart the probes of rs that
// share an ASN and a city, in the order of what else Globalping says of
// them (network, state, place, resolvers, tags), ties kept in Globalping's
// order.
//
// How stable that is: a probe gets the same id in every measurement in
// which the same probes of its ASN and city take part; one that joins or
// leaves renumbers those after it in that order, and two probes that
// Globalping describes alike may swap ids. The ASN and the city, which a
// catchment map groups by, never change with n.
func probeIDs(rs []Result) []string {
	type member struct {
		i   int
		key string
	}
	groups := map[string][]member{}
	for i, r := range rs {
		g := strconv.FormatUint(uint64(r.Probe.ASN), 10) + ":" + citySlug(r.Probe.City)
		groups[g] = append(groups[g], member{i, r.Probe.sortKey()})
	}
	ids := make([]string, len(rs))
	for g, ms := range groups {
		slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		for n, m := range ms {
			ids[m.i] = "gp:" + g + ":" + strconv.Itoa(n+1)
		}
	}
	return ids
}

// sortKey is what orders probes that share an ASN and a city.
func (p *Probe) sortKey() string {
	place := ""
	if p.Lat != nil && p.Lon != nil {
		place = strconv.FormatFloat(*p.Lat, 'f', 4, 64) + "," + strconv.FormatFloat(*p.Lon, 'f', 4, 64)
	}
	resolvers, tags := slices.Sorted(slices.Values(p.Resolvers)), slices.Sorted(slices.Values(p.Tags))
	return strings.Join([]string{p.Network, p.State, place, strings.Join(resolvers, ","), strings.Join(tags, ",")}, "\x00")
}

// maxCity bounds the city in a probe id, which the aggregator caps at 128
// bytes in all.
const maxCity = 64

// citySlug writes a city for a probe id: lower case, letters and digits,
// other runs as one "-"; "unknown" when nothing is left.
func citySlug(city string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(city) {
		if b.Len() >= maxCity {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return cmp.Or(b.String(), "unknown")
}
