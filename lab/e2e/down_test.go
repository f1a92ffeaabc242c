package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/lab"
	"github.com/catchmap/catchmap/lab/labtest"
)

// TestDownAfterInterruptedUp kills lab up half way, as Ctrl-C or a CI
// timeout would, and checks that lab down still removes every namespace
// and process of the lab.
func TestDownAfterInterruptedUp(t *testing.T) {
	labtest.Need(t)
	bin, _ := build(t)
	dir := filepath.Join(t.TempDir(), "lab")
	h := &harness{t: t}
	small, err := lab.ReadTopology(filepath.Join("..", "testdata", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := runPrefix("cms")
	topo := writeTopology(t, small, prefix)
	t.Cleanup(func() { h.run(context.Background(), bin, "lab", "--dir", dir, "down", "--prefix", prefix) })

	up := exec.Command(bin, "lab", "--dir", dir, "up", "--topology", topo)
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.Poll(30*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "forward.ready"))
		return err
	}); err != nil {
		up.Process.Kill()
		up.Wait()
		t.Fatal("lab up made no links in 30s")
	}
	up.Process.Kill()
	up.Wait()
	var pids []int
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("the interrupted lab left no pid file: nothing to check")
	}
	if out, code := h.run(context.Background(), bin, "lab", "--dir", dir, "down"); code != 0 {
		t.Fatalf("lab down after an interrupted up: exit %d\n%s", code, out)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix+"-") {
		t.Errorf("namespaces left after lab down:\n%s", out)
	}
	for _, pid := range pids {
		// Signal 0 only asks whether the process exists.
		if err := syscall.Kill(pid, 0); err == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d of the lab still runs after lab down", pid)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "topology.yaml")); err == nil {
		t.Error("lab down left the lab's state: the next lab up would refuse to start")
	}
}

// TestLabNeedsRoot runs lab up as nobody: it must refuse with a clear
// message before touching anything.
func TestLabNeedsRoot(t *testing.T) {
	labtest.Need(t)
	bin, _ := build(t)
	// nobody must be able to reach the binary.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "lab", "--dir", t.TempDir(), "up")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("lab up as nobody: %v, want exit 2\n%s", err, out)
	}
	if !strings.Contains(string(out), "catchmap lab needs root (network namespaces and bird)") {
		t.Errorf("lab up as nobody says %q", out)
	}
}

// TestLabCLI drives the small lab as a user types it: up, withdraw,
// prepend, restore, status, down, and a site that does not exist.
func TestLabCLI(t *testing.T) {
	labtest.Need(t)
	bin, _ := build(t)
	dir := filepath.Join(t.TempDir(), "lab")
	h := &harness{t: t}
	small, err := lab.ReadTopology(filepath.Join("..", "testdata", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo := writeTopology(t, small, runPrefix("cmc"))
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		out, code := h.run(context.Background(), bin, append([]string{"lab", "--dir", dir}, args...)...)
		if code != wantCode {
			t.Fatalf("catchmap lab %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return out
	}
	t.Cleanup(func() { cli(0, "down") })
	// p1 sits behind r1 with both sites: fra is 1 ms away, cdg 3 ms.
	route := func(out string) string {
		_, routes, _ := strings.Cut(out, "\nPROBE ")
		for _, line := range strings.Split(routes, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "p1" {
				return f[1]
			}
		}
		t.Fatalf("no route of p1 in:\n%s", out)
		return ""
	}
	if got := route(cli(0, "up", "--topology", topo)); got != "fra" {
		t.Errorf("after up, p1 reaches %s, want fra (the nearer site)", got)
	}
	out := cli(0, "withdraw", "fra")
	if got := route(out); got != "cdg" || !strings.Contains(out, "[withdrawn]") {
		t.Errorf("after withdraw fra, p1 reaches %s:\n%s", got, out)
	}
	cli(0, "restore", "fra")
	// A prepend at fra makes its path longer than cdg's.
	if got := route(cli(0, "prepend", "fra", "2")); got != "cdg" {
		t.Errorf("after prepend fra 2, p1 reaches %s, want cdg", got)
	}
	if got := route(cli(0, "prepend", "fra", "0")); got != "fra" {
		t.Errorf("after prepend fra 0, p1 reaches %s, want fra", got)
	}
	if out := cli(2, "withdraw", "nope"); !strings.Contains(out, `no site "nope": the sites are fra, cdg`) {
		t.Errorf("withdraw of an unknown site says:\n%s", out)
	}
	if out := cli(2, "up", "--topology", topo); !strings.Contains(out, "already up") {
		t.Errorf("a second lab up says:\n%s", out)
	}
	if out := cli(0, "status"); !strings.Contains(out, "running") {
		t.Errorf("status:\n%s", out)
	}
}
