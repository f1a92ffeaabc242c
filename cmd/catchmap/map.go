package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/catchmap/catchmap/aggregator/mapsapi"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/internal/termtext"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/sites"
)

// Output formats of map and diff beyond measure's.
const formatGeoJSON = "geojson"

// maxAnswer bounds what map and diff read from an aggregator: a catchment
// of every H3 cell at resolution 7 with all its fields stays well below.
const maxAnswer = 512 << 20

// mapSource is where map and diff get their records (an aggregator, or a
// results file computed locally) and how they bin them.
type mapSource struct {
	Target     string        `required:"" help:"Target, as named in the plan (the results' target field)." placeholder:"NAME"`
	Aggregator string        `help:"Aggregator to ask, e.g. http://127.0.0.1:8080." placeholder:"URL"`
	Token      string        `help:"Read token for the aggregator, when it requires one (default: $CATCHMAP_TOKEN)." placeholder:"TOKEN"`
	Input      string        `help:"NDJSON results file (catchmap measure --format ndjson, or GET /api/v1/results?format=ndjson) to compute from locally; - reads stdin." placeholder:"FILE" type:"path"`
	Res        int           `help:"H3 resolution, 0 (continents) to 7 (cities)." default:"3"`
	By         string        `help:"Bin probes into cells by one of: ${groupings}." enum:"${groupings}" default:"h3"`
	Sites      string        `help:"YAML file of your own site codes, for distances with --input (the aggregator uses its own)." placeholder:"FILE" type:"path"`
	Timeout    time.Duration `help:"Time limit for asking the aggregator." default:"60s"`
	tlsFlags   `embed:""`
}

// check validates the flags shared by map and diff.
func (s *mapSource) check(cmd string) error {
	switch {
	case (s.Aggregator == "") == (s.Input == ""):
		return usageErrorf("%s: give either --aggregator URL (ask a running aggregator) or --input FILE (compute from a results file)", cmd)
	case strings.TrimSpace(s.Target) == "":
		return usageErrorf("%s: --target is empty: name the target as in the plan", cmd)
	case s.Res < maps.MinRes || s.Res > maps.MaxRes:
		return usageErrorf("%s: --res %d is out of range: use %d to %d", cmd, s.Res, maps.MinRes, maps.MaxRes)
	case s.Sites != "" && s.Aggregator != "":
		return usageErrorf("%s: --sites applies to --input only: the aggregator places sites with its own table", cmd)
	case s.Timeout <= 0:
		return usageErrorf("%s: --timeout %s: must be more than 0", cmd, s.Timeout)
	}
	if s.Aggregator != "" {
		u, err := url.Parse(s.Aggregator)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErrorf("%s: --aggregator %q is not an http(s) URL: use e.g. http://127.0.0.1:8080", cmd, s.Aggregator)
		}
	}
	return nil
}

// options are the maps options of the flags; the window is the caller's.
func (s *mapSource) options() maps.Options {
	o := maps.Options{Target: s.Target, By: s.By, Res: s.Res}
	if s.Res == 0 {
		o.Res = maps.ResBase
	}
	return o
}

// binning is the query of the binning flags, for the aggregator.
func (s *mapSource) binning() url.Values {
	return url.Values{"target": {s.Target}, "res": {strconv.Itoa(s.Res)}, "by": {s.By}}
}

// locator is the built-in site table with the user's sites file.
func (s *mapSource) locator(cmd string) (maps.SiteLocator, error) {
	t := sites.Default()
	if s.Sites != "" {
		user, err := sites.LoadFile(s.Sites)
		if err != nil {
			return nil, usageErrorf("%s: --sites: %v", cmd, err)
		}
		t = t.With(user)
	}
	return mapsapi.Sites(t), nil
}

