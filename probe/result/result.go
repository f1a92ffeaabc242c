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
