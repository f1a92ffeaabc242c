// Package result defines the result record: the one schema that the probe
// writes, the aggregator stores, and maps, exports and the gate read.
//
// It depends on nothing but the standard library and a UUID package, and
// needs no cgo, so that every part of catchmap, including the static probe
// binary, can import it.
//
// The record's file forms are here too, so that measure, exports, maps and
// the aggregator read and write the same bytes: WriteJSON, NDJSONWriter and
// ReadNDJSON, CSVWriter and ReadCSV (columns in CSVHeader), and WriteTable
// for people.
package result

import (
	"crypto/rand"
	"time"

	"github.com/google/uuid"
)

// Methods a record can come from.
const (
	MethodDNS  = "dns"
	MethodHTTP = "http"
	MethodICMP = "icmp"
	MethodTCP  = "tcp"
)

// Sources of records: the kinds of vantage points.
const (
	SourceOwn        = ""
	SourceRIPEAtlas  = "ripe-atlas"
	SourceGlobalping = "globalping"
	SourceSweep      = "sweep"
)

// Sources lists every source; "own" names SourceOwn where a name must not
// be empty (a query parameter).
var Sources = []string{SourceOwn, SourceRIPEAtlas, SourceGlobalping, SourceSweep}

// Methods lists every method, in the order help texts name them: the one
// allow-list that specs and ingested records are checked against.
var Methods = []string{MethodDNS, MethodHTTP, MethodICMP, MethodTCP}

// ErrorKind is a small fixed vocabulary, so that maps and metrics can count
// failures by kind without unbounded label sets.
type ErrorKind string

// The error kinds. An empty kind means success.
const (
	KindNone       ErrorKind = ""
	KindTimeout    ErrorKind = "timeout"
	KindRefused    ErrorKind = "refused"
	KindServfail   ErrorKind = "servfail"
	KindNotimp     ErrorKind = "notimp"
	KindRcode      ErrorKind = "rcode"       // another DNS rcode (NXDOMAIN, FORMERR...)
	KindNoIdentity ErrorKind = "no_identity" // answered, but said nothing about its site
	KindMismatch   ErrorKind = "mismatch"    // answer does not match the question: intercepted?
	KindMalformed  ErrorKind = "malformed"   // answer could not be parsed
	KindNetwork    ErrorKind = "network"
	KindTLS        ErrorKind = "tls"
	KindHTTPStatus ErrorKind = "http_status"
	KindLoss       ErrorKind = "loss" // icmp: every echo lost
	KindPermission ErrorKind = "permission"
	KindNotAllowed ErrorKind = "not_allowed" // the probe's allowlist refused the target
)

// Kinds lists every error kind, for validation and for pre-declaring metric
// label values.
var Kinds = []ErrorKind{KindTimeout, KindRefused, KindServfail, KindNotimp, KindRcode,
	KindNoIdentity, KindMismatch, KindMalformed, KindNetwork, KindTLS, KindHTTPStatus,
	KindLoss, KindPermission, KindNotAllowed}

// Record is one measurement. Field names are the JSON, CSV and SQL column
// names; they are part of catchmap's public interface (see README).
type Record struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Probe  string    `json:"probe"`
	Target string    `json:"target"`
	Method string    `json:"method"`
	AF     int       `json:"af"`
	Addr   string    `json:"addr"`

	// Identity is the raw text the target gave about itself; Site is the
	// lower-case code extracted from it, empty when unknown.
	Identity string  `json:"identity"`
	Site     string  `json:"site"`
	RTTMs    float64 `json:"rtt_ms"`

	Error     string    `json:"error"`
	ErrorKind ErrorKind `json:"error_kind"`

	// The probe's place, filled by the aggregator or an importer. Lat and
	// Lon are pointers because 0,0 is a real place in the Gulf of Guinea.
	Lat     *float64 `json:"lat,omitempty"`
	Lon     *float64 `json:"lon,omitempty"`
	Country string   `json:"country,omitempty"`
	ASN     uint32   `json:"asn,omitempty"`

	// Suspect marks an identity that looks like a middlebox rather than the
	// service (e.g. a home router answering CHAOS queries).
	Suspect bool `json:"suspect,omitempty"`

	// Source is the kind of vantage point: "" (SourceOwn) for catchmap's
	// own probes, else the fleet or the sweep it came from.
	Source string `json:"source,omitempty"`

	DNS  *DNS  `json:"dns,omitempty"`
	HTTP *HTTP `json:"http,omitempty"`
	Ping *Ping `json:"ping,omitempty"`
}

// DNS holds the details of a dns measurement.
type DNS struct {
	QName  string `json:"qname"`
	QClass string `json:"qclass"`
	QType  string `json:"qtype"`
	Rcode  string `json:"rcode,omitempty"`
	NSID   string `json:"nsid,omitempty"` // decoded text of EDNS option 3
	TCP    bool   `json:"tcp,omitempty"`  // answered over TCP (after truncation, or asked)
	Size   int    `json:"size,omitempty"` // answer size in bytes
}

// HTTP holds the details of an http measurement. Phases are in milliseconds.
type HTTP struct {
	Status      int     `json:"status,omitempty"`
	DNSMs       float64 `json:"dns_ms,omitempty"`
	ConnectMs   float64 `json:"connect_ms,omitempty"`
	TLSMs       float64 `json:"tls_ms,omitempty"`
	FirstByteMs float64 `json:"first_byte_ms,omitempty"`
	TotalMs     float64 `json:"total_ms,omitempty"`
	Proto       string  `json:"proto,omitempty"`
}

