// Package labtest is what the tests that build a lab share.
package labtest

import (
	"os"
	"testing"

	"github.com/catchmap/catchmap/lab"
)

// Need skips t when the lab cannot run here (it needs root and bird2),
// except under CI (CI set), where it fails t: CI is root and must run it.
func Need(t testing.TB) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "the lab needs root (network namespaces and bird)"
	} else if err := lab.CheckTools(); err != nil {
		why = err.Error()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run the lab tests: %s", why)
	}
	t.Skip(why)
}

// Tail is the last n bytes of a log, for a failed test to show.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
