package globalping

import (
	"errors"
	"strings"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Support says whether one form of a preset works through Globalping.
type Support struct {
	Preset string
	// Method is dns or http.
	Method string
	Works  bool
	// Why says how, or why not.
	Why string
}

// Presets says, for each form of each built-in preset, whether it works
// through Globalping, in the order of identify.All. It asks NewRequest, so
// that the table says what a plan entry would meet.
func Presets() []Support {
	var out []Support
	for _, p := range identify.All() {
		if p.DNS != nil {
			out = append(out, support(p, result.MethodDNS, "192.0.2.53",
				"IN "+p.DNS.QType+" "+p.DNS.QName+" asked of the service, with the NSID from dig's output"))
		}
		if h := p.HTTP; h != nil {
			why := "the " + h.Header + " header, from the parsed headers"
			if h.Body {
				why = "the body (its first 10 kB) of a GET"
			}
			out = append(out, support(p, result.MethodHTTP, "https://www.example.net/", why))
		}
	}
	return out
}

func support(p identify.Preset, method, target, how string) Support {
	s := Support{Preset: p.Name, Method: method, Works: true, Why: how}
	_, err := NewRequest(spec.Spec{Target: target, Method: method, Preset: p.Name}, Where{})
	switch {
	case errors.Is(err, ErrUnsupported):
		s.Works, s.Why = false, strings.TrimPrefix(err.Error(), ErrUnsupported.Error()+": ")
	case err != nil:
		s.Works, s.Why = false, "the preset does not make a request: "+err.Error()
	case method == result.MethodDNS && p.DNS.NoSite:
		s.Why += "; the answers name no site"
	}
	return s
}
