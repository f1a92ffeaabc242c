package probe

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/result"
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
// returns its address once it answers CH TXT qname over UDP with NOERROR.
// It stops the server when the test ends. A server that exits early fails
// the test with its output.
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
		resp, _, err := c.Exchange(q, addr)
		if err == nil && resp.Rcode != dns.RcodeSuccess {
			// named answers SERVFAIL while its zones still load.
			err = fmt.Errorf("answered %s", dns.RcodeToString[resp.Rcode])
		}
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

// startNamed runs BIND's named serving zones (name: zone file text) in
// class CH, in one view, and returns its address. The RRset order is set
// to cyclic, which rotates every RRset by one from answer to answer, so
// that a test sees the rotation on every query rather than by chance.
func startNamed(t *testing.T, zones map[string]string) string {
	t.Helper()
	bin := serverBinary(t, "named", "bind9")
	dir := t.TempDir()
	host, port := freeLoopback(t)
	var conf strings.Builder
	fmt.Fprintf(&conf, `options {
	directory "%[1]s";
	pid-file none;
	session-keyfile none;
	listen-on port %[2]d { %[3]s; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	rrset-order { order cyclic; };
};
controls { };
view "chaos" CH {
	match-clients { any; };
`, dir, port, host)
	files := map[string]string{}
	for name, zone := range zones {
		fmt.Fprintf(&conf, "\tzone %q CH { type primary; file %q; };\n", name, name+".zone")
		files[name+".zone"] = "$TTL 0\n@ CH SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 0\n@ CH NS ns.invalid.\n" + zone
	}
	conf.WriteString("};\n")
	files["named.conf"] = conf.String()
	writeFiles(t, dir, files)
	// -g: foreground, logging to stderr; -c: this configuration only.
	return runServer(t, dir, net.JoinHostPort(host, strconv.Itoa(port)), firstKey(zones)+".", bin, "-g", "-c", filepath.Join(dir, "named.conf"))
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// TestRealRotatedRRset measures a BIND whose hostname.bind has several TXT
// records, which BIND rotates: the identity must not rotate with them.
func TestRealRotatedRRset(t *testing.T) {
	addr := startNamed(t, map[string]string{"hostname.bind": `@ CH TXT "ns3.se-sto.k.ripe.net"
@ CH TXT "ns1.de-fra.k.ripe.net"
@ CH TXT "built 2024-05-01"
@ CH TXT "ns2.nl-ams.k.ripe.net"
`})
	// BIND does rotate the records: the first one changes between answers.
	firsts := map[string]bool{}
	for range 4 {
		m := new(dns.Msg)
		m.SetQuestion("hostname.bind.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		resp, err := dns.Exchange(m, addr)
		if err != nil || len(resp.Answer) != 4 {
			t.Fatalf("named's answer %v, %v: want 4 TXT records", resp, err)
		}
		firsts[resp.Answer[0].String()] = true
	}
	if len(firsts) < 2 {
		t.Fatalf("named sent the records in one order only (%v): the test needs a server that rotates them", firsts)
	}
	for _, tc := range []struct {
		name string
		sp   spec.Spec
		want string
	}{
		// The k-root preset's pattern skips the record that names no site.
		{"preset", spec.Spec{Preset: "k-root"}, "ns1.de-fra.k.ripe.net"},
		{"site regex", spec.Spec{SiteRegex: `^ns\d\.[a-z]{2}-(?P<site>[a-z]{3})`}, "ns1.de-fra.k.ripe.net"},
		{"no pattern", spec.Spec{}, "built 2024-05-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 4 {
				sp := tc.sp
				sp.Target = addr
				r := measureDNSOnce(t, sp)
				if !r.OK() || r.Identity != tc.want {
					t.Fatalf("query %d: identity %q (%s %s), want %q every time", i+1, r.Identity, r.ErrorKind, r.Error, tc.want)
				}
			}
		})
	}
}

// startDnsdist runs dnsdist answering CH TXT hostname.bind with a record it
// spoofs, as operators configure it to name the site; everything else is
// REFUSED. dnsdist gives the spoofed record class IN.
func startDnsdist(t *testing.T, identity string) string {
	t.Helper()
	bin := serverBinary(t, "dnsdist", "dnsdist")
	if len(identity) > 255 {
		t.Fatalf("identity %q is longer than a TXT string", identity)
	}
	dir := t.TempDir()
	host, port := freeLoopback(t)
	// Lua's \ddd is decimal: the TXT string's length byte, then the text.
	writeFiles(t, dir, map[string]string{"dnsdist.conf": fmt.Sprintf(`setLocal(%q)
setSecurityPollSuffix("")
addAction(AndRule({QNameRule("hostname.bind."), QClassRule(DNSClass.CHAOS), QTypeRule(DNSQType.TXT)}), SpoofRawAction("\%03d%s"))
addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))
`, net.JoinHostPort(host, strconv.Itoa(port)), len(identity), identity)})
	// --supervised: stay in the foreground without a console.
	return runServer(t, dir, net.JoinHostPort(host, strconv.Itoa(port)), "hostname.bind.", bin,
		"--supervised", "--disable-syslog", "-C", filepath.Join(dir, "dnsdist.conf"))
}

