package main

import (
	"fmt"

	"github.com/catchmap/catchmap/sweep/hitlist"
)

// hitlistCmd works on sweep hitlists without sending anything.
type hitlistCmd struct {
	Check hitlistCheckCmd `cmd:"" help:"Validate a hitlist without contacting anything: how many addresses and /24s it holds after the opt-out list; exit 2 naming the first bad line."`
}

// hitlistFlags are how every command that takes a hitlist reads it.
type hitlistFlags struct {
	HitlistFormat string   `help:"Hitlist format: auto (told from the content), plain (an address or prefix per line), isi (USC/ISI IPv4 hitlist) or verfploeter (ISI Verfploeter hitlist)." enum:"auto,plain,isi,verfploeter" default:"auto"`
	MinScore      *int     `help:"ISI hitlist only: probe only addresses scored at least N (ISI scores run from -2 to 99)." placeholder:"N"`
	OptOut        []string `help:"Opt-out list: a file of prefixes never to probe (plain or compressed). Repeat for several." type:"path" placeholder:"FILE"`
}

// read reads and checks the hitlist in path, less the opt-out lists. Its
// errors are bad usage: the hitlist is the user's input.
func (f *hitlistFlags) read(path string) (*hitlist.List, error) {
	var optOut *hitlist.Set
	for _, p := range f.OptOut {
		s, err := hitlist.ReadSetFile(p)
		if err != nil {
			return nil, usageErrorf("--opt-out: %v", err)
		}
		optOut = optOut.Union(s)
	}
	l, err := hitlist.ReadFile(path, hitlist.Options{Format: hitlist.Format(f.HitlistFormat), MinScore: f.MinScore, OptOut: optOut})
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return l, nil
}

type hitlistCheckCmd struct {
	hitlistFlags `embed:""`
	File         string `arg:"" help:"The hitlist (plain, gzip, bzip2 or xz)." type:"path"`
}

func (c *hitlistCheckCmd) Run(e *env) error {
	l, err := c.read(c.File)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %d addresses, %d /24s after the opt-out list (%s format, %d lines; %d addresses opted out, %d lines skipped)\n",
		c.File, l.Addresses, len(l.Targets), l.Format, l.Lines, l.OptedOut, l.Skipped)
	return nil
}
