package globalping

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
)

// The decoders read what a server sends, which may be anything: they must
// return an error, never panic, and what they accept must hold together.
// Seeds are in testdata/fuzz.

func FuzzDecodeCreated(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCreated(b)
		if err != nil {
			return
		}
		if checkID(c.ID) != nil || c.ProbesCount < 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retry, reset string, body []byte) {
		h := http.Header{"Retry-After": {retry}, "X-Ratelimit-Reset": {reset}}
		e := decodeError("reading a thing", status, h, body, now)
		if e.Wait < 0 || e.Wait > time.Duration(math.MaxInt32)*time.Second || !strings.HasPrefix(e.Error(), "reading a thing: Globalping answered ") {
			t.Fatalf("%+v: %q", e, e.Error())
		}
		if (status == 401) != (e.Unwrap() == ErrToken) {
			t.Fatalf("status %d: Unwrap %v", status, e.Unwrap())
		}
	})
}

func FuzzNSID(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		b, ok := NSID(raw)
		if ok != (len(b) > 0) {
			t.Fatalf("NSID(%q) = %q, %v", raw, b, ok)
		}
	})
}

// FuzzDecodeMeasurement decodes a measurement and makes records of it, as
// the dns or the http spec would: every record must be one the aggregator
// takes.
func FuzzDecodeMeasurement(f *testing.F) {
	dnsConv, err := NewConverter(openDNS())
	if err != nil {
		f.Fatal(err)
	}
	httpConv, err := NewConverter(cloudflare())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeasurement(b)
		if err != nil {
			return
		}
		if checkID(m.ID) != nil || m.Status == "" || m.Type == "" || m.CreatedAt.Year() < 1970 || m.CreatedAt.Year() > 9999 {
			t.Fatalf("accepted %+v", m)
		}
		conv := dnsConv
		if m.Type == TypeHTTP {
			conv = httpConv
		}
		seen := map[string]bool{}
		err = conv.Records(m, func(r *result.Record, _ *Probe) error {
			checkRecord(t, r)
			if seen[r.ID] {
				t.Fatalf("record id %s twice", r.ID)
			}
			seen[r.ID] = true
			return nil
		})
		if err == nil && len(seen) != len(m.Results) {
			t.Fatalf("%d records for %d tests", len(seen), len(m.Results))
		}
	})
}

// checkRecord fails on a record the aggregator would refuse, or one that
// contradicts itself.
func checkRecord(t *testing.T, r *result.Record) {
	t.Helper()
	known := r.ErrorKind == result.KindNone
	for _, k := range result.Kinds {
		known = known || k == r.ErrorKind
	}
	switch {
	case len(r.ID) > 128 || !utf8.ValidString(r.ID) || !strings.HasPrefix(r.ID, "gp-"):
		t.Fatalf("id %q", r.ID)
	case len(r.Probe) > 128 || !utf8.ValidString(r.Probe) || !strings.HasPrefix(r.Probe, "gp:"):
		t.Fatalf("probe %q", r.Probe)
	case !known || (r.ErrorKind == result.KindNone) != (r.Error == ""):
		t.Fatalf("error %q of kind %q", r.Error, r.ErrorKind)
	case r.AF != 0 && r.AF != 4 && r.AF != 6:
		t.Fatalf("af %d", r.AF)
	case math.IsNaN(r.RTTMs) || math.IsInf(r.RTTMs, 0) || r.RTTMs < 0:
		t.Fatalf("rtt %v", r.RTTMs)
	case (r.Lat == nil) != (r.Lon == nil) || r.Lat != nil && result.ValidLatLon(*r.Lat, *r.Lon) != nil:
		t.Fatalf("place %v %v", r.Lat, r.Lon)
	case len(r.Identity) > probe.MaxIdentityLen || !utf8.ValidString(r.Identity):
		t.Fatalf("identity %q", r.Identity)
	case r.Time.IsZero():
		t.Fatal("no time")
	}
}
