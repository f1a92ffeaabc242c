package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
)

const (
	catchmapAS = 64500
	birdAS     = 64501
	birdAddr   = "127.0.0.2" // bird's end of the session; loopback only
)

// unavailable skips the test, or fails it in CI, whose test command (see
// the README) runs as root with bird2 installed.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run this test: "+format, args...)
	}
	t.Skipf(format, args...)
}

// needBird finds bird and birdc.
func needBird(t *testing.T) (bird, birdc string) {
	t.Helper()
	var err error
	if bird, err = exec.LookPath("bird"); err == nil {
		birdc, err = exec.LookPath("birdc")
	}
	if err != nil {
		unavailable(t, "bird2 is not installed (apt-get install -y bird2): %v", err)
	}
	return bird, birdc
}

// startBird runs bird announcing 192.0.2.0/24 from its static protocol
// "anycast" to catchmap's listener on 127.0.0.1:port.
func startBird(t *testing.T, port int) (birdc func(args ...string) string, stop func()) {
	t.Helper()
	return runBird(t, "", fmt.Sprintf(`log stderr all;
router id %[1]s;
protocol device { }
protocol static anycast {
	ipv4;
	route 192.0.2.0/24 blackhole;
	route 198.51.100.0/24 blackhole;
}
protocol bgp catchmap {
	local %[1]s port %[2]d as %[3]d;
	neighbor 127.0.0.1 port %[4]d as %[5]d;
	multihop;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 2;
	ipv4 { import none; export all; };
}
`, birdAddr, testutil.FreePort(t, birdAddr), birdAS, port, catchmapAS))
}

// runBird runs bird in the foreground with configuration cfg and its own
// control socket, in network namespace ns unless that is "". It is killed
// in Cleanup, which logs its output if the test failed.
func runBird(t *testing.T, ns, cfg string) (birdc func(args ...string) string, stop func()) {
	t.Helper()
	birdBin, birdcBin := needBird(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	sock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{birdBin, "-c", conf, "-s", sock, "-f"}
	if ns != "" {
		// ip netns exec execs bird in place: the process is bird.
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	var out lockedBuffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting bird: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("bird %s output:\n%s", ns, out.String())
		}
	})
	// The socket's file appears before bird accepts on it.
	testutil.WaitFor(t, 10*time.Second, "bird's control socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	birdc = func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := exec.CommandContext(ctx, birdcBin, append([]string{"-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	return birdc, stop
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestListenerBird peers a real bird with the listener over eBGP on
// loopback, and checks that bird's announcement and withdrawal of the
// anycast prefix, and the loss of the session, become events in a real
// store, while the unrelated prefix bird also announces does not.
func TestListenerBird(t *testing.T) {
	needBird(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	port := testutil.FreePort(t, "127.0.0.1")
	cfg := ListenerConfig{
		Peer: netip.MustParseAddr(birdAddr), PeerAS: birdAS, LocalAS: catchmapAS,
		RouterID: netip.MustParseAddr("127.0.0.1"), ListenAddress: netip.MustParseAddr("127.0.0.1"), ListenPort: port,
	}
	ps, err := ParsePrefixes([]string{"192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(log, cfg, func(context.Context) (*Prefixes, error) { return ps, nil }, st.AddEvents)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of cancel")
		}
	}()
	testutil.WaitFor(t, 10*time.Second, "the listener's port", func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	birdc, stopBird := startBird(t, port)
	events := func() []api.Event {
		es, err := st.Events(ctx, []string{"192.0.2.0/24", "198.51.100.0/24"}, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	kinds := func() string {
		var ks []string
		for _, e := range events() {
			ks = append(ks, e.Kind)
		}
		return strings.Join(ks, ",")
	}
	testutil.WaitFor(t, 30*time.Second, "the announcement", func() bool { return kinds() == "announce" })
	e := events()[0]
	if e.Prefix != "192.0.2.0/24" || e.Peer != birdAddr || e.Source != api.SourceBGP ||
		len(e.ASPath) != 1 || e.ASPath[0] != birdAS || time.Since(e.Time) > time.Minute {
		t.Errorf("announce event %+v: want 192.0.2.0/24 from %s, AS path [%d], source bgp, now", e, birdAddr, birdAS)
	}

	birdc("disable", "anycast")
	testutil.WaitFor(t, 30*time.Second, "the withdrawal", func() bool { return kinds() == "announce,withdraw" })
	if e := events()[1]; e.Prefix != "192.0.2.0/24" || e.Peer != birdAddr || len(e.ASPath) != 0 {
		t.Errorf("withdraw event %+v", e)
	}

	birdc("enable", "anycast")
	testutil.WaitFor(t, 30*time.Second, "the announcement again", func() bool { return kinds() == "announce,withdraw,announce" })
	stopBird()
	testutil.WaitFor(t, 30*time.Second, "the withdrawal on session loss", func() bool { return kinds() == "announce,withdraw,announce,withdraw" })
}

func TestListenerConfig(t *testing.T) {
	ok := ListenerConfig{Peer: netip.MustParseAddr("127.0.0.2"), PeerAS: 1, LocalAS: 2, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: 1179}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ListenerConfig){
		"no peer":   func(c *ListenerConfig) { c.Peer = netip.Addr{} },
		"no asn":    func(c *ListenerConfig) { c.PeerAS = 0 },
		"router id": func(c *ListenerConfig) { c.RouterID = netip.MustParseAddr("::1") },
		"port":      func(c *ListenerConfig) { c.ListenPort = 0 },
		"peer port": func(c *ListenerConfig) { c.PeerPort = 70000 },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A port already taken fails Run with a message, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := ok
	c.ListenAddress = netip.MustParseAddr("127.0.0.1")
	c.ListenPort = ln.Addr().(*net.TCPAddr).Port
	l := NewListener(slog.New(slog.NewTextHandler(io.Discard, nil)), c, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Run(ctx); err == nil || !strings.Contains(err.Error(), "starting the BGP listener") {
		t.Errorf("Run on a taken port: %v", err)
	}
}
