package hitlist

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func addrs(l *List) []string {
	var s []string
	for _, t := range l.Targets {
		s = append(s, Addr(t).String())
	}
	return s
}

func read(t *testing.T, text string, o Options) (*List, error) {
	t.Helper()
	return Read(strings.NewReader(text), o)
}

func score(n int) *int { return &n }

var fileTargets = []string{"192.0.2.7", "198.51.100.1", "203.0.113.129", "10.1.0.1", "10.1.1.1", "10.1.2.1", "10.1.3.1", "10.9.9.9"}

// TestFiles reads each format's example, plain and in every compression,
// with the format told apart from the content.
func TestFiles(t *testing.T) {
	cases := []struct {
		file      string
		format    Format
		want      []string
		addresses int
		skipped   int
	}{
		{"plain.txt", FormatPlain, fileTargets, 9, 0},
		{"isi.fsdb", FormatISI, fileTargets, 8, 0},
		{"verfploeter.fsdb", FormatVerfploeter, slices.Delete(slices.Clone(fileTargets), 5, 6), 7, 2},
	}
	for _, c := range cases {
		for _, ext := range []string{"", ".gz", ".bz2", ".xz"} {
			t.Run(c.file+ext, func(t *testing.T) {
				l, err := ReadFile(filepath.Join("testdata", c.file+ext), Options{})
				if err != nil {
					t.Fatal(err)
				}
				if l.Format != c.format {
					t.Errorf("format %s, want %s", l.Format, c.format)
				}
				if got := addrs(l); !slices.Equal(got, c.want) {
					t.Errorf("targets %v\nwant    %v", got, c.want)
				}
				if l.Addresses != c.addresses || l.Skipped != c.skipped {
					t.Errorf("addresses %d, skipped %d; want %d, %d", l.Addresses, l.Skipped, c.addresses, c.skipped)
				}
			})
		}
	}
}

