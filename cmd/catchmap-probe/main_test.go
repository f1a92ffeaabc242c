package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/testutil/testpki"
	"github.com/catchmap/catchmap/internal/tlsfiles"
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

// TestTLSFilesCheckedAtStartUp runs the agent with each wrong TLS file
// against a live HTTPS aggregator: each is a usage error (exit 2) that
// names the flag, and the aggregator sees no request.
func TestTLSFilesCheckedAtStartUp(t *testing.T) {
	t.Setenv("CATCHMAP_TOKEN", "")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "catchmap")
	caFile := ca.WriteCert(t, dir)
	pair := ca.Client(t, "probe")
	cert, key := pair.Write(t, dir, "client")
	keyLine := strings.Split(string(pair.KeyPEM), "\n")[1] // a line of the key's base64
	_, otherKey := ca.Client(t, "other").Write(t, dir, "other")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	var requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "this test wants no request", http.StatusTeapot)
	}))
	srv.TLS = tlsfiles.Server(ca.Server(t).TLS(t), nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing CA", []string{"--ca-file", missing}, "--ca-file (ca_file): open " + missing + ": no such file or directory"},
		{"missing CA, --check", []string{"--check", "--ca-file", missing}, "--ca-file (ca_file): open " + missing},
		{"unreadable CA", []string{"--ca-file", dir}, "--ca-file (ca_file): read " + dir + ": is a directory"},
		{"CA not PEM", []string{"--ca-file", notPEM}, "--ca-file (ca_file) " + notPEM + ": no PEM certificate in it"},
		{"key as CA", []string{"--ca-file", key}, `--ca-file (ca_file) ` + key + `: holds a "PRIVATE KEY" PEM block`},
		{"missing cert", []string{"--ca-file", caFile, "--cert-file", missing, "--key-file", key}, "--cert-file (cert_file): open " + missing},
		{"missing key", []string{"--ca-file", caFile, "--cert-file", cert, "--key-file", missing}, "--key-file (key_file): open " + missing},
		{"unreadable key", []string{"--ca-file", caFile, "--cert-file", cert, "--key-file", dir}, "--key-file (key_file): read " + dir + ": is a directory"},
		{"key of another cert", []string{"--ca-file", caFile, "--cert-file", cert, "--key-file", otherKey},
			"--cert-file (cert_file) " + cert + " and --key-file (key_file) " + otherKey + ": tls: private key does not match public key"},
		{"cert without key", []string{"--ca-file", caFile, "--cert-file", cert}, "key_file: missing: --cert-file needs --key-file"},
		{"key without cert", []string{"--ca-file", caFile, "--key-file", key}, "cert_file: missing: --key-file needs --cert-file"},
		{"TLS files over plain http", []string{"--aggregator", "http://127.0.0.1:1", "--ca-file", caFile},
			`aggregator: "http://127.0.0.1:1" is plain http, yet --ca-file, --cert-file or --key-file is set`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // ends a run that starts after all
			defer cancel()
			args := append([]string{"--aggregator", srv.URL, "--token", "tok", "--spool", t.TempDir()}, c.args...)
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != 2 || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want 2 with %q; got:\n%s", code, c.want, out)
			}
			if strings.Contains(out, keyLine) {
				t.Errorf("the output shows the private key: %s", out)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the aggregator got %d requests from agents that should not have started", n)
	}
}
