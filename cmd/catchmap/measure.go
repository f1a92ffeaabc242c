package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
	"github.com/catchmap/catchmap/sites"
)

// Output formats of measure.
const (
	formatJSON   = "json"
	formatNDJSON = "ndjson"
	formatCSV    = "csv"
	formatTable  = "table"
)

type measureCmd struct {
	Targets []string `arg:"" optional:"" name:"target" help:"What to measure: host, host:port, [v6]:port, or a URL for --method http."`

	Method      string        `help:"Measurement method, one of ${methods}: dns asks CHAOS TXT and NSID, http reads a header or the body, icmp echoes, tcp connects." enum:"${methods}" default:"dns"`
	Preset      string        `help:"Site identification preset for the service (see catchmap presets)." placeholder:"NAME"`
	SiteRegex   string        `help:"Regexp that finds the site code in the identity: its group named site, (?P<site>...), when it has one, else its non-empty capture groups joined with \"-\" (overrides the preset's)." placeholder:"REGEXP"`
	Port        int           `help:"Port, when the target names none (default: 53 dns, 443 tcp, the URL's for http)."`
	IPv4        bool          `name:"ipv4" short:"4" help:"Measure the target's IPv4 address only."`
	IPv6        bool          `name:"ipv6" short:"6" help:"Measure the target's IPv6 address only."`
	Timeout     time.Duration `help:"Time limit for one measurement of one address." default:"5s"`
	Concurrency int           `help:"Targets measured at the same time." default:"32"`
	Format      string        `help:"Output: json, ndjson, csv, table, or auto (table on a terminal, else ndjson)." enum:"json,ndjson,csv,table,auto" default:"auto"`
	Sites       string        `help:"YAML file of your own site codes, for the table's site names." placeholder:"FILE" type:"path"`

	QName  string `name:"qname" group:"dns" help:"DNS question name (default hostname.bind., or the preset's)."`
	QClass string `name:"qclass" group:"dns" help:"DNS question class: CH or IN (default CH, or the preset's)."`
	QType  string `name:"qtype" group:"dns" help:"DNS question type (default TXT, or the preset's)."`
	NoNSID bool   `name:"no-nsid" group:"dns" help:"Do not ask for the NSID EDNS option."`
	TCP    bool   `name:"tcp" group:"dns" help:"Ask over TCP instead of UDP."`

	AllowClassIN bool `name:"allow-class-in" group:"dns" help:"Take TXT records of class IN in answers to a CHAOS question as the identity, as dnsdist sends the CHAOS records it spoofs (by default they are mismatches: an interceptor's answers look the same)."`

	SiteHeader    string   `group:"http" help:"Response header that names the site (overrides the preset's)." placeholder:"NAME"`
	ConnectTo     string   `group:"http" help:"Connect to this address[:port] instead of resolving the URL's host (Host and SNI stay the URL's)." placeholder:"ADDR"`
	RequestHeader []string `group:"http" sep:"none" help:"Extra request header \"Name: value\"; repeat for more." placeholder:"HEADER"`
	HTTPMethod    string   `name:"http-method" group:"http" help:"HTTP request method: GET or HEAD." enum:"GET,HEAD" default:"GET"`
	Insecure      bool     `group:"http" help:"Do not verify the server's TLS certificate (labs, self-signed sites)."`

	Count      int           `group:"icmp" help:"Echo requests per address (default: the method's)."`
	Interval   time.Duration `group:"icmp" help:"Time between echo requests (default: the method's)."`
	Privileged bool          `group:"icmp" help:"Use raw ICMP sockets (needs root or CAP_NET_RAW) instead of unprivileged ping sockets."`
}

