// Package atlas turns RIPE Atlas DNS results (a CHAOS TXT hostname.bind
// measurement from thousands of probes, or the built-in root-server
// measurements) into catchmap result records, so that maps, diffs and gates
// work on them as on catchmap's own measurements.
//
// A Reader streams results out of any shape Atlas writes them in: a JSON
// array (the /results/ endpoint and downloads), one object per line, or the
// /latest/ object keyed by probe id, plain, gzip or bzip2. A Converter reads
// each result's answer with the same code as the dns method
// (probe.IdentifyDNS) and places it with probe metadata (ReadProbes) or
// GeoIP. Every result becomes exactly one record (one per item of a
// resultset), failures included, with an id derived from the result so that
// importing the same results twice stores nothing twice.
package atlas

import (
	"encoding/json"
	"fmt"

	"github.com/miekg/dns"
)

// Result is one Atlas DNS result: the fields catchmap reads.
type Result struct {
	Type      string    `json:"type"`
	AF        int       `json:"af"`
	DstAddr   string    `json:"dst_addr"`
	DstName   string    `json:"dst_name"`
	From      string    `json:"from"` // the probe's public address
	MsmID     int64     `json:"msm_id"`
	PrbID     int64     `json:"prb_id"`
	Proto     string    `json:"proto"` // UDP or TCP
	Timestamp int64     `json:"timestamp"`
	Qbuf      string    `json:"qbuf"`
	Result    *Answer   `json:"result"`
	Error     Failure   `json:"error"`
	ResultSet []SetItem `json:"resultset"`

	// DecodeErr is set when a field had the wrong JSON type: the other
	// fields are read, and the record says what was wrong.
	DecodeErr error `json:"-"`
}

// SetItem is one answer of a resultset: the probe asked each of its own
// resolvers.
type SetItem struct {
	AF      int     `json:"af"`
	DstAddr string  `json:"dst_addr"`
	DstName string  `json:"dst_name"`
	Proto   string  `json:"proto"`
	Time    int64   `json:"time"`
	Qbuf    string  `json:"qbuf"`
	Result  *Answer `json:"result"`
	Error   Failure `json:"error"`
}

// Answer is a result's "result" member.
type Answer struct {
	Abuf string  `json:"abuf"` // base64 of the answer in wire format
	RT   float64 `json:"rt"`   // milliseconds
	Size int     `json:"size"`
	// Answers are the first records, as the probe decoded them. Their
	// shape changed with the firmware, so they are read (Records) only
	// when there is no abuf, which says everything they say.
	Answers json.RawMessage `json:"answers"`
}

// Records reads Answers.
func (a *Answer) Records() ([]RR, error) {
	if len(a.Answers) == 0 || string(a.Answers) == "null" {
		return nil, nil
	}
	var rrs []RR
	if err := json.Unmarshal(a.Answers, &rrs); err != nil {
		return nil, fmt.Errorf("the decoded answers do not read: %w", err)
	}
	return rrs, nil
}

// RR is one record of Answer.Answers.
type RR struct {
	Name  string `json:"NAME"`
	Type  RRType `json:"TYPE"`
	RData RData  `json:"RDATA"`
}

// RRType is a record's type by name: firmware 4460 writes the number (16),
// later firmware the name (TXT).
type RRType string

// UnmarshalJSON reads either shape.
func (t *RRType) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*t = RRType(s)
		return err
	}
	var n uint16
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("TYPE %s is neither a type name nor a type number", b)
	}
	*t = RRType(dns.Type(n).String())
	return nil
}

// RData holds a decoded record's data: firmware before 4750 writes one
// string, later firmware a list of strings.
type RData []string

// UnmarshalJSON reads either shape.
func (d *RData) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = RData{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*d = ss
	return nil
}

// Failure is a result's "error" member, such as {"timeout": 5000} or
// {"socket": "connect failed Network is unreachable"}; nil when absent.
type Failure map[string]any

func (e Failure) String() string {
	if e == nil {
		return ""
	}
	if t, ok := e["timeout"]; ok {
		return fmt.Sprintf("timeout: no answer within %v ms", t)
	}
	b, err := json.Marshal(map[string]any(e))
	if err != nil {
		return fmt.Sprint(map[string]any(e))
	}
	return string(b)
}
