package bgp

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/catchmap/catchmap/api"
)

// sendPathIDs makes gobgp write path identifiers in the given families.
func sendPathIDs(fs ...bgp.RouteFamily) *bgp.MarshallingOption {
	m := map[bgp.RouteFamily]bgp.BGPAddPathMode{}
	for _, f := range fs {
		m[f] = bgp.BGP_ADD_PATH_SEND
	}
	return &bgp.MarshallingOption{AddPath: m}
}

// openWith is an OPEN for IPv4 and IPv6 unicast with the given ADD-PATH
// tuples (none: no ADD-PATH capability).
func openWith(tuples ...*bgp.CapAddPathTuple) *bgp.BGPMessage {
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC), bgp.NewCapFourOctetASNumber(64500),
	}
	if len(tuples) > 0 {
		caps = append(caps, bgp.NewCapAddPath(tuples))
	}
	return bgp.NewBGPOpenMessage(64500, 90, "203.0.113.9", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
}

func addPath(f bgp.RouteFamily, m bgp.BGPAddPathMode) *bgp.CapAddPathTuple {
	return bgp.NewCapAddPathTuple(f, m)
}

// announce4 announces 192.0.2.0/24 as path pathID (written only with
// sendPathIDs), with AS path as.
func announce4(pathID uint32, as ...uint32) *bgp.BGPMessage {
	n := bgp.NewIPAddrPrefix(24, "192.0.2.0")
	n.SetPathLocalIdentifier(pathID)
	return bgp.NewBGPUpdateMessage(nil,
		[]bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), as4Path(as...), bgp.NewPathAttributeNextHop(peerIP)},
		[]*bgp.IPAddrPrefix{n})
}

// withdraw4 withdraws paths of 192.0.2.0/24.
func withdraw4(pathIDs ...uint32) *bgp.BGPMessage {
	var ns []*bgp.IPAddrPrefix
	for _, id := range pathIDs {
		n := bgp.NewIPAddrPrefix(24, "192.0.2.0")
		n.SetPathLocalIdentifier(id)
		ns = append(ns, n)
	}
	return bgp.NewBGPUpdateMessage(ns, nil, nil)
}

// announce6 announces 2001:db8:53::/48 over MP_REACH.
func announce6(pathID uint32, as ...uint32) *bgp.BGPMessage {
	n := bgp.NewIPv6AddrPrefix(48, "2001:db8:53::")
	n.SetPathLocalIdentifier(pathID)
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), as4Path(as...),
		bgp.NewPathAttributeMpReachNLRI("2001:db8:ffff::9", []bgp.AddrPrefixInterface{n})}, nil)
}

// addPathMRT is a file of one session that negotiated ADD-PATH for IPv4
// and IPv6 (the FuzzMRT seed): both OPENs, marked updates in both
// families, a withdraw of two paths, an unmarked update with path
// identifiers, one the recorder sent, and a BGP4MP_ET one.
func addPathMRT(t testing.TB) []byte {
	t.Helper()
	v4, v6 := bgp.RF_IPv4_UC, bgp.RF_IPv6_UC
	ids := sendPathIDs(v4, v6)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	return slices.Concat(
		record(t, at(0), mrt.MESSAGE, peerIP, openWith(addPath(v4, bgp.BGP_ADD_PATH_BOTH), addPath(v6, bgp.BGP_ADD_PATH_SEND))),
		record(t, at(0), mrt.MESSAGE_LOCAL, peerIP, openWith(addPath(v4, bgp.BGP_ADD_PATH_RECEIVE), addPath(v6, bgp.BGP_ADD_PATH_RECEIVE))),
		record(t, at(1), mrt.MESSAGE_AS4_ADDPATH, peerIP, announce4(1, 64500, 64501), ids),
		record(t, at(2), mrt.MESSAGE_AS4, peerIP, announce4(2, 64500, 64502), ids),
		record(t, at(3), mrt.MESSAGE_AS4_ADDPATH, peerIP, announce6(1, 64510), ids),
		record(t, at(4), mrt.MESSAGE_AS4_LOCAL_ADDPATH, peerIP, announce4(1, 65000), ids),
		extended(record(t, at(5), mrt.MESSAGE_AS4_ADDPATH, peerIP, withdraw4(1, 2), ids), 500000),
	)
}

