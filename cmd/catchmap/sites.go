package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/catchmap/catchmap/sites"
)

type sitesCmd struct {
	Codes  []string `arg:"" name:"code" help:"Site codes as presets yield them: IATA (ams), metro (lon), country-place (fi-hel), or your own."`
	Sites  string   `help:"YAML file of your own site codes; they win over built-in ones." placeholder:"FILE" type:"path"`
	Format string   `help:"Output: table or json." enum:"table,json" default:"table"`
}

// siteJSON is the JSON form of a site; the names are part of the CLI's output.
type siteJSON struct {
	Code    string   `json:"code"`
	Found   bool     `json:"found"`
	Name    string   `json:"name,omitempty"`
	City    string   `json:"city,omitempty"`
	Country string   `json:"country,omitempty"`
	Lat     *float64 `json:"lat,omitempty"` // a pointer: 0,0 is a real place
	Lon     *float64 `json:"lon,omitempty"`
	Kind    string   `json:"kind,omitempty"`
}

// Run looks every code up and prints what it found; it exits 1 when a code
// is unknown, after printing the rest, so scripts can check a list at once.
func (c *sitesCmd) Run(e *env) error {
	t := sites.Default()
	if c.Sites != "" {
		user, err := sites.LoadFile(c.Sites)
		if err != nil {
			return usageErrorf("sites: --sites: %v", err)
		}
		t = t.With(user)
	}
	var unknown []string
	out := make([]siteJSON, 0, len(c.Codes))
	for _, code := range c.Codes {
		s, ok := t.Lookup(code)
		if !ok {
			unknown = append(unknown, code)
			out = append(out, siteJSON{Code: code})
			continue
		}
		out = append(out, siteJSON{Code: s.Code, Found: true, Name: s.Name, City: s.City, Country: s.Country,
			Lat: &s.Lat, Lon: &s.Lon, Kind: s.Kind})
	}

	if c.Format == formatJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "CODE\tKIND\tCOUNTRY\tCITY\tLAT\tLON\tNAME")
		for _, s := range out {
			if !s.Found {
				fmt.Fprintf(w, "%s\t(unknown)\t\t\t\t\t\n", s.Code)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Code, s.Kind, s.Country, s.City,
				strconv.FormatFloat(*s.Lat, 'f', -1, 64), strconv.FormatFloat(*s.Lon, 'f', -1, 64), s.Name)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		return &exitError{code: exitFail, msg: fmt.Sprintf("sites: unknown code(s) %s: add them to a --sites file "+
			"(code, name, city, country, lat, lon)", strings.Join(unknown, ", "))}
	}
	return nil
}
