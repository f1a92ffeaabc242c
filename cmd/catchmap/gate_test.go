package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/gate"
	"github.com/catchmap/catchmap/gate/gatetest"
)

// The gate against an aggregator over real HTTP on loopback: the
// gatetest stand-in serves results, timelines and annotations from a fixed
// record set with the maps code the aggregator uses. The end-to-end test
// with the real aggregator is in the lab tests.

// runGate runs catchmap in-process and returns its status and output.
func runGate(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func wantRun(t *testing.T, code int, stdout, stderr string, wantCode int, pattern string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
	}
	if pattern != "" && !regexp.MustCompile(pattern).MatchString(stdout+stderr) {
		t.Errorf("output does not match %q\nstdout:\n%s\nstderr:\n%s", pattern, stdout, stderr)
	}
}

func TestGateAgainstAggregator(t *testing.T) {
	const read = "cm_read_secret"
	env := map[string]string{readTokenEnv: read}
	now := time.Now()
	steady := (&gatetest.Aggregator{Records: gatetest.Steady("ns.example", now, false), Token: read}).Start(t)
	// The same probes, all moved to fra, and flapping between ams and fra.
	moved := gatetest.Steady("ns.example", now, false)
	for i := range moved {
		moved[i].Site = "fra"
	}
	movedSrv := (&gatetest.Aggregator{Records: moved, Token: read}).Start(t)
	flappy := (&gatetest.Aggregator{Records: gatetest.Steady("ns.example", now, true), Token: read}).Start(t)

	base := filepath.Join(t.TempDir(), "baseline.json")
	code, out, errOut := runGate(t, env, "snapshot", "--aggregator", steady.URL, "--target", "ns.example", "--window", "20s", "-o", base)
	wantRun(t, code, out, errOut, 0, `snapshot of ns.example: 5 probes, 1 sites`)
	f, err := os.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := gate.ReadSnapshot(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if snap.ProbeCount != 5 || snap.Results < 90 || snap.To.Sub(snap.From) != 20*time.Second || snap.Sites[0].Site != "ams" {
		t.Errorf("snapshot over HTTP: %d probes, %d results, window %s, sites %+v", snap.ProbeCount, snap.Results, snap.To.Sub(snap.From), snap.Sites)
	}

	code, out, errOut = runGate(t, env, "check", "--baseline", base, "--aggregator", steady.URL, "--window", "10s")
	wantRun(t, code, out, errOut, 0, `(?m)^PASS: all 3 rules passed$`)

	md := filepath.Join(t.TempDir(), "summary.md")
	code, out, errOut = runGate(t, env, "check", "--baseline", base, "--aggregator", movedSrv.URL, "--window", "10s", "--markdown", md)
	wantRun(t, code, out, errOut, 1, `(?m)^max_moved_share +100\.0% \(5 of 5 probes\) +<= 5\.0% +FAIL$`)
	if b, err := os.ReadFile(md); err != nil || !strings.Contains(string(b), "❌ FAIL") {
		t.Errorf("markdown summary: %v\n%s", err, b)
	}

	// Waiting for a steady catchment ends at the first look; a flapping
	// one never settles and the gate gives up with exit 2.
	code, out, errOut = runGate(t, env, "check", "--baseline", base, "--aggregator", steady.URL, "--window", "10s",
		"--wait-stable", "3s", "--stable-step", "1s", "--poll", "100ms", "--timeout", "20s")
	wantRun(t, code, out, errOut, 0, `PASS`)
	code, out, errOut = runGate(t, env, "check", "--baseline", base, "--aggregator", flappy.URL, "--window", "10s",
		"--wait-stable", "3s", "--stable-step", "1s", "--poll", "100ms", "--timeout", "1s")
	wantRun(t, code, out, errOut, 2, `catchmap: check: catchment did not settle within 1s \(last shift at .* moved 100\.0% of probes\)`)

	// A wrong token is exit 2 (nothing was judged), and the token is not shown.
	code, out, errOut = runGate(t, map[string]string{readTokenEnv: "cm_wrong"}, "check", "--baseline", base, "--aggregator", steady.URL)
	wantRun(t, code, out, errOut, 2, `aggregator answered 401 Unauthorized: missing or wrong token: check the token`)
	if strings.Contains(out+errOut, "cm_wrong") {
		t.Errorf("the token leaked into the output:\n%s", errOut)
	}
	// --token beats the environment.
	code, out, errOut = runGate(t, map[string]string{readTokenEnv: "cm_wrong"}, "check", "--baseline", base, "--aggregator", steady.URL,
		"--token", read, "--window", "10s")
	wantRun(t, code, out, errOut, 0, `PASS`)
}

func TestAnnotateAgainstAggregator(t *testing.T) {
	agg := &gatetest.Aggregator{Token: "cm_admin"}
	srv := agg.Start(t)
	code, out, errOut := runGate(t, map[string]string{adminTokenEnv: "cm_admin"}, "annotate", "--aggregator", srv.URL,
		"--target", "ns.example", "--time", "2026-11-25T19:30:00+01:00", "prepend", "ams", "x3")
	wantRun(t, code, out, errOut, 0, `^annotation note-1 at 2026-11-25T18:30:00Z on ns.example: prepend ams x3\n$`)
	notes := agg.Notes()
	if len(notes) != 1 || notes[0].Text != "prepend ams x3" || notes[0].Target != "ns.example" ||
		!notes[0].Time.Equal(time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC)) {
		t.Errorf("aggregator got %+v", notes)
	}

	// $CATCHMAP_TOKEN serves when no admin token is set; no target means
	// every target.
	code, out, errOut = runGate(t, map[string]string{readTokenEnv: "cm_admin"}, "annotate", "--aggregator", srv.URL, "maintenance at fra")
	wantRun(t, code, out, errOut, 0, `annotation note-2 at .* on every target: maintenance at fra`)

	// Refused by the aggregator: exit 1 with its message.
	code, out, errOut = runGate(t, map[string]string{adminTokenEnv: "cm_nope"}, "annotate", "--aggregator", srv.URL, "x")
	wantRun(t, code, out, errOut, 1, `annotate: aggregator answered 401 Unauthorized: missing or wrong token`)
}
