package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/catchmap/catchmap/probe/agent"
	"github.com/catchmap/catchmap/sweep/catcher"
	"github.com/catchmap/catchmap/sweep/rawsock/rawsocktest"
)

// TestSweepScripts runs the scripts of the sweep commands (hitlist check,
// sweep run) under testdata/sweep: exit statuses and messages as a user
// sees them, against catchers on loopback whose sockets are fakes, so that
// the scripts need no privilege and send no packet.
func TestSweepScripts(t *testing.T) {
	nets := &fakeNets{m: map[string]*rawsocktest.Net{}}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/sweep",
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":   cmdExits,
			"catcher": nets.cmdCatcher,
			"probes":  nets.cmdProbes,
		},
	})
}

type fakeNets struct {
	mu sync.Mutex
	m  map[string]*rawsocktest.Net // by script work dir
}

func (f *fakeNets) net(ts *testscript.TestScript) *rawsocktest.Net {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := ts.Getenv("WORK")
	if f.m[dir] == nil {
		f.m[dir] = rawsocktest.New(nil)
	}
	return f.m[dir]
}

// catcher VAR SITE MAXRATE: run a catcher for SITE capped at MAXRATE on
// the script's fake network, its control API on loopback with the token
// in $CATCHMAP_CATCH_TOKEN, and set $VAR to its URL.
func (f *fakeNets) cmdCatcher(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: catcher VAR SITE MAXRATE")
	}
	maxRate, err := strconv.Atoi(args[2])
	ts.Check(err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := catcher.New(log, prometheus.NewRegistry(), catcher.Config{Site: args[1], Anycast: netip.MustParseAddr("192.0.2.53"),
		MaxRate: maxRate, Sockets: f.net(ts).Site(args[1])})
	ts.Check(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	srv := httptest.NewServer(catcher.NewHandler(log, a, tokenOf(ts), prometheus.NewRegistry()))
	ts.Defer(func() {
		srv.Close()
		cancel()
		<-done
	})
	ts.Setenv(args[0], srv.URL)
}

// probes N: fail unless the script's fake network carried N probes.
func (f *fakeNets) cmdProbes(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: probes N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	if got := len(f.net(ts).Probes()); got != want {
		ts.Fatalf("%d probes sent, want %d", got, want)
	}
}

func tokenOf(ts *testscript.TestScript) agent.Token {
	return agent.Token(ts.Getenv("CATCHMAP_CATCH_TOKEN"))
}