// Ping holds the details of an icmp or tcp measurement that sends several
// packets or connects.
type Ping struct {
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Loss     float64 `json:"loss"` // 0..1
	MinMs    float64 `json:"min_ms"`
	AvgMs    float64 `json:"avg_ms"`
	MaxMs    float64 `json:"max_ms"`
	StddevMs float64 `json:"stddev_ms"`
}

// The details groups, and the columns: the record flattened, in the order
// of the CSV files (their names are part of catchmap's public interface,
// README). The stores make their tables from the same list. A new method's
// details are a struct, a pointer to it in Record, a group and its columns
// here.
var (
	dnsDetails  = newDetails("dns", func(r *Record) **DNS { return &r.DNS })
	httpDetails = newDetails("http", func(r *Record) **HTTP { return &r.HTTP })
	pingDetails = newDetails("ping", func(r *Record) **Ping { return &r.Ping })
)

// Empty cells mean "not set": a zero RTT or phase time is written empty, so
// a spreadsheet average over rtt_ms is not dragged down by failures. A
// details group is present when any of its cells is set; dns_tcp,
// http_status and ping_sent are always written in a present group so that
// reading gives back the same record.
var columns = []Column{
	col("id", top(func(r *Record) *string { return &r.ID }), text, false),
	col("time", top(func(r *Record) *time.Time { return &r.Time }), timeCodec, false),
	col("probe", top(func(r *Record) *string { return &r.Probe }), text, false),
	col("target", top(func(r *Record) *string { return &r.Target }), text, false),
	col("method", top(func(r *Record) *string { return &r.Method }), text, false),
	col("af", top(func(r *Record) *int { return &r.AF }), intCodec, false),
	col("addr", top(func(r *Record) *string { return &r.Addr }), text, false),
	col("identity", top(func(r *Record) *string { return &r.Identity }), text, false),
	col("site", top(func(r *Record) *string { return &r.Site }), text, false),
	col("rtt_ms", top(func(r *Record) *float64 { return &r.RTTMs }), floatCodec, true),
	col("error", top(func(r *Record) *string { return &r.Error }), text, false),
	col("error_kind", top(func(r *Record) *ErrorKind { return &r.ErrorKind }), kindCodec, false),
	col("lat", top(func(r *Record) **float64 { return &r.Lat }), optFloatCodec, true),
	col("lon", top(func(r *Record) **float64 { return &r.Lon }), optFloatCodec, true),
	col("country", top(func(r *Record) *string { return &r.Country }), text, false),
	col("asn", top(func(r *Record) *uint32 { return &r.ASN }), uint32Codec, true),
	col("suspect", top(func(r *Record) *bool { return &r.Suspect }), boolCodec, false),

	col("dns_qname", in(dnsDetails, func(d *DNS) *string { return &d.QName }), text, false),
	col("dns_qclass", in(dnsDetails, func(d *DNS) *string { return &d.QClass }), text, false),
	col("dns_qtype", in(dnsDetails, func(d *DNS) *string { return &d.QType }), text, false),
	col("dns_rcode", in(dnsDetails, func(d *DNS) *string { return &d.Rcode }), text, false),
	col("dns_nsid", in(dnsDetails, func(d *DNS) *string { return &d.NSID }), text, false),
	col("dns_tcp", in(dnsDetails, func(d *DNS) *bool { return &d.TCP }), boolCodec, false),
	col("dns_size", in(dnsDetails, func(d *DNS) *int { return &d.Size }), intCodec, true),

	col("http_status", in(httpDetails, func(h *HTTP) *int { return &h.Status }), intCodec, false),
	col("http_dns_ms", in(httpDetails, func(h *HTTP) *float64 { return &h.DNSMs }), floatCodec, true),
	col("http_connect_ms", in(httpDetails, func(h *HTTP) *float64 { return &h.ConnectMs }), floatCodec, true),
	col("http_tls_ms", in(httpDetails, func(h *HTTP) *float64 { return &h.TLSMs }), floatCodec, true),
	col("http_first_byte_ms", in(httpDetails, func(h *HTTP) *float64 { return &h.FirstByteMs }), floatCodec, true),
	col("http_total_ms", in(httpDetails, func(h *HTTP) *float64 { return &h.TotalMs }), floatCodec, true),
	col("http_proto", in(httpDetails, func(h *HTTP) *string { return &h.Proto }), text, false),

	col("ping_sent", in(pingDetails, func(p *Ping) *int { return &p.Sent }), intCodec, false),
	col("ping_received", in(pingDetails, func(p *Ping) *int { return &p.Received }), intCodec, false),
	col("ping_loss", in(pingDetails, func(p *Ping) *float64 { return &p.Loss }), floatCodec, false),
	col("ping_min_ms", in(pingDetails, func(p *Ping) *float64 { return &p.MinMs }), floatCodec, true),
	col("ping_avg_ms", in(pingDetails, func(p *Ping) *float64 { return &p.AvgMs }), floatCodec, true),
	col("ping_max_ms", in(pingDetails, func(p *Ping) *float64 { return &p.MaxMs }), floatCodec, true),
	col("ping_stddev_ms", in(pingDetails, func(p *Ping) *float64 { return &p.StddevMs }), floatCodec, true),

	col("source", top(func(r *Record) *string { return &r.Source }), text, false),
}

// OK reports whether the measurement succeeded.
func (r *Record) OK() bool { return r.Error == "" && r.ErrorKind == KindNone }

// NewID returns a UUIDv7: opaque, unique, and sortable by creation time,
// which keeps the store's id index append-mostly.
func NewID() string {
	id, err := uuid.NewV7FromReader(rand.Reader)
	if err != nil {
		// crypto/rand never fails on Linux; a random v4 keeps ids unique anyway.
		return uuid.NewString()
	}
	return id.String()
}
