package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultDir keeps a lab's state: configurations, control sockets, pid files
// and logs.
const DefaultDir = "/run/catchmap-lab"

// Files in a lab's directory.
const (
	topologyFile = "topology.yaml"
	sitesFile    = "sites.json"
	forwardPid   = "forward.pid"
	forwardReady = "forward.ready"
	forwardLog   = "forward.log"
)

// tunQueue is the length of a link's TUN queue, in packets.
const tunQueue = 10000

// Timeouts of lab up.
const (
	readyTimeout    = 15 * time.Second
	ConvergeTimeout = 30 * time.Second
	stopTimeout     = 3 * time.Second
)

// Lab is a lab that is up, as its directory describes it.
type Lab struct {
	Topo  *Topology
	Dir   string
	Sites map[string]SiteState
	log   *slog.Logger
}

// Open reads the lab kept in dir.
func Open(log *slog.Logger, dir string) (*Lab, error) {
	t, err := ReadTopology(filepath.Join(dir, topologyFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab in %s: run catchmap lab up (or pass its --dir)", dir)
		}
		return nil, err
	}
	l := &Lab{Topo: t, Dir: dir, Sites: map[string]SiteState{}, log: log}
	b, err := os.ReadFile(filepath.Join(dir, sitesFile))
	if err != nil {
		return nil, fmt.Errorf("reading the lab's site states: %w", err)
	}
	if err := json.Unmarshal(b, &l.Sites); err != nil {
		return nil, fmt.Errorf("lab site states %s: %w (run catchmap lab down, then up)", filepath.Join(dir, sitesFile), err)
	}
	return l, nil
}

func (l *Lab) path(name string) string          { return filepath.Join(l.Dir, name) }
func (l *Lab) ctlPath(node string) string       { return l.path(node + ".ctl") }
func (l *Lab) birdPidPath(node string) string   { return l.path(node + ".bird.pid") }
func (l *Lab) sitePidPath(site string) string   { return l.path(site + ".site.pid") }
func (l *Lab) siteReadyPath(site string) string { return l.path(site + ".site.ready") }

// Options for Up.
type Options struct {
	// Bin is the catchmap binary, run for the link forwarder and the site
	// responders.
	Bin string
}

// CheckTools reports a missing program that the lab needs.
func CheckTools() error {
	for _, p := range []struct{ bin, pkg string }{{"ip", "iproute2"}, {"bird", "bird2"}, {"birdc", "bird2"}} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Errorf("lab: %s not found: install it (apt-get install %s)", p.bin, p.pkg)
		}
	}
	return nil
}

