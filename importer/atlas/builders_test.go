package atlas

import (
	"encoding/base64"
	"testing"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/importer/atlas/atlastest"
	"github.com/catchmap/catchmap/probe/result"
)

// The fixtures: results of K-root's built-in measurement, built with
// atlastest so that miekg/dns packs every answer.
var (
	kMsm  = atlastest.K.Msm
	kTime = atlastest.K.Timestamp
)

const (
	kAddr = "193.0.14.129"
	kName = "k.root-servers.net"
)

// fixture is one Atlas result and what its records must say.
type fixture struct {
	name string
	res  map[string]any
	want []want
}

type want struct {
	site, identity string
	kind           result.ErrorKind
	rtt            float64
	af             int
	suspect        bool
}

func chaos(txt ...string) atlastest.Answer { return atlastest.Answer{Q: atlastest.Chaos, TXT: txt} }

// fixtures covers every shape of result the importer must read. Identities
// follow K-root's naming, read with the k-root preset.
func fixtures(t testing.TB) []fixture {
	k := atlastest.K
	fra := chaos("ns1.de-fra.k.ripe.net")
	cut := fra.Wire(t)
	idServer := atlastest.Chaos
	idServer.Name = "id.server."
	// A forwarder on the probe's path that asks the CHAOS question as IN
	// echoes the question rewritten, with its resolver's answer.
	rewritten := atlastest.Chaos
	rewritten.Qclass = dns.ClassINET
	return []fixture{
		{"ok", k.Result(1001, 5080, atlastest.OK(t, fra, 12.5)),
			[]want{{site: "de-fra", identity: "ns1.de-fra.k.ripe.net", rtt: 12.5, af: 4}}},
		{"quotes_backslashes", k.Result(1002, 5080, atlastest.OK(t, chaos(`ns2.nl-ams.k.ripe.net "q" \b`), 3)),
			[]want{{identity: `ns2.nl-ams.k.ripe.net "q" \b`, rtt: 3, af: 4}}},
		{"timeout", k.Result(1003, 5080, atlastest.Timeout()),
			[]want{{kind: result.KindTimeout, af: 4}}},
		{"socket_error", k.Result(1004, 5080, map[string]any{"error": map[string]any{"socket": "connect failed Network is unreachable"}}),
			[]want{{kind: result.KindNetwork, af: 4}}},
		{"notimp_header_only", k.Result(1005, 5080, map[string]any{"result": map[string]any{"abuf": atlastest.HeaderOnly(dns.RcodeNotImplemented), "rt": 1.5, "size": 12}}),
			[]want{{kind: result.KindNotimp, rtt: 1.5, af: 4}}},
		{"truncated_abuf", k.Result(1006, 5080, map[string]any{"result": map[string]any{
			"abuf": base64.StdEncoding.EncodeToString(cut[:len(cut)-5]), "rt": 9.0}}),
			[]want{{kind: result.KindMalformed, rtt: 9, af: 4}}},
		{"invalid_base64", k.Result(1007, 5080, map[string]any{"result": map[string]any{"abuf": "!!not base64!!", "rt": 9.0}}),
			[]want{{kind: result.KindMalformed, rtt: 9, af: 4}}},
		{"rdata_string_fw4720", k.Result(1008, 4720, map[string]any{"result": map[string]any{"rt": 20.25, "size": 73,
			"answers": []any{map[string]any{"NAME": "hostname.bind", "TYPE": "TXT", "RDATA": "ns1.gb-lon.k.ripe.net"}}}}),
			[]want{{site: "gb-lon", identity: "ns1.gb-lon.k.ripe.net", rtt: 20.25, af: 4}}},
		{"rdata_list_fw5080", k.Result(1009, 5080, map[string]any{"result": map[string]any{"rt": 7.0, "size": 73,
			"answers": []any{map[string]any{"NAME": "hostname.bind.", "TYPE": "TXT", "RDATA": []string{"ns1.jp-tyo.k.ripe.net"}}}}}),
			[]want{{site: "jp-tyo", identity: "ns1.jp-tyo.k.ripe.net", rtt: 7, af: 4}}},
		{"rdata_list_quotes", k.Result(1010, 5080, map[string]any{"result": map[string]any{"rt": 7.0,
			"answers": []any{map[string]any{"NAME": "hostname.bind.", "TYPE": "TXT", "RDATA": []string{`a "b" \c`}}}}}),
			[]want{{identity: `a "b" \c`, rtt: 7, af: 4}}},
		{"unknown_firmware", k.Result(1011, 99999, atlastest.OK(t, chaos("ns1.us-mia.k.ripe.net"), 40)),
			[]want{{site: "us-mia", identity: "ns1.us-mia.k.ripe.net", rtt: 40, af: 4}}},
		{"resultset", k.Result(1012, 5080, map[string]any{"dst_addr": nil, "dst_name": nil, "resultset": []any{
			map[string]any{"af": 6, "dst_addr": "2001:db8::53", "time": kTime + 1, "proto": "UDP",
				"result": atlastest.OKResult(t, chaos("ns1.se-sto.k.ripe.net"), 5)},
			map[string]any{"af": 4, "dst_addr": "192.0.2.53", "time": kTime + 2, "error": map[string]any{"timeout": 5000}},
		}}),
			[]want{{site: "se-sto", identity: "ns1.se-sto.k.ripe.net", rtt: 5, af: 6}, {kind: result.KindTimeout, af: 4}}},
		{"nsid_refused", k.Result(1013, 5080, atlastest.OK(t, atlastest.Answer{Q: atlastest.Chaos, Rcode: dns.RcodeRefused, NSID: "ns1.ch-gva.k.ripe.net"}, 2)),
			[]want{{site: "ch-gva", identity: "ns1.ch-gva.k.ripe.net", kind: result.KindRefused, rtt: 2, af: 4}}},
		{"field_type_error", k.Result(1014, 5080, map[string]any{"result": map[string]any{"rt": "fast", "abuf": fra.Abuf(t)}}),
			[]want{{kind: result.KindMalformed, af: 4}}},
		{"intercepted", k.Result(1015, 5080, map[string]any{"qbuf": atlastest.Qbuf(t, atlastest.Chaos),
			"result": atlastest.OKResult(t, atlastest.Answer{Q: idServer, TXT: []string{"ns1.de-fra.k.ripe.net"}}, 1)}),
			[]want{{identity: "ns1.de-fra.k.ripe.net", kind: result.KindMismatch, rtt: 1, af: 4, suspect: true}}},
		{"no_result", k.Result(1016, 5080, nil),
			[]want{{kind: result.KindMalformed, af: 4}}},
		{"ipv6_probe", k.Result(1017, 5080, map[string]any{"af": 6, "dst_addr": "2001:7fd::1", "from": "2001:db8:1::7",
			"result": atlastest.OKResult(t, fra, 30)}),
			[]want{{site: "de-fra", identity: "ns1.de-fra.k.ripe.net", rtt: 30, af: 6}}},
		// Firmware 4460 to 4539, as the result-format documentation lays
		// out its DNS results: the decoded records give TYPE as a number
		// (16 for TXT, 6 for SOA, whose fields are named), RDATA as one
		// string, and abuf may be absent.
		{"fw4460_type_number", k.Result(1020, 4460, map[string]any{"result": map[string]any{
			"ID": 4660, "QDCOUNT": 1, "ANCOUNT": 1, "NSCOUNT": 0, "ARCOUNT": 0, "rt": 31.5, "size": 76,
			"answers": []any{map[string]any{"NAME": "hostname.bind", "TYPE": 16, "TTL": 0, "RDATA": "ns1.fi-hel.k.ripe.net"}}}}),
			[]want{{site: "fi-hel", identity: "ns1.fi-hel.k.ripe.net", rtt: 31.5, af: 4}}},
		// Where abuf is present it is read, whatever the decoded records
		// hold: here an SOA as 4460 writes one, with fields of its own.
		{"fw4460_abuf_first", k.Result(1021, 4460, map[string]any{"result": withMembers(atlastest.OKResult(t, fra, 6), map[string]any{
			"answers": []any{map[string]any{"NAME": "hostname.bind", "TYPE": 6, "TTL": 0, "MNAME": "ns.invalid",
				"RNAME": "hostmaster.invalid", "SERIAL": 1}}})}),
			[]want{{site: "de-fra", identity: "ns1.de-fra.k.ripe.net", rtt: 6, af: 4}}},
		// fw as a JSON string, as the documentation quotes the values.
		{"fw_string", k.Result(1022, 4560, map[string]any{"fw": "4560", "result": atlastest.OKResult(t, chaos("ns1.ru-mow.k.ripe.net"), 44)}),
			[]want{{site: "ru-mow", identity: "ns1.ru-mow.k.ripe.net", rtt: 44, af: 4}}},
		{"answers_unreadable", k.Result(1023, 4460, map[string]any{"result": map[string]any{"rt": 2.0,
			"answers": []any{map[string]any{"NAME": "hostname.bind", "TYPE": "TXT", "RDATA": 7}}}}),
			[]want{{kind: result.KindMalformed, rtt: 2, af: 4}}},
		{"rewritten_in_nxdomain", k.Result(1018, 5080, atlastest.OK(t, atlastest.Answer{Q: rewritten, Rcode: dns.RcodeNameError}, 8)),
			[]want{{kind: result.KindMismatch, rtt: 8, af: 4, suspect: true}}},
		{"rewritten_in_empty", k.Result(1019, 5080, atlastest.OK(t, atlastest.Answer{Q: rewritten}, 8)),
			[]want{{kind: result.KindMismatch, rtt: 8, af: 4, suspect: true}}},
	}
}

