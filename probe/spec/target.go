package spec

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/catchmap/catchmap/probe/result"
)

// DefaultPort is the port the spec's method uses when neither the target
// nor the spec names one; u is the target's URL for http.
func (s *Spec) DefaultPort(u *url.URL) uint16 {
	if s.Port != 0 {
		return uint16(s.Port)
	}
	switch s.Method {
	case result.MethodDNS:
		return 53
	case result.MethodHTTP:
		if u != nil && u.Scheme == "http" {
			return 80
		}
		return 443
	case result.MethodTCP:
		return 443
	}
	return 0
}

// SplitTarget parses the target text into a host and, for http, a URL. A
// port the target names becomes s.Port unless s.Port is already set.
func (s *Spec) SplitTarget() (string, *url.URL, error) {
	host, u, port, err := targetParts(s)
	if err != nil {
		return "", nil, err
	}
	if port != 0 && s.Port == 0 {
		s.Port = port
	}
	return host, u, nil
}

// DialHost returns the host a measurement of s dials, connect_to when set
// and else the target's host, and the port that names, 0 when it names
// none. It is what an allowlist must judge before s is measured.
func (s Spec) DialHost() (host string, port int, err error) {
	if s.ConnectTo != "" {
		return parseHostPort(s.ConnectTo, fmt.Sprintf("connect-to %q", s.ConnectTo))
	}
	host, _, port, err = targetParts(&s)
	return host, port, err
}

// targetParts parses the target text into a host, for http a URL, and the
// port it names (0 when none).
func targetParts(s *Spec) (string, *url.URL, int, error) {
	t := strings.TrimSpace(s.Target)
	what := fmt.Sprintf("target %q", s.Target)
	if s.Method == result.MethodHTTP {
		if !strings.Contains(t, "://") {
			t = "https://" + t
		}
		u, err := url.Parse(t)
		if err != nil {
			return "", nil, 0, fmt.Errorf("%s is not a URL: %v", what, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", nil, 0, fmt.Errorf("%s: scheme %q is not http or https", what, u.Scheme)
		}
		if u.Hostname() == "" {
			return "", nil, 0, fmt.Errorf("%s has no host", what)
		}
		port := 0
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return "", nil, 0, fmt.Errorf("%s: bad port %q", what, p)
			}
			port = n
		}
		return u.Hostname(), u, port, nil
	}
	if strings.Contains(t, "://") {
		return "", nil, 0, fmt.Errorf("%s is a URL: URLs are for --method http", what)
	}
	host, port, err := parseHostPort(t, what)
	return host, nil, port, err
}

// parseHostPort splits host[:port] text, what names it for errors. The port is
// 0 when the text names none; a bare IPv6 address may come with or without
// brackets.
func parseHostPort(t, what string) (string, int, error) {
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(t, "["), "]")
		if host == "" {
			return "", 0, fmt.Errorf("%s has no host", what)
		}
		return host, 0, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%s: bad port %q", what, port)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%s has no host", what)
	}
	return host, n, nil
}
