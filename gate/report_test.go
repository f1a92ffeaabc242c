package gate

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// mixedReport has one rule of each status.
func mixedReport(t *testing.T) *Report {
	t.Helper()
	base := europe("fra", "fra", "ams")
	base.From, base.To = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	cur := europe("lhr", "fra", "ams")
	cur.From, cur.To = time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 11, 10, 0, 0, time.UTC)
	rules := []Rule{
		{MaxMovedShare: ptr(0.05)},
		{Name: "Germany | Austria", Region: &Region{Country: "DE", ServedBy: []string{"ams", "fra"}}},
		{Region: &Region{Country: "FR", ServedBy: []string{"cdg"}}},
		{MaxErrorShare: ptr(0.05)},
	}
	rep := Evaluate(base, cur, rules)
	if rep.Status != Fail {
		t.Fatalf("status %s, want fail", rep.Status)
	}
	return rep
}

func TestMarkdownGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := mixedReport(t).WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.md", buf.Bytes())
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	if err := mixedReport(t).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"RULE", "MEASURED", "LIMIT", "RESULT",
		"max_moved_share", "20.0% (1 of 5 probes)", "<= 5.0%", "FAIL",
		"region country FR", "ERROR",
		"max_error_share", "PASS",
		"FAIL max_moved_share: 1 probe changed site: fra->lhr 1",
		"moved: fra->lhr 1",
		"FAIL: 2 of 4 rules failed, 1 could not be judged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestJUnitParsesBack(t *testing.T) {
	var buf bytes.Buffer
	if err := mixedReport(t).WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), xml.Header) {
		t.Errorf("no XML header:\n%s", buf.String())
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, buf.String())
	}
	if doc.Tests != 4 || doc.Failures != 2 || doc.Errors != 1 || len(doc.Suites) != 1 {
		t.Fatalf("testsuites tests=%d failures=%d errors=%d suites=%d; want 4 2 1 1", doc.Tests, doc.Failures, doc.Errors, len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "catchmap check ns.example" || s.Tests != 4 || s.Failures != 2 || s.Errors != 1 || s.Timestamp != "2026-11-25T11:10:00Z" {
		t.Errorf("testsuite %+v", s)
	}
	var failures, errs int
	for _, c := range s.Cases {
		if c.Failure != nil {
			failures++
			if c.Failure.Type != c.Classname[len("catchmap.gate."):] || c.Failure.Message == "" || c.Failure.Text == "" {
				t.Errorf("failure of %s: %+v", c.Name, c.Failure)
			}
		}
		if c.Error != nil {
			errs++
		}
	}
	if len(s.Cases) != 4 || failures != 2 || errs != 1 {
		t.Errorf("%d cases, %d failures, %d errors; want 4, 2, 1", len(s.Cases), failures, errs)
	}
	if c := s.Cases[1]; c.Name != "Germany | Austria" || c.Classname != "catchmap.gate.region" || c.Failure == nil ||
		c.Failure.Message != "Germany | Austria: measured 50.0% (1 of 2 probes), limit >= 100.0% on ams, fra" {
		t.Errorf("case 2 = %+v (failure %+v)", c, c.Failure)
	}
}

func TestJSONReport(t *testing.T) {
	var buf bytes.Buffer
	if err := mixedReport(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Status != Fail || len(back.Outcomes) != 4 || back.Outcomes[0].Value == nil || *back.Outcomes[0].Value != 0.2 {
		t.Errorf("JSON report read back as %+v", back)
	}
}
