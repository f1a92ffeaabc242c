// Package payload is the data of a sweep's ICMP echo request, which the
// echo reply carries back unchanged to whichever site BGP delivers it to.
// The catching site needs no state about what was sent: the payload says
// which sweep, which sending site, which address and when, and a keyed MAC
// over all of it proves that one of the sweep's senders wrote it.
//
// Layout, big-endian, version 1:
//
//	offset  size  field
//	0       4     magic "CMSW"
//	4       1     version (1)
//	5       8     sweep id
//	13      4     probed IPv4 address
//	17      8     send time, Unix nanoseconds
//	25      1     length s of the sending site's code (1-32)
//	26      s     sending site code
//	26+s    1     length c of the contact string (0-128)
//	27+s    c     contact string, for whoever looks at the packet
//	27+s+c  16    HMAC-SHA256 of all the bytes above, with the sweep's key,
//	              truncated to 16 bytes
//
// The contact string is readable in a packet capture, as MAnycastR puts its
// information URL in every probe, so that a network that sees the sweep
// knows whom to ask.
package payload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"time"
)

// Version is the layout this package writes.
const Version = 1

// Limits of the variable fields.
const (
	MaxSite    = 32
	MaxContact = 128
	// MACSize is the truncated HMAC-SHA256: 128 bits, so that a forger's
	// chance per packet is 2^-128, not the 2^-64 the minimum allows.
	MACSize = 16
	// MaxSize is the longest payload: an echo request with it fits any MTU.
	MaxSize = fixedSize + MaxSite + 1 + MaxContact + MACSize
)

const (
	magic     = "CMSW"
	fixedSize = 4 + 1 + 8 + 4 + 8 + 1 // up to the site's length byte
	// MinSize is the shortest payload: one-letter site, no contact.
	MinSize = fixedSize + 1 + 1 + MACSize
)

// Errors of Open, which tell the catcher how to count a packet.
var (
	// ErrMalformed: not a sweep payload at all (a stray).
	ErrMalformed = errors.New("not a catchmap sweep payload")
	// ErrUnknownSweep: well formed, but for a sweep this catcher was not
	// given (a stray).
	ErrUnknownSweep = errors.New("payload of an unknown sweep")
	// ErrBadMAC: for a known sweep, but its MAC is wrong (forged).
	ErrBadMAC = errors.New("payload MAC does not match the sweep's key")
)

// ID names a sweep. It is random, so that sweeps of different operators
// (or of one operator, over time) do not collide.
type ID uint64

// NewID returns a random sweep id.
func NewID() ID {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return ID(binary.BigEndian.Uint64(b[:]))
}

// String writes the id as 16 hex digits.
func (id ID) String() string { return fmt.Sprintf("%016x", uint64(id)) }

// ParseID reads 16 hex digits.
func ParseID(s string) (ID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("sweep id %q: want 16 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("sweep id %q: want 16 hex digits", s)
	}
	return ID(v), nil
}

// MarshalText writes the id as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads the id from hex.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Key is a sweep's MAC key, one per sweep.
type Key [32]byte

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	_, _ = rand.Read(k[:])
	return k
}

// String hides the key, so that it cannot leak through a log line.
func (Key) String() string { return "[redacted]" }

// Hex is the key in hex, for the order a driver sends to its catchers.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// ParseKey reads a key written by Hex.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("sweep key: want %d hex digits", 2*len(k))
	}
	copy(k[:], b)
	return k, nil
}

// Probe is what one payload says.
type Probe struct {
	Sweep   ID
	Site    string     // the sending site
	Target  netip.Addr // the probed address
	Sent    time.Time
	Contact string
}

// Encoder writes the payloads of one sending site of one sweep. It is not
// safe for concurrent use: give each sending goroutine its own.
type Encoder struct {
	head []byte // magic, version, sweep id
	tail []byte // site and contact, with their lengths
	mac  hash.Hash
	sum  []byte
}

