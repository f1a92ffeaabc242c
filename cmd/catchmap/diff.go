package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/catchmap/catchmap/internal/termtext"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

type diffCmd struct {
	mapSource `embed:""`

	AFrom  string `name:"a-from" help:"Start of window A (before), RFC 3339 (aggregator default: 15 minutes before B)." placeholder:"TIME"`
	ATo    string `name:"a-to" help:"End of window A (aggregator default: the start of B)." placeholder:"TIME"`
	BFrom  string `name:"b-from" help:"Start of window B (after) (aggregator default: 15 minutes before its end)." placeholder:"TIME"`
	BTo    string `name:"b-to" help:"End of window B (aggregator default: now)." placeholder:"TIME"`
	Format string `help:"Output: table, json or csv." enum:"table,json,csv" default:"table"`
	Table  string `help:"CSV table: cells (one row per cell of either window) or flows (moved probes per site pair)." enum:"cells,flows" default:"cells"`
}

// Run compares the catchments of windows A and B.
func (c *diffCmd) Run(e *env) error {
	if err := c.check("diff"); err != nil {
		return err
	}
	flags := [4]struct{ name, value string }{{"a-from", c.AFrom}, {"a-to", c.ATo}, {"b-from", c.BFrom}, {"b-to", c.BTo}}
	var ts [4]time.Time
	for i, f := range flags {
		t, err := mapParseTime("diff", f.name, f.value)
		if err != nil {
			return err
		}
		if t.IsZero() && c.Input != "" {
			return usageErrorf("diff: --input needs both windows: give --a-from, --a-to, --b-from and --b-to")
		}
		ts[i] = t
	}
	for _, w := range [][2]int{{0, 1}, {2, 3}} {
		if !ts[w[0]].IsZero() && !ts[w[1]].IsZero() && !ts[w[0]].Before(ts[w[1]]) {
			return usageErrorf("diff: --%s must be before --%s", flags[w[0]].name, flags[w[1]].name)
		}
	}

	var d *maps.Diff
	if c.Aggregator != "" {
		q := c.binning()
		for i, f := range flags {
			if !ts[i].IsZero() {
				q.Set(f.name[:1]+"_"+f.name[2:], ts[i].Format(time.RFC3339Nano))
			}
		}
		if c.Format == formatCSV {
			q.Set("format", formatCSV)
			q.Set("table", c.Table)
			return c.fetch(e, "diff", "/diff", q, e.stdout)
		}
		d = new(maps.Diff)
		if err := c.fetchJSON(e, "diff", "/diff", q, d); err != nil {
			return err
		}
	} else {
		var err error
		if d, err = c.local(e, ts); err != nil {
			return err
		}
	}
	switch {
	case c.Format == formatJSON:
		return mapWriteJSON(e.stdout, d)
	case c.Format == formatCSV && c.Table == "flows":
		return maps.WriteFlowsCSV(e.stdout, d)
	case c.Format == formatCSV:
		return maps.WriteDiffCSV(e.stdout, d)
	}
	return diffWriteTable(e.stdout, d)
}

// local computes the diff from --input in one pass: each builder keeps
// only the records of its own window.
func (c *diffCmd) local(e *env, ts [4]time.Time) (*maps.Diff, error) {
	loc, err := c.locator("diff")
	if err != nil {
		return nil, err
	}
	var bs [2]*maps.Builder
	for i := range bs {
		o := c.options()
		o.From, o.To = ts[2*i], ts[2*i+1]
		if bs[i], err = maps.NewBuilder(o, loc); err != nil {
			return nil, usageErrorf("diff: %v", err)
		}
	}
	err = c.read(e, "diff", func(r *result.Record) {
		bs[0].Add(r)
		bs[1].Add(r)
	})
	if err != nil {
		return nil, err
	}
	d, err := maps.Compare(bs[0].Build(), bs[1].Build())
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	return d, nil
}

// diffWriteTable writes the moved share, the flows, the site shares and
// the cells whose site changed.
func diffWriteTable(w io.Writer, d *maps.Diff) error {
	fmt.Fprintf(w, "%s by %s%s\nA %s .. %s  rtt p50 %s\nB %s .. %s  rtt p50 %s\n",
		termtext.Printable(d.Target), d.By, mapRes(d.By, d.Resolution),
		d.FromA.Format(time.RFC3339), d.ToA.Format(time.RFC3339), mapMs(d.RTTP50A),
		d.FromB.Format(time.RFC3339), d.ToB.Format(time.RFC3339), mapMs(d.RTTP50B))
	fmt.Fprintf(w, "moved: %d of %d probes served in both windows, %s weighted\n\n", d.MovedProbes, d.Probes, mapPercent(d.MovedShare))
	sections := []struct {
		header string
		rows   [][]string
	}{{header: "FROM\tTO\tPROBES"}, {header: "SITE\tSHARE A\tSHARE B"}, {header: "CHANGED CELL\tFROM\tTO"}}
	for _, f := range d.Flows {
		sections[0].rows = append(sections[0].rows, []string{termtext.Printable(f.From), termtext.Printable(f.To), strconv.Itoa(f.Probes)})
	}
	for _, s := range d.Sites {
		sections[1].rows = append(sections[1].rows, []string{termtext.Printable(s.Site), mapPercent(s.ShareA), mapPercent(s.ShareB)})
	}
	for _, cc := range d.CellsChanged {
		sections[2].rows = append(sections[2].rows, []string{termtext.Printable(cc.Cell), mapDash(cc.From), mapDash(cc.To)})
	}
	for i, sec := range sections {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, sec.header)
		for _, r := range sec.rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
