package probe

import (
	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// IdentifyDNS reads the answer m to question q as the dns method does (the
// method calls it too), and fills r with what it says: r.DNS's question,
// rcode and NSID (r.DNS is created if nil; its TCP and Size are left to the
// caller), the identity, the site by id, Suspect, and on failure Error and
// ErrorKind. It needs no socket: importers of answers measured elsewhere
// (RIPE Atlas) use it so that their records mean what the dns method's
// records mean.
//
// The returned error is the one written to r.Error.
func IdentifyDNS(id *spec.Identifier, q dns.Question, m *dns.Msg, r *result.Record) error {
	if r.DNS == nil {
		r.DNS = new(result.DNS)
	}
	r.DNS.QName, r.DNS.QClass, r.DNS.QType = q.Name, spec.ClassName(q.Qclass), spec.TypeName(q.Qtype)
	a, err := readDNSAnswer(q, m, id)
	r.DNS.Rcode, r.DNS.NSID = a.Rcode, a.NSID
	r.Identity = a.Identity
	// An intercepted answer names the interceptor, and a version answer
	// names software: neither is a site.
	if a.Kind != result.KindMismatch && !identify.NeverSite(q.Name) {
		r.Site = id.Site(a.Identity)
	}
	r.Suspect = a.Kind == result.KindMismatch || identify.Suspect(a.Identity)
	if err != nil {
		r.ErrorKind = a.Kind
		r.Error = err.Error()
	}
	return err
}
