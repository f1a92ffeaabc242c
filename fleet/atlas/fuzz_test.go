package atlas

import (
	"net/http"
	"strings"
	"testing"
	"time"

	atlasimport "github.com/catchmap/catchmap/importer/atlas"
)

// The decoders read what a server sends, which may be anything: they must
// return an error, never panic, and what they accept must hold together.
// Seeds are in testdata/fuzz.

func FuzzDecodeMeasurement(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeasurement(b)
		if err != nil {
			return
		}
		if m.ID <= 0 || m.Interval < 0 || m.StatusName == "" || m.Status.String() == "" {
			t.Fatalf("accepted %+v", m)
		}
		for _, tm := range []time.Time{m.Start, m.Stop, m.StatusSince} {
			if !tm.IsZero() && tm.Year() > 9999 {
				t.Fatalf("time %v", tm)
			}
		}
		if err := m.StoppedByAtlas(); (err != nil) == (m.Status.Running() || m.Status == Stopped) {
			t.Fatalf("status %v: StoppedByAtlas %v", m.Status, err)
		}
	})
}

func FuzzDecodeCreated(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeCreated(b)
		if err != nil {
			return
		}
		if len(ids) == 0 {
			t.Fatal("accepted no ids")
		}
		for _, id := range ids {
			if id <= 0 {
				t.Fatalf("accepted id %d", id)
			}
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		e := decodeError("reading a thing", status, http.Header{"Retry-After": {retry}}, body, now)
		if e.Wait < 0 || !strings.HasPrefix(e.Error(), "reading a thing: Atlas answered ") {
			t.Fatalf("%+v: %q", e, e.Error())
		}
		if (status == 401 || status == 403) != (e.Unwrap() == ErrKey) {
			t.Fatalf("status %d: Unwrap %v", status, e.Unwrap())
		}
	})
}

func FuzzDecodeProbesPage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ps := atlasimport.Probes{}
		if _, err := decodeProbesPage(b, ps); err != nil {
			return
		}
		for id, p := range ps {
			if p.ID != id || (p.Lat == nil) != (p.Lon == nil) || (p.Lat != nil && (*p.Lat < -90 || *p.Lat > 90)) {
				t.Fatalf("probe %d: %+v", id, p)
			}
		}
	})
}
