// Package summarycodec is the byte form of a summary.Summary that the stores
// keep in their rollups (the SQLite and ClickHouse summaries tables), so
// that both stores write and read the same bodies.
//
// A body is
//
//	version, first, last, results, errors,
//	place flag [place time, lat, lon], country [country time], asn [asn time],
//	sites: count, then each: code, n, last, rtt count, rtts
//
// Integers are varints, floats 8 bytes little endian, strings a length and
// their bytes. Target and probe are columns of the stores' rows, not part
// of the body.
package summarycodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/catchmap/catchmap/maps/summary"
)

// version is the first byte of a body.
const version = 1

// ErrCorrupt is the error for a body that is truncated or malformed.
var ErrCorrupt = errors.New("summary body is truncated or malformed")

// Append appends s's body to b.
func Append(b []byte, s *summary.Summary) []byte {
	b = append(b, version)
	b = binary.AppendVarint(b, s.First)
	b = binary.AppendVarint(b, s.Last)
	b = binary.AppendUvarint(b, uint64(s.Results))
	b = binary.AppendUvarint(b, uint64(s.Errors))
	if s.HasPlace {
		b = append(b, 1)
		b = binary.AppendVarint(b, s.PlaceAt)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Lat))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Lon))
	} else {
		b = append(b, 0)
	}
	b = appendString(b, s.Country)
	if s.Country != "" {
		b = binary.AppendVarint(b, s.CountryAt)
	}
	b = binary.AppendUvarint(b, uint64(s.ASN))
	if s.ASN != 0 {
		b = binary.AppendVarint(b, s.ASNAt)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Sites)))
	for _, x := range s.Sites {
		b = appendString(b, x.Site)
		b = binary.AppendUvarint(b, uint64(x.N))
		b = binary.AppendVarint(b, x.Last)
		b = binary.AppendUvarint(b, uint64(len(x.RTTs)))
		for _, r := range x.RTTs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r))
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decoder decodes bodies, keeping one copy of each string it has seen (a
// window has few sites and countries) and one buffer of RTTs that the
// decoded summary's sites share, so a scan allocates little per row. The
// zero Decoder is ready; it is not safe for concurrent use.
type Decoder struct {
	strs map[string]string
	rtts []float64
	b    []byte
	err  error
}

func (d *Decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a non-negative count that fits an int32.
func (d *Decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int(v)
}

// count reads a count of items of at least size bytes each, refusing one
// the rest of the body cannot hold.
func (d *Decoder) count(size int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/size) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *Decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *Decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *Decoder) string() string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return ""
	}
	raw := d.b[:n]
	d.b = d.b[n:]
	if v, ok := d.strs[string(raw)]; ok {
		return v
	}
	if d.strs == nil || len(d.strs) >= 4096 {
		d.strs = map[string]string{}
	}
	v := string(raw)
	d.strs[v] = v
	return v
}

func (d *Decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

// Decode fills s from body. s's Sites and their RTTs are only valid until
// the next Decode; Target and Probe are left for the caller.
func (d *Decoder) Decode(body []byte, s *summary.Summary) error {
	s.Reset()
	d.b, d.err, d.rtts = body, nil, d.rtts[:0]
	if v := d.byte(); v != version && d.err == nil {
		return fmt.Errorf("summary body version %d: this catchmap reads version %d only", v, version)
	}
	s.First, s.Last = d.varint(), d.varint()
	s.Results, s.Errors = d.int(), d.int()
	switch d.byte() {
	case 0:
	case 1:
		s.HasPlace, s.PlaceAt, s.Lat, s.Lon = true, d.varint(), d.float(), d.float()
	default:
		d.fail()
	}
	if s.Country = d.string(); s.Country != "" {
		s.CountryAt = d.varint()
	}
	asn := d.uvarint()
	if asn > math.MaxUint32 {
		d.fail()
	}
	if s.ASN = uint32(asn); s.ASN != 0 {
		s.ASNAt = d.varint()
	}
	n := d.count(4) // code length, n, last, rtt count: a byte each at least
	type span struct{ lo, hi int }
	var spans [16]span
	rs := spans[:0]
	for range n {
		x := summary.SiteSummary{Site: d.string(), N: d.int(), Last: d.varint()}
		k := d.count(8)
		lo := len(d.rtts)
		for range k {
			d.rtts = append(d.rtts, d.float())
		}
		s.Sites = append(s.Sites, x)
		rs = append(rs, span{lo, len(d.rtts)})
	}
	// The RTT buffer may have moved while growing: slice it once at the end.
	for i, r := range rs {
		s.Sites[i].RTTs = d.rtts[r.lo:r.hi:r.hi]
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return d.err
	}
	if s.First > s.Last || s.Errors > s.Results {
		return ErrCorrupt
	}
	return nil
}
