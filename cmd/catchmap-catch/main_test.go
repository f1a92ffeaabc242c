package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestExitCodes: bad usage and a configuration that cannot run exit 2
// with the reason, before any socket is opened.
func TestExitCodes(t *testing.T) {
	t.Setenv("CATCHMAP_CATCH_TOKEN", "")
	base := []string{"--listen", "127.0.0.1:0", "--site", "ams", "--anycast", "192.0.2.53"}
	for _, c := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"--help"}, 0, "--max-rate=PPS"},
		{[]string{"--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"--site", "ams"}, 2, "missing flags"},
		{base, 2, "CATCHMAP_CATCH_TOKEN"},
		{append(base[:4:4], "--anycast", "192.0.2.999", "--token", "x"), 2, `--anycast "192.0.2.999": not an IP address`},
		{append([]string{"--listen", "127.0.0.1:0", "--site", "AMS", "--anycast", "192.0.2.53"}, "--token", "x"), 2, `site "AMS"`},
		{append(base, "--token", "x", "--allow", "10.0.0.0/99"), 2, "--allow"},
		{append(base, "--token", "x", "--max-rate", "0"), 2, "must be positive"},
		{append(base, "--token", "x", "--block-file", "/nonexistent"), 2, "--block-file"},
		// 192.0.2.53 is on no interface of the test's host: without root
		// the socket is refused, with root the bind.
		{append(base, "--token", "x"), 2, "raw socket on 192.0.2.53"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.out) {
			t.Errorf("catchmap-catch %s: exit %d, want %d with %q; got:\n%s%s", strings.Join(c.args, " "), code, c.code, c.out, stdout.String(), stderr.String())
		}
	}
}
