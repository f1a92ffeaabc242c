package spool

import (
	"bytes"
	"math"
	"testing"
)

// FuzzSpoolDecode feeds the segment decoder any bytes, as a damaged disk
// might: it never panics nor loops, it takes all the bytes, and what it
// reads survives a round trip; a segment cut short anywhere reads as a
// prefix of itself. The old NDJSON segments' decoder gets the same bytes.
func FuzzSpoolDecode(f *testing.F) {
	good := []byte(segMagic)
	for _, r := range raws(3, "z", 5) {
		good = appendFrame(good, r)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(good[:20:20], good[30:]...))
	f.Add(append([]byte(segMagic), make([]byte, 64)...))
	f.Add([]byte("\n\n{}\n" + `{"id":"a","rtt_ms":"x"}` + "\n" + `{"id":"b"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := segmentStart(data)
		recs, used, bad := decodeFrames(data[start:], math.MaxInt)
		if used != len(data)-int(start) {
			t.Fatalf("took %d of %d bytes", used, len(data)-int(start))
		}
		if bad > len(data) || len(recs)*frameHeader > len(data) {
			t.Fatalf("%d records and %d damaged spans from %d bytes", len(recs), bad, len(data))
		}
		again := []byte(segMagic)
		for _, r := range recs {
			again = appendFrame(again, r)
		}
		back, _, bad := decodeFrames(again[len(segMagic):], math.MaxInt)
		if bad != 0 || len(back) != len(recs) {
			t.Fatalf("round trip: %d records, %d damaged; want %d, 0", len(back), bad, len(recs))
		}
		for i := range back {
			if !bytes.Equal(back[i], recs[i]) {
				t.Fatalf("round trip changed record %d", i)
			}
		}
		// Cut where the input's length says: a torn tail costs at most the
		// record it tears.
		cut := len(segMagic) + len(data)%(len(again)-len(segMagic)+1)
		torn, _, bad := decodeFrames(again[len(segMagic):cut], math.MaxInt)
		if bad > 1 || len(torn) > len(recs) {
			t.Fatalf("cut at %d: %d records, %d damaged", cut, len(torn), bad)
		}
		for i := range torn {
			if !bytes.Equal(torn[i], recs[i]) {
				t.Fatalf("cut at %d changed record %d", cut, i)
			}
		}

		lines, used, _ := decodeLines(data, math.MaxInt)
		if used != len(data) {
			t.Fatalf("old decoder took %d of %d bytes", used, len(data))
		}
		for _, l := range lines {
			if bytes.IndexByte(l, '\n') >= 0 || len(bytes.TrimSpace(l)) == 0 {
				t.Fatalf("old decoder gave %q", l)
			}
		}
	})
}
