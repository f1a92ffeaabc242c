package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// measureHTTP sends one GET (or HEAD) to t.Addr, whatever the URL's host
// resolves to, keeping the URL's host for the Host header and TLS SNI, and
// reads the site from a response header or from the body.
//
// Redirects are not followed: the answer of the anycast address itself is
// what tells its site, and a redirect's target would be another service.
// Each measurement gets its own transport, so no connection is reused and
// every phase is measured afresh; proxies from the environment are ignored
// because a proxy would replace the path being measured.
func measureHTTP(ctx context.Context, t Target, r *result.Record) error {
	method, err := t.Spec.HTTPRequestMethod()
	if err != nil {
		r.ErrorKind = result.KindMalformed
		return err
	}
	mime, err := spec.ParseRequestHeaders(t.Ident.RequestHeaders)
	if err != nil {
		r.ErrorKind = result.KindMalformed
		return fmt.Errorf("%w: %v", spec.ErrBadSpec, err)
	}
	u := *t.URL
	if t.Ident.Path != "" {
		u.Path, u.RawPath = t.Ident.Path, ""
	}

	var ph phases
	ctx = httptrace.WithClientTrace(ctx, ph.trace())
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		r.ErrorKind = result.KindMalformed
		return fmt.Errorf("%w: request for %s: %v", spec.ErrBadSpec, u.Redacted(), err)
	}
	req.Header = http.Header(mime)

	dialer := &net.Dialer{}
	tr := &http.Transport{
		// The dial ignores the address the transport derives from the URL:
		// t.Addr is the anycast address under test (--connect-to included).
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, t.Addr.String())
		},
		// SNI comes from the request's host, so it names the URL's host
		// even though the dial goes elsewhere.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: t.Spec.Insecure},
		ForceAttemptHTTP2:      true,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		ph.fill(r, start, time.Now())
		// err is a *url.Error: it names the method and the (redacted) URL,
		// and the dial error inside it names the address.
		r.ErrorKind = httpErrorKind(&ph, err)
		return err
	}
	defer resp.Body.Close()
	// Only the site is wanted from the body, so the read stops at the cap
	// whatever the mode; total time covers what was read.
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	ph.fill(r, start, time.Now())
	r.HTTP.Status = resp.StatusCode
	r.HTTP.Proto = resp.Proto

	// The identity is read before the status is judged: CDN error pages
	// carry the same POP headers as successes.
	identity, missing := HTTPIdentity(t.Ident, resp.Header, body)
	if missing != "" && t.Ident.Body && method == http.MethodHead {
		missing = "HEAD has no body, and the site is read from the body: use GET"
	}
	r.Identity = identity
	r.Site = t.Ident.Site(identity)

	switch {
	case resp.StatusCode >= 400:
		r.ErrorKind = result.KindHTTPStatus
		// The status code and its standard text, not the server's reason
		// phrase: that is the target's text, of any length.
		return fmt.Errorf("%s %s via %s: status %d %s", method, u.Redacted(), t.Addr,
			resp.StatusCode, http.StatusText(resp.StatusCode))
	case readErr != nil:
		return fmt.Errorf("%s %s via %s: reading the body: %w", method, u.Redacted(), t.Addr, readErr)
	case missing != "":
		r.ErrorKind = result.KindNoIdentity
		return fmt.Errorf("%s %s via %s: %s", method, u.Redacted(), t.Addr, missing)
	}
	// Success. With neither a header nor the body asked for, this is a
	// timing-only measurement, like tcp.
	return nil
}

// httpErrorKind classifies a request that got no response. A timeout or
// refusal says more than the phase it happened in; otherwise a handshake
// that started and did not finish is a TLS failure.
func httpErrorKind(ph *phases, err error) result.ErrorKind {
	kind := classify(err)
	var ce *tls.CertificateVerificationError
	if kind == result.KindNetwork && (ph.tlsFailed() || errors.As(err, &ce)) {
		return result.KindTLS
	}
	return kind
}

// phases collects httptrace times. The transport calls the hooks from its
// own goroutines, hence the lock.
type phases struct {
	mu                  sync.Mutex
	connStart, connDone time.Time
	tlsStart, tlsDone   time.Time
	tlsErr              error
	firstByte           time.Time
}

func (p *phases) trace() *httptrace.ClientTrace {
	set := func(f func()) { p.mu.Lock(); f(); p.mu.Unlock() }
	return &httptrace.ClientTrace{
		// No DNS hooks: probe.go resolved the name before the measurement
		// and the dial goes to that address, so there is no DNS phase to
		// time here and DNSMs stays 0.
		ConnectStart: func(string, string) { set(func() { p.connStart = time.Now() }) },
		ConnectDone: func(_, _ string, err error) {
			set(func() {
				if err == nil {
					p.connDone = time.Now()
				}
			})
		},
		TLSHandshakeStart: func() { set(func() { p.tlsStart = time.Now() }) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			set(func() { p.tlsDone, p.tlsErr = time.Now(), err })
		},
		GotFirstResponseByte: func() { set(func() { p.firstByte = time.Now() }) },
	}
}

// fill writes the phases that happened into r. r.RTTMs is the TCP connect
// time: one SYN/SYN-ACK round trip, the network RTT to the site, free of
// TLS and server think time.
func (p *phases) fill(r *result.Record, start, end time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &result.HTTP{TotalMs: ms(end.Sub(start))}
	if !p.connDone.IsZero() {
		h.ConnectMs = ms(p.connDone.Sub(p.connStart))
		r.RTTMs = h.ConnectMs
	}
	if !p.tlsDone.IsZero() && p.tlsErr == nil {
		h.TLSMs = ms(p.tlsDone.Sub(p.tlsStart))
	}
	if !p.firstByte.IsZero() {
		h.FirstByteMs = ms(p.firstByte.Sub(start))
	}
	r.HTTP = h
}

// tlsFailed reports whether the TLS handshake started and failed.
func (p *phases) tlsFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.tlsStart.IsZero() && (p.tlsDone.IsZero() || p.tlsErr != nil)
}

// ms converts a duration to float milliseconds, the unit of every time in
// a result.Record.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
