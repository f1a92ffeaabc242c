package result

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a record's fields. A record beyond them is refused whole, with
// an error that names the field: the store then holds nothing no map or
// export can read, and nothing a hostile probe made huge.
const (
	MaxIDBytes       = 128
	MaxProbeBytes    = 128
	MaxSiteBytes     = 64
	MaxTargetBytes   = 1024
	MaxIdentityBytes = 4096
	MaxErrorBytes    = 1024
	// MaxRTTMs bounds every time in milliseconds (RTTs and HTTP phases):
	// ten minutes, far beyond any measurement's timeout.
	MaxRTTMs = 600_000
)

// MinTime is the earliest time a record may carry: catchmap measures
// nothing older, and a zero or year-1 time is a probe's bug.
var MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Limits of the short text fields (codes, addresses, protocol names).
const (
	maxAddrBytes    = 64 // an IPv6 address with a zone
	maxCountryBytes = 8
	maxCodeBytes    = 32 // DNS class, type and rcode names, HTTP protocol
	maxQNameBytes   = 1024
	maxDNSSize      = 65535
	maxPackets      = 1_000_000
)

// FieldError is a record's field that is out of its bounds.
type FieldError struct {
	Field string // its JSON name, such as rtt_ms or dns.qname
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks every field of r against the limits above and the record's
// vocabulary, with now and maxFuture bounding its time: the check a record
// must pass to be stored. The error is a *FieldError.
func (r *Record) Validate(now time.Time, maxFuture time.Duration) error {
	var v validator
	v.text("id", r.ID, MaxIDBytes)
	if r.ID == "" {
		v.fail("id", "empty: give every record a unique id (a UUIDv7)")
	}
	switch {
	case r.Time.IsZero():
		v.fail("time", "missing: give the measurement time in RFC 3339")
	case r.Time.Before(MinTime):
		v.fail("time", fmt.Sprintf("%s is before %s: fix the probe's clock (NTP)", r.Time.Format(time.RFC3339), MinTime.Format(time.DateOnly)))
	case r.Time.After(now.Add(maxFuture)):
		v.fail("time", fmt.Sprintf("%s is %s in the future (more than max_future %s): fix the probe's clock (NTP)",
			r.Time.Format(time.RFC3339), r.Time.Sub(now).Round(time.Second), maxFuture))
	}
	v.text("probe", r.Probe, MaxProbeBytes)
	v.text("target", r.Target, MaxTargetBytes)
	if r.Target == "" {
		v.fail("target", "empty")
	}
	if !slices.Contains(Methods, r.Method) {
		v.fail("method", fmt.Sprintf("unknown %q: use %s", clip(r.Method), strings.Join(Methods, ", ")))
	}
	if r.AF != 0 && r.AF != 4 && r.AF != 6 {
		v.fail("af", strconv.Itoa(r.AF)+": use 0, 4 or 6")
	}
	v.text("addr", r.Addr, maxAddrBytes)
	v.text("identity", r.Identity, MaxIdentityBytes)
	v.text("site", r.Site, MaxSiteBytes)
	v.ms("rtt_ms", r.RTTMs)
	v.text("error", r.Error, MaxErrorBytes)
	if r.ErrorKind != KindNone && !slices.Contains(Kinds, r.ErrorKind) {
		v.fail("error_kind", fmt.Sprintf("unknown %q", clip(string(r.ErrorKind))))
	}
	switch {
	case (r.Lat == nil) != (r.Lon == nil):
		v.fail("lat, lon", "give both or neither")
	case r.Lat != nil && !(*r.Lat >= -90 && *r.Lat <= 90):
		v.fail("lat", fmt.Sprintf("%v out of range -90 to 90", *r.Lat))
	case r.Lon != nil && !(*r.Lon >= -180 && *r.Lon <= 180):
		v.fail("lon", fmt.Sprintf("%v out of range -180 to 180", *r.Lon))
	}
	v.text("country", r.Country, maxCountryBytes)
	if !slices.Contains(Sources, r.Source) {
		v.fail("source", fmt.Sprintf("unknown %q: use %s, or none for catchmap's own probes", clip(r.Source), strings.Join(Sources[1:], ", ")))
	}
	if d := r.DNS; d != nil {
		v.text("dns.qname", d.QName, maxQNameBytes)
		v.text("dns.qclass", d.QClass, maxCodeBytes)
		v.text("dns.qtype", d.QType, maxCodeBytes)
		v.text("dns.rcode", d.Rcode, maxCodeBytes)
		v.text("dns.nsid", d.NSID, MaxIdentityBytes)
		v.count("dns.size", d.Size, maxDNSSize)
	}
	if h := r.HTTP; h != nil {
		if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
			v.fail("http.status", strconv.Itoa(h.Status)+": not an HTTP status (100 to 599, or 0 for none)")
		}
		v.ms("http.dns_ms", h.DNSMs)
		v.ms("http.connect_ms", h.ConnectMs)
		v.ms("http.tls_ms", h.TLSMs)
		v.ms("http.first_byte_ms", h.FirstByteMs)
		v.ms("http.total_ms", h.TotalMs)
		v.text("http.proto", h.Proto, maxCodeBytes)
	}
	if p := r.Ping; p != nil {
		v.count("ping.sent", p.Sent, maxPackets)
		v.count("ping.received", p.Received, maxPackets)
		if !(p.Loss >= 0 && p.Loss <= 1) {
			v.fail("ping.loss", fmt.Sprintf("%v: a share, from 0 to 1", p.Loss))
		}
		v.ms("ping.min_ms", p.MinMs)
		v.ms("ping.avg_ms", p.AvgMs)
		v.ms("ping.max_ms", p.MaxMs)
		v.ms("ping.stddev_ms", p.StddevMs)
	}
	return v.err
}

// validator keeps the first problem found.
type validator struct{ err error }

func (v *validator) fail(field, msg string) {
	if v.err == nil {
		v.err = &FieldError{Field: field, Msg: msg}
	}
}

// text checks that s is UTF-8 (an invalid byte would become U+FFFD on the
// way out, and two ids could meet) and at most max bytes.
func (v *validator) text(field, s string, max int) {
	switch {
	case len(s) > max:
		v.fail(field, fmt.Sprintf("%d bytes, more than %d", len(s), max))
	case !utf8.ValidString(s):
		v.fail(field, "not valid UTF-8")
	}
}

// ms checks a time in milliseconds.
func (v *validator) ms(field string, f float64) {
	if !(f >= 0 && f <= MaxRTTMs) {
		v.fail(field, fmt.Sprintf("%v: must be a number from 0 to %d", f, MaxRTTMs))
	}
}

// count checks a number of packets or bytes.
func (v *validator) count(field string, n, max int) {
	if n < 0 || n > max {
		v.fail(field, fmt.Sprintf("%d: must be from 0 to %d", n, max))
	}
}

// clip shortens what a record carries for an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}

// ValidLatLon reports whether lat, lon is a place on Earth in degrees.
func ValidLatLon(lat, lon float64) error {
	if math.IsNaN(lat) || math.IsInf(lat, 0) || lat < -90 || lat > 90 {
		return fmt.Errorf("latitude %v is not a number in [-90, 90]: fix the probe's location", lat)
	}
	if math.IsNaN(lon) || math.IsInf(lon, 0) || lon < -180 || lon > 180 {
		return fmt.Errorf("longitude %v is not a number in [-180, 180]: fix the probe's location", lon)
	}
	return nil
}