// summary is the kind, prefix and AS path of each event.
func summary(es []api.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimSpace(fmt.Sprint(e.Kind, " ", e.Prefix, " ", strings.Trim(fmt.Sprint(e.ASPath), "[]"))))
	}
	return out
}

// TestReadMRTAddPath checks how the OPENs in a file and the RFC 8050
// subtypes decide whether an UPDATE's NLRI carry path identifiers, for the
// ways real writers record them.
func TestReadMRTAddPath(t *testing.T) {
	v4, v6 := bgp.RF_IPv4_UC, bgp.RF_IPv6_UC
	send, recv, both := bgp.BGP_ADD_PATH_SEND, bgp.BGP_ADD_PATH_RECEIVE, bgp.BGP_ADD_PATH_BOTH
	const (
		plain   = mrt.MESSAGE_AS4
		marked  = mrt.MESSAGE_AS4_ADDPATH
		open    = mrt.MESSAGE // BIRD writes OPENs before it knows the session is AS4
		ownOpen = mrt.MESSAGE_LOCAL
	)
	rec := func(sub mrt.MRTSubTypeBGP4MP, msg *bgp.BGPMessage, opts ...*bgp.MarshallingOption) []byte {
		return record(t, t0, sub, peerIP, msg, opts...)
	}
	ids := sendPathIDs(v4)
	announced := []string{"announce 192.0.2.0/24 64500 64501"}
	for name, c := range map[string]struct {
		data []byte
		want []string
	}{
		// RFC 8050 as written: the subtype alone tells.
		"marked, no OPENs":  {slices.Concat(rec(marked, announce4(1, 64500, 64501), ids)), announced},
		"marked, 2-byte AS": {slices.Concat(rec(mrt.MESSAGE_ADDPATH, announce4(1, 64500, 64501), ids)), announced},
		"marked withdraw of two paths": {slices.Concat(rec(marked, withdraw4(1, 2), ids)),
			[]string{"withdraw 192.0.2.0/24", "withdraw 192.0.2.0/24"}},
		// A writer that marks nothing: both OPENs agreed.
		"plain, both OPENs agree": {slices.Concat(
			rec(open, openWith(addPath(v4, send))), rec(ownOpen, openWith(addPath(v4, recv))),
			rec(plain, announce4(1, 64500, 64501), ids)), announced},
		// A recorder that dumps only what it receives holds the peer's
		// OPEN alone: the plain subtype fails, and path identifiers fit.
		"plain, peer's OPEN offers send": {slices.Concat(
			rec(open, openWith(addPath(v4, both))),
			rec(plain, announce4(1, 64500, 64501), ids)), announced},
		// ... or the recorder did not take the offer: the plain subtype holds.
		"plain, peer's offer not taken": {slices.Concat(
			rec(open, openWith(addPath(v4, both))),
			rec(plain, announce4(1, 64500, 64501))), announced},
		// A writer that marks every record of a peer configured for
		// ADD-PATH, whatever was negotiated.
		"marked, peer offers none": {slices.Concat(
			rec(open, openWith()),
			rec(marked, announce4(1, 64500, 64501))), announced},
		"marked, recorder only sends": {slices.Concat(
			rec(open, openWith(addPath(v4, both))), rec(ownOpen, openWith(addPath(v4, send))),
			rec(marked, announce4(1, 64500, 64501))), announced},
		// ADD-PATH is per family: IPv4 with path identifiers, IPv6 without,
		// in records all marked.
		"per family": {slices.Concat(
			rec(open, openWith(addPath(v4, both), addPath(v6, recv))), rec(ownOpen, openWith(addPath(v4, both), addPath(v6, both))),
			rec(marked, announce4(1, 64500, 64501), ids),
			rec(marked, announce6(1, 64510), ids)),
			[]string{"announce 192.0.2.0/24 64500 64501", "announce 2001:db8:53::/48 64510"}},
		"IPv6 paths": {slices.Concat(rec(marked, announce6(9, 64510), sendPathIDs(v6))), []string{"announce 2001:db8:53::/48 64510"}},
		// A new session's OPEN replaces the old one's.
		"session reset": {slices.Concat(
			rec(open, openWith(addPath(v4, send))), rec(ownOpen, openWith(addPath(v4, recv))),
			rec(plain, announce4(1, 64500, 64501), ids),
			rec(open, openWith()),
			rec(plain, announce4(1, 64500, 64502))),
			[]string{"announce 192.0.2.0/24 64500 64501", "announce 192.0.2.0/24 64500 64502"}},
		// Another session's OPEN says nothing about this one.
		"other session": {slices.Concat(
			record(t, t0, open, "203.0.113.77", openWith()),
			rec(marked, announce4(1, 64500, 64501), ids)), announced},
		"the fuzz seed": {addPathMRT(t), []string{
			"announce 192.0.2.0/24 64500 64501", "announce 192.0.2.0/24 64500 64502", "announce 2001:db8:53::/48 64510",
			"withdraw 192.0.2.0/24", "withdraw 192.0.2.0/24"}},
		// What the recorder sent is no event, with path identifiers or not.
		"local paths": {slices.Concat(
			rec(mrt.MESSAGE_AS4_LOCAL_ADDPATH, announce4(1, 64500, 64501), ids),
			rec(mrt.MESSAGE_LOCAL_ADDPATH, announce4(1, 64500, 64501), ids)), nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, st := readAll(t, c.data)
			if st.Malformed != 0 {
				t.Fatalf("%d malformed, first: %s", st.Malformed, st.FirstMalformed)
			}
			if s := summary(got); !reflect.DeepEqual(s, c.want) {
				t.Errorf("events %q, want %q", s, c.want)
			}
			for _, e := range got {
				if e.Peer != peerIP && e.Peer != peerIP6 {
					t.Errorf("event peer %q, want %s", e.Peer, peerIP)
				}
			}
		})
	}
}

