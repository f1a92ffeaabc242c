package bgp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/catchmap/catchmap/api"
)

var updateFiles = flag.Bool("update", false, "rewrite testdata/updates.mrt.bz2 (needs the bzip2 command)")

const (
	collectorAS = 65000
	peerIP      = "203.0.113.9" // a string in the records, never dialled
	peerIP6     = "2001:db8:ffff::9"
)

var t0 = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

// as4Subtypes are the BGP4MP message subtypes with 4-byte AS numbers.
var as4Subtypes = []mrt.MRTSubTypeBGP4MP{mrt.MESSAGE_AS4, mrt.MESSAGE_AS4_LOCAL, mrt.MESSAGE_AS4_ADDPATH, mrt.MESSAGE_AS4_LOCAL_ADDPATH}

// record serialises one BGP4MP message with gobgp's MRT writer; opts are
// for the BGP message (path identifiers), which the writer would encode
// without. msg keeps the length of its first serialisation: use a fresh
// one per record.
func record(t testing.TB, at time.Time, sub mrt.MRTSubTypeBGP4MP, peer string, msg *bgp.BGPMessage, opts ...*bgp.MarshallingOption) []byte {
	t.Helper()
	local := "203.0.113.1"
	if strings.Contains(peer, ":") {
		local = "2001:db8:ffff::1"
	}
	payload, err := msg.Serialize(opts...)
	if err != nil {
		t.Fatal(err)
	}
	body := mrt.NewBGP4MPMessage(64500, collectorAS, 0, peer, local, slices.Contains(as4Subtypes, sub), nil)
	body.BGPMessagePayload = payload
	m, err := mrt.NewMRTMessage(uint32(at.Unix()), mrt.BGP4MP, sub, body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mrtRecords splits well-formed MRT data into its records.
func mrtRecords(data []byte) [][]byte {
	var rs [][]byte
	for len(data) >= mrt.MRT_COMMON_HEADER_LEN {
		n := mrt.MRT_COMMON_HEADER_LEN + int(binary.BigEndian.Uint32(data[8:]))
		rs = append(rs, data[:n])
		data = data[n:]
	}
	return rs
}

// extended turns a BGP4MP record into BGP4MP_ET with the microseconds
// field (gobgp writes no ET records).
func extended(b []byte, micros uint32) []byte {
	out := append([]byte(nil), b[:mrt.MRT_COMMON_HEADER_LEN]...)
	binary.BigEndian.PutUint16(out[4:6], uint16(mrt.BGP4MP_ET))
	binary.BigEndian.PutUint32(out[8:12], binary.BigEndian.Uint32(b[8:12])+4)
	out = binary.BigEndian.AppendUint32(out, micros)
	return append(out, b[mrt.MRT_COMMON_HEADER_LEN:]...)
}

func as4Path(as ...uint32) bgp.PathAttributeInterface {
	return bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, as)})
}

