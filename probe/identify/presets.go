package identify

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Shared forms: the questions most services answer.
const (
	hostnameBind = "hostname.bind."
	idServer     = "id.server."
)

// root is a root server letter answering CH TXT hostname.bind.
func root(letter, desc string, patterns ...string) Preset {
	return Preset{
		Name:        letter + "-root",
		Description: desc,
		DNS:         &DNSForm{QName: hostnameBind, QClass: "CH", QType: "TXT", Patterns: patterns},
	}
}

// header reads a site from one response header.
func header(name, desc, hdr string, patterns ...string) Preset {
	return Preset{Name: name, Description: desc, HTTP: &HTTPForm{Header: hdr, Patterns: patterns}}
}

// Verisign names A and J sites alike: "nnn1-lon3", "rootns1-elpek3".
const verisign = `(?i)-(?:[a-z]{2})?([a-z]{3})\d+$`

// presets is the built-in table, gathered from the operators' public
// recordings and documentation (see the README's presets section). Example
// answers for each, and what they must yield, are in
// testdata/identify/presets.yaml, which the tests replay against it.
// DNS patterns ignore case: DNS names do, and operators mix it (c01.HKG.eroot).
var presets = []Preset{
	root("a", "A-root (Verisign): IATA code in the hostname.bind answer, e.g. nnn1-lon3.", verisign),
	root("b", "B-root (USC/ISI): IATA code after the server number, e.g. b3-sin; some servers (b4) name no site.",
		`(?i)^b\d+-([a-z]{3})`),
	root("c", "C-root (Cogent): IATA code, e.g. lax1a.c.root-servers.org.",
		`(?i)^([a-z]{3})\d+[a-z]?\.c\.root-servers\.org$`),
	root("d", "D-root (UMD): country and city, e.g. sgsg2.droot gives sg-sg (Maryland's own city codes, not IATA).",
		`(?i)^([a-z]{2})([a-z]{2,3})\d+\.droot$`),
	root("e", "E-root (NASA, via PCH): IATA code, e.g. 1.1.e.qpg.pch.net or c01.HKG.eroot.",
		`(?i)\be\.([a-z]{3})\.pch\.net$`, `(?i)\.([a-z]{3})\.eroot$`),
	root("f", "F-root (ISC): IATA code, e.g. pek2b.f.root-servers.org.",
		`(?i)^([a-z]{3})\d+[a-z]?\.f\.root-servers\.org$`),
	{
		Name: "g-root",
		Description: "G-root (DISA): answers (g.root-servers-con2-1.net) name no site; the identity is kept " +
			"so catchments still separate by server.",
		DNS: &DNSForm{QName: hostnameBind, QClass: "CH", QType: "TXT", NoSite: true},
	},
	root("h", "H-root (US Army): IATA code, e.g. 001.hkg.h.root-servers.org.",
		`(?i)^\d+\.([a-z]{3})\.h\.root-servers\.org$`),
	root("i", "I-root (Netnod): Netnod's own three-letter codes, not always IATA, e.g. s1.bei.",
		`(?i)^s\d+\.([a-z]{3})$`),
	root("j", "J-root (Verisign): as A-root, e.g. rootns1-elpek3.", verisign),
	root("k", "K-root (RIPE NCC): country and place (UN/LOCODE), e.g. ns1.fi-hel.k.ripe.net gives fi-hel; "+
		"older k3.ams-ix.k.ripe.net gives ams.",
		`(?i)^ns\d+\.([a-z]{2})-([a-z]{3})\.k\.ripe\.net$`, `(?i)^k\d+\.([a-z]{3})-ix\.k\.ripe\.net$`),
	root("l", "L-root (ICANN): country and place (UN/LOCODE), e.g. aa.de-ham.l.root gives de-ham; "+
		"older pek01.l.root-servers.org gives pek.",
		`(?i)^[a-z]{2}\.([a-z]{2})-([a-z]{3})\.l\.root$`, `(?i)^([a-z]{3})\d+\.l\.root-servers\.org$`),
	root("m", "M-root (WIDE): IATA code, e.g. M-NRT-JPNAP-1.", `(?i)^M-([A-Z]{3})-`),

	{
		Name: "cloudflare",
		Description: "Cloudflare: 1.1.1.1 answers CH TXT id.server with an IATA code (LHR, yul01); " +
			"HTTP reads the IATA code at the end of the cf-ray header.",
		DNS:  &DNSForm{QName: idServer, QClass: "CH", QType: "TXT", Patterns: []string{`(?i)^([a-z]{3})\d*$`}},
		HTTP: &HTTPForm{Header: "cf-ray", Patterns: []string{`(?i)-([a-z]{3})$`}},
	},
	{
		Name:        "cloudflare-trace",
		Description: "Cloudflare: GET /cdn-cgi/trace and read the colo= line (IATA), for sites that strip cf-ray.",
		HTTP: &HTTPForm{Path: "/cdn-cgi/trace", Body: true,
			Patterns: []string{`(?im)^colo=([a-z]{3})\r?$`}},
	},
	{
		Name:        "quad9",
		Description: "Quad9 9.9.9.9: CH TXT id.server, e.g. res860.qfra3.rrdns.pch.net gives fra (IATA).",
		DNS: &DNSForm{QName: idServer, QClass: "CH", QType: "TXT",
			Patterns: []string{`(?i)^res\d+\.q?([a-z]{3})\d*\.`}},
	},
	{
		Name: "opendns",
		Description: "OpenDNS: IN TXT debug.opendns.com (CHAOS is refused); the \"server m12.lon\" " +
			"record gives lon (IATA).",
		DNS: &DNSForm{QName: "debug.opendns.com.", QClass: "IN", QType: "TXT",
			Patterns: []string{`(?i)\bserver [a-z]+\d+\.([a-z]{3})\b`}},
	},
	{
		Name: "google",
		Description: "Google 8.8.8.8: no CHAOS (SERVFAIL). IN TXT o-o.myaddr.l.google.com gives the " +
			"resolver's egress address as the identity and no site; map it to a site by longest prefix " +
			"in IN TXT locations.publicdns.goog (not done here).",
		DNS: &DNSForm{QName: "o-o.myaddr.l.google.com.", QClass: "IN", QType: "TXT", NoSite: true},
	},

	func() Preset {
		p := header("fastly", "Fastly: last entry of x-served-by (the edge; earlier ones are shields), "+
			"e.g. cache-fra-eddf8230071-FRA gives fra. Fastly reuses codes for nearby sites.",
			"x-served-by", `(?i)cache-[a-z0-9-]+-([a-z]{3})\s*$`)
		p.HTTP.Last = true
		return p
	}(),
	header("cloudfront", "Amazon CloudFront: x-amz-cf-pop, e.g. SIN52-P1 gives sin (IATA).",
		"x-amz-cf-pop", `(?i)^([a-z]{3})\d+-`),
	header("fly", "Fly.io: region suffix of fly-request-id, e.g. ...-lhr; older ids have none.",
		"fly-request-id", `(?i)-([a-z]{3})$`),
	header("vercel", "Vercel: edge region first in x-vercel-id, e.g. cdg1::iad1::... gives cdg.",
		"x-vercel-id", `(?i)^([a-z]{3})\d::`),
	header("bunny", "Bunny CDN: server header, e.g. BunnyCDN-FR1-1349 gives fr; Bunny's own codes, "+
		"a country or a city.", "server", `(?i)^BunnyCDN-([a-z]{2,4})\d+-`),
	// The x-azure-ref value is base64-like, so its pattern keeps case: a
	// case-blind match would find "hc1" in random text.
	header("azure", "Azure Front Door: x-azure-ref; the code after hC1 (inferred from examples, "+
		"Microsoft's own codes).", "x-azure-ref", `hC1([A-Z]{3})`),
	header("azure-msedge", "Azure/Microsoft edge: X-MSEdge-Ref, e.g. \"Ref B: TYBEDGE0409\" gives tyb "+
		"(inferred, Microsoft's own codes).", "X-MSEdge-Ref", `Ref B: ([A-Z]{3})`),
	header("gcore", "Gcore: x-id-fe, e.g. fr5-hw-edge-gc17 gives fr (Gcore's own codes).",
		"x-id-fe", `(?i)^([a-z]{2})\d+-`),
	header("keycdn", "KeyCDN: x-edge-location, country and city, e.g. chzh.",
		"x-edge-location", `(?i)^([a-z]{4,5})\s*$`),
	// CDN77's case carries the split between city and country.
	header("cdn77", "CDN77: x-77-pop, city then country, e.g. frankfurtDE gives frankfurt-de.",
		"x-77-pop", `^([a-z]+)([A-Z]{2})\s*$`),
	header("deno", "Deno Deploy: server header, a cloud region, e.g. deno/gcp-asia-northeast1 (not IATA).",
		"server", `(?i)^deno/([a-z0-9-]+)\s*$`),
	func() Preset {
		p := header("akamai", "Akamai: no site header; asked with Pragma: akamai-x-cache-on, X-Cache names "+
			"the edge host, e.g. a199-117-103-28.deploy.akamaitechnologies.com. The site is that host "+
			"(an address to geolocate), not an IATA code.",
			"X-Cache", `(?i)\bfrom\s+([a-z0-9][a-z0-9.-]*[a-z0-9])`)
		p.HTTP.RequestHeaders = []string{"Pragma: akamai-x-cache-on"}
		return p
	}(),
}

