package probe

import (
	"net"
	"testing"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The kernel completes the handshake from the backlog: no Accept is
	// needed for the connect to succeed.

	t.Run("open", func(t *testing.T) {
		r := measureSpec(t, spec.Spec{Target: ln.Addr().String(), Method: result.MethodTCP})
		if !r.OK() {
			t.Fatalf("%s: %s", r.ErrorKind, r.Error)
		}
		p := r.Ping
		if p == nil || p.Sent != 1 || p.Received != 1 || p.Loss != 0 {
			t.Fatalf("Ping %+v, want 1 sent, 1 received", p)
		}
		if r.RTTMs <= 0 || p.MinMs != r.RTTMs || p.AvgMs != r.RTTMs || p.MaxMs != r.RTTMs {
			t.Errorf("RTTMs %v Ping %+v: want one RTT > 0 everywhere", r.RTTMs, p)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r := measureSpec(t, spec.Spec{Target: closedPort(t), Method: result.MethodTCP})
		if r.ErrorKind != result.KindRefused || r.Error == "" {
			t.Fatalf("kind %q error %q, want refused", r.ErrorKind, r.Error)
		}
		if p := r.Ping; p == nil || p.Sent != 1 || p.Received != 0 || p.Loss != 1 {
			t.Fatalf("Ping %+v, want 1 sent, 0 received", p)
		}
	})
}
