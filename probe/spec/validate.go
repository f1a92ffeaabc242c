package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/catchmap/catchmap/probe/result"
)

// ErrBadSpec wraps every error that says a Spec itself is wrong (unknown
// method, bad target, bad pattern): retrying cannot help.
var ErrBadSpec = errors.New("bad measurement spec")

// DefaultTimeout bounds one measurement when the Spec sets none.
const DefaultTimeout = 5 * time.Second

// Validate checks a spec without measuring it, filling defaults.
func (s *Spec) Validate() error {
	if s.Method == "" {
		s.Method = result.MethodDNS
	}
	if !slices.Contains(result.Methods, s.Method) {
		return fmt.Errorf("%w: unknown method %q: use %s", ErrBadSpec, s.Method, strings.Join(result.Methods, ", "))
	}
	if s.AF != 0 && s.AF != 4 && s.AF != 6 {
		return fmt.Errorf("%w: address family %d: use 4 or 6", ErrBadSpec, s.AF)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range 1-65535", ErrBadSpec, s.Port)
	}
	if strings.TrimSpace(s.Target) == "" {
		return fmt.Errorf("%w: empty target", ErrBadSpec)
	}
	id, err := NewIdentifier(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	// Catch what each method would only reject at measurement time, so a
	// bad plan entry is refused when it is put, not on every probe.
	switch s.Method {
	case result.MethodDNS:
		if _, err := id.DNSQuestion(); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSpec, err)
		}
	case result.MethodHTTP:
		if _, err := s.HTTPRequestMethod(); err != nil {
			return err
		}
		if _, err := ParseRequestHeaders(id.RequestHeaders); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSpec, err)
		}
	}
	if _, _, err := s.SplitTarget(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	return nil
}

// HTTPRequestMethod is the request method of an http spec: GET unless
// HEAD is asked for.
func (s *Spec) HTTPRequestMethod() (string, error) {
	switch m := strings.ToUpper(s.HTTPMethod); m {
	case "", "GET":
		return "GET", nil
	case "HEAD":
		return m, nil
	}
	return "", fmt.Errorf("%w: http method %q: use GET or HEAD", ErrBadSpec, s.HTTPMethod)
}
