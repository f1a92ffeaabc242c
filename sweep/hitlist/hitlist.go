// Package hitlist reads the lists of addresses a sweep probes: one address
// per /24, from a plain file, the USC/ISI IPv4 hitlist or the ISI
// Verfploeter hitlist, plain or compressed (gzip, bzip2, xz), less an
// opt-out list of prefixes never to probe.
//
// Reading checks every line and stops at the first bad one, naming it: a
// sweep either has a whole, valid hitlist or sends nothing.
package hitlist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// Format is a hitlist's file format.
type Format string

// The formats Read understands.
const (
	// FormatAuto tells the format from the file: an #fsdb header names
	// ISI's columns; lines of dotted addresses are plain.
	FormatAuto Format = "auto"
	// FormatPlain is one address or prefix per line; # starts a comment.
	// A prefix stands for the .1 address of each of its /24s.
	FormatPlain Format = "plain"
	// FormatISI is the USC/ISI IPv4 hitlist (internet_address_hitlist_*):
	// columns hexip, score (-2 to 99) and, in newer files, ip.
	FormatISI Format = "isi"
	// FormatVerfploeter is the ISI Verfploeter hitlist
	// (internet_address_verfploeter_hitlist_*): a /24 in hex and the last
	// octets of its responsive addresses, in hex, comma-separated, most
	// responsive first, or "-" for none.
	FormatVerfploeter Format = "verfploeter"
)

// Formats lists the formats a user may name.
var Formats = []Format{FormatAuto, FormatPlain, FormatISI, FormatVerfploeter}

// ISI's score range: -2 (never answered) to 99 (always answered).
const (
	MinScore = -2
	MaxScore = 99
)

// MaxLine bounds a line: longer is not a hitlist.
const MaxLine = 4096

// ErrEmpty is a hitlist that leaves nothing to probe.
var ErrEmpty = errors.New("the hitlist holds no address to probe")

// Options of Read. The zero value reads any format, keeps every score and
// opts nothing out.
type Options struct {
	Format Format
	// MinScore, when set, drops ISI hitlist lines scored below it.
	MinScore *int
	// OptOut removes the addresses it contains.
	OptOut *Set
}

// List is a hitlist as read: one address per /24, each /24 once.
type List struct {
	Format Format
	// Targets holds the address to probe in each /24, in the order the
	// file first names the /24.
	Targets []uint32
	// Addresses counts the addresses the file names (each of a prefix's),
	// after the opt-out list and --min-score; several may share a /24.
	Addresses int
	// OptedOut counts the addresses the opt-out list removed.
	OptedOut int
	// Skipped counts lines that name no address to probe: scored below
	// --min-score, or a Verfploeter /24 with no responsive address.
	Skipped int
	// Lines is the number of lines read.
	Lines int
}

// LineError is a bad line: its number (from 1) and text.
type LineError struct {
	Line int
	Text string
	Err  error
}

func (e *LineError) Error() string {
	text := e.Text
	if len(text) > 80 {
		text = text[:80] + "..."
	}
	return fmt.Sprintf("line %d: %q: %v", e.Line, text, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ReadFile reads the hitlist in path, which may be compressed.
func ReadFile(path string, o Options) (*List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hitlist: %w", err)
	}
	defer f.Close()
	l, err := Read(f, o)
	if err != nil {
		return nil, fmt.Errorf("hitlist %s: %w", path, err)
	}
	return l, nil
}

// Read reads a hitlist from r, which may be compressed.
func Read(r io.Reader, o Options) (*List, error) {
	if o.Format == "" {
		o.Format = FormatAuto
	}
	if !validFormat(o.Format) {
		return nil, fmt.Errorf("unknown format %q: use one of %s", o.Format, formatNames())
	}
	if m := o.MinScore; m != nil && (*m < MinScore || *m > MaxScore) {
		return nil, fmt.Errorf("min score %d is out of ISI's range %d to %d", *m, MinScore, MaxScore)
	}
	dr, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	b := builder{o: o, seen: make([]uint64, 1<<24/64), list: &List{Format: o.Format}}
	if err := b.read(dr); err != nil {
		return nil, err
	}
	if len(b.list.Targets) == 0 {
		if b.list.OptedOut > 0 || b.list.Skipped > 0 {
			return nil, fmt.Errorf("%w: the opt-out list or --min-score removed all %d", ErrEmpty, b.list.OptedOut+b.list.Skipped)
		}
		return nil, ErrEmpty
	}
	return b.list, nil
}

func validFormat(f Format) bool {
	for _, g := range Formats {
		if f == g {
			return true
		}
	}
	return false
}

func formatNames() string {
	var s []string
	for _, f := range Formats {
		s = append(s, string(f))
	}
	return strings.Join(s, ", ")
}

// builder collects the targets while the lines are read.
type builder struct {
	o    Options
	list *List
	seen []uint64 // a bit per /24
	isi  isiColumns
}

// lines calls fn with each line and its number, stopping at its first
// error, which becomes a LineError.
func lines(r io.Reader, fn func(n int, line string) error) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, MaxLine), MaxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if err := fn(n, line); err != nil {
			return n, &LineError{Line: n, Text: line, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return n, &LineError{Line: n + 1, Err: fmt.Errorf("longer than %d bytes: not a hitlist line", MaxLine)}
		}
		return n, fmt.Errorf("after line %d: %w", n, err)
	}
	return n, nil
}