// TestRealDnsdistSpoofedChaos measures dnsdist's spoofed identity: a
// mismatch by default, since an interceptor's answer looks the same, and
// the identity with allow_class_in.
func TestRealDnsdistSpoofedChaos(t *testing.T) {
	addr := startDnsdist(t, "ns1.de-fra.k.ripe.net")
	for _, tcp := range []bool{false, true} {
		r := measureDNSOnce(t, spec.Spec{Target: addr, Preset: "k-root", TCP: tcp})
		if r.ErrorKind != result.KindMismatch || r.Site != "" || !r.Suspect || r.Identity != "ns1.de-fra.k.ripe.net" ||
			!strings.Contains(r.Error, "class IN") || !strings.Contains(r.Error, "--allow-class-in") {
			t.Errorf("tcp=%v, by default: kind %q site %q suspect %v identity %q error %q; want a suspect mismatch that names --allow-class-in",
				tcp, r.ErrorKind, r.Site, r.Suspect, r.Identity, r.Error)
		}
		r = measureDNSOnce(t, spec.Spec{Target: addr, Preset: "k-root", TCP: tcp, AllowClassIN: true})
		if !r.OK() || r.Site != "de-fra" || r.Suspect || r.Identity != "ns1.de-fra.k.ripe.net" || r.DNS.Rcode != "NOERROR" {
			t.Errorf("tcp=%v, allow_class_in: kind %q error %q site %q suspect %v identity %q; want site de-fra",
				tcp, r.ErrorKind, r.Error, r.Site, r.Suspect, r.Identity)
		}
	}
}

// TestRealControlCharacters measures a BIND whose id.server TXT holds a tab
// and a newline (zone-file \009 and \010): each becomes a space, so that the
// words stay apart.
func TestRealControlCharacters(t *testing.T) {
	addr := startNamed(t, map[string]string{"id.server": `@ CH TXT "ns1.fra\009built\0102024"` + "\n"})
	r := measureDNSOnce(t, spec.Spec{Target: addr, QName: "id.server."})
	if !r.OK() || r.Identity != "ns1.fra built 2024" {
		t.Fatalf("identity %q (%s %s), want %q", r.Identity, r.ErrorKind, r.Error, "ns1.fra built 2024")
	}
}

// startNSD runs nsd authoritative for example. only, naming itself identity
// to CH TXT hostname.bind and id.server.
func startNSD(t *testing.T, identity string) string {
	t.Helper()
	bin := serverBinary(t, "nsd", "nsd")
	dir := t.TempDir()
	host, port := freeLoopback(t)
	writeFiles(t, dir, map[string]string{
		"nsd.conf": fmt.Sprintf(`server:
	ip-address: %[1]s@%[2]d
	port: %[2]d
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "%[3]s"
	database: ""
	zonelistfile: "%[3]s/zone.list"
	xfrdfile: "%[3]s/xfrd.state"
	pidfile: "%[3]s/nsd.pid"
	logfile: "%[3]s/nsd.log"
	identity: "%[4]s"
	hide-identity: no
remote-control:
	control-enable: no
zone:
	name: example.
	zonefile: example.zone
`, host, port, dir, identity),
		"example.zone": "$TTL 60\n@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60\n@ IN NS ns.example.\nns IN A 192.0.2.53\n",
	})
	// -d: foreground; -c: this configuration.
	return runServer(t, dir, net.JoinHostPort(host, strconv.Itoa(port)), "hostname.bind.", bin, "-d", "-c", filepath.Join(dir, "nsd.conf"))
}

// TestRealRefused tells a port that refuses the connection from a server
// that answers REFUSED: both are refused, as for the tcp and http methods,
// and dns.rcode says which.
func TestRealRefused(t *testing.T) {
	addr := startNSD(t, "ns2.ams.example")
	closed := closedUDPPort(t)
	for _, tcp := range []bool{false, true} {
		// nsd refuses questions for zones it does not serve.
		r := measureDNSOnce(t, spec.Spec{Target: addr, QName: "id.server.on.elsewhere.example.net.", QClass: "IN", TCP: tcp})
		if r.ErrorKind != result.KindRefused || r.DNS == nil || r.DNS.Rcode != "REFUSED" {
			t.Errorf("tcp=%v, nsd: kind %q dns %+v error %q, want refused with rcode REFUSED", tcp, r.ErrorKind, r.DNS, r.Error)
		}
		r = measureDNSOnce(t, spec.Spec{Target: closed, TCP: tcp, Timeout: spec.Duration(time.Second)})
		if r.ErrorKind != result.KindRefused || r.DNS == nil || r.DNS.Rcode != "" || !strings.Contains(r.Error, "nothing listens") {
			t.Errorf("tcp=%v, closed port: kind %q dns %+v error %q, want refused without an rcode", tcp, r.ErrorKind, r.DNS, r.Error)
		}
	}
}

// closedUDPPort returns a loopback address whose port was free for UDP and
// TCP a moment ago.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", closedPort(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}
