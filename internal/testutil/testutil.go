// Package testutil holds the helpers that catchmap's tests share: a
// goroutine-leak check for TestMain, polling a condition with a deadline, a
// log buffer that goroutines may write to while the test reads it, free
// loopback addresses, building commands and asking for /healthz. It uses
// the standard library only, so that any package's tests may import it.
package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// leakWait is how long goroutines get to end after the tests before they
// count as leaked: shutdowns finish asynchronously.
const leakWait = 5 * time.Second

// Main runs the tests and then fails the run if a goroutine whose stack
// mentions any of marks (such as "catchmap/sim.") is still running
// leakWait later. Call it as the whole of TestMain.
func Main(m *testing.M, marks ...string) {
	code := m.Run()
	if code == 0 {
		if leak := Leaked(leakWait, marks...); leak != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after the tests (%s):\n%s\n", strings.Join(marks, ", "), leak)
			code = 1
		}
	}
	os.Exit(code)
}

// Leaked waits up to wait for the goroutines whose stacks mention any of
// marks to end, and returns the stacks of those left ("" when none). The
// calling goroutine does not count.
func Leaked(wait time.Duration, marks ...string) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// runtime.Stack puts the calling goroutine first.
		_, others, _ := strings.Cut(string(buf), "\n\n")
		var left []string
		for g := range strings.SplitSeq(others, "\n\n") {
			for _, mark := range marks {
				if strings.Contains(g, mark) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maxPoll caps the pause between two looks at a condition.
const maxPoll = 100 * time.Millisecond

// WaitFor polls cond until it holds and fails the test, naming what, if it
// does not within timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitForNil(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// WaitForNil polls cond until it returns nil, and returns how long that
// took. If it does not within timeout, it fails the test with what and
// the last error, which should say the state seen last.
func WaitForNil(t testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	took, err := Poll(timeout, cond)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
	return took
}

// Poll is WaitForNil for callers that are not a testing.TB (a testscript
// command): it returns how long cond took to return nil, or cond's last
// error once timeout has passed.
func Poll(timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	// Short pauses first, so that a quick condition costs little time, then
	// longer ones, so that a slow one costs little CPU.
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), err
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPoll)
	}
}

// Buffer is a bytes.Buffer that goroutines (a logger, a process's output)
// may write to while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address host:port (host "127.0.0.1" or
// "::1") where nothing listens now, found by listening on port 0 and
// closing. Another process could take it before the test does; for code
// that takes a listener, pass one on port 0 instead.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreePort is FreeAddr's port, for code that takes a port number.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t, host))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// GoBuild builds the packages (import paths) into dir with the go command
// that runs the tests (go test puts its toolchain first on PATH), so that
// tests can run them as separate processes.
func GoBuild(dir string, pkgs ...string) error {
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// serveTimeout bounds a test server's start and its shutdown.
const serveTimeout = 5 * time.Second

// Server is a server with a start and a graceful stop, such as
// responder.DNS.
type Server interface {
	Start(ctx context.Context, addr string) (string, error)
	Shutdown(ctx context.Context) error
}

// Serve starts s on addr (as s takes it, such as "127.0.0.1:0") and shuts
// it down when t ends, failing t if either goes wrong. It returns the
// address s listens on.
func Serve(t testing.TB, s Server, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()
	got, err := s.Start(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return got
}

// Healthy asks base's /healthz and returns nil if it answers 200, else an
// error that says what it saw.
func Healthy(hc *http.Client, base string) error {
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return nil
}

// Clock is a clock that stands still until Advance moves it, for code
// that takes a clock (func() time.Time) and tests that must not wait for
// time to pass. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
