package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGoodBGP(t *testing.T) {
	c, err := Read(filepath.Join(dir, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &BGP{Peer: "192.0.2.1", PeerAS: 64501, LocalAS: 64512, RouterID: "192.0.2.10", ListenAddress: "192.0.2.10",
		ListenPort: 1179, Mode: BGPPassive, Prefixes: []string{"192.0.2.0/24", "2001:db8:53::/48"}}
	if !reflect.DeepEqual(c.BGP, want) || !c.BGP.Enabled() || c.BGP.Port() != 1179 {
		t.Errorf("bgp section %+v, want %+v", c.BGP, want)
	}
	if d := Default(); d.BGP.Enabled() || d.Validate() != nil {
		t.Errorf("default config: the listener must be off and valid")
	}
}

// The default port 179 needs root; anyone else must choose a port.
func TestBGPDefaultPort(t *testing.T) {
	c := Default()
	c.BGP = &BGP{Peer: "127.0.0.2", PeerAS: 64501, LocalAS: 64500, RouterID: "127.0.0.1"}
	err := c.Validate()
	if c.BGP.Port() != DefaultBGPPort {
		t.Errorf("port %d, want %d", c.BGP.Port(), DefaultBGPPort)
	}
	if os.Geteuid() == 0 {
		if err != nil {
			t.Errorf("as root: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "bgp.listen_port: unset, and the default 179 needs root") {
		t.Errorf("not root: %v", err)
	}
}
