package spec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// DNSQuestion returns the question the identifier asks (its qname, class
// and type parsed), for code that reads answers to it without sending it.
func (id *Identifier) DNSQuestion() (dns.Question, error) {
	return dnsQuestion(id.QName, id.QClass, id.QType)
}

// dnsQuestion builds the question of an identifier. Class and type are
// names (CH or CHAOS, IN, TXT, SOA...) or the RFC 3597 forms CLASS3 and
// TYPE16.
func dnsQuestion(qname, qclass, qtype string) (dns.Question, error) {
	name := dns.Fqdn(strings.TrimSpace(qname))
	if _, ok := dns.IsDomainName(name); !ok {
		return dns.Question{}, fmt.Errorf("qname %q is not a domain name", qname)
	}
	if !dns.IsFqdn(name) {
		// A trailing backslash escapes the dot dns.Fqdn adds, and a query
		// for a name that does not end in the root does not pack.
		return dns.Question{}, fmt.Errorf(`qname %q ends in a backslash that escapes the final dot: write \\ for a backslash in a label`, qname)
	}
	class, ok := parseDNSCode(qclass, dns.StringToClass, "CLASS")
	if c, alias := classAliases[strings.ToUpper(strings.TrimSpace(qclass))]; alias {
		class, ok = c, true
	}
	if !ok {
		return dns.Question{}, fmt.Errorf("qclass %q is unknown: use CH, IN, HS or CLASSnnn", qclass)
	}
	typ, ok := parseDNSCode(qtype, dns.StringToType, "TYPE")
	if !ok {
		return dns.Question{}, fmt.Errorf("qtype %q is unknown: use a type name such as TXT, SOA or NS, or TYPEnnn", qtype)
	}
	return dns.Question{Name: name, Qclass: class, Qtype: typ}, nil
}

// classAliases are the long class names dig accepts and miekg/dns does not.
var classAliases = map[string]uint16{"CHAOS": dns.ClassCHAOS, "HESIOD": dns.ClassHESIOD}

func parseDNSCode(s string, names map[string]uint16, prefix string) (uint16, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if v, ok := names[s]; ok {
		return v, true
	}
	if n, ok := strings.CutPrefix(s, prefix); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

// ClassName and TypeName name a class or type the way a Spec's qclass and qtype read
// it back: miekg/dns names some codes it cannot parse (type 65535 is
// "Reserved"), and those get the RFC 3597 form.
func ClassName(c uint16) string {
	return codeName(dns.Class(c).String(), c, dns.StringToClass, "CLASS")
}

func TypeName(t uint16) string { return codeName(dns.Type(t).String(), t, dns.StringToType, "TYPE") }

func codeName(name string, code uint16, names map[string]uint16, prefix string) string {
	if v, ok := parseDNSCode(name, names, prefix); ok && v == code {
		return name
	}
	return prefix + strconv.Itoa(int(code))
}
