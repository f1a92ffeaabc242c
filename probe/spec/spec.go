// Package spec says what to measure and how: the measurement spec that
// `catchmap measure` builds from its flags and an aggregator plan entry
// carries, its validation, and its site identification resolved for a
// method. It holds no measuring engine (no ICMP, no HTTP client), so that
// the aggregator and the plan's readers can check specs without linking one.
package spec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Spec says what to measure and how. It is what `catchmap measure` builds from
// its flags and the body of an aggregator plan entry, so its JSON and YAML
// names are part of the API.
type Spec struct {
	Target string `json:"target" yaml:"target"` // host, host:port, [v6]:port, or URL (http)
	Method string `json:"method" yaml:"method"` // dns (default), http, icmp, tcp
	// AF restricts the address family: 4, 6, or 0 for every family the
	// target name has (one result each).
	AF   int `json:"af,omitempty" yaml:"af,omitempty"`
	Port int `json:"port,omitempty" yaml:"port,omitempty"`

	// Site identification: a preset name, or a regexp whose group named
	// site, else whose non-empty groups joined with "-", are the site
	// (identify.Matcher). Neither: the identity itself is the site.
	Preset    string `json:"preset,omitempty" yaml:"preset,omitempty"`
	SiteRegex string `json:"site_regex,omitempty" yaml:"site_regex,omitempty"`

	// dns
	QName  string `json:"qname,omitempty" yaml:"qname,omitempty"`
	QClass string `json:"qclass,omitempty" yaml:"qclass,omitempty"`
	QType  string `json:"qtype,omitempty" yaml:"qtype,omitempty"`
	NoNSID bool   `json:"no_nsid,omitempty" yaml:"no_nsid,omitempty"`
	TCP    bool   `json:"tcp,omitempty" yaml:"tcp,omitempty"`
	// AllowClassIN takes TXT records of class IN as answers to a question
	// of another class: dnsdist answers the CHAOS questions it spoofs that
	// way. Off, such answers are mismatches, as an interceptor's are.
	AllowClassIN bool `json:"allow_class_in,omitempty" yaml:"allow_class_in,omitempty"`

	// http
	HTTPMethod     string   `json:"http_method,omitempty" yaml:"http_method,omitempty"` // GET (default) or HEAD
	ConnectTo      string   `json:"connect_to,omitempty" yaml:"connect_to,omitempty"`
	RequestHeaders []string `json:"request_headers,omitempty" yaml:"request_headers,omitempty"` // "Name: value"
	SiteHeader     string   `json:"site_header,omitempty" yaml:"site_header,omitempty"`
	Insecure       bool     `json:"insecure,omitempty" yaml:"insecure,omitempty"` // skip TLS verification (labs, self-signed sites)

	// icmp
	Count      int      `json:"count,omitempty" yaml:"count,omitempty"`
	Interval   Duration `json:"ping_interval,omitempty" yaml:"ping_interval,omitempty"` // between echoes
	Privileged bool     `json:"privileged,omitempty" yaml:"privileged,omitempty"`

	// Timeout bounds one measurement of one address. The runner turns it
	// into a context deadline; methods read the deadline from the context only.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1.5s" in JSON and YAML.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string such as "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalText reads a Go duration string; YAML uses it too.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: use a number with a unit, such as 500ms, 30s or 5m", b)
	}
	if v < 0 {
		return fmt.Errorf("bad duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
