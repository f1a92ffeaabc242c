package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/internal/testutil"
)

// TestAdminScripts runs the admin command scripts against real aggregators.
// They live in their own folder because they need the aggregator command,
// which TestScripts does not have.
func TestAdminScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script/admin",
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"aggregator": cmdAggregator,
			"closedport": cmdClosedPort,
			"exits":      cmdExits,
			"httpserver": cmdHTTPServer,
			"stdoutvar":  cmdStdoutVar,
		},
	})
}

// aggregator NAME ADMIN_TOKEN: run an aggregator (server.New on a SQLite
// store in the script's work directory) on 127.0.0.1:0 with that admin
// token, and set $NAME to its URL. It stops when the script ends.
func cmdAggregator(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: aggregator NAME ADMIN_TOKEN")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(ts.Getenv("WORK"), args[0]+".db"), log)
	if err != nil {
		cancel()
		ts.Fatalf("opening the store: %v", err)
	}
	cfg := config.Default()
	cfg.AdminToken = token.Parse(args[1])
	srv, err := server.New(log, prometheus.NewRegistry(), st, server.WithConfig(cfg))
	if err != nil {
		cancel()
		st.Close()
		ts.Fatalf("building the server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		st.Close()
		ts.Fatalf("listening: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	ts.Defer(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				ts.Logf("aggregator %s: %v", args[0], err)
			}
		case <-time.After(serverStartTimeout):
			ts.Logf("aggregator %s did not stop within %s", args[0], serverStartTimeout)
		}
		st.Close()
	})
	url := "http://" + ln.Addr().String()
	// The listener accepts already; wait until the server answers too.
	if _, err := testutil.Poll(serverStartTimeout, func() error { return testutil.Healthy(http.DefaultClient, url) }); err != nil {
		ts.Fatalf("aggregator %s not healthy within %s: %v", args[0], serverStartTimeout, err)
	}
	ts.Setenv(args[0], url)
}

// stdoutvar NAME REGEXP: set $NAME to REGEXP's first group in the last
// command's stdout, such as the id that probes add printed.
func cmdStdoutVar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: stdoutvar NAME REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("stdout has no match for %q with a group", args[1])
	}
	ts.Setenv(args[0], m[1])
}

func TestParsePlan(t *testing.T) {
	for _, tc := range []struct {
		name, file, data string
		targets          int
		err              string // substring; empty: no error
	}{
		{"yaml", "plan.yaml", "targets:\n  - target: 127.0.0.1:53\n    preset: k-root\n    interval: 1s\n", 1, ""},
		{"yaml empty list", "plan.yml", "targets: []\n", 0, ""},
		{"json", "plan.json", `{"targets":[{"target":"http://127.0.0.1/","method":"http","interval":"2s"}]}`, 1, ""},
		{"json sniffed from stdin", "-", `{"targets":[]}`, 0, ""},
		{"yaml from stdin", "-", "targets:\n- target: a.example\n", 1, ""},
		{"yaml unknown key", "plan.yaml", "targets:\n  - target: x\n    intervall: 1s\n", 0, `unknown field "intervall"`},
		{"yaml bad duration", "plan.yaml", "targets:\n  - target: x\n    interval: 1 sec\n", 0, "bad duration"},
		{"yaml two documents", "plan.yaml", "targets: []\n---\ntargets: []\n", 0, "more than one YAML document"},
		{"yaml no targets", "plan.yaml", "refresh: 1m\n", 0, "targets: missing"},
		{"json unknown key", "p.json", `{"targets":[],"extra":1}`, 0, `unknown field "extra"`},
		{"json two values", "p.json", `{"targets":[]} {}`, 0, "more than one JSON value"},
		{"empty", "plan.yaml", " \n", 0, "empty"},
		{"json not an object", "p.json", `[1]`, 0, "bad JSON plan"},
		{"yaml duplicate key", "p.yaml", "targets: []\ntargets: []\n", 0, "already defined"},
		{"yaml interval as number", "p.yaml", "targets:\n- target: x\n  interval: 60\n", 0, "duration must be a string"},
		{"yaml non-text key", "p.yaml", "targets:\n- 1: x\n", 0, "no JSON form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePlan(tc.file, []byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parsePlan(%q) err = %v, want one containing %q", tc.data, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePlan(%q): %v", tc.data, err)
			}
			if len(p.Targets) != tc.targets {
				t.Errorf("got %d targets, want %d", len(p.Targets), tc.targets)
			}
		})
	}
}

