package bgp

import (
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// asTrans stands in for a 4-byte ASN in a 2-byte AS_PATH (RFC 6793).
const asTrans = 23456

// asPath flattens the AS_PATH of attrs: sequences in order, set members
// in their listed order. When a 2-byte AS_PATH carries an AS4_PATH beside
// it, the two are merged as RFC 6793 section 4.2.3 says.
func asPath(attrs []bgp.PathAttributeInterface) []uint32 {
	var path, path4 []uint32
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				path = append(path, seg.GetAS()...)
			}
		case *bgp.PathAttributeAs4Path:
			for _, seg := range a.Value {
				path4 = append(path4, seg.AS...)
			}
		}
	}
	if len(path4) > 0 && len(path4) <= len(path) && hasASTrans(path) {
		path = append(path[:len(path)-len(path4):len(path)-len(path4)], path4...)
	}
	return path
}

func hasASTrans(path []uint32) bool {
	for _, as := range path {
		if as == asTrans {
			return true
		}
	}
	return false
}

// routePrefix is the IP prefix of an IPv4 or IPv6 unicast NLRI; other
// families (VPN, flowspec, EVPN...) are not anycast service prefixes.
func routePrefix(n bgp.AddrPrefixInterface) (netip.Prefix, bool) {
	var d *bgp.IPAddrPrefixDefault
	switch n := n.(type) {
	case *bgp.IPAddrPrefix:
		d = &n.IPAddrPrefixDefault
	case *bgp.IPv6AddrPrefix:
		d = &n.IPAddrPrefixDefault
	default:
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(d.Prefix)
	if !ok {
		return netip.Prefix{}, false
	}
	if _, v6 := n.(*bgp.IPv6AddrPrefix); !v6 {
		a = a.Unmap()
	}
	p, err := a.Prefix(int(d.Length))
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// routes calls fn for every route an UPDATE announces or withdraws: the
// IPv4 fields and the MP_REACH / MP_UNREACH attributes alike.
func routes(u *bgp.BGPUpdate, fn func(p netip.Prefix, withdraw bool) error) error {
	each := func(ns []bgp.AddrPrefixInterface, withdraw bool) error {
		for _, n := range ns {
			if p, ok := routePrefix(n); ok {
				if err := fn(p, withdraw); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range u.WithdrawnRoutes {
		if err := each([]bgp.AddrPrefixInterface{n}, true); err != nil {
			return err
		}
	}
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeMpUnreachNLRI:
			if err := each(a.Value, true); err != nil {
				return err
			}
		case *bgp.PathAttributeMpReachNLRI:
			if err := each(a.Value, false); err != nil {
				return err
			}
		}
	}
	for _, n := range u.NLRI {
		if err := each([]bgp.AddrPrefixInterface{n}, false); err != nil {
			return err
		}
	}
	return nil
}
