package probe

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/spec"
)

// The tests in this file measure real DNS servers from Debian's packages
// (unbound, nsd, bind9, dnsdist), each started on a free loopback port with
// a configuration the test writes, because the shapes of answer they check
// come from those servers and not from catchmap's own responder.

// missing skips the test when something it needs is not here, except in
// CI, where everything the tests need is installed and a skip would hide
// that it is not.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// serverBinary finds a server's program, in PATH or in /usr/sbin (where
// Debian puts daemons, often not in a user's PATH).
func serverBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
		return p
	}
	missing(t, "%s is not installed: apt-get install %s", name, pkg)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverStartTimeout bounds a server's start: each of them is up in well
// under a second here.
const serverStartTimeout = 10 * time.Second

// runServer runs a DNS server in the foreground with args, in dir, and
// returns its address once it answers CH TXT qname over UDP. It stops the
// server when the test ends. A server that exits early fails the test with
// its output.
func runServer(t *testing.T, dir, addr, qname, bin string, args ...string) string {
	t.Helper()
	var out testutil.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	q := new(dns.Msg)
	q.SetQuestion(qname, dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	testutil.WaitForNil(t, serverStartTimeout, filepath.Base(bin)+" answering on "+addr, func() error {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("%s exited before answering: %v\n%s", filepath.Base(bin), err, out.String())
		default:
		}
		_, _, err := c.Exchange(q, addr)
		return err
	})
	return addr
}

// writeFiles writes name: content pairs into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// freeLoopback returns 127.0.0.1 and a port free for TCP (the servers
// listen on UDP and TCP alike).
func freeLoopback(t *testing.T) (string, int) {
	t.Helper()
	return "127.0.0.1", testutil.FreePort(t, "127.0.0.1")
}

// startUnbound runs unbound answering CH TXT hostname.bind and id.server
// with identity. It is a resolver, so it is given nothing to resolve: the
// tests ask it CHAOS questions only, which it answers itself.
func startUnbound(t *testing.T, identity string) string {
	t.Helper()
	bin := serverBinary(t, "unbound", "unbound")
	dir := t.TempDir()
	host, port := freeLoopback(t)
	writeFiles(t, dir, map[string]string{"unbound.conf": fmt.Sprintf(`server:
	interface: %[1]s@%[2]d
	port: %[2]d
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "%[3]s"
	pidfile: ""
	use-syslog: no
	logfile: ""
	access-control: 127.0.0.0/8 allow
	hide-identity: no
	identity: "%[4]s"
remote-control:
	control-enable: no
`, host, port, dir, identity)})
	return runServer(t, dir, net.JoinHostPort(host, strconv.Itoa(port)), "hostname.bind.", bin, "-d", "-c", "unbound.conf")
}

// TestRealSiteRegexGroups reads unbound's identity with a pattern of several
// groups: the group named site wins, and without one the groups are joined.
func TestRealSiteRegexGroups(t *testing.T) {
	addr := startUnbound(t, "ns1.fra.example")
	for _, tc := range []struct{ regex, site string }{
		{`^(ns\d+)\.(?P<site>[a-z]{3})\.`, "fra"},
		{`^(ns\d+)\.([a-z]{3})\.`, "ns1-fra"},
	} {
		r := measureDNSOnce(t, spec.Spec{Target: addr, SiteRegex: tc.regex})
		if !r.OK() || r.Identity != "ns1.fra.example" || r.Site != tc.site {
			t.Errorf("--site-regex %s: identity %q site %q (%s %s), want site %q", tc.regex, r.Identity, r.Site, r.ErrorKind, r.Error, tc.site)
		}
	}
}