// read streams the records of --input into fn.
func (s *mapSource) read(e *env, cmd string, fn func(*result.Record)) error {
	in := e.stdin
	if s.Input != "-" {
		f, err := os.Open(s.Input)
		if err != nil {
			return fmt.Errorf("%s: cannot read --input: %w", cmd, err)
		}
		defer f.Close()
		in = f
	}
	targets := map[string]bool{}
	err := result.ReadNDJSON(in, func(r *result.Record) error {
		targets[r.Target] = true
		fn(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: --input %s: %w", cmd, s.Input, err)
	}
	if !targets[s.Target] {
		return fmt.Errorf("%s: --input %s has no results of target %q: %s", cmd, s.Input, termtext.Printable(s.Target), fileTargets(targets))
	}
	return nil
}

// fileTargets lists the targets of an input file for a message.
func fileTargets(targets map[string]bool) string {
	if len(targets) == 0 {
		return "the file holds no results"
	}
	ts := make([]string, 0, len(targets))
	for t := range targets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	more := ""
	if len(ts) > 20 {
		ts, more = ts[:20], fmt.Sprintf(" and %d more", len(ts)-20)
	}
	for i := range ts {
		ts[i] = termtext.Printable(ts[i])
	}
	return "its targets are " + strings.Join(ts, ", ") + more
}

// fetch GETs an API path from the aggregator and copies the answer's body
// to w. Non-2xx answers become errors carrying the server's own message.
func (s *mapSource) fetch(e *env, cmd, path string, q url.Values, w io.Writer) error {
	ctx, cancel := context.WithTimeout(e.ctx, s.Timeout)
	defer cancel()
	tok := token.Parse(s.Token)
	if tok.IsZero() {
		tok = token.Parse(e.getenv("CATCHMAP_TOKEN"))
	}
	hc, err := s.httpClient(cmd, 0)
	if err != nil {
		return err
	}
	ac, err := api.NewClient(s.Aggregator, tok, hc)
	if err != nil {
		return usageErrorf("%s: --aggregator %q: %v", cmd, s.Aggregator, err)
	}
	resp, err := ac.Do(ctx, http.MethodGet, api.Prefix+path, q, nil, nil)
	var se *api.StatusError
	var ne *api.NetError
	switch {
	case errors.As(err, &se):
		hint := ""
		if se.Auth() {
			hint = " (give a read token with --token or $CATCHMAP_TOKEN)"
		}
		return fmt.Errorf("%s: the aggregator answered %d %s: %s%s", cmd, se.Status, http.StatusText(se.Status), termtext.Printable(mapClip(se.Message, 500)), hint)
	case errors.As(err, &ne):
		if ctx.Err() != nil && e.ctx.Err() == nil {
			return fmt.Errorf("%s: the aggregator at %s did not answer within %s: try a shorter window or a longer --timeout", cmd, s.Aggregator, s.Timeout)
		}
		return fmt.Errorf("%s: cannot reach the aggregator at %s: %v: check --aggregator and that the aggregator runs", cmd, s.Aggregator, ne.Err)
	case err != nil:
		return usageErrorf("%s: --aggregator %q: %v", cmd, s.Aggregator, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("%s: reading the aggregator's answer: %w", cmd, err)
	}
	if n > maxAnswer {
		return fmt.Errorf("%s: the aggregator's answer is larger than %d MiB: ask for a lower --res or a shorter window", cmd, maxAnswer>>20)
	}
	return nil
}

// fetchJSON fetches an API path and decodes its JSON answer into v.
func (s *mapSource) fetchJSON(e *env, cmd, path string, q url.Values, v any) error {
	var buf bytes.Buffer
	if err := s.fetch(e, cmd, path, q, &buf); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("%s: the aggregator's answer is not a %s result: %w: is %s a catchmap aggregator?", cmd, cmd, err, s.Aggregator)
	}
	return nil
}

type mapCmd struct {
	mapSource `embed:""`

	From      string        `help:"Start of the window, RFC 3339 (e.g. 2026-03-01T10:00:00Z)." placeholder:"TIME"`
	To        string        `help:"End of the window, RFC 3339 (default: now, or --from plus --window)." placeholder:"TIME"`
	Window    time.Duration `help:"Length of the window when --from or --to is missing (default 15m; with --input and no window flag at all, the whole file)."`
	MinProbes int           `help:"Probes a cell needs for high confidence (default 3)."`
	Dominance float64       `help:"Share of a cell its site needs for high confidence (default 0.8)."`
	Format    string        `help:"Output: table, json, geojson or csv (cells)." enum:"table,json,geojson,csv" default:"table"`
}

// Run shows the catchment map of one target.
func (c *mapCmd) Run(e *env) error {
	if err := c.check("map"); err != nil {
		return err
	}
	if c.MinProbes < 0 || c.Dominance < 0 || c.Dominance > 1 {
		return usageErrorf("map: --min-probes must be 1 or more and --dominance a share in (0, 1]")
	}
	from, to, err := mapWindow("map", c.From, c.To, c.Window, c.Input != "")
	if err != nil {
		return err
	}
	var cm *maps.Catchment
	if c.Aggregator != "" {
		q := c.binning()
		q.Set("from", from.Format(time.RFC3339Nano))
		q.Set("to", to.Format(time.RFC3339Nano))
		if c.MinProbes > 0 {
			q.Set("min_probes", strconv.Itoa(c.MinProbes))
		}
		if c.Dominance > 0 {
			q.Set("dominance", strconv.FormatFloat(c.Dominance, 'g', -1, 64))
		}
		if c.Format == formatGeoJSON || c.Format == formatCSV {
			q.Set("format", c.Format)
			return c.fetch(e, "map", "/catchment", q, e.stdout)
		}
		cm = new(maps.Catchment)
		if err := c.fetchJSON(e, "map", "/catchment", q, cm); err != nil {
			return err
		}
	} else {
		loc, err := c.locator("map")
		if err != nil {
			return err
		}
		o := c.options()
		o.From, o.To, o.MinProbes, o.Dominance = from, to, c.MinProbes, c.Dominance
		b, err := maps.NewBuilder(o, loc)
		if err != nil {
			return usageErrorf("map: %v", err)
		}
		if err := c.read(e, "map", b.Add); err != nil {
			return err
		}
		cm = b.Build()
	}
	switch c.Format {
	case formatGeoJSON:
		return maps.WriteGeoJSON(e.stdout, cm)
	case formatCSV:
		return maps.WriteCellsCSV(e.stdout, cm)
	case formatJSON:
		return mapWriteJSON(e.stdout, cm)
	}
	return mapWriteTable(e.stdout, cm)
}

// mapWindow resolves --from, --to and --window. With open set and none of
// them given, both ends stay zero: the whole input.
func mapWindow(cmd, fromS, toS string, length time.Duration, open bool) (from, to time.Time, err error) {
	if length < 0 {
		return from, to, usageErrorf("%s: --window %s must not be negative", cmd, length)
	}
	if fromS != "" && toS != "" && length != 0 {
		return from, to, usageErrorf("%s: --from, --to and --window together over-determine the window: give at most two", cmd)
	}
	if fromS == "" && toS == "" && length == 0 && open {
		return from, to, nil
	}
	if length == 0 {
		length = mapsapi.DefaultWindow
	}
	if from, err = mapParseTime(cmd, "from", fromS); err != nil {
		return from, to, err
	}
	if to, err = mapParseTime(cmd, "to", toS); err != nil {
		return from, to, err
	}
	switch {
	case fromS == "" && toS == "":
		to = time.Now().UTC()
		from = to.Add(-length)
	case fromS == "":
		from = to.Add(-length)
	case toS == "":
		to = from.Add(length)
	}
	if !from.Before(to) {
		return from, to, usageErrorf("%s: --from %s is not before --to %s", cmd, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// mapParseTime reads an RFC 3339 flag; zero when empty.
func mapParseTime(cmd, flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, usageErrorf("%s: --%s %q is not an RFC 3339 time: use e.g. 2026-03-01T10:00:00Z", cmd, flag, s)
	}
	return t.UTC(), nil
}

func mapWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// mapWriteTable writes one line per cell, then one per site.
func mapWriteTable(w io.Writer, c *maps.Catchment) error {
	fmt.Fprintf(w, "%s %s .. %s, by %s%s: %d probes (%d unlocated, %d unserved), %d results, rtt p50 %s\n\n",
		termtext.Printable(c.Target), c.From.Format(time.RFC3339), c.To.Format(time.RFC3339), c.By, mapRes(c.By, c.Resolution),
		c.Probes, c.Unlocated, c.Unserved, c.Results, mapMs(c.RTTP50))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CELL\tSITE\tSHARE\tPROBES\tP50\tP90\tCONFIDENCE")
	for _, cs := range c.Cells {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", termtext.Printable(cs.Cell), mapDash(cs.Site), mapPercent(cs.Share),
			cs.Probes, mapMs(cs.RTTP50), mapMs(cs.RTTP90), cs.Confidence)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSHARE\tPROBES\tCELLS\tP50\tNAME")
	for _, s := range c.Sites {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", termtext.Printable(s.Site), mapPercent(s.Share), s.Probes, s.Cells,
			mapMs(s.RTTP50), mapDash(s.Name))
	}
	return tw.Flush()
}

func mapRes(by string, res int) string {
	if by != maps.ByH3 {
		return ""
	}
	return " res " + strconv.Itoa(res)
}

func mapPercent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func mapMs(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', 1, 64) + "ms"
}

func mapDash(s string) string {
	if s == "" {
		return "-"
	}
	return termtext.Printable(s)
}

func mapClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
