package agent

import (
	"testing"

	"github.com/catchmap/catchmap/internal/testutil"
)

// TestMain fails the run if an agent goroutine outlives the tests: Run must
// stop everything it started.
func TestMain(m *testing.M) {
	testutil.Main(m, "catchmap/probe/agent.(*Agent)")
}
