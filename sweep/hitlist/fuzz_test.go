package hitlist

import (
	"bytes"
	"errors"
	"testing"
)

// checkList holds what every successful Read promises: something to probe,
// each /24 once, and counts that add up.
func checkList(t *testing.T, in []byte, o Options) {
	l, err := Read(bytes.NewReader(in), o)
	if err != nil {
		var le *LineError
		if errors.As(err, &le) && (le.Line < 1 || le.Line > bytes.Count(in, []byte("\n"))+1) {
			t.Fatalf("error names line %d of a %d-line input: %v", le.Line, bytes.Count(in, []byte("\n"))+1, err)
		}
		return
	}
	if len(l.Targets) == 0 || l.Addresses < len(l.Targets) {
		t.Fatalf("%d targets from %d addresses", len(l.Targets), l.Addresses)
	}
	seen := map[uint32]bool{}
	for _, a := range l.Targets {
		if seen[a>>8] {
			t.Fatalf("/24 of %s twice", Addr(a))
		}
		seen[a>>8] = true
		if probeable(Prefix24(a)) != nil || o.OptOut.Contains(a) {
			t.Fatalf("target %s must not be probed", Addr(a))
		}
	}
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte("192.0.2.7\n10.1.0.0/22 # c\n"))
	f.Fuzz(func(t *testing.T, in []byte) { checkList(t, in, Options{Format: FormatPlain}) })
}

func FuzzISI(f *testing.F) {
	f.Add([]byte("#fsdb -F t hexip score ip\nc0000207\t99\t192.0.2.7\n"))
	f.Fuzz(func(t *testing.T, in []byte) { checkList(t, in, Options{Format: FormatISI, MinScore: score(0)}) })
}

func FuzzVerfploeter(f *testing.F) {
	f.Add([]byte("#fsdb -F t block hitlist\nc0000200\t07,c8\n0a010200\t-\n"))
	f.Fuzz(func(t *testing.T, in []byte) { checkList(t, in, Options{Format: FormatVerfploeter}) })
}

// FuzzRead tells the format and the compression apart by the content.
func FuzzRead(f *testing.F) {
	f.Add([]byte("10.1.0.0/22\n"))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	o, err := ParseSet([]string{"10.1.2.0/23"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkList(t, in, Options{OptOut: o}) })
}

func FuzzOptOut(f *testing.F) {
	f.Add([]byte("198.51.100.0/24\n10.1.2.0/23\n2001:db8::/32\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err := ReadSet(bytes.NewReader(in))
		if err != nil {
			return
		}
		for i := 1; i < len(o.ranges); i++ {
			if prev, r := o.ranges[i-1], o.ranges[i]; prev[1] >= r[0] || prev[1]+1 == r[0] || r[0] > r[1] {
				t.Fatalf("ranges %v and %v overlap, touch or are upside down", prev, r)
			}
		}
		for _, r := range o.ranges {
			if !o.Contains(r[0]) || !o.Contains(r[1]) || (r[0] > 0 && o.Contains(r[0]-1)) {
				t.Fatalf("range %v: Contains is wrong at its edges", r)
			}
		}
	})
}
