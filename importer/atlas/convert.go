package atlas

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/internal/dnstxt"
	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Locator places an address; *geo.DB is one.
type Locator interface {
	Lookup(addr netip.Addr) (geo.Location, error)
}

// Options configure a Converter.
type Options struct {
	// Ident reads the site out of the identity. The question Atlas asked
	// is read from a result's qbuf; without one, from its answer's
	// question section, so that any TXT measurement works with a site
	// regex, except where that has Ident's name and type in another class:
	// the path rewrote the class (a forwarder asking CHAOS as IN), and the
	// record is a mismatch, as measure says. With neither, Ident's question
	// is assumed.
	Ident *spec.Identifier
	// Target names every record; empty: each result's dst_name, else its
	// dst_addr.
	Target string
	// Probes places and numbers the probes; Geo places the ones Probes
	// does not know, by their public address. Either may be nil.
	Probes Probes
	Geo    Locator
	Log    *slog.Logger
}

// Converter turns results into records. It is not safe for concurrent use.
type Converter struct {
	opt      Options
	defaultQ dns.Question
	places   map[int64]place
	warned   bool
}

// place is where a probe is, by address family.
type place struct {
	lat, lon     *float64
	country      string
	asnV4, asnV6 uint32
}

// maxPlaces bounds the per-probe cache, so that memory stays flat whatever
// the input; Atlas has had about 40,000 probes in all.
const maxPlaces = 100_000