// bgp4mp wraps a BGP message in an MRT BGP4MP record of subtype sub with a
// 4-byte-AS IPv4 header.
func bgp4mp(sub mrt.MRTSubTypeBGP4MP, msg []byte) []byte {
	hdr := []byte{
		0x69, 0x28, 0x0e, 0x60, // timestamp
		0x00, 0x10, // type BGP4MP
		0x00, byte(sub), // subtype
		0x00, 0x00, 0x00, 0x00, // length, set below
		0x00, 0x00, 0xfb, 0xf4, // peer AS 64500
		0x00, 0x00, 0xfd, 0xe8, // local AS 65000
		0x00, 0x00, // interface index
		0x00, 0x01, // address family IPv4
		0xcb, 0x00, 0x71, 0x09, // peer 203.0.113.9
		0xcb, 0x00, 0x71, 0x01, // local 203.0.113.1
	}
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(hdr)-mrt.MRT_COMMON_HEADER_LEN+len(msg)))
	return append(hdr, msg...)
}

// bgpMessage prepends the BGP header (marker, length, type) to body.
func bgpMessage(typ uint8, body ...byte) []byte {
	msg := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
		0x00, 0x00, // length, set below
		typ,
	}
	binary.BigEndian.PutUint16(msg[16:], uint16(len(msg)+len(body)))
	return append(msg, body...)
}

