package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/catchmap/catchmap/lab"
)

// labCmd builds and drives a small real Internet in network namespaces,
// where BGP (BIRD) decides which site each probe reaches.
type labCmd struct {
	Dir string `help:"Directory of the lab's state: configurations, sockets, pid files, logs." default:"/run/catchmap-lab" placeholder:"DIR"`

	Up       labUpCmd       `cmd:"" help:"Build the lab (namespaces, delayed links, BIRD, site responders) and wait for BGP to converge."`
	Down     labDownCmd     `cmd:"" help:"Stop every process of the lab and remove its namespaces, also after a failed run."`
	Status   labStatusCmd   `cmd:"" help:"Show what runs, the BGP sessions, and which site each probe reaches."`
	Withdraw labWithdrawCmd `cmd:"" help:"Stop a site announcing the anycast prefix."`
	Restore  labRestoreCmd  `cmd:"" help:"Announce a site's prefix again, without prepends."`
	Prepend  labPrependCmd  `cmd:"" help:"Announce a site's prefix with N extra copies of its AS."`
	Forward  labForwardCmd  `cmd:"" hidden:"" help:"Run the lab's delayed links (started by lab up)."`
	Site     labSiteCmd     `cmd:"" hidden:"" help:"Run one site's responders inside its namespace (started by lab up)."`
}

// needRoot refuses to run the lab without root: namespaces and BIRD need it.
func needRoot() error {
	if os.Geteuid() != 0 {
		return &exitError{code: exitUsage, msg: "catchmap lab needs root (network namespaces and bird)"}
	}
	return nil
}

type labUpCmd struct {
	Topology string `help:"Topology YAML (see lab/default.yaml); the built-in one when unset." placeholder:"FILE"`
}

func (c *labUpCmd) Run(e *env, l *labCmd) error {
	if err := needRoot(); err != nil {
		return err
	}
	t := lab.DefaultTopology()
	if c.Topology != "" {
		var err error
		if t, err = lab.ReadTopology(c.Topology); err != nil {
			return usageErrorf("lab up: %v", err)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab up: finding the catchmap binary to run the links and sites: %w", err)
	}
	up, err := lab.Up(e.ctx, e.log, t, l.Dir, lab.Options{Bin: bin})
	if err != nil {
		return &exitError{code: exitUsage, msg: "lab up: " + err.Error()}
	}
	if addr, ok := t.OpsAddr(); ok {
		fmt.Fprintf(e.stdout, "lab up in %s: %d sites announce %s; ops host %s in namespace %s-%s\n",
			l.Dir, len(t.Sites), t.Anycast, addr, t.Prefix, lab.OpsName)
	}
	return up.Status(e.ctx, e.stdout)
}

type labDownCmd struct {
	Prefix string `help:"Namespace prefix to clean up when the directory holds no topology." default:"cmlab"`
}

func (c *labDownCmd) Run(e *env, l *labCmd) error {
	if err := needRoot(); err != nil {
		return err
	}
	return lab.Down(e.ctx, e.log, l.Dir, c.Prefix)
}

type labStatusCmd struct{}

func (c *labStatusCmd) Run(e *env, l *labCmd) error {
	if err := needRoot(); err != nil {
		return err
	}
	lb, err := lab.Open(e.log, l.Dir)
	if err != nil {
		return usageErrorf("lab status: %v", err)
	}
	return lb.Status(e.ctx, e.stdout)
}

type labWithdrawCmd struct {
	Site string `arg:"" help:"Site name, e.g. ams."`
}

func (c *labWithdrawCmd) Run(e *env, l *labCmd) error {
	return changeSite(e, l, func(ctx context.Context, lb *lab.Lab) error { return lb.Withdraw(ctx, c.Site) })
}

type labRestoreCmd struct {
	Site string `arg:"" help:"Site name, e.g. ams."`
}

func (c *labRestoreCmd) Run(e *env, l *labCmd) error {
	return changeSite(e, l, func(ctx context.Context, lb *lab.Lab) error { return lb.Restore(ctx, c.Site) })
}

type labPrependCmd struct {
	Site string `arg:"" help:"Site name, e.g. ams."`
	N    int    `arg:"" help:"Extra copies of the site's AS (0 removes the prepend)."`
}

func (c *labPrependCmd) Run(e *env, l *labCmd) error {
	return changeSite(e, l, func(ctx context.Context, lb *lab.Lab) error { return lb.Prepend(ctx, c.Site, c.N) })
}

// changeSite applies a change to a site and waits for BGP to settle.
func changeSite(e *env, l *labCmd, change func(context.Context, *lab.Lab) error) error {
	if err := needRoot(); err != nil {
		return err
	}
	lb, err := lab.Open(e.log, l.Dir)
	if err != nil {
		return usageErrorf("lab: %v", err)
	}
	if err := change(e.ctx, lb); err != nil {
		return usageErrorf("%v", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, lab.ConvergeTimeout)
	defer cancel()
	at, err := lb.WaitConverged(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "BGP settled; BIRD last changed a route at %s\n", at.UTC().Format("15:04:05.000"))
	return lb.Status(e.ctx, e.stdout)
}

type labForwardCmd struct{}

func (c *labForwardCmd) Run(e *env, l *labCmd) error {
	if err := needRoot(); err != nil {
		return err
	}
	lb, err := lab.Open(e.log, l.Dir)
	if err != nil {
		return err
	}
	return lab.Forward(e.ctx, e.log, lb, func() error {
		return os.WriteFile(filepath.Join(l.Dir, "forward.ready"), []byte("ready\n"), 0o644)
	})
}

type labSiteCmd struct {
	Identity string `help:"What the site answers to CHAOS and NSID queries." required:""`
	Listen   string `help:"Address to serve DNS (53) and HTTP (80) on." required:""`
	Ready    string `help:"File to create once serving." placeholder:"FILE"`
}

func (c *labSiteCmd) Run(e *env) error {
	if err := needRoot(); err != nil {
		return err
	}
	return lab.RunSite(e.ctx, e.log, c.Identity, c.Listen, c.Ready)
}