func TestMinScore(t *testing.T) {
	l, err := ReadFile(filepath.Join("testdata", "isi.fsdb.xz"), Options{MinScore: score(0)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.7", "203.0.113.129", "10.1.0.1", "10.1.1.1", "10.1.2.1", "10.1.3.1"}
	if got := addrs(l); !slices.Equal(got, want) || l.Skipped != 2 {
		t.Errorf("--min-score 0: %v, %d skipped; want %v, 2 skipped", got, l.Skipped, want)
	}
	if _, err := ReadFile(filepath.Join("testdata", "isi.fsdb"), Options{MinScore: score(100)}); err == nil || !strings.Contains(err.Error(), "out of ISI's range") {
		t.Errorf("--min-score 100: %v", err)
	}
	if _, err := ReadFile(filepath.Join("testdata", "isi.fsdb"), Options{MinScore: score(99)}); err != nil {
		t.Errorf("--min-score 99: %v", err)
	}
}

func TestOptOut(t *testing.T) {
	o, err := ReadSetFile(filepath.Join("testdata", "optout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Entries != 3 || o.IPv6 != 1 || o.Len() != 2 {
		t.Errorf("entries %d, IPv6 %d, ranges %d; want 3, 1, 2", o.Entries, o.IPv6, o.Len())
	}
	l, err := ReadFile(filepath.Join("testdata", "plain.txt.gz"), Options{OptOut: o})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.7", "203.0.113.129", "10.1.0.1", "10.1.1.1", "10.9.9.9"}
	if got := addrs(l); !slices.Equal(got, want) || l.OptedOut != 3 || l.Addresses != 6 {
		t.Errorf("after opt-out: %v, %d opted out, %d addresses; want %v, 3, 6", got, l.OptedOut, l.Addresses, want)
	}
	all, err := ParseSet([]string{"0.0.0.0/1", "128.0.0.0/1"})
	if err != nil {
		t.Fatal(err)
	}
	if all.Len() != 1 || !all.Contains(0) || !all.Contains(^uint32(0)) {
		t.Errorf("two halves make %d ranges", all.Len())
	}
	_, err = read(t, "192.0.2.1\n", Options{OptOut: all})
	if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "removed all 1") {
		t.Errorf("everything opted out: %v", err)
	}
	if _, err := ParseSet([]string{"192.0.2.1/24", "x"}); err == nil || !strings.Contains(err.Error(), "host bits") {
		t.Errorf("bad opt-out entries: %v", err)
	}
}

func TestOptOutContains(t *testing.T) {
	o, err := ParseSet([]string{"10.0.0.0/24", "10.0.1.0/24", "10.0.3.7", "10.0.2.128/25", "10.0.0.0/23"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Len() != 3 {
		t.Errorf("%d ranges, want 3: 10.0.0.0-10.0.1.255, 10.0.2.128-10.0.2.255, 10.0.3.7", o.Len())
	}
	for a, want := range map[string]bool{
		"10.0.0.0": true, "10.0.1.255": true, "10.0.2.0": false, "10.0.2.127": false,
		"10.0.2.128": true, "10.0.3.6": false, "10.0.3.7": true, "10.0.3.8": false, "9.255.255.255": false,
	} {
		if got := o.Contains(U32(parseAddr(t, a))); got != want {
			t.Errorf("Contains(%s) = %v", a, got)
		}
	}
	var none *Set
	if none.Contains(1) || none.Len() != 0 {
		t.Error("a nil list holds something")
	}
}

// TestPrefixes: a prefix stands for the .1 of each of its /24s; one of /24
// or longer for one address.
func TestPrefixes(t *testing.T) {
	for in, want := range map[string][]string{
		"10.0.0.0/8":       nil, // checked by count below
		"10.2.0.0/23":      {"10.2.0.1", "10.2.1.1"},
		"192.0.2.0/24":     {"192.0.2.1"},
		"192.0.2.64/26":    {"192.0.2.65"},
		"192.0.2.6/31":     {"192.0.2.6"},
		"192.0.2.9/32":     {"192.0.2.9"},
		"192.0.2.9":        {"192.0.2.9"},
		" 192.0.2.9\t# x ": {"192.0.2.9"},
		"192.0.2.9\r":      {"192.0.2.9"},
	} {
		l, err := read(t, in+"\n", Options{Format: FormatPlain})
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if want == nil {
			if len(l.Targets) != 65536 || Addr(l.Targets[65535]).String() != "10.255.255.1" {
				t.Errorf("%q: %d targets", in, len(l.Targets))
			}
			continue
		}
		if got := addrs(l); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

// TestBadLines: every bad line is refused with its number and a reason.
func TestBadLines(t *testing.T) {
	cases := []struct {
		name, text string
		o          Options
		line       int
		want       string
	}{
		{"ipv6", "192.0.2.1\n2001:db8::1\n", Options{}, 2, "IPv6"},
		{"ipv6 prefix", "# c\n\n2001:db8::/32\n", Options{}, 3, "IPv6"},
		{"ipv6 forced plain", "192.0.2.1\n::ffff:192.0.2.1\n", Options{Format: FormatPlain}, 2, "IPv6"},
		{"short prefix", "192.0.2.1\n10.0.0.0/7\n", Options{}, 2, "shorter than /8"},
		{"host bits", "10.1.2.0/16\n", Options{}, 1, "host bits set: the prefix is 10.1.0.0/16"},
		{"garbage", "192.0.2.1\n192.0.2.1.5\n", Options{}, 2, "not an IPv4 address"},
		{"bad prefix", "192.0.2.0/33\n", Options{}, 1, "not an IPv4 prefix"},
		{"multicast", "224.0.0.1\n", Options{}, 1, "multicast"},
		{"loopback prefix", "127.0.0.0/8\n", Options{}, 1, "loopback"},
		{"overlaps reserved", "192.0.2.1\n240.0.0.0/8\n", Options{}, 2, "reserved"},
		{"this network", "0.1.2.3\n", Options{}, 1, "0.0.0.0/8"},
		{"too long", "192.0.2.1\n" + strings.Repeat("1", MaxLine+1) + "\n", Options{}, 2, "longer than"},
		{"isi score", "#fsdb -F t hexip score ip\nc0000201\t100\t192.0.2.1\n", Options{}, 2, "score \"100\""},
		{"isi score text", "#fsdb -F t hexip score\nc0000201\tx\n", Options{}, 2, "score"},
		{"isi ip differs", "#fsdb -F t hexip score ip\nc0000201\t1\t192.0.2.2\n", Options{}, 2, "is not hexip"},
		{"isi fields", "#fsdb -F t hexip score ip\nc0000201\t1\n", Options{}, 2, "2 fields where the #fsdb header names 3"},
		{"isi ipv6", "#fsdb -F t hexip score\n20010db8000000000000000000000001\t1\n", Options{}, 2, "IPv6"},
		{"isi hex", "#fsdb -F t hexip score\nc00002zz\t1\n", Options{}, 2, "8 hex digits"},
		{"isi two headers", "#fsdb -F t hexip score\nc0000201\t1\n#fsdb -F t hexip score\n", Options{}, 3, "second #fsdb header"},
		{"isi header columns", "#fsdb -F t ip score\n", Options{Format: FormatISI}, 1, "hexip and score"},
		{"isi forced without header", "c0000201 1 192.0.2.1 x\n", Options{Format: FormatISI}, 1, "4 fields"},
		{"unknown fsdb", "#fsdb -F t a b c\n", Options{}, 1, "give --format"},
		{"hex without header", "c0000201\t1\n", Options{}, 1, "give --format"},
		{"verfploeter block", "#fsdb -F t block hitlist\nc0000201\t01\n", Options{}, 2, "not the start of a /24"},
		{"verfploeter octet", "#fsdb -F t block hitlist\nc0000200\t01,1ff\n", Options{}, 2, "last octet \"1ff\""},
		{"verfploeter fields", "#fsdb -F t block hitlist\nc0000200\n", Options{}, 2, "1 fields"},
		{"plain forced on isi", "#fsdb -F t hexip score ip\nc0000201\t1\t192.0.2.1\n", Options{Format: FormatPlain}, 2, "not an IPv4 address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(t, c.text, c.o)
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want an error on line %d", err, c.line)
			}
			if le.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q (line %d), want line %d and %q", err, le.Line, c.line, c.want)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, text := range []string{"", "\n\n", "# only comments\n", "#fsdb -F t hexip score ip\n", "#fsdb -F t block hitlist\nc0000200\t-\n"} {
		if _, err := read(t, text, Options{}); !errors.Is(err, ErrEmpty) {
			t.Errorf("%q: %v, want ErrEmpty", text, err)
		}
	}
	if _, err := read(t, "192.0.2.1\n", Options{Format: "csv"}); err == nil || !strings.Contains(err.Error(), "auto, plain, isi, verfploeter") {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := ReadFile(filepath.Join("testdata", "missing.txt"), Options{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := read(t, "\x1f\x8bnot gzip", Options{}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("corrupt gzip: %v", err)
	}
}

func TestFsdbColumns(t *testing.T) {
	for in, want := range map[string][]string{
		"#fsdb -F t hexip score ip": {"hexip", "score", "ip"},
		"#fsdb -F t block:a hits":   {"block", "hits"},
		"#fsdb hexip score":         {"hexip", "score"},
		"#fsdb -R C -F t a":         {"a"},
	} {
		if got := fsdbColumns(in); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func parseAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
