package atlas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// FuzzAtlasDecode feeds arbitrary bytes to the reader and converter: no
// panic, every result gives one record (one per resultset item), and every
// record is one the aggregator accepts and JSON can carry.
func FuzzAtlasDecode(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(lines(f, []fixture{fx}))
	}
	id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, Preset: "k-root"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := NewConverter(Options{Ident: id, Probes: Probes{}})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for range 1000 {
			res, err := rd.Next()
			if errors.Is(err, io.EOF) || err != nil {
				return
			}
			n := 0
			err = c.Convert(res, func(r *result.Record) error {
				n++
				check(t, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := max(1, len(res.ResultSet)); n != want {
				t.Fatalf("%d records from a result, want %d", n, want)
			}
		}
	})
}

func check(t *testing.T, r *result.Record) {
	t.Helper()
	switch {
	case r.ID == "" || len(r.ID) > 128:
		t.Fatalf("id %q", r.ID)
	case r.Target == "":
		t.Fatal("empty target")
	case r.Method != result.MethodDNS:
		t.Fatalf("method %q", r.Method)
	case math.IsNaN(r.RTTMs) || math.IsInf(r.RTTMs, 0) || r.RTTMs < 0:
		t.Fatalf("rtt %v", r.RTTMs)
	case (r.ErrorKind == result.KindNone) != (r.Error == ""):
		t.Fatalf("kind %q, error %q", r.ErrorKind, r.Error)
	case !utf8.ValidString(r.Identity) || len(r.Identity) > probe.MaxIdentityLen:
		t.Fatalf("identity %q", r.Identity)
	case r.AF != 0 && r.AF != 4 && r.AF != 6:
		t.Fatalf("af %d", r.AF)
	case r.Time.Unix() < 0:
		t.Fatalf("time %v", r.Time)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("record does not encode: %v", err)
	}
}

// FuzzReadProbes: no panic, and every probe read has a location on Earth
// or none.
func FuzzReadProbes(f *testing.F) {
	f.Add([]byte(probesAPI))
	f.Add([]byte(probesArchive))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps := Probes{}
		if err := ReadProbes(bytes.NewReader(b), ps); err != nil {
			return
		}
		for id, p := range ps {
			if (p.Lat == nil) != (p.Lon == nil) {
				t.Fatalf("probe %d: lat %v lon %v", id, p.Lat, p.Lon)
			}
			if p.Lat != nil && (*p.Lat < -90 || *p.Lat > 90 || *p.Lon < -180 || *p.Lon > 180) {
				t.Fatalf("probe %d at %v,%v", id, *p.Lat, *p.Lon)
			}
		}
	})
}
