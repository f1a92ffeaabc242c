package bgp

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/catchmap/catchmap/api"
)

// maxRecord bounds one MRT record. A BGP message is at most 64 KiB (RFC
// 8654); anything much larger is a corrupt length, and reading it would
// only waste memory before failing.
const maxRecord = 1 << 20

// MRTStats counts what ReadMRT saw.
type MRTStats struct {
	Records   int // MRT records read
	Updates   int // BGP UPDATE messages among them
	Events    int // events passed to fn
	Skipped   int // records of other types (RIB dumps, state changes, OPEN...)
	Malformed int // BGP4MP records that could not be parsed; skipped
	// FirstMalformed describes the first malformed record, for the log.
	FirstMalformed string
}

// ReadMRT streams the MRT records of r (plain, gzip or bzip2, told apart by
// their magic bytes) and calls fn with an event for every route announced
// or withdrawn in a BGP4MP or BGP4MP_ET UPDATE that matches ps. Records are
// read one at a time, so a file of any size needs little memory. A record
// gobgp cannot parse is counted and skipped; a truncated or oversized
// record ends the read with an error, since the records after it cannot be
// found. An error from fn stops the read and is returned.
//
// Whether an UPDATE's NLRI carry ADD-PATH path identifiers (RFC 7911) is
// what the OPENs of its session negotiated, where the file holds both;
// where it holds fewer, the RFC 8050 subtype of the record decides (see
// addPaths). Each path is an event of its own: a withdraw then means that
// the peer withdrew one of its paths, not necessarily its last.
func ReadMRT(ctx context.Context, r io.Reader, ps *Prefixes, fn func(api.Event) error) (MRTStats, error) {
	var st MRTStats
	br, err := decompress(r)
	if err != nil {
		return st, err
	}
	var (
		hdr    [mrt.MRT_COMMON_HEADER_LEN]byte
		buf    []byte
		offset int64
		ap     addPaths
	)
	for {
		if st.Records%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return st, nil
			}
			return st, fmt.Errorf("MRT record %d at byte %d: truncated header: %w (is it an MRT file?)", st.Records+1, offset, err)
		}
		var h mrt.MRTHeader
		if err := h.DecodeFromBytes(hdr[:]); err != nil {
			return st, fmt.Errorf("MRT record %d at byte %d: %w", st.Records+1, offset, err)
		}
		if h.Len > maxRecord {
			return st, fmt.Errorf("MRT record %d at byte %d: length %d is over %d bytes: the file is corrupt or not MRT", st.Records+1, offset, h.Len, maxRecord)
		}
		if cap(buf) < int(h.Len) {
			buf = make([]byte, h.Len)
		}
		body := buf[:h.Len]
		if _, err := io.ReadFull(br, body); err != nil {
			return st, fmt.Errorf("MRT record %d at byte %d: truncated body (%d bytes announced): %w", st.Records+1, offset, h.Len, err)
		}
		st.Records++
		offset += int64(len(hdr)) + int64(h.Len)
		if err := st.record(&ap, ps, h, body, fn); err != nil {
			return st, err
		}
	}
}

// decompress peeks at the first bytes to pick the decoder.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(3)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading MRT data: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip MRT data: %w", err)
		}
		return bufio.NewReaderSize(zr, 64<<10), nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bufio.NewReaderSize(bzip2.NewReader(br), 64<<10), nil
	}
	return br, nil
}

// bgp4mpMessage is the subtype of a BGP4MP message record (RFC 6396
// section 4.4, RFC 8050 section 4): whether the AS numbers take 4 bytes,
// whether the recorder sent the message rather than received it, and
// whether its NLRI are marked as carrying path identifiers.
type bgp4mpMessage struct{ as4, local, addPath bool }

var bgp4mpMessages = map[mrt.MRTSubTypeBGP4MP]bgp4mpMessage{
	mrt.MESSAGE:                   {},
	mrt.MESSAGE_AS4:               {as4: true},
	mrt.MESSAGE_LOCAL:             {local: true},
	mrt.MESSAGE_AS4_LOCAL:         {as4: true, local: true},
	mrt.MESSAGE_ADDPATH:           {addPath: true},
	mrt.MESSAGE_AS4_ADDPATH:       {as4: true, addPath: true},
	mrt.MESSAGE_LOCAL_ADDPATH:     {local: true, addPath: true},
	mrt.MESSAGE_AS4_LOCAL_ADDPATH: {as4: true, local: true, addPath: true},
}