// The YAML and JSON spellings of one plan are the same plan.
func TestParsePlanYAMLMatchesJSON(t *testing.T) {
	y, err := parsePlan("p.yaml", []byte(`
targets:
  - name: k-root
    target: 127.0.0.1:5353
    method: dns
    preset: k-root
    interval: 1s
    probes: [all]
    prefixes: [193.0.14.0/23]
  - target: http://127.0.0.1:8081/
    method: http
    preset: fastly
    timeout: 2s
`))
	if err != nil {
		t.Fatal(err)
	}
	j, err := parsePlan("p.json", []byte(`{"targets":[
		{"name":"k-root","target":"127.0.0.1:5353","method":"dns","preset":"k-root","interval":"1s","probes":["all"],"prefixes":["193.0.14.0/23"]},
		{"target":"http://127.0.0.1:8081/","method":"http","preset":"fastly","timeout":"2s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	yb, _ := json.Marshal(y)
	jb, _ := json.Marshal(j)
	if string(yb) != string(jb) {
		t.Errorf("YAML plan %s\n!= JSON plan %s", yb, jb)
	}
}

func TestParseLabels(t *testing.T) {
	m, err := parseLabels([]string{"provider=hetzner", "role=a=b", "empty="})
	if err != nil || m["provider"] != "hetzner" || m["role"] != "a=b" || m["empty"] != "" || len(m) != 3 {
		t.Errorf("parseLabels = %v, %v", m, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=v"}, {"a=1", "a=2"}} {
		if _, err := parseLabels(bad); err == nil {
			t.Errorf("parseLabels(%q) = nil error, want one", bad)
		}
	}
}

// The admin client reports the aggregator's refusals with its message and
// exit 1, and an aggregator it cannot reach with exit 2.
func TestAdminClientErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	e := &env{ctx: context.Background(), getenv: func(string) string { return "" }}
	f := adminFlags{Aggregator: dead, Token: "0123456789abcdef0123"}
	cl, err := f.client(e, "probes list", true)
	if err != nil {
		t.Fatal(err)
	}
	err = cl.call(e.ctx, func(ctx context.Context, ac *api.Client) error {
		_, err := ac.Probes(ctx)
		return err
	})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(ee.msg, "cannot reach the aggregator at "+dead) {
		t.Errorf("dead aggregator: err = %v, want exit 2 naming it", err)
	}
	if strings.Contains(err.Error(), f.Token) {
		t.Errorf("error %q shows the token", err)
	}

	f.Token = ""
	if _, err := f.client(e, "probes list", true); !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(ee.msg, adminTokenEnv) {
		t.Errorf("no token: err = %v, want exit 2 naming $%s", err, adminTokenEnv)
	}
	f.Aggregator = "127.0.0.1:8080"
	if _, err := f.client(e, "targets get", false); !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(ee.msg, "not an http(s) URL") {
		t.Errorf("URL without scheme: err = %v, want exit 2", err)
	}
}

// FuzzParsePlan: whatever the file holds, parsePlan returns a plan or an
// error, and a plan it returns survives the trip to JSON the aggregator gets.
func FuzzParsePlan(f *testing.F) {
	f.Add("plan.yaml", []byte("targets:\n  - target: 127.0.0.1:53\n    interval: 1s\n"))
	f.Add("plan.json", []byte(`{"targets":[{"target":"x","interval":"1s","probes":["all"]}]}`))
	f.Add("-", []byte("{\"targets\": []}"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		p, err := parsePlan(name, data)
		if err != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("plan %+v does not marshal: %v", p, err)
		}
		if _, err := parsePlan("again.json", b); err != nil {
			t.Fatalf("plan %s does not parse back: %v", b, err)
		}
	})
}
