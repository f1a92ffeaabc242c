package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/probe/spool/spooltest"
)

// TestExecuteServesMetrics runs the agent as the commands do, with
// --metrics-listen, and scrapes it.
func TestExecuteServesMetrics(t *testing.T) {
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), 10*time.Millisecond, 1))
	f := Flags{Aggregator: srv.URL, Token: testToken, Spool: t.TempDir(), Allow: []string{"127.0.0.1"},
		UploadInterval: 20 * time.Millisecond, MetricsListen: "127.0.0.1:0"}
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Execute(ctx, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Execute: %v", err)
		}
		if strings.Contains(logs.String(), testToken) {
			t.Error("the logs show the token")
		}
	}()
	addrRe := regexp.MustCompile(`serving metrics" addr=(127\.0\.0\.1:\d+)`)
	var addr string
	testutil.WaitFor(t, waitTimeout, "metrics listener", func() bool {
		m := addrRe.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	testutil.WaitFor(t, waitTimeout, "an upload", func() bool { return len(ag.stored()) > 0 })
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`catchmap_probe_results_total{method="tcp"`,
		"catchmap_probe_uploaded_total ",
		"catchmap_probe_spooled_records ",
		"catchmap_probe_spool_dropped_total 0",
		`catchmap_probe_upload_errors_total{kind="network"} 0`,
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestExecuteCheck(t *testing.T) {
	var out bytes.Buffer
	f := Flags{Config: "testdata/good.yaml", Token: "x", Check: true}
	if err := f.Execute(context.Background(), quiet(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "config OK") {
		t.Fatalf("--check printed %q", out.String())
	}
}

// TestFullDiskKeepsNewest runs the agent with its spool on a tiny tmpfs
// while the aggregator is away: the disk fills, the oldest results go, the
// agent measures on, and what is left arrives when the aggregator is back.
// Every result is uploaded or counted as dropped, and the drops make a line
// a minute in the log, not one a result.
func TestFullDiskKeepsNewest(t *testing.T) {
	dir := spooltest.Tmpfs(t, 256<<10)
	ag, srv := newAggregator(t, tcpPlan(tcpTarget(t), time.Millisecond, 4))
	ag.resultsStatus.Store(503)
	rec := newRecorder()
	cfg := testConfig(t, srv.URL)
	cfg.Spool = dir
	cfg.SpoolMaxBytes = 64 << 20 // far above the disk: only ENOSPC stops it
	var logs testutil.Buffer
	began := time.Now()
	r := startLogged(t, slog.New(slog.NewTextHandler(&logs, nil)), cfg, WithMeasurer(rec))
	testutil.WaitFor(t, waitTimeout, "records dropped on a full disk", func() bool { return r.metric("catchmap_probe_spool_dropped_total") > 0 })
	measured := rec.calls.Load()
	testutil.WaitFor(t, waitTimeout, "measuring on a full disk", func() bool { return rec.calls.Load() >= measured+100 })
	ag.resultsStatus.Store(0)
	testutil.WaitFor(t, waitTimeout, "uploads resume", func() bool { return len(ag.stored()) > 0 })
	r.stop(t)
	produced, stored := rec.produced(), ag.stored()
	dropped := r.metric("catchmap_probe_spool_dropped_total")
	if lost := float64(len(produced) - len(stored)); lost > dropped {
		t.Fatalf("%d produced, %d stored, but only %v counted as dropped", len(produced), len(stored), dropped)
	}
	lines := strings.Count(logs.String(), "spool: dropped records")
	if took := time.Since(began); took < time.Minute && lines > 2 {
		t.Fatalf("%d drop lines in %s, want the first and the one at the stop", lines, took)
	}
	t.Logf("%d produced, %d stored, %v dropped, %d drop lines", len(produced), len(stored), dropped, lines)
}
