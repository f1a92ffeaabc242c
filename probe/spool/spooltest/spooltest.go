//go:build linux

// Package spooltest helps test code that keeps a spool: it mounts a small
// tmpfs, so that a test meets a real full disk.
package spooltest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a new directory and unmounts it when
// the test ends: close what is open in it before then (a cleanup registered
// after Tmpfs runs before the unmount). Mounting needs root: without it
// the test is skipped, or fails where the CI variable is set, so that CI
// cannot pass without running it.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	cannot := t.Skipf
	if os.Getenv("CI") != "" {
		cannot = t.Fatalf
	}
	if os.Geteuid() != 0 {
		cannot("needs root to mount a tmpfs for a real full disk")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		cannot("mount a tmpfs on %s (in a container without CAP_SYS_ADMIN?): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the tmpfs on %s: %v (a file left open in it?)", dir, err)
		}
	})
	return dir
}
