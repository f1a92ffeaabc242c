package probe

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// firewalledEnv, set to the test's own network namespace's inode, tells the
// test binary that it runs inside the namespace TestICMPFirewalled made,
// and where it came from.
const firewalledEnv = "CATCHMAP_TEST_FIREWALLED_FROM"

// firewallRules drop outgoing echo requests to 127.0.0.2 and ::1 in the
// output hook; 127.0.0.1 stays open, to show that ICMP works otherwise.
const firewallRules = `table inet cmms {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.2 icmp type echo-request drop
		ip6 daddr ::1 icmpv6 type echo-request drop
	}
}
`

// TestICMPFirewalled pings through a local nftables rule that drops the
// echo: sendmsg fails with EPERM on a socket that opened, which is a network
// failure whose cause is the blocked send, not a permission to open ICMP
// sockets. It makes a network namespace with the rule, and runs itself
// again inside it (ip netns exec), so that the rule and the sysctl it sets
// touch nothing outside.
func TestICMPFirewalled(t *testing.T) {
	if from := os.Getenv(firewalledEnv); from != "" {
		pingFirewalled(t, from)
		return
	}
	if os.Geteuid() != 0 {
		missing(t, "making a network namespace needs root")
	}
	ip := serverBinary(t, "ip", "iproute2")
	nft := serverBinary(t, "nft", "nftables")
	self, err := netnsInode()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("cmmsicmp%d", os.Getpid())
	run := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("", ip, "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v\n%s", ns, err, out)
		}
	})
	run("", ip, "-n", ns, "link", "set", "lo", "up")
	run(firewallRules, ip, "netns", "exec", ns, nft, "-f", "-")
	child := exec.Command(ip, "netns", "exec", ns, os.Args[0], "-test.run=^TestICMPFirewalled$", "-test.v", "-test.count=1")
	child.Env = append(os.Environ(), firewalledEnv+"="+self)
	out, err := child.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestICMPFirewalled") {
		t.Fatalf("inside namespace %s: %v\n%s", ns, err, out)
	}
}

// pingFirewalled is TestICMPFirewalled inside its namespace.
func pingFirewalled(t *testing.T, from string) {
	here, err := netnsInode()
	if err != nil {
		t.Fatal(err)
	}
	if here == from {
		t.Fatalf("%s is set, but this is the namespace the test started in: refusing to change its sysctl", firewalledEnv)
	}
	// A fresh namespace lets no group open unprivileged ping sockets.
	if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0o644); err != nil {
		t.Fatal(err)
	}
	v6 := hasIPv6Loopback()
	for _, privileged := range []bool{false, true} {
		targets := []string{"127.0.0.2"}
		// Linux's ICMPv6 ping sockets do not report the dropped send (the
		// echo is then lost, and reported as loss); raw sockets do.
		if v6 && privileged {
			targets = append(targets, "::1")
		}
		ping := func(target string) result.Record {
			return measureSpec(t, spec.Spec{Target: target, Method: result.MethodICMP, Count: 2, Privileged: privileged,
				Interval: spec.Duration(10 * time.Millisecond), Timeout: spec.Duration(2 * time.Second)})
		}
		if r := ping("127.0.0.1"); !r.OK() {
			t.Fatalf("privileged=%v: 127.0.0.1, which no rule blocks: %s %s", privileged, r.ErrorKind, r.Error)
		}
		for _, target := range targets {
			r := ping(target)
			if r.ErrorKind != result.KindNetwork || !strings.Contains(r.Error, "sending the echo request failed") ||
				!strings.Contains(r.Error, "operation not permitted") || !strings.Contains(r.Error, "firewall") ||
				strings.Contains(r.Error, "ping_group_range") || strings.Contains(r.Error, ErrICMPPermission.Error()) {
				t.Errorf("privileged=%v, %s behind the rule: kind %q error %q; want network, blaming the blocked send",
					privileged, target, r.ErrorKind, r.Error)
			}
		}
	}
}

// netnsInode names this thread's network namespace.
func netnsInode() (string, error) {
	return os.Readlink("/proc/thread-self/ns/net")
}
