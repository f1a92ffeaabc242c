package spec

import (
	"fmt"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
)

// Identifier is a Spec's site identification, resolved for its method: the
// preset's form for that method merged with the spec's own overrides.
type Identifier struct {
	Matcher *identify.Matcher
	// NoSite: the service never names a site (the identity is still kept).
	NoSite bool

	// DNS: the question that reveals the identity, and whether records of
	// class IN answer it (Spec.AllowClassIN).
	QName, QClass, QType string
	AllowClassIN         bool

	// HTTP: where the identity is.
	Header         string
	Last           bool
	Body           bool
	Path           string
	RequestHeaders []string
}

// DNS defaults: CH TXT hostname.bind, as RFC 4892 servers answer.
const (
	DefaultQName  = "hostname.bind."
	DefaultQClass = "CH"
	DefaultQType  = "TXT"
)

// NewIdentifier resolves the spec's preset, regex and overrides.
// Spec fields win over the preset, so a user can reuse a preset's pattern
// with another qname or header.
func NewIdentifier(s *Spec) (*Identifier, error) {
	id := &Identifier{QName: DefaultQName, QClass: DefaultQClass, QType: DefaultQType, AllowClassIN: s.AllowClassIN}
	var patterns []string
	if s.Preset != "" {
		p, err := identify.Lookup(s.Preset)
		if err != nil {
			return nil, err
		}
		switch s.Method {
		case result.MethodDNS:
			if p.DNS == nil {
				return nil, fmt.Errorf("preset %q has no DNS form: use --method http", p.Name)
			}
			id.QName, id.QClass, id.QType = p.DNS.QName, p.DNS.QClass, p.DNS.QType
			id.NoSite = p.DNS.NoSite
			patterns = p.DNS.Patterns
		case result.MethodHTTP:
			if p.HTTP == nil {
				return nil, fmt.Errorf("preset %q has no HTTP form: use --method dns", p.Name)
			}
			h := p.HTTP
			id.Header, id.Last, id.Body, id.Path = h.Header, h.Last, h.Body, h.Path
			id.RequestHeaders = append(id.RequestHeaders, h.RequestHeaders...)
			patterns = h.Patterns
		}
	}
	if s.SiteRegex != "" {
		patterns = []string{s.SiteRegex}
		id.NoSite = false
	}
	if s.QName != "" {
		id.QName = s.QName
	}
	if s.QClass != "" {
		id.QClass = s.QClass
	}
	if s.QType != "" {
		id.QType = s.QType
	}
	if s.SiteHeader != "" {
		id.Header, id.Body = s.SiteHeader, false
	}
	id.RequestHeaders = append(id.RequestHeaders, s.RequestHeaders...)
	m, err := identify.NewMatcher(patterns...)
	if err != nil {
		return nil, err
	}
	id.Matcher = m
	return id, nil
}

// Site returns the site code for identity ("" when none).
func (id *Identifier) Site(identity string) string {
	if id.NoSite {
		return ""
	}
	return id.Matcher.Site(identity)
}
