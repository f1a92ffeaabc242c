// Package e2e tests catchmap's distributed system end to end: the real
// catchmap and catchmap-probe binaries, built once, run as separate
// processes on loopback (an aggregator on each of its stores, SQLite and
// ClickHouse; probe agents with their spools) and are stopped, killed and
// restarted the way a fleet of VPSes meets them. The question every test asks: was a result lost, or
// stored twice, or a token shown?
package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catchmap/catchmap/internal/testutil"
)

// Paths of the binaries under test, set by TestMain.
var (
	catchmapBin string
	probeBin    string
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds both commands into a temporary directory (so that the
// tests run them as separate processes, as they run in production) and
// runs the tests.
func buildAndRun(m *testing.M) int {
	flag.Parse() // for testing.Verbose
	dir, err := os.MkdirTemp("", "catchmap-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temporary directory for the binaries: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	if err := testutil.GoBuild(dir, "github.com/catchmap/catchmap/cmd/catchmap", "github.com/catchmap/catchmap/cmd/catchmap-probe"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries: %v\n", err)
		return 1
	}
	catchmapBin = filepath.Join(dir, "catchmap")
	probeBin = filepath.Join(dir, "catchmap-probe")
	if testing.Verbose() {
		fmt.Printf("e2e: built catchmap and catchmap-probe in %s\n", time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}