// openMessage is an OPEN from AS 64500 with one capabilities parameter
// holding caps.
func openMessage(caps ...byte) []byte {
	return bgpMessage(bgp.BGP_MSG_OPEN, append([]byte{
		0x04,       // version
		0xfb, 0xf4, // my AS 64500
		0x00, 0x5a, // hold time 90
		0xcb, 0x00, 0x71, 0x09, // BGP identifier
		byte(2 + len(caps)),   // optional parameters length
		0x02, byte(len(caps)), // capabilities
	}, caps...)...)
}

// TestReadMRTAddPathMalformed feeds records that are broken where path
// identifiers and their session's OPEN meet: each is counted as malformed,
// and the valid update after it is still read.
func TestReadMRTAddPathMalformed(t *testing.T) {
	marked := mrt.MESSAGE_AS4_ADDPATH
	cases := map[string]struct {
		data []byte
		want string // in FirstMalformed
	}{
		"path identifier cut short": {bgp4mp(marked, bgpMessage(bgp.BGP_MSG_UPDATE,
			0x00, 0x00, // withdrawn routes length
			0x00, 0x00, // total path attribute length
			0x00, 0x00, 0x00, // NLRI: three bytes of a path identifier
		)), "path identifier"},
		"prefix too long after the identifier": {bgp4mp(marked, bgpMessage(bgp.BGP_MSG_UPDATE,
			0x00, 0x00, // withdrawn routes length
			0x00, 0x00, // total path attribute length
			0x00, 0x00, 0x00, 0x01, // path identifier 1
			0x21,                   // prefix length 33
			0xc0, 0x00, 0x02, 0x00, // 192.0.2.0
			0x00,
		)), "bit length is too long"},
		"prefix cut short after the identifier": {bgp4mp(marked, bgpMessage(bgp.BGP_MSG_UPDATE,
			0x00, 0x00, // withdrawn routes length
			0x00, 0x00, // total path attribute length
			0x00, 0x00, 0x00, 0x01, // path identifier 1
			0x18,       // prefix length 24
			0xc0, 0x00, // two of its three bytes
		)), "network bytes is short"},
		// Path identifiers read as prefixes: 0.0.0.0/0 three times, then
		// 0.0.0.0/1 (the 0x18), then a length of 192 with 2 bytes left.
		// With no OPEN to say otherwise, the plain subtype is taken at its
		// word.
		"identifiers in a plain record": {bgp4mp(mrt.MESSAGE_AS4, bgpMessage(bgp.BGP_MSG_UPDATE,
			0x00, 0x00, // withdrawn routes length
			0x00, 0x00, // total path attribute length
			0x00, 0x00, 0x00, 0x01, // path identifier 1
			0x18, 0xc0, 0x00, 0x02, // 192.0.2.0/24
		)), "network bytes is short"},
		"withdrawn length cuts an identifier": {bgp4mp(marked, bgpMessage(bgp.BGP_MSG_UPDATE,
			0x00, 0x06, // withdrawn routes length: one byte short
			0x00, 0x00, 0x00, 0x01, // path identifier 1
			0x18, 0xc0, 0x00, 0x02, // 192.0.2.0/24
			0x00, 0x00, // total path attribute length
		)), "path identifier"},
		"ADD-PATH capability of 5 bytes": {bgp4mp(mrt.MESSAGE_AS4, openMessage(
			0x45, 0x05, // ADD-PATH, 5 bytes
			0x00, 0x01, 0x01, 0x03, // IPv4 unicast, send/receive
			0x00, // a fifth byte
		)), "OPEN capabilities"},
		"BGP4MP family 3": {[]byte{
			0x69, 0x28, 0x0e, 0x60, // timestamp
			0x00, 0x10, // type BGP4MP
			0x00, 0x09, // subtype MESSAGE_AS4_ADDPATH
			0x00, 0x00, 0x00, 0x0c, // length 12
			0x00, 0x00, 0xfb, 0xf4, // peer AS
			0x00, 0x00, 0xfd, 0xe8, // local AS
			0x00, 0x00, // interface index
			0x00, 0x03, // address family 3
		}, "neither IPv4 (1) nor IPv6 (2)"},
		"BGP4MP addresses cut short": {[]byte{
			0x69, 0x28, 0x0e, 0x60, // timestamp
			0x00, 0x10, // type BGP4MP
			0x00, 0x08, // subtype MESSAGE_ADDPATH: 2-byte AS numbers
			0x00, 0x00, 0x00, 0x0c, // length 12
			0xfb, 0xf4, // peer AS
			0xfd, 0xe8, // local AS
			0x00, 0x00, // interface index
			0x00, 0x01, // address family IPv4
			0xcb, 0x00, 0x71, 0x09, // peer, and no local address
		}, "ends inside its peer and local addresses"},
		"BGP4MP_ET without microseconds": {[]byte{
			0x69, 0x28, 0x0e, 0x60, // timestamp
			0x00, 0x11, // type BGP4MP_ET
			0x00, 0x09, // subtype MESSAGE_AS4_ADDPATH
			0x00, 0x00, 0x00, 0x02, // length 2
			0x00, 0x00,
		}, "microseconds"},
	}
	valid := record(t, t0, mrt.MESSAGE_AS4_ADDPATH, peerIP, announce4(1, 64500, 64501), sendPathIDs(bgp.RF_IPv4_UC))
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, st := readAll(t, append(append([]byte(nil), c.data...), valid...))
			if st.Malformed != 1 || !strings.Contains(st.FirstMalformed, c.want) {
				t.Errorf("%d malformed, first %q; want 1, about %q", st.Malformed, st.FirstMalformed, c.want)
			}
			if s := summary(got); !reflect.DeepEqual(s, []string{"announce 192.0.2.0/24 64500 64501"}) {
				t.Errorf("events %q, want the valid update's", s)
			}
		})
	}
}

