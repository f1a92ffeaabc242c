package globalping

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// TestNewRequest checks the bodies plan entries become against
// testdata/requests.json, written from the OpenAPI schema of
// POST /v1/measurements.
func TestNewRequest(t *testing.T) {
	var want map[string]any
	if err := json.Unmarshal(fixture(t, "requests.json"), &want); err != nil {
		t.Fatal(err)
	}
	cases := map[string]*Request{
		"opendns": request(t, openDNS(), everywhere),
		"opendns-tcp-by-name": request(t, spec.Spec{Target: "resolver1.opendns.com:5353", Method: result.MethodDNS,
			Preset: "opendns", TCP: true, AF: 6}, Where{Limit: 3}),
		"cloudflare": request(t, cloudflare(), Where{Limit: 5,
			Locations: []Location{{Continent: "AS"}, {Country: "FR", City: "Paris", ASN: 3215}}}),
		"akamai-connect-to": request(t, spec.Spec{Target: "https://www.example.net/index.html?v=1", Method: result.MethodHTTP,
			Preset: "akamai", ConnectTo: "192.0.2.80:8443", HTTPMethod: "head"},
			Where{Locations: []Location{{Region: "Western Europe", Network: "Orange S.A."}}}),
		"cloudflare-trace-http": request(t, spec.Spec{Target: "http://www.example.net/", Method: result.MethodHTTP,
			Preset: "cloudflare-trace", AF: 4}, Where{Locations: []Location{{State: "VA"}}}),
	}
	for name, req := range cases {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[name]) {
			t.Errorf("%s:\n%s\nwant it as testdata/requests.json has it", name, b)
		}
		if err := req.Check(LimitsFor(false)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := cases["opendns"].Tests(); n != 11 {
		t.Errorf("opendns asks for %d tests, want 10 + 1", n)
	}
	if n := (Where{Locations: []Location{{Country: "DE"}, {Country: "PL"}}}).Tests(); n != 2 {
		t.Errorf("two locations without limits ask for %d tests, want one each", n)
	}
	if n := (Where{}).Tests(); n != 1 {
		t.Errorf("no locations ask for %d tests, want 1", n)
	}
}

func TestNewRequestRefuses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		s           spec.Spec
		want        string
		unsupported bool
	}{
		{"chaos preset", spec.Spec{Target: "193.0.14.129", Preset: "k-root"}, "k-root asks hostname.bind. CH TXT, and Globalping asks class IN only", true},
		{"chaos qclass", spec.Spec{Target: "193.0.14.129", QName: "id.server", QClass: "CH", QType: "TXT"}, "class IN only", true},
		{"query type", spec.Spec{Target: "193.0.14.129", QName: "example.net", QClass: "IN", QType: "NULL"}, "Globalping asks only A, AAAA", true},
		{"icmp", spec.Spec{Target: "193.0.14.129", Method: result.MethodICMP}, "catchmap measures dns and http", true},
		{"user agent", spec.Spec{Target: "https://www.example.net/", Method: result.MethodHTTP, Preset: "cloudflare",
			RequestHeaders: []string{"User-Agent: x"}}, "User-Agent: Globalping sets it itself", true},
		{"head with body", spec.Spec{Target: "https://www.example.net/", Method: result.MethodHTTP, Preset: "cloudflare-trace",
			HTTPMethod: "HEAD"}, "HEAD has no body", false},
		{"af of an address", spec.Spec{Target: "208.67.222.222", Preset: "opendns", AF: 6}, "is an IPv4 address", false},
		{"bad spec", spec.Spec{Target: "208.67.222.222", Preset: "nope"}, "unknown preset", false},
	} {
		_, err := NewRequest(tc.s, Where{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%s: %v, want it to say %q (unsupported: %v)", tc.name, err, tc.want, tc.unsupported)
		}
	}
}

// TestCheck refuses, before anything is sent, what Globalping would
// refuse or what goes beyond the limits of a client with or without a
// token.
func TestCheck(t *testing.T) {
	anon, token := LimitsFor(false), LimitsFor(true)
	for _, tc := range []struct {
		name  string
		w     Where
		lim   Limits
		want  string
		limit bool
	}{
		{"limit over 50", Where{Limit: 51}, anon, "asks for 51 probes: beyond Globalping's limits: without a token, Globalping allows 50 probes per measurement", true},
		{"locations over 50", Where{Locations: []Location{{Country: "DE", Limit: 30}, {Country: "PL", Limit: 21}}}, anon, "asks for 51 probes", true},
		{"location over 500", Where{Locations: []Location{{Country: "DE", Limit: 501}}}, token, "with a token, Globalping allows 500", true},
		{"limit over 500", Where{Limit: 501}, token, "asks for 501 probes", true},
		{"both limits", Where{Limit: 5, Locations: []Location{{Country: "DE", Limit: 2}}}, anon, "exclude each other", false},
		{"nowhere", Where{Locations: []Location{{Limit: 2}}}, anon, "says nowhere", false},
		{"negative", Where{Limit: -1}, anon, "ask for one probe or more", false},
		{"magic", Where{Locations: []Location{{Magic: "a+b+c+d+e"}}}, anon, "more than 4 conditions", false},
	} {
		req := request(t, openDNS(), tc.w)
		err := req.Check(tc.lim)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrLimit) != tc.limit {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	if err := request(t, openDNS(), Where{Limit: 500}).Check(token); err != nil {
		t.Errorf("500 probes with a token: %v", err)
	}
	if err := request(t, openDNS(), Where{Limit: 50}).Check(anon); err != nil {
		t.Errorf("50 probes without a token: %v", err)
	}
	if !strings.Contains(anon.String(), "$CATCHMAP_GLOBALPING_TOKEN for 500 and 500") {
		t.Errorf("the limits without a token do not say how to raise them: %s", anon)
	}
}
