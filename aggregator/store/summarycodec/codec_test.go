package summarycodec

import (
	"math"
	"reflect"
	"testing"

	"github.com/catchmap/catchmap/maps/summary"
)

func TestSummaryBodyRoundTrip(t *testing.T) {
	s := &summary.Summary{First: -5, Last: 1 << 60, Results: 9, Errors: 2, HasPlace: true, PlaceAt: 7,
		Lat: math.Copysign(0, -1), Lon: 180, Country: "NL", CountryAt: 3, ASN: math.MaxUint32, ASNAt: 4,
		Sites: []summary.SiteSummary{{Site: "ams", N: 4, Last: 6, RTTs: []float64{1.5, 2}}, {Site: "fra", N: 3, Last: 1}}}
	var d Decoder
	var got summary.Summary
	if err := d.Decode(Append(nil, s), &got); err != nil {
		t.Fatal(err)
	}
	got.Sites[1].RTTs = nil // decoded as an empty slice of the shared buffer
	if !reflect.DeepEqual(&got, s) || !math.Signbit(got.Lat) {
		t.Fatalf("round trip gave %+v, want %+v", got, *s)
	}
	body := Append(nil, s)
	for i := range body {
		if err := d.Decode(body[:i], &got); err == nil {
			t.Errorf("a body cut to %d of %d bytes decoded", i, len(body))
		}
	}
}

// FuzzDecodeSummary: no body makes Decode panic, and what decodes encodes
// back to the same bytes.
func FuzzDecodeSummary(f *testing.F) {
	f.Add(Append(nil, &summary.Summary{First: 1, Last: 2, Results: 1}))
	f.Add(Append(nil, &summary.Summary{First: 1, Last: 9, Results: 3, Errors: 1, HasPlace: true, Lat: 1, Lon: 2,
		Country: "DE", ASN: 3, Sites: []summary.SiteSummary{{Site: "ams", N: 2, Last: 9, RTTs: []float64{4}}}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d Decoder
		var s summary.Summary
		if err := d.Decode(body, &s); err != nil {
			return
		}
		again := Append(nil, &s)
		var s2 summary.Summary
		if err := d.Decode(again, &s2); err != nil {
			t.Fatalf("re-encoded body does not decode: %v", err)
		}
		if string(Append(nil, &s2)) != string(again) {
			t.Fatal("decode and encode do not round trip")
		}
	})
}