// updatesMRT is a small update file: anycast prefixes (v4, a more
// specific, v6 over MP_REACH/MP_UNREACH), unrelated prefixes, a withdraw,
// a BGP4MP_ET record, a 2-byte-AS record with AS4_PATH, and records that
// are not updates.
func updatesMRT(t testing.TB) []byte {
	t.Helper()
	origin := bgp.NewPathAttributeOrigin(0)
	nh := bgp.NewPathAttributeNextHop("203.0.113.9")
	var out []byte
	add := func(b []byte) { out = append(out, b...) }

	// 1: anycast /24 and an unrelated prefix in one update.
	add(record(t, t0, mrt.MESSAGE_AS4, peerIP, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{origin, as4Path(64500, 64501), nh},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "192.0.2.0"), bgp.NewIPAddrPrefix(24, "198.51.100.0")})))
	// 2: unrelated prefixes only, including a less specific one.
	add(record(t, t0.Add(time.Second), mrt.MESSAGE_AS4, peerIP, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{origin, as4Path(64500, 64999), nh},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "203.0.113.0"), bgp.NewIPAddrPrefix(16, "192.0.0.0")})))
	// 3: a more specific of the anycast /24.
	add(record(t, t0.Add(2*time.Second), mrt.MESSAGE_AS4, peerIP, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{origin, as4Path(64500, 4200000000), nh},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(25, "192.0.2.128")})))
	// 4: IPv6 over MP_REACH.
	add(record(t, t0.Add(3*time.Second), mrt.MESSAGE_AS4, peerIP6, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{origin, as4Path(64510, 64511),
			bgp.NewPathAttributeMpReachNLRI("2001:db8:ffff::9", []bgp.AddrPrefixInterface{
				bgp.NewIPv6AddrPrefix(48, "2001:db8:53::"), bgp.NewIPv6AddrPrefix(32, "2001:db9::")})},
		nil)))
	// 5: a state change, not an update.
	sc := mrt.NewBGP4MPStateChange(64500, collectorAS, 0, peerIP, "203.0.113.1", true, mrt.OPENCONFIRM, mrt.ESTABLISHED)
	m, err := mrt.NewMRTMessage(uint32(t0.Add(4*time.Second).Unix()), mrt.BGP4MP, mrt.STATE_CHANGE_AS4, sc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	add(b)
	// 6: withdraw of the /24, as an extended-timestamp record.
	add(extended(record(t, t0.Add(5*time.Second), mrt.MESSAGE_AS4, peerIP, bgp.NewBGPUpdateMessage(
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "192.0.2.0"), bgp.NewIPAddrPrefix(24, "198.51.100.0")}, nil, nil)), 250000))
	// 7: IPv6 withdraw over MP_UNREACH.
	add(record(t, t0.Add(6*time.Second), mrt.MESSAGE_AS4, peerIP6, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{bgp.NewPathAttributeMpUnreachNLRI([]bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(48, "2001:db8:53::")})},
		nil)))
	// 8: a 2-byte-AS session: AS_TRANS in AS_PATH, the real ASN in AS4_PATH.
	add(record(t, t0.Add(7*time.Second), mrt.MESSAGE, peerIP, bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{origin,
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAsPathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint16{64500, 64502, asTrans})}),
			nh,
			bgp.NewPathAttributeAs4Path([]*bgp.As4PathParam{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64502, 4200000001})})},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "192.0.2.0")})))
	// 9: a keepalive.
	add(record(t, t0.Add(8*time.Second), mrt.MESSAGE_AS4, peerIP, bgp.NewBGPKeepAliveMessage()))
	return out
}

func wantEvents() []api.Event {
	return []api.Event{
		{Time: t0, Prefix: "192.0.2.0/24", Kind: api.EventAnnounce, ASPath: []uint32{64500, 64501}, Peer: peerIP, Source: api.SourceMRT},
		{Time: t0.Add(2 * time.Second), Prefix: "192.0.2.0/24", Kind: api.EventAnnounce, ASPath: []uint32{64500, 4200000000}, Peer: peerIP, Source: api.SourceMRT},
		{Time: t0.Add(3 * time.Second), Prefix: "2001:db8:53::/48", Kind: api.EventAnnounce, ASPath: []uint32{64510, 64511}, Peer: peerIP6, Source: api.SourceMRT},
		{Time: t0.Add(5*time.Second + 250*time.Millisecond), Prefix: "192.0.2.0/24", Kind: api.EventWithdraw, Peer: peerIP, Source: api.SourceMRT},
		{Time: t0.Add(6 * time.Second), Prefix: "2001:db8:53::/48", Kind: api.EventWithdraw, Peer: peerIP6, Source: api.SourceMRT},
		{Time: t0.Add(7 * time.Second), Prefix: "192.0.2.0/24", Kind: api.EventAnnounce, ASPath: []uint32{64500, 64502, 4200000001}, Peer: peerIP, Source: api.SourceMRT},
	}
}