// Up builds the lab of t in dir and waits until BGP has converged. On
// failure it tears down what it built.
func Up(ctx context.Context, log *slog.Logger, t *Topology, dir string, o Options) (_ *Lab, err error) {
	if err := CheckTools(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, topologyFile)); err == nil {
		return nil, fmt.Errorf("a lab is already up in %s: run catchmap lab down --dir %s first", dir, dir)
	}
	if ns, err := namespaces(ctx, t.Prefix); err != nil {
		return nil, err
	} else if len(ns) > 0 {
		return nil, fmt.Errorf("namespaces %s are left from another lab: run catchmap lab down first", strings.Join(ns, ", "))
	}
	// BIRD's control sockets live in dir, and a socket path has at most
	// 107 bytes.
	if n := len(filepath.Join(dir, "abcdefghijkl.ctl")); n > 107 {
		return nil, fmt.Errorf("lab directory %s is too long for BIRD's control sockets (%d of 107 bytes): use a shorter --dir", dir, n)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	l := &Lab{Topo: t, Dir: dir, Sites: map[string]SiteState{}, log: log}
	for _, s := range t.Sites {
		l.Sites[s.Name] = SiteState{}
	}
	b, err := marshalTopology(t)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.path(topologyFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	defer func() {
		if err != nil {
			derr := Down(context.WithoutCancel(ctx), log, dir, t.Prefix)
			err = errors.Join(err, derr)
		}
	}()
	if err := l.saveSites(); err != nil {
		return nil, err
	}
	start := time.Now()
	for _, n := range t.Nodes() {
		if err := l.addNamespace(ctx, n); err != nil {
			return nil, err
		}
	}
	if err := l.startForwarder(ctx, o.Bin); err != nil {
		return nil, err
	}
	for _, n := range t.Nodes() {
		if err := l.configure(ctx, n); err != nil {
			return nil, err
		}
	}
	for _, n := range t.Nodes() {
		if n.AS == 0 {
			continue
		}
		if err := l.writeBirdConfig(n); err != nil {
			return nil, err
		}
		if err := run(ctx, "ip", "netns", "exec", n.NS, "bird", "-c", l.path(n.Name+".conf"),
			"-s", l.ctlPath(n.Name), "-P", l.birdPidPath(n.Name)); err != nil {
			return nil, fmt.Errorf("starting bird in %s: %w (see %s)", n.NS, err, l.path(n.Name+".bird.log"))
		}
	}
	for _, s := range t.Sites {
		if err := l.startSite(ctx, o.Bin, s); err != nil {
			return nil, err
		}
	}
	log.Info("lab built; waiting for BGP", "nodes", len(t.Nodes()), "links", len(t.Wires()), "took", time.Since(start).Round(time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, ConvergeTimeout)
	defer cancel()
	if _, err := l.WaitConverged(cctx); err != nil {
		return nil, err
	}
	log.Info("lab up", "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

func marshalTopology(t *Topology) ([]byte, error) {
	b, err := yaml.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("writing the lab topology: %w", err)
	}
	return b, nil
}

func (l *Lab) saveSites() error {
	b, err := json.MarshalIndent(l.Sites, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path(sitesFile + ".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("saving the lab's site states: %w", err)
	}
	return os.Rename(tmp, l.path(sitesFile))
}

// run runs a command, returning its output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addNamespace creates n's namespace and sets its sysctls before any link
// exists, so that the links take them as defaults.
func (l *Lab) addNamespace(ctx context.Context, n Node) error {
	if err := run(ctx, "ip", "netns", "add", n.NS); err != nil {
		return err
	}
	forward := "0"
	if n.Kind == KindRouter {
		forward = "1"
	}
	return run(ctx, "ip", "netns", "exec", n.NS, "sysctl", "-q", "-w",
		"net.ipv4.ip_forward="+forward,
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0",
		// A new namespace lets no group ping unprivileged ("1 0").
		"net.ipv4.ping_group_range=0 2147483647",
		"net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1",
	)
}

// configure addresses n's links and sets its routes: hosts get a default
// route to their router, sites the anycast address on lo.
func (l *Lab) configure(ctx context.Context, n Node) error {
	var b strings.Builder
	b.WriteString("link set lo up\n")
	for _, w := range l.Topo.Wires() {
		peer, ok := w.Peer(n.Name)
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "addr add %s/30 dev %s\n", w.Addr(n.Name), IfName(peer))
		// The TUN device holds what the forwarder has not read yet: room
		// for a second of a sweep, when the busy machine keeps the
		// forwarder off the CPU, rather than the default 500 packets.
		fmt.Fprintf(&b, "link set %s txqueuelen %d up\n", IfName(peer), tunQueue)
	}
	switch n.Kind {
	case KindProbe, KindOps:
		w, _ := l.Topo.Uplink(n.Name)
		fmt.Fprintf(&b, "route add default via %s\n", w.AddrA())
	case KindSite:
		fmt.Fprintf(&b, "addr add %s/32 dev lo\n", l.Topo.Anycast)
	case KindRouter:
		// A local route makes the kernel answer for the whole range; a
		// more specific blackhole in the same table silences a part.
		for _, r := range l.Topo.RegionsOf(n.Name) {
			fmt.Fprintf(&b, "route add local %s dev lo\n", r.Prefix)
			for _, s := range r.Silent {
				fmt.Fprintf(&b, "route add blackhole %s table local\n", s)
			}
		}
	}
	cmd := exec.CommandContext(ctx, "ip", "-n", n.NS, "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("configuring %s: %v: %s", n.NS, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) writeBirdConfig(n Node) error {
	conf := l.Topo.birdConfig(l.Dir, n, l.Sites[n.Name])
	if err := os.WriteFile(l.path(n.Name+".conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing bird config of %s: %w", n.Name, err)
	}
	return nil
}

// daemon starts a process in its own session, detached from the caller,
// with its output in logPath, and records its pid.
func daemon(logPath, pidPath, name string, args ...string) (*os.Process, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	// Reap it if it dies while this process lives; lab up returns and
	// leaves it running otherwise.
	go cmd.Wait()
	return cmd.Process, nil
}

// waitFile waits for path to exist while the process with pid lives.
func waitFile(ctx context.Context, path string, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if !alive(pid) {
			return errors.New("exited before it was ready")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s", readyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *Lab) startForwarder(ctx context.Context, bin string) error {
	logPath := l.path(forwardLog)
	p, err := daemon(logPath, l.path(forwardPid), bin, "lab", "forward", "--dir", l.Dir)
	if err != nil {
		return errForwarder(logPath, err)
	}
	if err := waitFile(ctx, l.path(forwardReady), p.Pid); err != nil {
		return errForwarder(logPath, err)
	}
	return nil
}

func (l *Lab) startSite(ctx context.Context, bin string, s Site) error {
	n, _ := l.Topo.Node(s.Name)
	logPath := l.path(s.Name + ".site.log")
	p, err := daemon(logPath, l.sitePidPath(s.Name), "ip", "netns", "exec", n.NS, bin, "lab", "site",
		"--identity", Identity(s.Name), "--listen", l.Topo.Anycast, "--ready", l.siteReadyPath(s.Name))
	if err == nil {
		err = waitFile(ctx, l.siteReadyPath(s.Name), p.Pid)
	}
	if err != nil {
		return fmt.Errorf("site responder %s: %w (see %s)", s.Name, err, logPath)
	}
	return nil
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// State follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// tables reads every BIRD's routes, and their text: equal texts mean
// nothing changed in between, since the text holds each route's age.
func (l *Lab) tables(ctx context.Context) (map[string][]Route, string, error) {
	var all strings.Builder
	ts := map[string][]Route{}
	for _, n := range l.Topo.Nodes() {
		if n.AS == 0 {
			continue
		}
		out, err := l.birdc(ctx, n.Name, "show", "route", "all")
		if err != nil {
			return nil, "", err
		}
		rs, err := ParseRoutes(out)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", n.Name, err)
		}
		ts[n.Name] = rs
		all.WriteString(out)
	}
	return ts, all.String(), nil
}

// converged reports whether every lab BGP session is up, every router has
// a route to the anycast address (while a site announces it), and every
// site one back to every probe; when not, it says what is missing.
func (l *Lab) converged(ctx context.Context, tables map[string][]Route) (bool, string, error) {
	for _, n := range l.Topo.Nodes() {
		if n.AS == 0 {
			continue
		}
		out, err := l.birdc(ctx, n.Name, "show", "protocols")
		if err != nil {
			return false, "", err
		}
		for _, p := range ParseProtocols(out) {
			if p.Proto == "BGP" && p.Name != collectorProto && !strings.HasPrefix(p.Info, "Established") {
				return false, fmt.Sprintf("%s: session %s is %s %s", n.Name, p.Name, p.State, p.Info), nil
			}
		}
	}
	has := func(node, net string) bool {
		for _, r := range tables[node] {
			if r.Primary && r.Net == net {
				return true
			}
		}
		return false
	}
	anycast := l.Topo.Anycast + "/32"
	announced := false
	for _, s := range l.Topo.Sites {
		announced = announced || !l.Sites[s.Name].Withdrawn
	}
	for _, r := range l.Topo.Routers {
		if announced && !has(r.Name, anycast) {
			return false, fmt.Sprintf("%s has no route to %s", r.Name, anycast), nil
		}
	}
	for _, s := range l.Topo.Sites {
		for _, p := range l.Topo.Probes {
			w, _ := l.Topo.Uplink(p.Name)
			if !has(s.Name, w.Subnet().String()) {
				return false, fmt.Sprintf("site %s has no route back to probe %s", s.Name, p.Name), nil
			}
		}
		for _, r := range l.Topo.Regions {
			if !has(s.Name, r.Prefix) {
				return false, fmt.Sprintf("site %s has no route to region %s (%s)", s.Name, r.Name, r.Prefix), nil
			}
		}
	}
	return true, "", nil
}

// settle is how long the routing tables must stay the same to count as
// converged.
const settle = 1500 * time.Millisecond

// WaitConverged polls the routers until every session is up, every route
// the lab needs is there, and no route has changed for settle. It returns
// when BIRD last changed a route, by BIRD's own clock (a withdrawal that
// leaves no route behind has no time of its own, so the time is that of
// the last route that changed).
func (l *Lab) WaitConverged(ctx context.Context) (time.Time, error) {
	var last string
	var stableSince time.Time
	why := "not polled yet"
	for {
		tables, text, err := l.tables(ctx)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if text != last {
			why = "routes still changing"
			if last != "" {
				why += ": " + firstDiff(last, text)
			}
			last, stableSince = text, now
		} else if now.Sub(stableSince) >= settle {
			ok, w, err := l.converged(ctx, tables)
			if err != nil {
				return time.Time{}, err
			}
			if ok {
				var newest time.Time
				for _, rs := range tables {
					for _, r := range rs {
						if r.Since.After(newest) {
							newest = r.Since
						}
					}
				}
				return newest, nil
			}
			why = w
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("lab: BGP has not converged: %s (%w)", why, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// firstDiff shows the first line that differs between two route dumps.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("%q became %q", strings.TrimSpace(la[i]), strings.TrimSpace(lb[i]))
		}
	}
	return fmt.Sprintf("%d lines became %d", len(la), len(lb))
}

// SetSite changes a site's announcement (withdrawn, prepends) and has its
// BIRD reload the configuration.
func (l *Lab) SetSite(ctx context.Context, site string, st SiteState) error {
	n, ok := l.Topo.Node(site)
	if !ok || n.Kind != KindSite {
		var names []string
		for _, s := range l.Topo.Sites {
			names = append(names, s.Name)
		}
		return fmt.Errorf("lab: no site %q: the sites are %s", site, strings.Join(names, ", "))
	}
	if st.Prepend < 0 || st.Prepend > maxPrepend {
		return fmt.Errorf("lab: prepend %d is out of range 0-%d", st.Prepend, maxPrepend)
	}
	l.Sites[site] = st
	if err := l.saveSites(); err != nil {
		return err
	}
	if err := l.writeBirdConfig(n); err != nil {
		return err
	}
	out, err := l.birdc(ctx, site, "configure")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Reconfigured") && !strings.Contains(out, "Reconfiguration in progress") {
		return fmt.Errorf("lab: bird of %s did not take the new configuration: %s", site, strings.TrimSpace(out))
	}
	l.log.Info("site changed", "site", site, "withdrawn", st.Withdrawn, "prepend", st.Prepend)
	return nil
}

// Withdraw stops site announcing the anycast prefix.
func (l *Lab) Withdraw(ctx context.Context, site string) error {
	st := l.Sites[site]
	st.Withdrawn = true
	return l.SetSite(ctx, site, st)
}

// Restore announces site's prefix again, without prepends.
func (l *Lab) Restore(ctx context.Context, site string) error {
	return l.SetSite(ctx, site, SiteState{})
}

// Prepend announces site's prefix with n extra copies of its AS.
func (l *Lab) Prepend(ctx context.Context, site string, n int) error {
	st := l.Sites[site]
	st.Prepend = n
	return l.SetSite(ctx, site, st)
}

// Command returns a command that runs in node's namespace.
func (l *Lab) Command(ctx context.Context, node, name string, args ...string) (*exec.Cmd, error) {
	n, ok := l.Topo.Node(node)
	if !ok {
		return nil, fmt.Errorf("lab: no node %q", node)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.NS, name}, args...)...), nil
}

// namespaces lists the namespaces whose names start with prefix-.
func namespaces(ctx context.Context, prefix string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var ns []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], prefix+"-") {
			ns = append(ns, f[0])
		}
	}
	slices.Sort(ns)
	return ns, nil
}

// readPid reads a pid file; 0 when there is none.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// stop ends the process pid, which must be what its command line says (pid
// files outlive their processes, and pids are reused): TERM, then KILL.
func stop(pid int, want string) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(want)) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Down stops every process of the lab in dir and removes its namespaces
// (every namespace named prefix-*, also those of a run that failed half
// way) and its state, keeping the logs. prefix is used when dir holds no
// topology.
func Down(ctx context.Context, log *slog.Logger, dir, prefix string) error {
	if t, err := ReadTopology(filepath.Join(dir, topologyFile)); err == nil {
		prefix = t.Prefix
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if pid := readPid(filepath.Join(dir, forwardPid)); pid != 0 {
		stop(pid, "forward")
	}
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, p := range pids {
		if pid := readPid(p); pid != 0 {
			want := "bird"
			if strings.HasSuffix(p, ".site.pid") {
				want = "site"
			}
			stop(pid, want)
		}
	}
	nss, err := namespaces(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range nss {
		// Whatever still runs in the namespace belongs to the lab.
		out, _ := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				stop(pid, "")
			}
		}
		if err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	log.Info("lab down", "dir", dir, "namespaces", len(nss))
	return errors.Join(errs...)
}
