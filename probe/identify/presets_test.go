package identify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// goldenCase is one example answer in testdata/identify/presets.yaml.
type goldenCase struct {
	Method   string `yaml:"method"`
	QName    string `yaml:"qname"`
	Identity string `yaml:"identity"`
	Site     string `yaml:"site"`
	Suspect  bool   `yaml:"suspect"`
	Note     string `yaml:"note"`
}

func readGolden(t *testing.T) map[string][]goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "identify", "presets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][]goldenCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&golden); err != nil {
		t.Fatalf("presets.yaml: %v", err)
	}
	return golden
}

// siteOf is what a probe makes of an answer under preset p: the form for the
// method, NoSite, version questions, and the header entry for HTTP.
func siteOf(t *testing.T, p Preset, c goldenCase) string {
	t.Helper()
	switch c.Method {
	case "dns":
		m, err := NewMatcher(p.DNS.Patterns...)
		if err != nil {
			t.Fatal(err)
		}
		qname := p.DNS.QName
		if c.QName != "" {
			qname = c.QName
		}
		if p.DNS.NoSite || NeverSite(qname) {
			return ""
		}
		return m.Site(c.Identity)
	case "http":
		m, err := NewMatcher(p.HTTP.Patterns...)
		if err != nil {
			t.Fatal(err)
		}
		id := c.Identity
		if !p.HTTP.Body {
			id = lastEntry(id, p.HTTP.Last)
		}
		return m.Site(id)
	}
	t.Fatalf("method %q: want dns or http", c.Method)
	return ""
}

func TestPresetsGolden(t *testing.T) {
	golden := readGolden(t)
	for name := range golden {
		if _, err := Lookup(name); err != nil {
			t.Errorf("presets.yaml: %v", err)
		}
	}
	for _, p := range All() {
		cases := golden[p.Name]
		if len(cases) == 0 {
			t.Errorf("preset %s has no case in testdata/identify/presets.yaml: add a real example answer", p.Name)
			continue
		}
		methods := map[string]bool{}
		for i, c := range cases {
			if c.Method == "" {
				switch {
				case p.DNS != nil && p.HTTP != nil:
					t.Fatalf("%s case %d: the preset has dns and http forms: say which", p.Name, i)
				case p.DNS != nil:
					c.Method = "dns"
				default:
					c.Method = "http"
				}
			}
			if (c.Method == "dns" && p.DNS == nil) || (c.Method == "http" && p.HTTP == nil) {
				t.Fatalf("%s case %d: the preset has no %s form", p.Name, i, c.Method)
			}
			if c.QName != "" && c.Method != "dns" {
				t.Fatalf("%s case %d: qname is for dns cases", p.Name, i)
			}
			methods[c.Method] = true
			if got := siteOf(t, p, c); got != c.Site {
				t.Errorf("%s %s %q: site %q, want %q (%s)", p.Name, c.Method, c.Identity, got, c.Site, c.Note)
			}
			if got := Suspect(c.Identity); got != c.Suspect {
				t.Errorf("%s %q: Suspect = %v, want %v", p.Name, c.Identity, got, c.Suspect)
			}
		}
		if p.DNS != nil && !methods["dns"] || p.HTTP != nil && !methods["http"] {
			t.Errorf("preset %s: every form needs a case (have %v)", p.Name, methods)
		}
	}
}

func TestPresetTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range All() {
		key := strings.ToLower(p.Name)
		if seen[key] {
			t.Errorf("preset %s listed twice", p.Name)
		}
		seen[key] = true
		if p.Description == "" || (p.DNS == nil && p.HTTP == nil) {
			t.Errorf("preset %s needs a description and a form", p.Name)
		}
		if d := p.DNS; d != nil {
			if !strings.HasSuffix(d.QName, ".") || (d.QClass != "CH" && d.QClass != "IN") || d.QType != "TXT" {
				t.Errorf("preset %s: DNS question %s %s %s", p.Name, d.QName, d.QClass, d.QType)
			}
			if d.NoSite != (len(d.Patterns) == 0) {
				t.Errorf("preset %s: a DNS form has patterns or NoSite, not both or neither", p.Name)
			}
			if _, err := NewMatcher(d.Patterns...); err != nil {
				t.Errorf("preset %s: %v", p.Name, err)
			}
		}
		if h := p.HTTP; h != nil {
			if (h.Header == "") != h.Body || len(h.Patterns) == 0 {
				t.Errorf("preset %s: an HTTP form reads a header or the body, with a pattern", p.Name)
			}
			if _, err := NewMatcher(h.Patterns...); err != nil {
				t.Errorf("preset %s: %v", p.Name, err)
			}
			for _, rh := range h.RequestHeaders {
				if k, _, ok := strings.Cut(rh, ":"); !ok || strings.TrimSpace(k) == "" {
					t.Errorf("preset %s: request header %q is not \"Name: value\"", p.Name, rh)
				}
			}
		}
	}
	for _, letter := range "abcdefghijklm" {
		if _, err := Lookup(string(letter) + "-root"); err != nil {
			t.Error(err)
		}
	}
}

func TestLookup(t *testing.T) {
	p, err := Lookup("K-Root")
	if err != nil || p.Name != "k-root" {
		t.Errorf("Lookup(K-Root) = %v, %v", p.Name, err)
	}
	_, err = Lookup("n-root")
	if err == nil || !strings.Contains(err.Error(), "unknown preset \"n-root\"") || !strings.Contains(err.Error(), "a-root, akamai") {
		t.Errorf("Lookup(n-root) err = %v, want it to list the presets", err)
	}
	all := All()
	all[0].Name = "changed"
	if _, err := Lookup("a-root"); err != nil {
		t.Error("All returned the table itself, not a copy")
	}
}

func TestNewMatcherErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{`^ns\d+\.k\.ripe\.net$`, "has no capture group"},
		{`(?:ams)`, "has no capture group"},
		{`([a-z]{3}`, "does not compile"},
		{`(?P<x>a`, "does not compile"},
		{`\8(a)`, "does not compile"},
	} {
		m, err := NewMatcher(`^([a-z]{3})$`, tc.pattern)
		if err == nil || m != nil {
			t.Errorf("NewMatcher(%q) = %v, nil; want an error", tc.pattern, m)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.pattern)) {
			t.Errorf("NewMatcher(%q) err = %q, want it to name the pattern and say %q", tc.pattern, err, tc.want)
		}
	}
}