func anycast(t testing.TB) *Prefixes {
	t.Helper()
	ps, err := ParsePrefixes([]string{"192.0.2.0/24", "2001:db8:53::/48"})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func readAll(t *testing.T, data []byte) ([]api.Event, MRTStats) {
	t.Helper()
	var got []api.Event
	st, err := ReadMRT(context.Background(), bytes.NewReader(data), anycast(t), func(e api.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadMRT: %v", err)
	}
	return got, st
}

func checkEvents(t *testing.T, got []api.Event) {
	t.Helper()
	want := wantEvents()
	ids := map[string]bool{}
	for i := range got {
		if got[i].ID == "" || ids[got[i].ID] {
			t.Errorf("event %d: id %q empty or repeated", i, got[i].ID)
		}
		ids[got[i].ID] = true
		got[i].ID = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %+v\nwant %+v", got, want)
	}
}

func TestReadMRT(t *testing.T) {
	data := updatesMRT(t)
	got, st := readAll(t, data)
	checkEvents(t, got)
	if st.Records != 9 || st.Updates != 7 || st.Events != 6 || st.Skipped != 2 || st.Malformed != 0 {
		t.Errorf("stats %+v, want 9 records, 7 updates, 6 events, 2 skipped", st)
	}
	// Reading again yields the same ids: re-imports store nothing twice.
	again, _ := readAll(t, data)
	first, _ := readAll(t, data)
	for i := range again {
		if again[i].ID != first[i].ID {
			t.Fatalf("event %d: id changed between reads", i)
		}
	}
}

func TestReadMRTCompressed(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(updatesMRT(t)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, gz.Bytes())
	checkEvents(t, got)

	// Go has no bzip2 writer: the bzip2 file is kept in testdata, made
	// from the same records with the bzip2 command (go test -update).
	bz := filepath.Join("testdata", "updates.mrt.bz2")
	if *updateFiles {
		cmd := exec.Command("bzip2", "-c", "-9")
		cmd.Stdin = bytes.NewReader(updatesMRT(t))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		if err := os.WriteFile(bz, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bz)
	if err != nil {
		t.Fatalf("%v (run go test -update to make it)", err)
	}
	got, _ = readAll(t, data)
	checkEvents(t, got)
}

func TestReadMRTBroken(t *testing.T) {
	data := updatesMRT(t)
	ps := anycast(t)
	nop := func(api.Event) error { return nil }
	cases := map[string]struct {
		data []byte
		want string
	}{
		"truncated body":   {data[:len(data)-3], "MRT record 9 at byte"},
		"truncated header": {append(append([]byte(nil), data...), 0, 1, 2), "truncated header"},
		"huge length":      {[]byte{0, 0, 0, 0, 0, 16, 0, 4, 0x7f, 0xff, 0xff, 0xff}, "is over 1048576 bytes"},
		"bad gzip":         {[]byte{0x1f, 0x8b, 0, 0}, "gzip"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadMRT(context.Background(), bytes.NewReader(c.data), ps, nop)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	// A record gobgp cannot parse is skipped, and the rest still read.
	bad := record(t, t0, mrt.MESSAGE_AS4, peerIP, bgp.NewBGPKeepAliveMessage())
	bad[len(bad)-3] = 99 // BGP message type 99
	got, st := readAll(t, append(bad, data...))
	checkEvents(t, got)
	if st.Malformed != 1 || st.FirstMalformed == "" {
		t.Errorf("stats %+v, want 1 malformed record described", st)
	}
	// fn's error stops the read.
	stop := errors.New("stop")
	if _, err := ReadMRT(context.Background(), bytes.NewReader(data), ps, func(api.Event) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("error %v, want fn's", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadMRT(ctx, bytes.NewReader(data), ps, nop); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v after cancel, want context.Canceled", err)
	}
}

func TestPrefixes(t *testing.T) {
	if _, err := ParsePrefixes([]string{"192.0.2.1/24"}); err == nil || !strings.Contains(err.Error(), "use 192.0.2.0/24") {
		t.Errorf("host bits: %v", err)
	}
	if _, err := ParsePrefixes([]string{"k.root"}); err == nil {
		t.Error("not a prefix: no error")
	}
	ps, err := ParsePrefixes([]string{"192.0.2.0/24", "192.0.0.0/16", "::/0"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][]string{
		"192.0.2.0/24":   {"192.0.2.0/24", "192.0.0.0/16"},
		"192.0.2.0/23":   {"192.0.0.0/16"},
		"192.0.3.0/24":   {"192.0.0.0/16"},
		"10.0.0.0/8":     nil,
		"2001:db8::/32":  {"::/0"},
		"::ffff:0:0/96":  {"::/0"},
		"192.0.2.255/32": {"192.0.2.0/24", "192.0.0.0/16"},
	} {
		if got := ps.Match(mustPrefix(t, p)); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, want %v", p, got, want)
		}
	}
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