// NewConverter checks opt and returns a Converter.
func NewConverter(opt Options) (*Converter, error) {
	if opt.Ident == nil {
		return nil, errors.New("atlas converter: no identifier: build one with spec.NewIdentifier")
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	q, err := opt.Ident.DNSQuestion()
	if err != nil {
		return nil, fmt.Errorf("atlas converter: %w", err)
	}
	return &Converter{opt: opt, defaultQ: q, places: make(map[int64]place)}, nil
}

// Convert calls fn with the records of res: one, or one per resultset
// item. Each record is fresh: fn may keep it. It returns fn's error.
func (c *Converter) Convert(res *Result, fn func(*result.Record) error) error {
	if len(res.ResultSet) == 0 {
		r := c.base(res, 0, res.AF, res.DstAddr, res.DstName, res.Proto, 0)
		if !malformed(r, res) {
			c.answer(r, res.Qbuf, res.Result, res.Error)
		}
		return fn(trim(r))
	}
	for i := range res.ResultSet {
		it := &res.ResultSet[i]
		r := c.base(res, i, cmp.Or(it.AF, res.AF), cmp.Or(it.DstAddr, res.DstAddr),
			cmp.Or(it.DstName, res.DstName), cmp.Or(it.Proto, res.Proto), it.Time)
		if !malformed(r, res) {
			c.answer(r, cmp.Or(it.Qbuf, res.Qbuf), it.Result, it.Error)
		}
		if err := fn(trim(r)); err != nil {
			return err
		}
	}
	return nil
}

// trim drops DNS details that say nothing (a timeout without qbuf).
func trim(r *result.Record) *result.Record {
	if *r.DNS == (result.DNS{}) {
		r.DNS = nil
	}
	return r
}

// Record times must fit RFC 3339 (years 0001-9999) to be written at all.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// malformed marks r when res as a whole cannot be read.
func malformed(r *result.Record, res *Result) bool {
	var why string
	if r.Time.Unix() <= 0 || r.Time.After(maxTime) {
		why = fmt.Sprintf("timestamp %d is not a time after 1970", r.Time.Unix())
		r.Time = time.Unix(0, 0).UTC()
	}
	switch {
	case res.DecodeErr != nil:
		why = res.DecodeErr.Error()
	case res.ResultSet != nil && len(res.ResultSet) == 0:
		why = "the resultset is empty"
	case why == "":
		return false
	}
	r.ErrorKind, r.Error = result.KindMalformed, "atlas result: "+why
	return true
}

// base fills what every record of res has: id, time, probe, target,
// address and place.
func (c *Converter) base(res *Result, item, af int, addr, name, proto string, t int64) *result.Record {
	r := &result.Record{
		ID:     ID(res.MsmID, res.PrbID, res.Timestamp, item),
		Time:   time.Unix(cmp.Or(t, res.Timestamp), 0).UTC(),
		Probe:  "atlas:" + strconv.FormatInt(res.PrbID, 10),
		Source: result.SourceRIPEAtlas,
		Method: result.MethodDNS,
		AF:     af,
		Addr:   addr,
		DNS:    &result.DNS{TCP: strings.EqualFold(proto, "TCP")},
	}
	if af != 4 && af != 6 {
		// Only 4 and 6 are address families; the aggregator refuses others.
		r.AF = 0
		if a, err := netip.ParseAddr(addr); err == nil && a.Unmap().Is4() {
			r.AF = 4
		} else if err == nil {
			r.AF = 6
		}
	}
	r.Target = c.opt.Target
	if r.Target == "" {
		r.Target = cmp.Or(name, addr)
	}
	if r.Target == "" {
		// The aggregator refuses records without a target.
		r.Target = "atlas-msm-" + strconv.FormatInt(res.MsmID, 10)
	}
	p := c.place(res)
	r.Lat, r.Lon, r.Country = p.lat, p.lon, p.country
	switch r.AF {
	case 6:
		r.ASN = p.asnV6
	case 4:
		r.ASN = p.asnV4
	default:
		r.ASN = cmp.Or(p.asnV4, p.asnV6)
	}
	return r
}

// ID is the record id of item (0 when the result has no resultset) of the
// result of probe prb in measurement msm at timestamp: the same result
// always gets the same id, so a re-import stores nothing twice.
func ID(msm, prb, timestamp int64, item int) string {
	b := make([]byte, 0, 48)
	b = append(b, "atlas-"...)
	b = strconv.AppendInt(b, msm, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, prb, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(item), 10)
	return string(b)
}

func (c *Converter) place(res *Result) place {
	if p, ok := c.places[res.PrbID]; ok {
		return p
	}
	var p place
	if info, ok := c.opt.Probes[res.PrbID]; ok {
		p = place{lat: info.Lat, lon: info.Lon, country: info.Country, asnV4: info.ASNv4, asnV6: info.ASNv6}
	} else if c.opt.Geo != nil {
		addr, err := netip.ParseAddr(res.From)
		if err == nil {
			loc, err := c.opt.Geo.Lookup(addr)
			if err != nil {
				c.opt.Log.Warn("GeoIP lookup of an Atlas probe failed: the probe is left unplaced",
					"probe", res.PrbID, "err", err)
			}
			p = place{lat: loc.Lat, lon: loc.Lon, country: loc.Country}
			if addr.Unmap().Is4() {
				p.asnV4 = loc.ASN
			} else {
				p.asnV6 = loc.ASN
			}
		}
	}
	if len(c.places) < maxPlaces {
		c.places[res.PrbID] = p
	}
	return p
}

// answer fills r from one answer (or failure) and its question.
func (c *Converter) answer(r *result.Record, qbuf string, a *Answer, failure Failure) {
	q, asked := question(qbuf)
	if asked {
		r.DNS.QName, r.DNS.QClass, r.DNS.QType = q.Name, dns.Class(q.Qclass).String(), dns.Type(q.Qtype).String()
	}
	switch {
	case failure != nil:
		r.ErrorKind = result.KindNetwork
		if _, ok := failure["timeout"]; ok {
			r.ErrorKind = result.KindTimeout
		}
		r.Error = "dns to " + orUnknown(r.Addr) + " from Atlas: " + failure.String()
		return
	case a == nil:
		r.ErrorKind = result.KindMalformed
		r.Error = "atlas result: neither result nor error: the result is incomplete"
		return
	}
	r.RTTMs = a.RT
	if r.RTTMs < 0 {
		r.RTTMs = 0
	}
	var m *dns.Msg
	if a.Abuf != "" {
		wire, err := decodeBase64(a.Abuf)
		if err != nil {
			r.ErrorKind = result.KindMalformed
			r.Error = "atlas result: abuf is not base64: " + err.Error()
			return
		}
		r.DNS.Size = len(wire)
		m = new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			r.ErrorKind = result.KindMalformed
			r.Error = fmt.Sprintf("dns to %s from Atlas: the answer (%d bytes) does not parse as a DNS message: %v", orUnknown(r.Addr), len(wire), err)
			return
		}
	} else {
		r.DNS.Size = a.Size
	}
	answered := false
	if !asked {
		q = c.defaultQ
		if m != nil && len(m.Question) == 1 && !rewrittenClass(m.Question[0], q) {
			q, answered = m.Question[0], true
		}
	}
	if m == nil {
		rrs, err := a.Records()
		if err != nil {
			r.ErrorKind = result.KindMalformed
			r.Error = "atlas result: " + err.Error()
			return
		}
		m = fromAnswers(q, rrs)
	}
	c.checkQuestion(q, answered)
	if err := probe.IdentifyDNS(c.opt.Ident, q, m, r); err != nil {
		r.Error = "dns to " + orUnknown(r.Addr) + " from Atlas: " + err.Error()
	}
}