// TestMatcherGroups pins down what a pattern with several groups yields: the
// group named site when there is one, else every group that took part,
// joined with "-" (the K-, L-, D-root and CDN77 presets rely on the joining).
func TestMatcherGroups(t *testing.T) {
	for _, tc := range []struct{ pattern, identity, want string }{
		{`^(ns\d+)\.([a-z]{3})\.`, "ns1.fra.example", "ns1-fra"},
		{`^(ns\d+)\.(?P<site>[a-z]{3})\.`, "ns1.fra.example", "fra"},
		{`^(?P<site>[A-Z]{3})-(\d+)$`, "FRA-12", "fra"},
		{`^(?:(?P<site>[a-z]{3})|(\d+))$`, "12", ""},      // the site group took no part
		{`^(?P<pop>[a-z]{3})-(\d+)$`, "fra-12", "fra-12"}, // named, but not site
		{`^(a)?(b)$`, "b", "b"},
	} {
		m, err := NewMatcher(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Site(tc.identity); got != tc.want {
			t.Errorf("pattern %s on %q: site %q, want %q", tc.pattern, tc.identity, got, tc.want)
		}
	}
}

func TestMatcherWithoutPatterns(t *testing.T) {
	m, err := NewMatcher()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Site("  LHR01 "); got != "lhr01" {
		t.Errorf("bare identity site = %q, want lhr01", got)
	}
	if m.Recognises("LHR01") {
		t.Error("a matcher without patterns vouches for nothing")
	}
	var nilM *Matcher
	if nilM.Site("x") != "" || nilM.Recognises("x") {
		t.Error("a nil matcher must yield nothing")
	}
}

func TestNeverSite(t *testing.T) {
	for q, want := range map[string]bool{
		"version.bind.": true, "VERSION.BIND": true, "version.server.": true, " version.server ": true,
		"hostname.bind.": false, "id.server.": false, "version.bind.example.": false, "": false,
	} {
		if got := NeverSite(q); got != want {
			t.Errorf("NeverSite(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestSuspect(t *testing.T) {
	for id, want := range map[string]bool{
		"OPNsense.home.arpa": true, "router.lan": true, "gw.local.": true, "box.localdomain": true,
		"pfSense": true, "OpenWrt": true, "fritz.box": true, "dnsmasq-2.85": true, "unbound": true,
		"pi.hole pihole": true, "Pi-hole": true, "localhost": true,
		"10.1.2.3": true, "172.16.0.1": true, "192.168.178.1": true, "fd00::1": true, "100.64.0.1": true,
		"127.0.0.1": true, "::ffff:192.168.0.1": true, "fe80::1": true,
		"nnn1-lon3": false, "ns1.fi-hel.k.ripe.net": false, "LHR": false, "8.8.8.8": false,
		"2001:db8::1": false, "": false, "lantern.example": false, "planet.example": false,
	} {
		if got := Suspect(id); got != want {
			t.Errorf("Suspect(%q) = %v, want %v", id, got, want)
		}
	}
}

// FuzzPresets feeds every preset arbitrary answers: no panic, and a site,
// when there is one, is lower case and recognised by a pattern.
func FuzzPresets(f *testing.F) {
	for _, s := range []string{"nnn1-lon3", "ns1.fi-hel.k.ripe.net", "colo=HKG\n", "cache-a-IAD, cache-b-FRA", "OPNsense.home.arpa", ""} {
		f.Add(s)
	}
	var ms []*Matcher
	for _, p := range All() {
		for _, pats := range [][]string{dnsPatterns(p), httpPatterns(p)} {
			m, err := NewMatcher(pats...)
			if err != nil {
				f.Fatal(err)
			}
			ms = append(ms, m)
		}
	}
	// A user's pattern whose site group sits among others.
	named := regexp.MustCompile(`(?i)^(ns\d+)\.(?P<site>[a-z]{2}-[a-z]{3}|[a-z]{3})\b`)
	nm, err := NewMatcher(named.String())
	if err != nil {
		f.Fatal(err)
	}
	ms = append(ms, nm)
	f.Fuzz(func(t *testing.T, identity string) {
		_ = Suspect(identity)
		e := lastEntry(identity, true)
		for _, m := range ms {
			for _, id := range []string{identity, e} {
				s := m.Site(id)
				if s != "" && (s != strings.ToLower(s) || (len(m.pats) > 0 && !m.Recognises(id))) {
					t.Fatalf("Site(%q) = %q", id, s)
				}
			}
		}
		if sub := named.FindStringSubmatch(identity); sub != nil && nm.Site(identity) != strings.ToLower(sub[2]) {
			t.Fatalf("Site(%q) = %q, want the site group %q", identity, nm.Site(identity), sub[2])
		}
	})
}

// lastEntry stands in for the HTTP probe's header reading (probe's
// headerIdentity, tested there): with last, the final comma-separated entry.
func lastEntry(value string, last bool) string {
	if i := strings.LastIndexByte(value, ','); last && i >= 0 {
		value = value[i+1:]
	}
	return strings.TrimSpace(value)
}

func dnsPatterns(p Preset) []string {
	if p.DNS == nil {
		return nil
	}
	return p.DNS.Patterns
}

func httpPatterns(p Preset) []string {
	if p.HTTP == nil {
		return nil
	}
	return p.HTTP.Patterns
}
