package config

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
)

// BGP configures the BGP listener of `catchmap serve`: one session with a
// router (or route server) that tells it the routes of the anycast
// prefixes, whose announcements and withdrawals go on the timeline. It
// announces nothing. The listener is off while Peer is empty.
type BGP struct {
	// Peer is the neighbour's address.
	Peer string `yaml:"peer"`
	// PeerAS is the neighbour's AS number; LocalAS is catchmap's.
	PeerAS  uint32 `yaml:"peer_as"`
	LocalAS uint32 `yaml:"local_as"`
	// RouterID is catchmap's BGP identifier, an IPv4 address.
	RouterID string `yaml:"router_id"`
	// ListenAddress is where sessions are accepted; empty: every address.
	ListenAddress string `yaml:"listen_address"`
	// ListenPort defaults to 179, which needs root: set a port above 1023
	// otherwise, and have the peer connect to it.
	ListenPort int `yaml:"listen_port"`
	// Mode is passive (default: wait for the peer to connect) or active
	// (also connect to the peer, on PeerPort, default 179).
	Mode     string `yaml:"mode"`
	PeerPort int    `yaml:"peer_port"`
	// Prefixes are the anycast prefixes to record; empty: every prefix of
	// the plan's targets.
	Prefixes []string `yaml:"prefixes"`
}

// BGP modes.
const (
	BGPPassive = "passive"
	BGPActive  = "active"
)

// DefaultBGPPort is the port BGP speakers use.
const DefaultBGPPort = 179

// Enabled says whether the listener runs.
func (b *BGP) Enabled() bool { return b != nil && b.Peer != "" }

// Port is the port to listen on, with the default applied.
func (b *BGP) Port() int {
	if b.ListenPort == 0 {
		return DefaultBGPPort
	}
	return b.ListenPort
}

// validate checks the bgp section; the error names the field.
func (b *BGP) validate() error {
	if b == nil {
		return nil
	}
	if !b.Enabled() {
		if b.PeerAS != 0 || b.LocalAS != 0 || b.RouterID != "" || b.ListenAddress != "" || b.ListenPort != 0 ||
			b.Mode != "" || b.PeerPort != 0 || len(b.Prefixes) > 0 {
			return fmt.Errorf("bgp.peer: empty, which turns the listener off, yet other bgp fields are set: give the neighbour's address, or remove the bgp section")
		}
		return nil
	}
	if _, err := netip.ParseAddr(b.Peer); err != nil {
		return fmt.Errorf("bgp.peer: %q is not an IP address: give the BGP neighbour's address, such as 192.0.2.1", b.Peer)
	}
	if b.PeerAS == 0 {
		return fmt.Errorf("bgp.peer_as: missing: give the neighbour's AS number")
	}
	if b.LocalAS == 0 {
		return fmt.Errorf("bgp.local_as: missing: give catchmap's AS number (a private one, such as 64512, will do)")
	}
	if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
		return fmt.Errorf("bgp.router_id: %q is not an IPv4 address: give one unique among the peer's neighbours, such as the aggregator's IPv4 address", b.RouterID)
	}
	if b.ListenAddress != "" {
		if _, err := netip.ParseAddr(b.ListenAddress); err != nil {
			return fmt.Errorf("bgp.listen_address: %q is not an IP address: give one of this host's addresses, or leave it empty for all", b.ListenAddress)
		}
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		return fmt.Errorf("bgp.listen_port: %d is out of range 1-65535", b.ListenPort)
	}
	if b.Mode != "" && b.Mode != BGPPassive && b.Mode != BGPActive {
		return fmt.Errorf("bgp.mode: %q: use %s (wait for the peer) or %s (also connect to it)", b.Mode, BGPPassive, BGPActive)
	}
	if b.PeerPort < 0 || b.PeerPort > 65535 {
		return fmt.Errorf("bgp.peer_port: %d is out of range 1-65535", b.PeerPort)
	}
	for i, s := range b.Prefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			return fmt.Errorf("bgp.prefixes[%d]: %q is not a CIDR prefix without host bits, such as 192.0.2.0/24", i, s)
		}
		if slices.Contains(b.Prefixes[:i], s) {
			return fmt.Errorf("bgp.prefixes[%d]: %q is listed twice", i, s)
		}
	}
	if b.ListenPort == 0 && os.Geteuid() != 0 {
		return fmt.Errorf("bgp.listen_port: unset, and the default %d needs root: set a port above 1023, and have the peer connect to it", DefaultBGPPort)
	}
	return nil
}
