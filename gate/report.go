package gate

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/catchmap/catchmap/internal/termtext"
)

// summary is the one-line verdict every format leads with.
func (r *Report) summary() string {
	failed, errs := len(r.Failed(Fail)), len(r.Failed(Error))
	n := len(r.Outcomes)
	switch r.Status {
	case Pass:
		return fmt.Sprintf("PASS: all %d rules passed", n)
	case Fail:
		s := fmt.Sprintf("FAIL: %d of %d rules failed", failed, n)
		if errs > 0 {
			s += fmt.Sprintf(", %d could not be judged", errs)
		}
		return s
	}
	return fmt.Sprintf("ERROR: could not judge the change (%d of %d rules could not be judged, %d failed)", errs, n, failed)
}

func window(s Side) string {
	return fmt.Sprintf("%s to %s, %d probes", s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339), s.Probes)
}

// WriteText writes the report for a terminal or a CI log: one line per rule
// with its measured value, limit and verdict, then the reasons.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	// Site codes, targets and rule names come from data and files: none
	// may drive the terminal.
	p := termtext.Printable
	fmt.Fprintf(&b, "target %s\nbaseline %s\ncurrent  %s\n\n", p(r.Target), window(r.Baseline), window(r.Current))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tMEASURED\tLIMIT\tRESULT")
	for _, o := range r.Outcomes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p(o.Rule), p(o.Measured), p(o.Limit), o.Status.Word())
	}
	tw.Flush()
	b.WriteByte('\n')
	for _, o := range r.Outcomes {
		if o.Detail != "" {
			fmt.Fprintf(&b, "%s %s: %s\n", o.Status.Word(), p(o.Rule), p(o.Detail))
		}
	}
	if len(r.Flows) > 0 {
		fmt.Fprintf(&b, "moved: %s\n", p(flowWords(r.Flows, 10)))
	}
	b.WriteString(r.summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

var statusMark = map[Status]string{Pass: "✅ PASS", Fail: "❌ FAIL", Error: "⚠️ ERROR"}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// WriteMarkdown writes the report as Markdown for a GitHub job summary
// ($GITHUB_STEP_SUMMARY): a verdict, a table of rules, and the reasons.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### catchmap check: %s — %s\n\n", mdCell(r.Target), statusMark[r.Status])
	fmt.Fprintf(&b, "Baseline %s; current %s.\n\n", window(r.Baseline), window(r.Current))
	b.WriteString("| Rule | Measured | Limit | Result |\n|---|---|---|---|\n")
	for _, o := range r.Outcomes {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(o.Rule), mdCell(o.Measured), mdCell(o.Limit), statusMark[o.Status])
	}
	b.WriteByte('\n')
	for _, o := range r.Outcomes {
		if o.Detail != "" {
			fmt.Fprintf(&b, "- **%s** %s: %s\n", o.Status.Word(), mdCell(o.Rule), mdCell(o.Detail))
		}
	}
	if len(r.Flows) > 0 {
		fmt.Fprintf(&b, "- Moved: %s\n", flowWords(r.Flows, 10))
	}
	fmt.Fprintf(&b, "\n%s\n", r.summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// JUnit XML, as CI systems read it: one test case per rule.
type (
	// JUnitSuites is the document WriteJUnit writes.
	JUnitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Suites   []JUnitSuite `xml:"testsuite"`
	}
	// JUnitSuite is the check of one target.
	JUnitSuite struct {
		Name      string      `xml:"name,attr"`
		Tests     int         `xml:"tests,attr"`
		Failures  int         `xml:"failures,attr"`
		Errors    int         `xml:"errors,attr"`
		Timestamp string      `xml:"timestamp,attr,omitempty"`
		Cases     []JUnitCase `xml:"testcase"`
	}
	// JUnitCase is one rule.
	JUnitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Failure   *JUnitProblem `xml:"failure"`
		Error     *JUnitProblem `xml:"error"`
		SystemOut string        `xml:"system-out,omitempty"`
	}
	// JUnitProblem is a failed or unjudged rule.
	JUnitProblem struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// WriteJUnit writes the report as JUnit XML: one testcase per rule, a
// <failure> for each failed rule and an <error> for each rule that could
// not be judged.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := JUnitSuite{Name: "catchmap check " + r.Target, Tests: len(r.Outcomes),
		Timestamp: r.Current.To.UTC().Format(time.RFC3339)}
	for _, o := range r.Outcomes {
		c := JUnitCase{Name: o.Rule, Classname: "catchmap.gate." + o.Kind,
			SystemOut: fmt.Sprintf("measured %s, limit %s", o.Measured, o.Limit)}
		p := &JUnitProblem{Message: fmt.Sprintf("%s: measured %s, limit %s", o.Rule, o.Measured, o.Limit), Type: o.Kind, Text: o.Detail}
		switch o.Status {
		case Fail:
			c.Failure = p
			s.Failures++
		case Error:
			c.Error = p
			s.Errors++
		}
		s.Cases = append(s.Cases, c)
	}
	doc := JUnitSuites{Name: "catchmap", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Suites: []JUnitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
