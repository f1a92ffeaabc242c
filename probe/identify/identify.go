// Package identify turns what an anycast target says about itself (a CHAOS
// TXT answer, an NSID, an HTTP header or body) into a site code.
//
// Extraction is data: a Preset names where to look and a pattern that yields
// the code, so a change in an operator's naming is a table edit, not code.
package identify

import (
	"fmt"
	"regexp"
	"strings"
)

// Preset says where a service reveals its site, and how to read it.
// A preset may have a DNS form, an HTTP form, or both; the method picks.
type Preset struct {
	Name        string
	Description string
	DNS         *DNSForm
	HTTP        *HTTPForm
}

// DNSForm is the DNS side of a preset.
type DNSForm struct {
	QName  string // e.g. "hostname.bind."
	QClass string // "CH" or "IN"
	QType  string // "TXT"
	// Patterns are tried in order on the identity (TXT text, else NSID);
	// the first that matches gives the site, as Matcher.Site says. Empty:
	// the identity itself is the site.
	Patterns []string
	// NoSite marks services whose answers never carry a site (G-root): the
	// identity is kept and the site left empty.
	NoSite bool
}

// HTTPForm is the HTTP side of a preset.
type HTTPForm struct {
	Header string // response header to read; empty when reading the body
	// Last takes the last comma-separated entry of the header (Fastly's
	// x-served-by lists the shield first and the edge last).
	Last bool
	// Path replaces the URL's path when the site is read from the body
	// (Cloudflare's /cdn-cgi/trace).
	Path           string
	Body           bool
	Patterns       []string
	RequestHeaders []string // "Name: value" lines the service needs to reveal its site
}

// siteGroup is the name of the capture group that holds the whole site
// code, for patterns whose other groups only help to match.
const siteGroup = "site"

// Matcher extracts a site from an identity.
type Matcher struct {
	pats []pattern
}

// pattern is one compiled site pattern.
type pattern struct {
	re *regexp.Regexp
	// site is the index of the group named siteGroup, or -1.
	site int
}

// NewMatcher compiles patterns. With none, the site is the identity itself.
func NewMatcher(patterns ...string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("site pattern %q does not compile: %w", p, err)
		}
		if re.NumSubexp() < 1 {
			return nil, fmt.Errorf("site pattern %q has no capture group: wrap the site code in ( )", p)
		}
		m.pats = append(m.pats, pattern{re: re, site: re.SubexpIndex(siteGroup)})
	}
	return m, nil
}

// Site returns the lower-case site code in identity, or "" when no pattern
// matches. The first pattern that matches gives it: its group named
// siteGroup when it has one, else its non-empty groups joined with "-"
// (K-root's ns1.fi-hel.k.ripe.net gives fi-hel from two groups). The
// identity is never altered: callers keep it beside the site.
func (m *Matcher) Site(identity string) string {
	if m == nil || identity == "" {
		return ""
	}
	if len(m.pats) == 0 {
		return strings.ToLower(strings.TrimSpace(identity))
	}
	for _, p := range m.pats {
		sub := p.re.FindStringSubmatch(identity)
		if sub == nil {
			continue
		}
		if p.site >= 0 {
			return strings.ToLower(sub[p.site])
		}
		var parts []string
		for _, s := range sub[1:] {
			if s != "" {
				parts = append(parts, strings.ToLower(s))
			}
		}
		return strings.Join(parts, "-")
	}
	return ""
}

// Recognises reports whether a pattern matches identity. With no patterns it
// says false: a bare identity is kept as the site, but nothing vouches for it.
func (m *Matcher) Recognises(identity string) bool {
	if m == nil {
		return false
	}
	for _, p := range m.pats {
		if p.re.MatchString(identity) {
			return true
		}
	}
	return false
}