// Lookup returns the preset with this name (case-insensitive).
func Lookup(name string) (Preset, error) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q: `catchmap presets` lists them (%s)", name, strings.Join(Names(), ", "))
}

// Names lists the preset names, sorted.
func Names() []string {
	out := make([]string, 0, len(presets))
	for _, p := range presets {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// All returns the built-in presets in table order. The slice is a copy;
// the forms it points to are shared and must not be changed.
func All() []Preset {
	return append([]Preset(nil), presets...)
}

// NeverSite reports whether answers to qname are software versions, which
// never name a site whatever the pattern says (version.bind., version.server.).
func NeverSite(qname string) bool {
	q := strings.ToLower(strings.TrimSpace(qname))
	if !strings.HasSuffix(q, ".") {
		q += "."
	}
	return q == "version.bind." || q == "version.server."
}

// Names of resolvers and firewalls that answer port 53 themselves, and the
// private suffixes home networks use. An identity showing one is likely a
// middlebox on the probe's path, not the anycast service.
var (
	middleboxWords    = []string{"opnsense", "pfsense", "openwrt", "fritz", "dnsmasq", "unbound", "pihole", "pi-hole"}
	middleboxSuffixes = []string{".home.arpa", ".lan", ".local", ".localdomain", ".internal", ".localhost"}
)

// Suspect reports whether identity looks like a middlebox (a home router or
// firewall that intercepted the query) rather than the service: a private
// name (*.home.arpa, *.lan, *.local...), the name of resolver or firewall
// software, or a private, shared (100.64/10), loopback or link-local address.
func Suspect(identity string) bool {
	id := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(identity)), ".")
	if id == "" {
		return false
	}
	if id == "localhost" || id == "home.arpa" {
		return true
	}
	for _, w := range middleboxWords {
		if strings.Contains(id, w) {
			return true
		}
	}
	for _, s := range middleboxSuffixes {
		if strings.HasSuffix(id, s) {
			return true
		}
	}
	a, err := netip.ParseAddr(id)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || cgnat.Contains(a)
}

// cgnat is RFC 6598 shared address space: carrier NAT, never a public service.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")
