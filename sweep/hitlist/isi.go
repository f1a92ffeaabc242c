package hitlist

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// isiColumns is where the ISI hitlist's fields are, by its #fsdb header;
// hexip, score, ip when the file has none.
type isiColumns struct {
	set              bool
	n                int // columns in the header, 0 without one
	hex, score, addr int // -1: absent
}

var defaultISI = isiColumns{set: true, hex: 0, score: 1, addr: 2}

func (b *builder) isiLine(line string) error {
	t := strings.TrimSpace(line)
	if t == "" {
		return nil
	}
	if strings.HasPrefix(t, "#fsdb") {
		return b.isiHeader(t)
	}
	if strings.HasPrefix(t, "#") {
		return nil
	}
	if !b.isi.set {
		b.isi = defaultISI
	}
	f := strings.Fields(t)
	c := b.isi
	if c.n != 0 && len(f) != c.n {
		return fmt.Errorf("%d fields where the #fsdb header names %d", len(f), c.n)
	}
	if c.n == 0 && len(f) != 2 && len(f) != 3 {
		return fmt.Errorf("%d fields: an ISI hitlist line is hexip, score and, in newer files, ip", len(f))
	}
	a, err := hexAddr(f[c.hex])
	if err != nil {
		return err
	}
	score, err := strconv.Atoi(f[c.score])
	if err != nil || score < MinScore || score > MaxScore {
		return fmt.Errorf("score %q is not a number from %d to %d", f[c.score], MinScore, MaxScore)
	}
	if c.addr >= 0 && c.addr < len(f) {
		ip, err := netip.ParseAddr(f[c.addr])
		if err != nil || ip != Addr(a) {
			return fmt.Errorf("ip %q is not hexip %s (%s)", f[c.addr], f[c.hex], Addr(a))
		}
	}
	if m := b.o.MinScore; m != nil && score < *m {
		b.list.Skipped++
		return nil
	}
	b.addPublished(a)
	return nil
}

func (b *builder) isiHeader(t string) error {
	if b.isi.set {
		return errors.New("a second #fsdb header: concatenated files? give one hitlist")
	}
	cols := fsdbColumns(t)
	c := isiColumns{set: true, n: len(cols), hex: -1, score: -1, addr: -1}
	for i, name := range cols {
		switch name {
		case "hexip":
			c.hex = i
		case "score":
			c.score = i
		case "ip":
			c.addr = i
		}
	}
	if c.hex < 0 || c.score < 0 {
		return fmt.Errorf("the #fsdb header names columns %v: an ISI hitlist has hexip and score", cols)
	}
	b.isi = c
	return nil
}

// addPublished adds an address from one of ISI's files, which cover the
// whole address space: what no sweep may probe is skipped, not an error.
func (b *builder) addPublished(a uint32) {
	if probeable(netip.PrefixFrom(Addr(a), 32)) != nil {
		b.list.Skipped++
		return
	}
	b.add(a)
}

// hexAddr reads an IPv4 address as ISI writes it, 8 hex digits.
func hexAddr(s string) (uint32, error) {
	if len(s) == 32 && isHex(s) {
		return 0, errors.New("an IPv6 address: sweeps are IPv4 only for now; remove the line")
	}
	if len(s) != 8 || !isHex(s) {
		return 0, fmt.Errorf("%q is not an IPv4 address in 8 hex digits", s)
	}
	v, _ := strconv.ParseUint(s, 16, 32)
	return uint32(v), nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// verfploeterLine reads "block octets": a /24 in hex and the last octets of
// its responsive addresses; the first, the most responsive, is probed.
func (b *builder) verfploeterLine(line string) error {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return nil
	}
	f := strings.Fields(t)
	if len(f) != 2 {
		return fmt.Errorf("%d fields: a Verfploeter hitlist line is a /24 block in hex and its addresses' last octets", len(f))
	}
	block, err := hexAddr(f[0])
	if err != nil {
		return err
	}
	if block&0xff != 0 {
		return fmt.Errorf("block %s is %s, not the start of a /24", f[0], Addr(block))
	}
	if f[1] == "-" {
		b.list.Skipped++
		return nil
	}
	var first uint32
	for i, o := range strings.Split(f[1], ",") {
		v, err := strconv.ParseUint(o, 16, 8)
		if err != nil || len(o) > 2 {
			return fmt.Errorf("last octet %q is not 1 or 2 hex digits", o)
		}
		if i == 0 {
			first = uint32(v)
		}
	}
	b.addPublished(block | first)
	return nil
}
