package probe

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// dnsAnswer is what one DNS answer says about the site that sent it.
type dnsAnswer struct {
	Identity string // TXT text for the question, else the NSID; cleaned
	NSID     string // decoded EDNS option 3, cleaned
	Rcode    string
	// Kind is KindMismatch when the answer is for another question: the
	// identity, kept for diagnosis, then names whatever answered.
	Kind result.ErrorKind
}

// readDNSAnswer reads the answer m to question q as id reads it: which of
// several TXT records is the identity (id's patterns pick), and whether
// records of class IN answer (id.AllowClassIN). A nil id has no patterns
// and allows nothing more. It needs no socket so that every shape of answer
// can be tested from a table or from fuzzed bytes. The error, when not nil,
// says what the answer means for the user; Kind classifies it.
//
// On a failing rcode the NSID still becomes the identity: a server that
// refuses a CHAOS question but sends NSID has named its site, and the
// record keeps that beside the failure.
func readDNSAnswer(q dns.Question, m *dns.Msg, id *spec.Identifier) (dnsAnswer, error) {
	a := dnsAnswer{Rcode: rcodeString(m.Rcode), NSID: nsidText(m)}
	var match *identify.Matcher
	if id != nil {
		match = id.Matcher
	}
	if !m.Response {
		a.Kind = result.KindMalformed
		return a, fmt.Errorf("the reply to %s is not a DNS response (QR bit clear)", questionString(q))
	}
	if len(m.Question) > 0 && !sameQuestion(m.Question, q) {
		a.Kind = result.KindMismatch
		a.Identity = pickTXT(m.Answer, nil, match)
		return a, fmt.Errorf("the answer is for %s, not %s: something on the path may be intercepting DNS", answeredString(m.Question), questionString(q))
	}
	a.Identity = a.NSID
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeRefused:
		a.Kind = result.KindRefused
		return a, fmt.Errorf("the server refused %s: it may not reveal its site this way; ask NSID with a question it answers (e.g. . IN SOA)", questionString(q))
	case dns.RcodeServerFailure:
		a.Kind = result.KindServfail
		return a, fmt.Errorf("the server answered SERVFAIL to %s: it does not answer this question (resolvers such as 8.8.8.8 do so for CHAOS)", questionString(q))
	case dns.RcodeNotImplemented:
		a.Kind = result.KindNotimp
		return a, fmt.Errorf("the server answered NOTIMP to %s: it does not implement this class or type", questionString(q))
	default:
		a.Kind = result.KindRcode
		return a, fmt.Errorf("the server answered %s to %s", a.Rcode, questionString(q))
	}
	own := newOwners(q, m.Answer, id != nil && id.AllowClassIN)
	if len(m.Answer) > 0 && !own.anyOf(m.Answer) {
		a.Kind = result.KindMismatch
		a.Identity = pickTXT(m.Answer, nil, match)
		if q.Qclass != dns.ClassINET && newOwners(q, m.Answer, true).anyOf(m.Answer) {
			return a, fmt.Errorf("the answer to %s holds its records in class IN: something on the path may be intercepting DNS, "+
				"or the server is dnsdist answering with a spoofed record (set allow_class_in, or --allow-class-in, to take such answers as identities)", questionString(q))
		}
		return a, fmt.Errorf("the answer to %s holds only records for other names or classes: something on the path may be intercepting DNS", questionString(q))
	}
	if q.Qtype == dns.TypeTXT {
		if text := pickTXT(m.Answer, &own, match); text != "" {
			a.Identity = text
		}
	}
	if a.Identity == "" {
		a.Kind = result.KindNoIdentity
		return a, fmt.Errorf("the answer to %s carries no identity (no TXT text, no NSID): the server does not reveal its site to this question", questionString(q))
	}
	return a, nil
}

func sameQuestion(got []dns.Question, q dns.Question) bool {
	return len(got) == 1 && strings.EqualFold(got[0].Name, q.Name) &&
		got[0].Qclass == q.Qclass && got[0].Qtype == q.Qtype
}

