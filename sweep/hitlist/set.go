package hitlist

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Set is a set of IPv4 prefixes, read from a list of addresses and
// prefixes: an opt-out list (networks whose operators asked not to be
// swept), or a site's allow and block lists.
type Set struct {
	// ranges are disjoint, sorted [first, last] address ranges.
	ranges [][2]uint32
	// Entries counts the lines read; IPv6 counts IPv6 prefixes, kept for
	// IPv6 sweeps and matching nothing until then.
	Entries, IPv6 int
}

// ReadSetFile reads a list of prefixes, such as an opt-out list: one
// address or prefix per line, # comments, plain or compressed.
func ReadSetFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("prefix list: %w", err)
	}
	defer f.Close()
	o, err := ReadSet(f)
	if err != nil {
		return nil, fmt.Errorf("prefix list %s: %w", path, err)
	}
	return o, nil
}

// ReadSet reads a list of prefixes from r.
func ReadSet(r io.Reader) (*Set, error) {
	dr, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	o := &Set{}
	_, err = lines(dr, func(_ int, line string) error {
		text, _, _ := strings.Cut(line, "#")
		text = strings.TrimSpace(text)
		if text == "" {
			return nil
		}
		o.Entries++
		if strings.Contains(text, ":") {
			o.IPv6++
			return nil
		}
		p, err := parseEntry(text)
		if err != nil {
			return err
		}
		o.add(p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.merge()
	return o, nil
}

// ParseSet builds a set from prefixes or addresses given on the command
// line.
func ParseSet(entries []string) (*Set, error) {
	var errs []error
	o := &Set{}
	for _, e := range entries {
		p, err := parseEntry(strings.TrimSpace(e))
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", e, err))
			continue
		}
		o.Entries++
		o.add(p)
	}
	o.merge()
	return o, errors.Join(errs...)
}

func (o *Set) add(p netip.Prefix) {
	first := U32(p.Addr())
	o.ranges = append(o.ranges, [2]uint32{first, first | uint32(uint64(1)<<(32-p.Bits())-1)})
}

// merge sorts the ranges and joins those that overlap or touch.
func (o *Set) merge() {
	slices.SortFunc(o.ranges, func(a, b [2]uint32) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	var out [][2]uint32
	for _, r := range o.ranges {
		if n := len(out); n > 0 && (r[0] <= out[n-1][1] || out[n-1][1] != ^uint32(0) && r[0] == out[n-1][1]+1) {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	o.ranges = out
}

// Contains reports whether the list holds addr. A nil list holds nothing.
func (o *Set) Contains(addr uint32) bool {
	if o == nil || len(o.ranges) == 0 {
		return false
	}
	i, _ := slices.BinarySearchFunc(o.ranges, addr, func(r [2]uint32, a uint32) int {
		switch {
		case r[1] < a:
			return -1
		case r[0] > a:
			return 1
		}
		return 0
	})
	return i < len(o.ranges) && o.ranges[i][0] <= addr && addr <= o.ranges[i][1]
}

// Len is the number of disjoint ranges the list holds.
func (o *Set) Len() int {
	if o == nil {
		return 0
	}
	return len(o.ranges)
}

// Union returns a set of the addresses of o and t; either may be nil.
func (o *Set) Union(t *Set) *Set {
	u := &Set{}
	for _, x := range []*Set{o, t} {
		if x != nil {
			u.ranges = append(u.ranges, x.ranges...)
			u.Entries += x.Entries
			u.IPv6 += x.IPv6
		}
	}
	u.merge()
	return u
}
