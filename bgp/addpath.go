package bgp

import (
	"fmt"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// ADD-PATH (RFC 7911) puts a 4-byte path identifier before every NLRI of an
// address family when the sender advertised Send for that family in its
// OPEN and the receiver advertised Receive. Nothing in an UPDATE tells the
// two encodings apart, so an MRT reader has to learn it elsewhere. RFC
// 8050's ADDPATH subtypes mark the records, but only per record, and
// writers get them wrong both ways: plain subtypes around path
// identifiers, or ADDPATH subtypes around none (from a per-peer setting
// rather than what the session negotiated). The OPEN messages of the
// session, when the file holds them, are what the two speakers agreed.

// maxSessions bounds the sessions whose OPENs are remembered, so that a
// hostile file of distinct OPENs cannot exhaust memory. The UPDATEs of
// sessions beyond it are read by their subtype alone.
const maxSessions = 1 << 16

// sessionKey names a BGP session in BGP4MP records. The AS numbers are left
// out: a recorder may write the OPEN with 2-byte AS fields (AS_TRANS) and
// the UPDATEs with 4-byte ones.
type sessionKey struct{ peer, local netip.Addr }

// addPaths follows, per session, the ADD-PATH capabilities that the OPENs
// of a file advertise.
type addPaths struct {
	sessions map[sessionKey]*session
	unknown  session // for the sessions whose OPENs the file does not hold
}

// session holds the ADD-PATH modes each side of a session advertised: nil
// until that side's OPEN is seen. A later OPEN (a new session) replaces
// the earlier one of the same side.
type session struct {
	remote, local map[bgp.RouteFamily]bgp.BGPAddPathMode
	decode        [2]decodeOptions // for plain and for ADDPATH subtypes
}

// decodeOptions are the gobgp options for the UPDATEs a session's peer
// sent: first to try, and retry, when the OPENs leave families in doubt,
// for when the first fails.
type decodeOptions struct {
	done         bool
	first, retry *bgp.MarshallingOption
}

// routeFamilies are the families gobgp decodes: an ADDPATH subtype without
// OPENs to narrow it down says path identifiers in all of them.
var routeFamilies = func() []bgp.RouteFamily {
	fs := make([]bgp.RouteFamily, 0, len(bgp.AddressFamilyValueMap))
	for _, f := range bgp.AddressFamilyValueMap {
		fs = append(fs, f)
	}
	return fs
}()

// open records the ADD-PATH capabilities of an OPEN: the recorder's own
// when local, else the peer's. An OPEN whose capabilities cannot all be
// read is an error and changes nothing.
func (a *addPaths) open(k sessionKey, local bool, o *bgp.BGPOpen) error {
	modes, err := addPathModes(o)
	if err != nil {
		return err
	}
	s := a.sessions[k]
	if s == nil {
		if len(a.sessions) >= maxSessions {
			return nil
		}
		if a.sessions == nil {
			a.sessions = map[sessionKey]*session{}
		}
		s = &session{}
		a.sessions[k] = s
	}
	if local {
		s.local = modes
	} else {
		s.remote = modes
	}
	s.decode = [2]decodeOptions{}
	return nil
}

// options returns the gobgp options for an UPDATE that the peer of session
// k sent, in a record whose subtype is ADDPATH when marked. retry is nil
// unless the OPENs leave some family in doubt.
func (a *addPaths) options(k sessionKey, marked bool) (first, retry *bgp.MarshallingOption) {
	s := a.sessions[k]
	if s == nil {
		s = &a.unknown
	}
	i := 0
	if marked {
		i = 1
	}
	d := &s.decode[i]
	if !d.done {
		firstModes, retryModes := map[bgp.RouteFamily]bgp.BGPAddPathMode{}, map[bgp.RouteFamily]bgp.BGPAddPathMode{}
		anyDoubt := false
		for _, f := range routeFamilies {
			ids, doubt := s.pathIDs(f, marked)
			if ids {
				firstModes[f] = bgp.BGP_ADD_PATH_RECEIVE
			}
			// The retry reads the doubtful families the other way.
			if ids != doubt {
				retryModes[f] = bgp.BGP_ADD_PATH_RECEIVE
			}
			anyDoubt = anyDoubt || doubt
		}
		d.first = &bgp.MarshallingOption{AddPath: firstModes}
		if anyDoubt {
			d.retry = &bgp.MarshallingOption{AddPath: retryModes}
		}
		d.done = true
	}
	return d.first, d.retry
}

// pathIDs says whether the peer's UPDATEs of family f carry path
// identifiers, and whether that is in doubt. A side that did not offer its
// half rules them out. Both OPENs known, they decide. With only one, which
// offered its half, it depends on the other: the subtype is taken, in doubt
// (a recorder that dumps only what it receives holds only the peer's OPEN).
// With neither, the subtype is all there is.
func (s *session) pathIDs(f bgp.RouteFamily, marked bool) (ids, doubt bool) {
	send := s.remote[f]&bgp.BGP_ADD_PATH_SEND != 0
	recv := s.local[f]&bgp.BGP_ADD_PATH_RECEIVE != 0
	switch {
	case s.remote != nil && !send, s.local != nil && !recv:
		return false, false
	case s.remote != nil && s.local != nil:
		return true, false
	case s.remote != nil || s.local != nil:
		return marked, true
	}
	return marked, false
}

// addPathModes reads the ADD-PATH capabilities (code 69) of an OPEN. A
// capability with a Send/Receive value other than 1, 2 or 3 is ignored
// whole, as RFC 7911 section 4 says the receiver should.
func addPathModes(o *bgp.BGPOpen) (map[bgp.RouteFamily]bgp.BGPAddPathMode, error) {
	modes := map[bgp.RouteFamily]bgp.BGPAddPathMode{}
	for _, p := range o.OptParams {
		caps, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		// gobgp stops at a capability it cannot decode and drops the
		// rest of the parameter without an error: what is left could
		// deny an ADD-PATH capability that the OPEN has.
		n := 0
		for _, c := range caps.Capability {
			n += c.Len()
		}
		if n != int(caps.ParamLen) {
			return nil, fmt.Errorf("OPEN capabilities: only %d of their %d bytes could be read", n, caps.ParamLen)
		}
		for _, c := range caps.Capability {
			if ap, ok := c.(*bgp.CapAddPath); ok && validAddPath(ap) {
				for _, t := range ap.Tuples {
					modes[t.RouteFamily] = t.Mode
				}
			}
		}
	}
	return modes, nil
}

func validAddPath(c *bgp.CapAddPath) bool {
	for _, t := range c.Tuples {
		if t.Mode < bgp.BGP_ADD_PATH_RECEIVE || t.Mode > bgp.BGP_ADD_PATH_BOTH {
			return false
		}
	}
	return true
}