// maxCNAMEHops bounds the alias chain followed in one answer, so that a
// hostile answer of thousands of CNAMEs costs little; resolvers stop at
// about this depth too.
const maxCNAMEHops = 8

// owners says which records of an answer answer the question: those owned
// by its name, or by a name its CNAMEs lead to, in its class, or in class
// IN too when in is set (dnsdist's spoofed CHAOS answers carry class IN).
type owners struct {
	names ownerNames
	class uint16
	in    bool
}

// newOwners follows q's CNAME chain in rrs (IN TXT id.server.on.quad9.net
// may be an alias), at most maxCNAMEHops of it. The names are a list, not a
// set: it is built for every answer and holds a handful of names (a name has
// one CNAME at most, so a chain adds one name a hop; the cap keeps a hostile
// answer with many from making the list long).
func newOwners(q dns.Question, rrs []dns.RR, in bool) owners {
	o := owners{names: ownerNames{q.Name}, class: q.Qclass, in: in}
	for range maxCNAMEHops {
		grew := false
		for _, rr := range rrs {
			c, ok := rr.(*dns.CNAME)
			if ok && len(o.names) <= maxCNAMEHops && o.owns(&c.Hdr) && !o.names.has(c.Target) {
				o.names = append(o.names, c.Target)
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	return o
}

// owns reports whether a record with header h answers the question.
func (o owners) owns(h *dns.RR_Header) bool {
	return (h.Class == o.class || o.in && h.Class == dns.ClassINET) && o.names.has(h.Name)
}

func (o owners) anyOf(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if o.owns(rr.Header()) {
			return true
		}
	}
	return false
}

// ownerNames are domain names, compared without regard to case.
type ownerNames []string

func (ns ownerNames) has(name string) bool {
	for _, n := range ns {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// pickTXT returns the identity among the TXT records of rrs that own
// accepts (every TXT record when own is nil): of their cleaned, non-empty
// texts, the first in bytewise order in which match finds a site, else the
// first in bytewise order. Servers rotate an RRset of several records (BIND
// does by default), so the order they send is no choice at all.
func pickTXT(rrs []dns.RR, own *owners, match *identify.Matcher) string {
	var first, matched string
	for _, rr := range rrs {
		t, ok := rr.(*dns.TXT)
		if !ok || own != nil && !own.owns(&t.Hdr) {
			continue
		}
		text := txtText(t.Txt)
		if text == "" {
			continue
		}
		if first == "" || text < first {
			first = text
		}
		if (matched == "" || text < matched) && match.Site(text) != "" {
			matched = text
		}
	}
	return cmp.Or(matched, first)
}

// txtText joins a TXT record's character-strings as the bytes they carry.
// miekg/dns hands them over in zone-file escaping (\" \\ \DDD); an identity
// is what the server sent, so a TXT holding quotes keeps bare quotes.
// Strings are joined without a separator because long texts are split at
// 255 bytes, not at word boundaries.
func txtText(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		for i := 0; i < len(s) && b.Len() <= 4*MaxIdentityLen; i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				c = s[i]
				if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
					c = (s[i]-'0')*100 + (s[i+1]-'0')*10 + (s[i+2] - '0')
					i += 2
				}
			}
			b.WriteByte(c)
		}
	}
	return cleanIdentity(b.String())
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// nsidText returns the decoded, cleaned NSID of m, "" when it has none.
// miekg/dns keeps NSID hex-encoded.
func nsidText(m *dns.Msg) string {
	opt := m.IsEdns0()
	if opt == nil {
		return ""
	}
	for _, o := range opt.Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok {
			b, err := hex.DecodeString(n.Nsid)
			if err != nil {
				return ""
			}
			return cleanIdentity(string(b))
		}
	}
	return ""
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// questionString writes q as "hostname.bind. CH TXT".
func questionString(q dns.Question) string {
	return q.Name + " " + spec.ClassName(q.Qclass) + " " + spec.TypeName(q.Qtype)
}

func answeredString(qs []dns.Question) string {
	if len(qs) != 1 {
		return strconv.Itoa(len(qs)) + " questions"
	}
	return questionString(qs[0])
}