// TestReadMRTAddPathCapability checks that an ADD-PATH capability with a
// Send/Receive value outside 1..3 is ignored, as RFC 7911 says: the peer
// then offered no path identifiers, whatever the subtype says.
func TestReadMRTAddPathCapability(t *testing.T) {
	open := bgp4mp(mrt.MESSAGE_AS4, openMessage(
		0x45, 0x04, // ADD-PATH, 4 bytes
		0x00, 0x01, 0x01, 0x07, // IPv4 unicast, Send/Receive 7
	))
	update := record(t, t0, mrt.MESSAGE_AS4_ADDPATH, peerIP, announce4(1, 64500, 64501))
	got, st := readAll(t, append(open, update...))
	if st.Malformed != 0 {
		t.Fatalf("malformed: %s", st.FirstMalformed)
	}
	if s := summary(got); !reflect.DeepEqual(s, []string{"announce 192.0.2.0/24 64500 64501"}) {
		t.Errorf("events %q", s)
	}
}

// TestReadMRTAddPathSessions checks the bound on remembered sessions: the
// OPEN of a session beyond it is not kept, so its marked update is read by
// the subtype, where the OPEN would have ruled path identifiers out.
func TestReadMRTAddPathSessions(t *testing.T) {
	open := record(t, t0, mrt.MESSAGE, "10.0.0.0", openWith())
	const peerAt = mrt.MRT_COMMON_HEADER_LEN + 8 // 2-byte ASes, interface index, family
	var data []byte
	for i := range maxSessions + 1 {
		binary.BigEndian.PutUint32(open[peerAt:], 10<<24|uint32(i))
		data = append(data, open...)
	}
	last := fmt.Sprintf("10.%d.%d.%d", maxSessions>>16, maxSessions>>8&0xff, maxSessions&0xff)
	data = append(data, record(t, t0.Add(time.Second), mrt.MESSAGE_AS4_ADDPATH, last, announce4(1, 64500, 64501), sendPathIDs(bgp.RF_IPv4_UC))...)
	got, st := readAll(t, data)
	if st.Malformed != 0 || len(got) != 1 || got[0].Peer != last {
		t.Errorf("events %+v, stats %+v: want one announcement from %s", got, st, last)
	}
}