func (b *builder) read(r io.Reader) error {
	n, err := lines(r, b.line)
	b.list.Lines = n
	return err
}

func (b *builder) line(_ int, line string) error {
	if b.list.Format == FormatAuto {
		f, done, err := detect(line)
		if err != nil || !done {
			return err
		}
		b.list.Format = f
	}
	switch b.list.Format {
	case FormatISI:
		return b.isiLine(line)
	case FormatVerfploeter:
		return b.verfploeterLine(line)
	}
	return b.plainLine(line)
}

// detect tells the format from the first line that says something. done is
// false for a line that does not (blank, or a plain comment).
func detect(line string) (Format, bool, error) {
	t := strings.TrimSpace(line)
	switch {
	case t == "":
		return "", false, nil
	case strings.HasPrefix(t, "#fsdb"):
		cols := fsdbColumns(t)
		for _, c := range cols {
			if c == "score" {
				return FormatISI, true, nil
			}
		}
		if len(cols) == 2 {
			return FormatVerfploeter, true, nil
		}
		return "", false, fmt.Errorf("an #fsdb header with columns %v is neither ISI's hitlist (hexip score ip) nor its Verfploeter hitlist (block and addresses): give --format", cols)
	case strings.HasPrefix(t, "#"):
		return "", false, nil
	}
	f := strings.Fields(t)
	if len(f[0]) == 8 && isHex(f[0]) {
		switch {
		case len(f) == 3:
			return FormatISI, true, nil
		case len(f) == 2 && (f[1] == "-" || strings.Contains(f[1], ",")):
			return FormatVerfploeter, true, nil
		}
		return "", false, errors.New("hex addresses without an #fsdb header: give --format isi or --format verfploeter")
	}
	return FormatPlain, true, nil
}

// fsdbColumns reads the column names of "#fsdb -F t a b c".
func fsdbColumns(header string) []string {
	f := strings.Fields(header)[1:]
	var cols []string
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] == "-F" || f[i] == "-R":
			i++ // the option's value
		case strings.HasPrefix(f[i], "-"):
		default:
			// fsdb may type a column, as in "score:d".
			name, _, _ := strings.Cut(f[i], ":")
			cols = append(cols, name)
		}
	}
	return cols
}

// add takes addr as the target of its /24 unless the /24 has one already,
// or the opt-out list holds addr.
func (b *builder) add(addr uint32) {
	if b.o.OptOut.Contains(addr) {
		b.list.OptedOut++
		return
	}
	b.list.Addresses++
	s := addr >> 8
	if b.seen[s/64]&(1<<(s%64)) != 0 {
		return
	}
	b.seen[s/64] |= 1 << (s % 64)
	b.list.Targets = append(b.list.Targets, addr)
}

// plainLine reads an address or a prefix, with an optional comment.
func (b *builder) plainLine(line string) error {
	text, _, _ := strings.Cut(line, "#")
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	p, err := parseEntry(text)
	if err != nil {
		return err
	}
	if err := probeable(p); err != nil {
		return err
	}
	if p.Bits() >= 24 {
		b.add(firstHost(p))
		return nil
	}
	if p.Bits() < 8 {
		return fmt.Errorf("prefix /%d is shorter than /8: split it into /8s or longer (a /8 is 65,536 /24s)", p.Bits())
	}
	base := U32(p.Addr())
	for i := range uint32(1) << (24 - p.Bits()) {
		b.add(base + i<<8 + 1)
	}
	return nil
}

// firstHost is the address probed for a prefix of /24 or longer: the .1
// of a /24, the first address after the network address of a longer one,
// the address itself for a /31 or /32.
func firstHost(p netip.Prefix) uint32 {
	a := U32(p.Addr())
	if p.Bits() < 31 {
		a++
	}
	return a
}

// parseEntry reads an IPv4 address (as a /32) or prefix, refusing IPv6
// and prefixes with host bits set.
func parseEntry(text string) (netip.Prefix, error) {
	if strings.Contains(text, ":") {
		return netip.Prefix{}, errors.New("an IPv6 address: sweeps are IPv4 only for now; remove the line")
	}
	if strings.Contains(text, "/") {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			return p, fmt.Errorf("not an IPv4 prefix such as 192.0.2.0/24: %v", err)
		}
		if p.Masked() != p {
			return p, fmt.Errorf("host bits set: the prefix is %s", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IPv4 address or prefix, such as 192.0.2.1 or 192.0.2.0/24")
	}
	return netip.PrefixFrom(a, 32), nil
}

// special are the blocks no sweep probes: what an echo to them does is not
// what a hitlist means.
var special = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "in 0.0.0.0/8 (this network)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4) or broadcast"},
}

// probeable refuses a prefix that overlaps a special block.
func probeable(p netip.Prefix) error {
	for _, s := range special {
		if s.p.Overlaps(p) {
			return fmt.Errorf("%s is %s: not a unicast address to probe", p, s.why)
		}
	}
	return nil
}

// U32 is an IPv4 address as a number.
func U32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Addr is the IPv4 address of a number.
func Addr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// Prefix24 is the /24 of an address.
func Prefix24(u uint32) netip.Prefix { return netip.PrefixFrom(Addr(u&^0xff), 24) }