func orUnknown(addr string) string {
	if addr == "" {
		return "(no address)"
	}
	return addr
}

// decodeBase64 accepts padded and unpadded base64: abuf is padded, but
// hand-made files may not be.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b2, err2 := base64.RawStdEncoding.DecodeString(s); err2 == nil {
			return b2, nil
		}
	}
	return b, err
}

// question reads the question out of qbuf, the query Atlas sent (present
// when the measurement asked for it).
func question(qbuf string) (dns.Question, bool) {
	if qbuf == "" {
		return dns.Question{}, false
	}
	wire, err := decodeBase64(qbuf)
	if err != nil {
		return dns.Question{}, false
	}
	var m dns.Msg
	if err := m.Unpack(wire); err != nil || len(m.Question) != 1 {
		return dns.Question{}, false
	}
	return m.Question[0], true
}

// fromAnswers rebuilds an answer from the records the probe decoded, for
// results without abuf. They carry no rcode (an answer with records was a
// success) and no class (the question's). Only TXT records can carry an
// identity.
func fromAnswers(q dns.Question, rrs []RR) *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: dns.RcodeSuccess}}
	for _, rr := range rrs {
		if !strings.EqualFold(string(rr.Type), "TXT") {
			continue
		}
		txt := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(rr.Name), Rrtype: dns.TypeTXT, Class: q.Qclass}}
		for _, s := range rr.RData {
			txt.Txt = append(txt.Txt, dnstxt.Escape(s))
		}
		m.Answer = append(m.Answer, txt)
	}
	return m
}

// rewrittenClass reports whether answered, an answer's question, is want
// in another class.
func rewrittenClass(answered, want dns.Question) bool {
	return strings.EqualFold(answered.Name, want.Name) && answered.Qtype == want.Qtype && answered.Qclass != want.Qclass
}

// checkQuestion warns once when the measurement's question is not the
// identifier's: a preset's pattern may then find no site. answered says
// that q was read from an answer, the result having no qbuf: what Atlas
// asked is then not known.
func (c *Converter) checkQuestion(q dns.Question, answered bool) {
	d := c.defaultQ
	if c.warned || strings.EqualFold(q.Name, d.Name) && q.Qclass == d.Qclass && q.Qtype == d.Qtype {
		return
	}
	c.warned = true
	msg, key := "the Atlas measurement asked another question than the identifier's", "asked"
	if answered {
		msg, key = "the Atlas answers are for another question than the identifier's (the results carry no qbuf, so what Atlas asked is not known)", "answered"
	}
	c.opt.Log.Warn(msg+": if no sites are found, give a site regex that fits these answers",
		key, questionText(q), "identifier", questionText(d))
}

func questionText(q dns.Question) string {
	return dns.Class(q.Qclass).String() + " " + dns.Type(q.Qtype).String() + " " + q.Name
}
