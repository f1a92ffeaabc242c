package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/catchmap/catchmap/probe/identify"
)

type presetsCmd struct {
	Format string `help:"Output: table or json." enum:"table,json" default:"table"`
}

// presetJSON is the JSON form of a preset; the field names are part of the
// CLI's output, so they are spelled here rather than borrowed from Go names.
type presetJSON struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	DNS         *dnsJSON  `json:"dns,omitempty"`
	HTTP        *httpJSON `json:"http,omitempty"`
}

type dnsJSON struct {
	QName    string   `json:"qname"`
	QClass   string   `json:"qclass"`
	QType    string   `json:"qtype"`
	Patterns []string `json:"patterns,omitempty"`
	NoSite   bool     `json:"no_site,omitempty"`
}

type httpJSON struct {
	Header         string   `json:"header,omitempty"`
	Last           bool     `json:"last,omitempty"`
	Path           string   `json:"path,omitempty"`
	Body           bool     `json:"body,omitempty"`
	Patterns       []string `json:"patterns"`
	RequestHeaders []string `json:"request_headers,omitempty"`
}

func (c *presetsCmd) Run(e *env) error {
	all := identify.All()
	if c.Format == formatJSON {
		out := make([]presetJSON, 0, len(all))
		for _, p := range all {
			j := presetJSON{Name: p.Name, Description: p.Description}
			if d := p.DNS; d != nil {
				j.DNS = &dnsJSON{QName: d.QName, QClass: d.QClass, QType: d.QType, Patterns: d.Patterns, NoSite: d.NoSite}
			}
			if h := p.HTTP; h != nil {
				j.HTTP = &httpJSON{Header: h.Header, Last: h.Last, Path: h.Path, Body: h.Body,
					Patterns: h.Patterns, RequestHeaders: h.RequestHeaders}
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}

	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tMETHOD\tLOOKS AT\tPATTERN\tDESCRIPTION")
	for _, p := range all {
		desc := p.Description
		if d := p.DNS; d != nil {
			pattern := strings.Join(d.Patterns, " | ")
			if d.NoSite {
				pattern = "(names no site)"
			}
			fmt.Fprintf(w, "%s\tdns\t%s %s %s\t%s\t%s\n", p.Name, d.QClass, d.QType, d.QName, pattern, desc)
			desc = "" // once per preset is enough
		}
		if h := p.HTTP; h != nil {
			where := "header " + h.Header
			switch {
			case h.Body && h.Path != "":
				where = "body of " + h.Path
			case h.Body:
				where = "body"
			case h.Last:
				where += " (last entry)"
			}
			if len(h.RequestHeaders) > 0 {
				where += ", sending " + strings.Join(h.RequestHeaders, ", ")
			}
			fmt.Fprintf(w, "%s\thttp\t%s\t%s\t%s\n", p.Name, where, strings.Join(h.Patterns, " | "), desc)
		}
	}
	return w.Flush()
}
