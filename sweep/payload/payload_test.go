package payload

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	otherKey = Key{9, 9, 9}
	testID   = ID(0x0123456789abcdef)
)

func keysOf(id ID, k Key) Keys {
	v := NewVerifier(k)
	return func(got ID) (*Verifier, bool) { return v, got == id }
}

func encode(t testing.TB, site, contact string, target netip.Addr, sent time.Time) []byte {
	t.Helper()
	e, err := NewEncoder(testID, testKey, site, contact)
	if err != nil {
		t.Fatal(err)
	}
	return e.Append(nil, target, sent)
}

func TestRoundTrip(t *testing.T) {
	sent := time.Unix(1_800_000_000, 123456789)
	target := netip.MustParseAddr("10.64.3.1")
	b := encode(t, "ams", "sweeps@example.net", target, sent)
	if len(b) != fixedSize+3+1+len("sweeps@example.net")+MACSize {
		t.Fatalf("payload is %d bytes", len(b))
	}
	if !bytes.Contains(b, []byte("sweeps@example.net")) {
		t.Error("the contact string is not readable in the packet")
	}
	p, err := Open(b, keysOf(testID, testKey))
	if err != nil {
		t.Fatal(err)
	}
	want := Probe{Sweep: testID, Site: "ams", Target: target, Sent: sent, Contact: "sweeps@example.net"}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

// TestEncoderReuse checks that one encoder writes many payloads, appended
// to a buffer that already holds data, each of which verifies.
func TestEncoderReuse(t *testing.T) {
	e, err := NewEncoder(testID, testKey, "nrt", "")
	if err != nil {
		t.Fatal(err)
	}
	keys := keysOf(testID, testKey)
	buf := []byte("prefix")
	for i := range 100 {
		target := netip.AddrFrom4([4]byte{10, 1, byte(i), 1})
		buf = e.Append(buf[:6], target, time.Unix(int64(i), 0))
		p, err := Open(buf[6:], keys)
		if err != nil || p.Target != target {
			t.Fatalf("payload %d: %+v, %v", i, p, err)
		}
	}
}

// TestOpenErrors: how a catcher tells strays from forgeries.
func TestOpenErrors(t *testing.T) {
	target := netip.MustParseAddr("10.64.3.1")
	good := encode(t, "ams", "c", target, time.Unix(1, 0))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	cases := []struct {
		name string
		b    []byte
		keys Keys
		want error
	}{
		{"empty", nil, keysOf(testID, testKey), ErrMalformed},
		{"short", good[:MinSize-1], keysOf(testID, testKey), ErrMalformed},
		{"bad magic", flip(0), keysOf(testID, testKey), ErrMalformed},
		{"other version", flip(4), keysOf(testID, testKey), ErrMalformed},
		{"truncated MAC", good[:len(good)-1], keysOf(testID, testKey), ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), keysOf(testID, testKey), ErrMalformed},
		{"site length zero", func() []byte { b := bytes.Clone(good); b[25] = 0; return b }(), keysOf(testID, testKey), ErrMalformed},
		{"site not printable", func() []byte { b := bytes.Clone(good); b[26] = 0x07; return b }(), keysOf(testID, testKey), ErrMalformed},
		{"unknown sweep", good, keysOf(testID+1, testKey), ErrUnknownSweep},
		{"wrong key", good, keysOf(testID, otherKey), ErrBadMAC},
		{"target changed", flip(16), keysOf(testID, testKey), ErrBadMAC},
		{"time changed", flip(20), keysOf(testID, testKey), ErrBadMAC},
		{"site changed", flip(26), keysOf(testID, testKey), ErrBadMAC},
		{"MAC changed", flip(len(good) - 1), keysOf(testID, testKey), ErrBadMAC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Open(c.b, c.keys); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestEncoderChecks(t *testing.T) {
	for _, c := range []struct{ site, contact, want string }{
		{"", "", "site"},
		{strings.Repeat("a", MaxSite+1), "", "site"},
		{"ams", strings.Repeat("c", MaxContact+1), "contact"},
		{"ams", "caf\u00e9", "printable ASCII"},
		{"am\ns", "", "printable ASCII"},
	} {
		if _, err := NewEncoder(testID, testKey, c.site, c.contact); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewEncoder(%q, %q): %v, want an error about %s", c.site, c.contact, err, c.want)
		}
	}
	b := encode(t, strings.Repeat("s", MaxSite), strings.Repeat("c", MaxContact), netip.MustParseAddr("10.0.0.1"), time.Now())
	if len(b) != MaxSize {
		t.Errorf("longest payload is %d bytes, MaxSize says %d", len(b), MaxSize)
	}
}

func TestIDAndKeyText(t *testing.T) {
	id, err := ParseID(testID.String())
	if err != nil || id != testID {
		t.Fatalf("ParseID(%s) = %v, %v", testID, id, err)
	}
	for _, bad := range []string{"", "0123", "0123456789abcdeg", "0123456789abcdef0"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	k, err := ParseKey(testKey.Hex())
	if err != nil || k != testKey {
		t.Fatalf("ParseKey: %v, %v", k, err)
	}
	if _, err := ParseKey("abcd"); err == nil {
		t.Error("a short key was accepted")
	}
	if s := testKey.String(); strings.Contains(s, "0102") {
		t.Errorf("Key.String shows the key: %s", s)
	}
	id1, id2 := NewID(), NewID()
	k1, k2 := NewKey(), NewKey()
	if id1 == id2 || k1 == k2 {
		t.Error("two random ids or keys are equal")
	}
}

// FuzzOpen: no input panics the decoder, and whatever decodes encodes back
// to the same bytes (with the key that made them).
func FuzzOpen(f *testing.F) {
	f.Add(encode(f, "ams", "sweeps@example.net", netip.MustParseAddr("10.64.3.1"), time.Unix(1, 2)))
	f.Add([]byte("CMSW\x01"))
	keys := keysOf(testID, testKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Open(b, keys)
		if err != nil {
			return
		}
		e, err := NewEncoder(p.Sweep, testKey, p.Site, p.Contact)
		if err != nil {
			t.Fatalf("decoded %+v, which does not encode: %v", p, err)
		}
		if again := e.Append(nil, p.Target, p.Sent); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which encodes as %x", p, b, again)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e, _ := NewEncoder(testID, testKey, "ams", "sweeps@example.net")
	buf := make([]byte, 0, MaxSize)
	target := netip.MustParseAddr("10.64.3.1")
	now := time.Now()
	for b.Loop() {
		buf = e.Append(buf[:0], target, now)
	}
}

func BenchmarkOpen(b *testing.B) {
	p := encode(b, "ams", "sweeps@example.net", netip.MustParseAddr("10.64.3.1"), time.Now())
	keys := keysOf(testID, testKey)
	for b.Loop() {
		if _, err := Open(p, keys); err != nil {
			b.Fatal(err)
		}
	}
}
