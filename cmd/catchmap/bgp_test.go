package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/app"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/spec"
)

// updatesFile is an MRT update file written by the bgp package's tests
// with gobgp's serialiser (bzip2): for 192.0.2.0/24 it holds two
// announcements, a more specific announcement and a withdrawal.
const updatesFile = "../../bgp/testdata/updates.mrt.bz2"

// runCLI runs catchmap in-process as a user types it.
func runBGPCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestBGPImportStdout(t *testing.T) {
	code, out, errs := runBGPCLI(t, nil, "bgp", "import", "--prefix", "192.0.2.0/24", updatesFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var kinds []string
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		if e.Prefix != "192.0.2.0/24" || e.Source != "mrt" {
			t.Errorf("event %+v", e)
		}
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "announce,announce,withdraw,announce" {
		t.Errorf("kinds %s", got)
	}
	if !strings.Contains(errs, "9 records, 7 updates, 4 events stored") {
		t.Errorf("summary on stderr: %q", errs)
	}
}

func TestBGPImportDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	st, err := sqlite.Open(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	plan := api.Plan{Targets: []api.Target{{Spec: spec.Spec{Target: "192.0.2.53"}, Name: "svc", Prefixes: []string{"2001:db8:53::/48"}}}}
	if err := st.PutPlan(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for range 2 { // a second import stores nothing twice
		if code, out, errs := runBGPCLI(t, nil, "bgp", "import", "--db", db, updatesFile); code != 0 || !strings.Contains(out, "2 events stored") {
			t.Fatalf("exit %d: %s %s", code, out, errs)
		}
	}
	st, err = sqlite.Open(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := st.Events(context.Background(), []string{"2001:db8:53::/48"}, time.Time{}, time.Time{})
	if err != nil || len(es) != 2 || es[0].Kind != "announce" || es[1].Kind != "withdraw" {
		t.Errorf("stored %+v, %v", es, err)
	}
}

func TestBGPImportAggregator(t *testing.T) {
	const admin = "0123456789abcdef0123456789abcdef"
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "agg.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	cfg.AdminToken = token.Parse(admin)
	a, err := app.New(log, prometheus.NewRegistry(), st, app.Options{Server: []server.Option{server.WithConfig(cfg)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	env := map[string]string{adminTokenEnv: admin}
	code, out, errs := runBGPCLI(t, env, "bgp", "import", "--aggregator", srv.URL, "--prefix", "192.0.2.0/24", "--prefix", "2001:db8:53::/48", updatesFile)
	if code != 0 || !strings.Contains(out, "6 events stored") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	es, err := st.Events(context.Background(), []string{"192.0.2.0/24", "2001:db8:53::/48"}, time.Time{}, time.Time{})
	if err != nil || len(es) != 6 {
		t.Errorf("stored %d events, want 6 (%v)", len(es), err)
	}
	// The wrong token: the aggregator refuses, exit 1.
	code, _, errs = runBGPCLI(t, map[string]string{adminTokenEnv: strings.Repeat("x", 32)}, "bgp", "import", "--aggregator", srv.URL, "--prefix", "192.0.2.0/24", updatesFile)
	if code != 1 || !strings.Contains(errs, "refused the token") {
		t.Errorf("wrong token: exit %d: %s", code, errs)
	}
}

func TestBGPImportErrors(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.mrt")
	if err := os.WriteFile(broken, []byte{0, 0, 0, 0, 0, 16, 0, 4, 0, 0, 1, 0, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bgp", "import", updatesFile}, 2, "no prefixes: give --prefix CIDR"},
		{[]string{"bgp", "import", "--prefix", "192.0.2.1/24", updatesFile}, 2, "use 192.0.2.0/24"},
		{[]string{"bgp", "import", "--prefix", "192.0.2.0/24", "missing.mrt"}, 2, "missing.mrt"},
		{[]string{"bgp", "import", "--prefix", "192.0.2.0/24", broken}, 1, "truncated body"},
		{[]string{"bgp", "import", "--db", "x.db", "--aggregator", "http://127.0.0.1:1", updatesFile}, 2, "can't be used together"},
	} {
		code, _, errs := runBGPCLI(t, nil, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d %q, want %d with %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
	}
}
