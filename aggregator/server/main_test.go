package server

import (
	"testing"

	"github.com/catchmap/catchmap/internal/testutil"
)

// TestMain fails the run if a server goroutine (Serve, retention, a
// handler) outlives the tests.
func TestMain(m *testing.M) {
	testutil.Main(m, "aggregator/server.(*Server)")
}
