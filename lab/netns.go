package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsPath is where `ip netns add` binds a namespace.
func nsPath(ns string) string { return "/run/netns/" + ns }

// inNS runs fn on an OS thread that has entered namespace ns; sockets and
// TUN devices fn creates belong to ns and stay there. When the thread
// cannot return to its namespace it is left locked, so Go retires it.
func inNS(ns string, fn func() error) error {
	target, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w (is the lab up?)", ns, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening this thread's namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering namespace %s: %w (needs root)", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("returning from namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// openTUN creates TUN device name in namespace ns and returns it open, in
// non-blocking mode so reads park goroutines rather than threads.
func openTUN(ns, name string) (*os.File, error) {
	var f *os.File
	err := inNS(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("opening /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUN name %q: %w", name, err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("creating TUN %s in %s: %w", name, ns, err)
		}
		f = os.NewFile(uintptr(fd), name)
		return nil
	})
	return f, err
}

// Dialer returns a DialContext that connects from inside namespace ns, for
// HTTP clients that talk to hosts in the lab from outside it.
func Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		// The socket is made in ns by the locked thread; the connect's
		// wait then happens in the netpoller, wherever.
		var c net.Conn
		err := inNS(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// InNamespace runs fn on an OS thread inside node's namespace: sockets fn
// opens belong to the lab (a test injecting packets, say) and stay there.
func (l *Lab) InNamespace(node string, fn func() error) error {
	n, ok := l.Topo.Node(node)
	if !ok {
		return fmt.Errorf("lab: no node %q", node)
	}
	return inNS(n.NS, fn)
}