// withMembers is m with members added.
func withMembers(m, members map[string]any) map[string]any {
	for k, v := range members {
		m[k] = v
	}
	return m
}

// nRecords is how many records fs give.
func nRecords(fs []fixture) int {
	n := 0
	for _, f := range fs {
		n += len(f.want)
	}
	return n
}

func results(fs []fixture) []map[string]any {
	rs := make([]map[string]any, len(fs))
	for i, f := range fs {
		rs[i] = f.res
	}
	return rs
}

// lines is fixtures as NDJSON.
func lines(t testing.TB, fs []fixture) []byte { return atlastest.NDJSON(t, results(fs)...) }

// probesAPI is probe metadata as /api/v2/probes/ pages it: location in
// geometry.coordinates, longitude first.
const probesAPI = `{"count": 3, "next": null, "previous": null, "results": [
 {"id": 1001, "asn_v4": 3320, "asn_v6": null, "country_code": "DE", "status": {"id": 1, "name": "Connected"},
  "geometry": {"type": "Point", "coordinates": [8.6821, 50.1109]}},
 {"id": 1012, "asn_v4": 1299, "asn_v6": 1299, "country_code": "SE",
  "geometry": {"type": "Point", "coordinates": [18.0686, 59.3293]}},
 {"id": 1017, "asn_v4": 3320, "asn_v6": 64496, "country_code": "DE", "geometry": null}
]}`

// probesArchive is the same probes as the daily archive lists them.
const probesArchive = `{"meta": {"total_count": 3}, "objects": [
 {"id": 1001, "asn_v4": 3320, "asn_v6": null, "country_code": "DE", "status": 1, "status_name": "Connected",
  "latitude": 50.1109, "longitude": 8.6821},
 {"id": 1012, "asn_v4": 1299, "asn_v6": 1299, "country_code": "SE", "latitude": 59.3293, "longitude": 18.0686},
 {"id": 1017, "asn_v4": 3320, "asn_v6": 64496, "country_code": "DE", "latitude": null, "longitude": null}
]}`
