package probe

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/spec"
)

// Limits on what an HTTP target can make us keep. A CDN's POP header is a
// few dozen bytes; anything beyond these is noise or hostility, and every
// byte of identity travels to the aggregator and into the store.
const (
	// MaxIdentityLen caps the identity kept from a header or body line.
	MaxIdentityLen = 256
	// maxBodyRead caps the body read when the site is in the body
	// (Cloudflare's /cdn-cgi/trace is about 300 bytes).
	maxBodyRead = 64 << 10
	// maxResponseHeaderBytes caps all response headers together; the
	// transport fails the request beyond it.
	maxResponseHeaderBytes = 256 << 10
)

// HTTPIdentity reads the identity in a response as the http method does:
// from the body when id says so (the first line that names a site), else
// from the header id names. When id asks for an identity and the response
// has none, missing says what was absent; with neither a header nor the
// body asked for (a timing-only measurement) both are empty. It needs no
// connection, so that fleets that run HTTP measurements elsewhere
// (Globalping) make records that mean what the http method's records mean.
func HTTPIdentity(id *spec.Identifier, h http.Header, body []byte) (identity, missing string) {
	switch {
	case id.Body:
		identity, missing = bodyIdentity(body, id.Matcher), "no line of the body names a site"
	case id.Header != "":
		identity = headerIdentity(h.Values(id.Header), id.Last)
		missing = fmt.Sprintf("no %s header in the response", id.Header)
	}
	if identity != "" {
		missing = ""
	}
	return identity, missing
}

// headerIdentity returns the identity in the values of one response header.
// Repeated field lines are one comma-separated list (RFC 9110, 5.3), so with
// last the final entry of the final line is the identity (Fastly's
// x-served-by lists the shield first and the edge last); without it, the
// first line is. The result is cleaned by cleanIdentity.
func headerIdentity(values []string, last bool) string {
	if len(values) == 0 {
		return ""
	}
	if !last {
		return cleanIdentity(values[0])
	}
	// Walk back over empty entries ("a, b," or a blank last line): the
	// last entry that says something is the edge.
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			entry := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			if id := cleanIdentity(entry); id != "" {
				return id
			}
		}
	}
	return ""
}

// bodyIdentity returns the first line of body in which m finds a site,
// cleaned by cleanIdentity; "" when no line names one. Lines are matched
// one by one so that the identity is the line itself (colo=HKG), not the
// whole trace.
func bodyIdentity(body []byte, m *identify.Matcher) string {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if id := cleanIdentity(string(line)); id != "" && m.Site(id) != "" {
			return id
		}
	}
	return ""
}

// cleanIdentity makes untrusted text safe to store and print: invalid UTF-8
// is dropped, each control character (C0, DEL, C1) becomes a space, so
// that words a tab or newline kept apart stay apart, surrounding space is
// trimmed, and the result is cut to MaxIdentityLen bytes on a rune
// boundary. It stops reading once the cap is reached, so a huge input costs
// no more than a small one.
func cleanIdentity(s string) string {
	s = strings.TrimLeftFunc(s, isSpaceOrControl)
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError {
			continue
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > MaxIdentityLen {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}