// NewEncoder checks the site and contact and prepares the fixed parts.
func NewEncoder(id ID, key Key, site, contact string) (*Encoder, error) {
	if err := checkText("site", site, 1, MaxSite); err != nil {
		return nil, err
	}
	if err := CheckContact(contact); err != nil {
		return nil, err
	}
	e := &Encoder{mac: hmac.New(sha256.New, key[:])}
	e.head = append([]byte(magic), Version)
	e.head = binary.BigEndian.AppendUint64(e.head, uint64(id))
	e.tail = append(e.tail, byte(len(site)))
	e.tail = append(e.tail, site...)
	e.tail = append(e.tail, byte(len(contact)))
	e.tail = append(e.tail, contact...)
	return e, nil
}

// CheckContact reports whether s can be a sweep's contact string.
func CheckContact(s string) error { return checkText("contact", s, 0, MaxContact) }

// checkText accepts printable ASCII of the given length.
func checkText(field, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("payload %s %q: length %d is out of range %d-%d", field, s, len(s), minLen, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("payload %s %q: only printable ASCII goes in a packet", field, s)
		}
	}
	return nil
}

// Append appends the payload for target, sent at sent, to dst.
func (e *Encoder) Append(dst []byte, target netip.Addr, sent time.Time) []byte {
	start := len(dst)
	dst = append(dst, e.head...)
	a4 := target.As4()
	dst = append(dst, a4[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(sent.UnixNano()))
	dst = append(dst, e.tail...)
	e.mac.Reset()
	e.mac.Write(dst[start:])
	e.sum = e.mac.Sum(e.sum[:0])
	return append(dst, e.sum[:MACSize]...)
}

// Keys finds a sweep's key by its id; ok is false for a sweep the caller
// does not know.
type Keys func(ID) (*Verifier, bool)

// Verifier checks the MACs of one sweep. Like Encoder, it is for one
// goroutine at a time.
type Verifier struct {
	mac hash.Hash
	sum []byte
}

// NewVerifier returns a verifier for key.
func NewVerifier(key Key) *Verifier { return &Verifier{mac: hmac.New(sha256.New, key[:])} }

// Parse reads a payload's fields without checking its MAC: what a packet
// claims, to be trusted only after Open.
func Parse(b []byte) (Probe, error) {
	var p Probe
	if len(b) < MinSize || string(b[:4]) != magic || b[4] != Version {
		return p, ErrMalformed
	}
	p.Sweep = ID(binary.BigEndian.Uint64(b[5:]))
	p.Target = netip.AddrFrom4([4]byte(b[13:17]))
	p.Sent = time.Unix(0, int64(binary.BigEndian.Uint64(b[17:])))
	s := int(b[25])
	if s < 1 || s > MaxSite || len(b) < fixedSize+s+1+MACSize {
		return p, ErrMalformed
	}
	p.Site = string(b[26 : 26+s])
	c := int(b[26+s])
	if c > MaxContact || len(b) != fixedSize+s+1+c+MACSize {
		return p, ErrMalformed
	}
	p.Contact = string(b[27+s : 27+s+c])
	if checkText("site", p.Site, 1, MaxSite) != nil || checkText("contact", p.Contact, 0, MaxContact) != nil {
		return p, ErrMalformed
	}
	return p, nil
}

// Open parses b and checks its MAC with the key of the sweep it names. The
// error is ErrMalformed, ErrUnknownSweep or ErrBadMAC; with ErrBadMAC the
// probe holds what the packet claims.
func Open(b []byte, keys Keys) (Probe, error) {
	p, err := Parse(b)
	if err != nil {
		return p, err
	}
	v, ok := keys(p.Sweep)
	if !ok {
		return p, ErrUnknownSweep
	}
	body := b[:len(b)-MACSize]
	v.mac.Reset()
	v.mac.Write(body)
	v.sum = v.mac.Sum(v.sum[:0])
	if !hmac.Equal(v.sum[:MACSize], b[len(body):]) {
		return p, ErrBadMAC
	}
	return p, nil
}
