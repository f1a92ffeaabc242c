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
	Malformed int // BGP4MP records gobgp could not parse; skipped
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
		if err := st.record(ps, h, body, fn); err != nil {
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

// record handles one MRT record.
func (st *MRTStats) record(ps *Prefixes, h mrt.MRTHeader, body []byte, fn func(api.Event) error) error {
	t := h.GetTime()
	switch h.Type {
	case mrt.BGP4MP:
	case mrt.BGP4MP_ET:
		// gobgp parses BGP4MP only: the extended-timestamp variant is the
		// same body after a microseconds field (RFC 6396 section 3).
		if len(body) < 4 {
			st.malformed(h, errors.New("BGP4MP_ET record shorter than its microseconds field"))
			return nil
		}
		t = t.Add(time.Duration(binary.BigEndian.Uint32(body[:4])) * time.Microsecond)
		body = body[4:]
		h.Type, h.Len = mrt.BGP4MP, h.Len-4
	default:
		st.Skipped++
		return nil
	}
	// Messages the recorder itself sent (LOCAL) say nothing about the
	// routes it learned; ADDPATH bodies need per-family options that the
	// record does not carry, and collectors rarely write them.
	switch mrt.MRTSubTypeBGP4MP(h.SubType) {
	case mrt.MESSAGE, mrt.MESSAGE_AS4:
	default:
		st.Skipped++
		return nil
	}
	msg, err := mrt.ParseMRTBody(&h, body)
	if err != nil {
		st.malformed(h, err)
		return nil
	}
	m, ok := msg.Body.(*mrt.BGP4MPMessage)
	if !ok || m.BGPMessage == nil {
		st.Skipped++
		return nil
	}
	u, ok := m.BGPMessage.Body.(*bgp.BGPUpdate)
	if !ok {
		st.Skipped++
		return nil
	}
	st.Updates++
	path := asPath(u.PathAttributes)
	peer := ""
	if a, ok := netip.AddrFromSlice(m.PeerIpAddress); ok {
		peer = a.Unmap().String()
	}
	return routes(u, func(p netip.Prefix, withdraw bool) error {
		up := update{time: t, peer: peer, prefix: p, kind: api.EventAnnounce, path: path, source: api.SourceMRT}
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
