package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// PathOf is the way to the anycast address as BGP chose it, from a probe
// or a region: the routers and the site in order, and the one-way delay
// along them.
type PathOf struct {
	Probe  string   // the probe, for Path
	Region string   // the region, for RegionPath
	Hops   []string // the first router ... site
	Site   string
	Delay  float64 // one-way, milliseconds
}

// Path follows the BGP best path of probe's router to the site that
// serves probe: the AS path names the routers and the site in order
// (prepends repeat an AS, which is skipped). The return path is the same
// links when the site's best route back runs through the same ASes, which
// ReturnPath checks.
func (l *Lab) Path(ctx context.Context, probe string) (PathOf, error) {
	up, ok := l.Topo.Uplink(probe)
	if !ok {
		return PathOf{}, fmt.Errorf("lab: no probe %q", probe)
	}
	p, err := l.pathFrom(ctx, up.A)
	p.Probe = probe
	p.Delay += ms(up.Delay)
	return p, err
}

// RegionPath follows the BGP best path from region's router to the site
// that catches the replies of every address in the region.
func (l *Lab) RegionPath(ctx context.Context, region string) (PathOf, error) {
	for _, r := range l.Topo.Regions {
		if r.Name == region {
			p, err := l.pathFrom(ctx, r.Router)
			p.Region = region
			return p, err
		}
	}
	return PathOf{}, fmt.Errorf("lab: no region %q", region)
}

// pathFrom follows router's best path to the anycast address.
func (l *Lab) pathFrom(ctx context.Context, router string) (PathOf, error) {
	rs, err := l.Routes(ctx, router, netip.MustParseAddr(l.Topo.Anycast))
	if err != nil {
		return PathOf{}, err
	}
	best, ok := Best(rs)
	if !ok {
		return PathOf{}, fmt.Errorf("lab: %s has no route to %s", router, l.Topo.Anycast)
	}
	p := PathOf{Hops: []string{router}}
	for _, as := range best.ASPath {
		n, ok := l.Topo.NodeByAS(as)
		if !ok {
			return p, fmt.Errorf("lab: AS%d on %s's path is not in the lab", as, router)
		}
		prev := p.Hops[len(p.Hops)-1]
		if n.Name == prev {
			continue
		}
		w, ok := l.Topo.Wire(prev, n.Name)
		if !ok {
			return p, fmt.Errorf("lab: %s and %s are on %s's path but not linked", prev, n.Name, router)
		}
		p.Hops = append(p.Hops, n.Name)
		p.Delay += ms(w.Delay)
	}
	last, _ := l.Topo.Node(p.Hops[len(p.Hops)-1])
	if last.Kind != KindSite {
		return p, fmt.Errorf("lab: %s's path %v does not end at a site", router, best.ASPath)
	}
	p.Site = last.Name
	return p, nil
}

// ReturnPath is the routers from site back to probe, by the site's BGP
// best route to the probe's address.
func (l *Lab) ReturnPath(ctx context.Context, site, probe string) ([]string, error) {
	up, ok := l.Topo.Uplink(probe)
	if !ok {
		return nil, fmt.Errorf("lab: no probe %q", probe)
	}
	rs, err := l.Routes(ctx, site, up.AddrB())
	if err != nil {
		return nil, err
	}
	best, ok := Best(rs)
	if !ok {
		return nil, fmt.Errorf("lab: site %s has no route to %s", site, up.AddrB())
	}
	hops := []string{site}
	for _, as := range best.ASPath {
		n, ok := l.Topo.NodeByAS(as)
		if ok && n.Name != hops[len(hops)-1] {
			hops = append(hops, n.Name)
		}
	}
	return hops, nil
}

func ms(d interface{ Milliseconds() int64 }) float64 { return float64(d.Milliseconds()) }

// Status writes what runs and how BGP routes the anycast address.
func (l *Lab) Status(ctx context.Context, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tNAMESPACE\tPROCESS\tBGP")
	nss, err := namespaces(ctx, l.Topo.Prefix)
	if err != nil {
		return err
	}
	for _, n := range l.Topo.Nodes() {
		ns := "missing"
		for _, x := range nss {
			if x == n.NS {
				ns = n.NS
			}
		}
		proc, bgp := "-", "-"
		if n.AS != 0 {
			proc = "bird " + state(l.birdPidPath(n.Name))
			if out, err := l.birdc(ctx, n.Name, "show", "protocols"); err == nil {
				var up []string
				for _, p := range ParseProtocols(out) {
					if p.Proto == "BGP" {
						up = append(up, p.Name+"="+strings.Fields(p.Info + " -")[0])
					}
				}
				bgp = strings.Join(up, " ")
			}
		}
		if n.Kind == KindSite {
			st := l.Sites[n.Name]
			proc += ", responder " + state(l.sitePidPath(n.Name))
			switch {
			case st.Withdrawn:
				bgp += " [withdrawn]"
			case st.Prepend > 0:
				bgp += fmt.Sprintf(" [prepend %d]", st.Prepend)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, ns, proc, bgp)
	}
	fmt.Fprintf(tw, "forwarder\t-\t-\t%s\t-\n", state(l.path(forwardPid)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PROBE\tSITE\tPATH\tRTT (ms)\n")
	for _, p := range l.Topo.Probes {
		path, err := l.Path(ctx, p.Name)
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t%v\t-\n", p.Name, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\n", p.Name, path.Site, strings.Join(path.Hops, " > "), 2*path.Delay)
	}
	if err := tw.Flush(); err != nil || len(l.Topo.Regions) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "REGION\tPREFIX\tSILENT\tSITE\tPATH\n")
	for _, r := range l.Topo.Regions {
		silent := "-"
		if len(r.Silent) > 0 {
			silent = strings.Join(r.Silent, " ")
		}
		path, err := l.RegionPath(ctx, r.Name)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t%v\n", r.Name, r.Prefix, silent, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Prefix, silent, path.Site, strings.Join(path.Hops, " > "))
	}
	return tw.Flush()
}

func state(pidPath string) string {
	pid := readPid(pidPath)
	switch {
	case pid == 0:
		return "no pid file (" + filepath.Base(pidPath) + ")"
	case alive(pid):
		return fmt.Sprintf("running (pid %d)", pid)
	}
	if _, err := os.Stat(pidPath); err == nil {
		return fmt.Sprintf("dead (pid %d)", pid)
	}
	return "stopped"
}
