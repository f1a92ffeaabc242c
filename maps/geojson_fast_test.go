package maps

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestAppendGeoJSONIsMarshal: AppendGeoJSON writes json.Marshal(GeoJSON(c))
// byte for byte, on catchments built from records at every binning (cells
// across 180° and around the poles included) and on random ones whose
// strings need escaping or are not UTF-8.
func TestAppendGeoJSONIsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var cs []*Catchment
	for i := range 9 {
		o := Options{Res: ResBase + i%9, By: []string{ByH3, ByCountry, ByASN}[i%3]}
		if o.Res == 0 {
			o.Res = 7
		}
		recs := randomRecords(rng, 3000, 300)
		for j := range recs {
			if recs[j].Lat != nil && j%7 == 0 { // near the poles and 180°
				lat, lon := []float64{89.9, -89.9, 0, -16.5}[j%4], []float64{179.99, -179.99, 180, 0}[j%4]
				recs[j].Lat, recs[j].Lon = &lat, &lon
			}
		}
		c, err := Compute(recs, o, testSites)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for range 300 {
		c := randomCatchment(rng)
		c.By = []string{ByCountry, ByASN}[rng.IntN(2)]
		for range rng.IntN(5) {
			p := Probe{ID: randomString(rng), Site: randomString(rng), Cell: randomString(rng), Country: randomString(rng),
				ASN: rng.Uint32(), Weight: randomFloat(rng), RTTMedian: randomOpt(rng)}
			if rng.IntN(4) > 0 {
				p.Lat, p.Lon = ptr(randomFloat(rng)), ptr(randomFloat(rng))
			}
			c.ProbeList = append(c.ProbeList, p)
		}
		cs = append(cs, c)
	}
	features, escaped := 0, 0
	for i, c := range cs {
		fc, err := GeoJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := json.Marshal(fc)
		got, err := c.AppendGeoJSON(nil)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("catchment %d: error %v, json.Marshal's %v", i, err, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("catchment %d:\n got %s\nwant %s", i, got, want)
		}
		features += len(fc.Features)
		if bytes.Contains(want, []byte(`\ufffd`)) || bytes.Contains(want, []byte("\uFFFD")) {
			escaped++
		}
	}
	// The cases must reach both paths: features, and strings that are not
	// UTF-8 (escaped by the direct path, replaced by the decoding one).
	if features < 1000 || escaped < 10 {
		t.Errorf("%d features, %d catchments with bad UTF-8: the cases miss what they are for", features, escaped)
	}
}