func (c *measureCmd) Run(e *env) error {
	if len(c.Targets) == 0 {
		return usageErrorf("measure: no target given: name at least one, e.g. catchmap measure 192.0.2.53 (see catchmap measure --help)")
	}
	if c.IPv4 && c.IPv6 {
		return usageErrorf("measure: -4 and -6 exclude each other: give neither to measure both address families")
	}
	if c.Concurrency < 1 {
		return usageErrorf("measure: --concurrency %d: must be at least 1", c.Concurrency)
	}
	if c.Timeout <= 0 {
		return usageErrorf("measure: --timeout %s: must be more than 0", c.Timeout)
	}
	if c.Count < 0 || c.Interval < 0 {
		return usageErrorf("measure: --count and --interval must not be negative")
	}
	format := c.Format
	if format == "auto" {
		format = formatNDJSON
		if isTerminal(e.stdout) {
			format = formatTable
		}
	}
	// The sites file is read whatever the format, so a broken one is
	// reported now rather than on the day someone asks for a table.
	var siteName func(string) string
	if format == formatTable || c.Sites != "" {
		t, err := c.siteTable()
		if err != nil {
			return err
		}
		siteName = placeName(t)
	}

	specs := make([]spec.Spec, len(c.Targets))
	for i, t := range c.Targets {
		specs[i] = c.spec(t)
	}
	m := probe.NewMeasurer(e.log)
	defer m.Close()
	rs, err := m.MeasureAll(e.ctx, specs, c.Concurrency)
	if errors.Is(err, spec.ErrBadSpec) {
		return usageErrorf("measure: %v", err)
	}
	if err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	if err := writeRecords(e.stdout, format, rs, siteName); err != nil {
		return err
	}
	failed := 0
	for i := range rs {
		if !answered(&rs[i]) {
			failed++
		}
	}
	if failed > 0 {
		return &exitError{code: exitFail, msg: fmt.Sprintf("measure: %d of %d measurements failed", failed, len(rs))}
	}
	return nil
}

func (c *measureCmd) spec(target string) spec.Spec {
	s := spec.Spec{
		Target:         target,
		Method:         c.Method,
		Port:           c.Port,
		Preset:         c.Preset,
		SiteRegex:      c.SiteRegex,
		QName:          c.QName,
		QClass:         c.QClass,
		QType:          c.QType,
		NoNSID:         c.NoNSID,
		TCP:            c.TCP,
		AllowClassIN:   c.AllowClassIN,
		HTTPMethod:     c.HTTPMethod,
		ConnectTo:      c.ConnectTo,
		RequestHeaders: c.RequestHeader,
		SiteHeader:     c.SiteHeader,
		Insecure:       c.Insecure,
		Count:          c.Count,
		Interval:       spec.Duration(c.Interval),
		Privileged:     c.Privileged,
		Timeout:        spec.Duration(c.Timeout),
	}
	switch {
	case c.IPv4:
		s.AF = 4
	case c.IPv6:
		s.AF = 6
	}
	return s
}

// siteTable is the built-in site table with the user's --sites on top.
func (c *measureCmd) siteTable() (*sites.Table, error) {
	t := sites.Default()
	if c.Sites == "" {
		return t, nil
	}
	user, err := sites.LoadFile(c.Sites)
	if err != nil {
		return nil, usageErrorf("measure: --sites: %v", err)
	}
	return t.With(user), nil
}

// placeName names a site for people: its city and country when the table
// knows them, else its name.
func placeName(t *sites.Table) func(string) string {
	return func(code string) string {
		s, ok := t.Lookup(code)
		if !ok {
			return ""
		}
		name := s.City
		if name == "" {
			name = s.Name
		}
		if s.Country != "" {
			name += ", " + s.Country
		}
		return name
	}
}

// answered reports whether a measurement did what the user asked: dns and
// http must name the answering instance, icmp and tcp must get an answer.
func answered(r *result.Record) bool {
	if !r.OK() {
		return false
	}
	switch r.Method {
	case result.MethodDNS, result.MethodHTTP:
		return r.Identity != ""
	}
	return true
}

func writeRecords(w io.Writer, format string, rs []result.Record, siteName func(string) string) error {
	var err error
	switch format {
	case formatJSON:
		err = result.WriteJSON(w, rs)
	case formatNDJSON:
		nw := result.NewNDJSONWriter(w)
		for i := range rs {
			if err = nw.Write(&rs[i]); err != nil {
				break
			}
		}
	case formatCSV:
		cw := result.NewCSVWriter(w)
		for i := range rs {
			if err = cw.Write(&rs[i]); err != nil {
				break
			}
		}
		if err == nil {
			err = cw.Flush()
		}
	case formatTable:
		err = result.WriteTable(w, rs, siteName)
	default:
		return fmt.Errorf("measure: unknown format %q", format)
	}
	if err != nil {
		return fmt.Errorf("measure: writing results: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a terminal; run gets its stdout as an
// io.Writer so tests can capture it, and only a real *os.File can be one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