// record handles one MRT record.
func (st *MRTStats) record(ap *addPaths, ps *Prefixes, h mrt.MRTHeader, body []byte, fn func(api.Event) error) error {
	t := h.GetTime()
	switch h.Type {
	case mrt.BGP4MP:
	case mrt.BGP4MP_ET:
		// The extended-timestamp variant is the same body after a
		// microseconds field (RFC 6396 section 3).
		if len(body) < 4 {
			st.malformed(h, errors.New("BGP4MP_ET record shorter than its microseconds field"))
			return nil
		}
		t = t.Add(time.Duration(binary.BigEndian.Uint32(body[:4])) * time.Microsecond)
		body = body[4:]
	default:
		st.Skipped++
		return nil
	}
	sub, ok := bgp4mpMessages[mrt.MRTSubTypeBGP4MP(h.SubType)]
	if !ok {
		st.Skipped++
		return nil
	}
	k, msg, err := bgp4mpHeader(body, sub.as4)
	if err != nil {
		st.malformed(h, err)
		return nil
	}
	// Messages the recorder itself sent (LOCAL) say nothing about the
	// routes it learned, but its OPEN tells what it agreed to receive.
	if sub.local {
		// The type is the last byte of the BGP header.
		if len(msg) < bgp.BGP_HEADER_LENGTH || msg[bgp.BGP_HEADER_LENGTH-1] != bgp.BGP_MSG_OPEN {
			st.Skipped++
			return nil
		}
	}
	// gobgp's mrt.ParseMRTBody decodes the BGP message without ADD-PATH
	// options, whatever the subtype, so the message is decoded here.
	first, retry := ap.options(k, sub.addPath)
	m, err := bgp.ParseBGPMessage(msg, first)
	if err != nil && retry != nil {
		if alt, rerr := bgp.ParseBGPMessage(msg, retry); rerr == nil {
			m, err = alt, nil
		}
	}
	if err != nil {
		st.malformed(h, err)
		return nil
	}
	switch b := m.Body.(type) {
	case *bgp.BGPOpen:
		if err := ap.open(k, sub.local, b); err != nil {
			st.malformed(h, err)
			return nil
		}
		st.Skipped++
		return nil
	case *bgp.BGPUpdate:
		return st.update(ps, t, k.peer, b, fn)
	}
	st.Skipped++
	return nil
}

// bgp4mpHeader reads the header of a BGP4MP message record (RFC 6396
// section 4.4.2) and returns the session it names and the BGP message
// after it.
func bgp4mpHeader(body []byte, as4 bool) (sessionKey, []byte, error) {
	n := 2 + 2 + 2 // peer AS, local AS, interface index
	if as4 {
		n += 4
	}
	if len(body) < n+2 {
		return sessionKey{}, nil, fmt.Errorf("BGP4MP header of %d bytes ends before its address family", len(body))
	}
	var size int
	switch afi := binary.BigEndian.Uint16(body[n:]); afi {
	case bgp.AFI_IP:
		size = 4
	case bgp.AFI_IP6:
		size = 16
	default:
		return sessionKey{}, nil, fmt.Errorf("BGP4MP address family %d is neither IPv4 (1) nor IPv6 (2)", afi)
	}
	n += 2
	if len(body) < n+2*size {
		return sessionKey{}, nil, fmt.Errorf("BGP4MP header of %d bytes ends inside its peer and local addresses", len(body))
	}
	peer, _ := netip.AddrFromSlice(body[n : n+size])
	local, _ := netip.AddrFromSlice(body[n+size : n+2*size])
	return sessionKey{peer: peer.Unmap(), local: local.Unmap()}, body[n+2*size:], nil
}

// update passes the events of one UPDATE the peer sent.
func (st *MRTStats) update(ps *Prefixes, t time.Time, peer netip.Addr, u *bgp.BGPUpdate, fn func(api.Event) error) error {
	st.Updates++
	path := asPath(u.PathAttributes)
	return routes(u, func(p netip.Prefix, withdraw bool) error {
		up := update{time: t, peer: peer.String(), prefix: p, kind: api.EventAnnounce, path: path, source: api.SourceMRT}
		if withdraw {
			up.kind, up.path = api.EventWithdraw, nil
		}
		n, err := ps.events(up, fn)
		st.Events += n
		return err
	})
}

func (st *MRTStats) malformed(h mrt.MRTHeader, err error) {
	st.Malformed++
	if st.FirstMalformed == "" {
		st.FirstMalformed = fmt.Sprintf("record %d (type %d subtype %d at %s): %v",
			st.Records, h.Type, h.SubType, h.GetTime().UTC().Format(time.RFC3339), err)
	}
}
