package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
)

// ednsBufferSize is the UDP payload size advertised with NSID: the DNS flag
// day 2020 value, which avoids IP fragmentation on nearly every path.
const ednsBufferSize = 1232

// measureDNS asks the target the identifier's question, with an EDNS NSID
// request unless the spec says not to, over UDP (again over TCP when the
// answer is truncated) or over TCP only when the spec asks. The identity is
// the answer's TXT text, else its NSID.
func measureDNS(ctx context.Context, t Target, r *result.Record) error {
	q, err := dnsQuestion(t.Ident.QName, t.Ident.QClass, t.Ident.QType)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	r.DNS = &result.DNS{QName: q.Name, QClass: className(q.Qclass), QType: typeName(q.Qtype)}

	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	m.Question[0].Qclass = q.Qclass
	if !t.Spec.NoNSID {
		m.SetEdns0(ednsBufferSize, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}

	addr := t.Addr.String()
	network := "udp"
	if t.Spec.TCP {
		network = "tcp"
	}
	resp, rtt, err := exchangeDNS(ctx, m, network, addr)
	retried := false
	if err == nil && resp.Truncated && network == "udp" {
		network, retried = "tcp", true
		resp, rtt, err = exchangeDNS(ctx, m, network, addr)
	}
	r.DNS.TCP = network == "tcp"
	if err != nil {
		r.ErrorKind = exchangeErrorKind(ctx, err)
		var hint string
		switch r.ErrorKind {
		case result.KindTimeout:
			hint = "no answer before the measurement deadline (raise the timeout, or check that the target serves DNS on this port)"
		case result.KindMalformed:
			r.RTTMs = ms(rtt)
			hint = "the answer does not parse as a DNS message (is something other than a DNS server on this port?)"
		default:
			hint = "the exchange failed"
		}
		if retried {
			hint = "the UDP answer was truncated, and over TCP " + hint
		}
		err = fmt.Errorf("dns %s to %s over %s: %s: %w", questionString(q), addr, network, hint, err)
		r.Error = err.Error()
		return err
	}
	r.RTTMs = ms(rtt)
	resp.Compress = true
	r.DNS.Size = resp.Len()

	a, err := readDNSAnswer(q, resp)
	r.DNS.Rcode, r.DNS.NSID = a.Rcode, a.NSID
	r.Identity = a.Identity
	// An intercepted answer names the interceptor, and a version answer
	// names software: neither is a site.
	if a.Kind != result.KindMismatch && !identify.NeverSite(q.Name) {
		r.Site = t.Ident.Site(a.Identity)
	}
	r.Suspect = a.Kind == result.KindMismatch || identify.Suspect(a.Identity)
	if err != nil {
		r.ErrorKind = a.Kind
		err = fmt.Errorf("dns to %s: %w", addr, err)
		r.Error = err.Error()
		return err
	}
	return nil
}

// exchangeDNS sends m to addr over network and reads the answer.
//
// miekg/dns caps every exchange at 2s unless Client.Timeout is set, and
// obeys only a context's deadline, not its cancellation. So Timeout is set
// to the context's remaining time (the context alone bounds the exchange)
// and cancellation closes the connection.
func exchangeDNS(ctx context.Context, m *dns.Msg, network, addr string) (*dns.Msg, time.Duration, error) {
	timeout := 24 * time.Hour // no deadline: cancellation alone ends the wait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, 0, context.DeadlineExceeded
		}
	}
	c := &dns.Client{Net: network, Timeout: timeout}
	co, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, 0, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	return c.ExchangeWithConnContext(ctx, m, co)
}

// exchangeErrorKind classifies a failed exchange. A port that refuses the
// connection is a network failure here, not KindRefused, which for DNS means
// the REFUSED rcode.
func exchangeErrorKind(ctx context.Context, err error) result.ErrorKind {
	var dnsErr *dns.Error
	switch {
	case ctx.Err() != nil:
		return classify(ctx.Err())
	case errors.As(err, &dnsErr), errors.Is(err, io.ErrUnexpectedEOF):
		// The answer arrived but does not unpack, or a TCP answer was cut
		// short of the length it announced.
		return result.KindMalformed
	}
	if k := classify(err); k != result.KindRefused {
		return k
	}
	return result.KindNetwork
}
