package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	t.Setenv("CATCHMAP_TOKEN", "")
	for _, c := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"--help"}, 0, "--metrics-listen=ADDR"},
		{[]string{"--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"--aggregator", "http://127.0.0.1:1", "--check"}, 2, "CATCHMAP_TOKEN"},
		{[]string{"--aggregator", "http://127.0.0.1:1", "--token", "x", "--allow", "10.0.0.0/99", "--check"}, 2, `"10.0.0.0/99" is not a prefix`},
		{[]string{"--aggregator", "http://127.0.0.1:1", "--token", "x", "--allow", "127.0.0.0/8,*.example.net", "--max-rate", "2", "--check"}, 0, "config OK"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.out) {
			t.Errorf("catchmap-probe %s: exit %d, want %d with %q; got:\n%s%s", strings.Join(c.args, " "), code, c.code, c.out, stdout.String(), stderr.String())
		}
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	t.Setenv("CATCHMAP_TOKEN", "from-env-secret")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--aggregator", "http://127.0.0.1:1", "--check"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), "from-env-secret") {
		t.Fatal("output shows the token")
	}
}
