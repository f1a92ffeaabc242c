package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/catchmap/catchmap/internal/responder"
)

// TestMain lets scripts run "catchmap" as a command: testscript re-executes
// this test binary, which then runs main (run with os.Args) instead of the
// tests.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"catchmap": main})
}

// TestScripts runs the txtar scripts under testdata/script: the CLI as a
// user types it, exit statuses and messages included, against real servers
// on loopback.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"dnsserver":   cmdDNSServer,
			"httpserver":  cmdHTTPServer,
			"tcplistener": cmdTCPListener,
			"closedport":  cmdClosedPort,
			"exits":       cmdExits,
		},
		Condition: condition,
	})
}

// condition answers [rawicmp]: whether this process may open raw ICMP
// sockets (root or CAP_NET_RAW), which the icmp method's --privileged needs.
// ICMP is the one method that cannot run everywhere; the script says so
// when it skips.
func condition(cond string) (bool, error) {
	if cond != "rawicmp" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	c, err := net.ListenPacket("ip4:icmp", "127.0.0.1")
	if err != nil {
		return false, nil
	}
	c.Close()
	return true, nil
}

// exits N COMMAND [ARGS...]: run COMMAND like exec and fail unless its exit
// status is N; exec itself only tells zero from non-zero, and catchmap's
// statuses (1 failed, 2 bad usage) are part of its interface.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s did not run: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// The default format follows whether stdout is a terminal; only an *os.File
// can be one.
func TestIsTerminal(t *testing.T) {
	if isTerminal(new(bytes.Buffer)) {
		t.Error("a bytes.Buffer is not a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is not a terminal")
	}
	// The master side of a pseudo-terminal answers terminal ioctls.
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test the positive case (not Linux?): %v", err)
	}
	defer pty.Close()
	if !isTerminal(pty) {
		t.Error("a pseudo-terminal is a terminal")
	}
}

// serverStartTimeout bounds the wait for a test server to serve.
const serverStartTimeout = 10 * time.Second

// dnsserver NAME IDENTITY [NSID]: start a CHAOS responder on 127.0.0.1:0
// that names itself IDENTITY, and set $NAME to its address.
func cmdDNSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: dnsserver NAME IDENTITY [NSID]")
	}
	d := responder.NewDNS(args[1])
	if len(args) == 3 {
		d.NSID = []byte(args[2])
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
	defer cancel()
	addr, err := d.Start(ctx, "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	ts.Setenv(args[0], addr)
}

// httpserver NAME HEADER VALUE COLO: start an HTTP server on loopback that
// answers like a CDN edge (HEADER: VALUE, and colo=COLO in its body), and
// set $NAME to its URL.
func cmdHTTPServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: httpserver NAME HEADER VALUE COLO")
	}
	// httptest listens on 127.0.0.1:0 and serves before NewServer returns.
	s := httptest.NewServer(responder.HTTP(args[1], args[2], args[3]))
	ts.Defer(s.Close)
	ts.Setenv(args[0], s.URL)
}

// tcplistener NAME: listen on 127.0.0.1:0, accept and close connections,
// and set $NAME to the address.
func cmdTCPListener(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tcplistener NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by the deferred Close
			}
			c.Close()
		}
	}()
	ts.Defer(func() { l.Close() })
	ts.Setenv(args[0], l.Addr().String())
}

// closedport NAME: set $NAME to a loopback address where nothing listens,
// found by listening on a free port and closing it.
func cmdClosedPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: closedport NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := l.Addr().String()
	ts.Check(l.Close())
	ts.Setenv(args[0], addr)
}
