package atlas

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// The unit costs, in credits per result, from the cost table Atlas
// documents ("Measurement Cost Model" on
// https://atlas.ripe.net/docs/getting-started/credits.html). Atlas
// charges each result as it is delivered, at a unit cost it fixes when the
// measurement is scheduled; it has no endpoint that estimates one, so
// Estimate is only as good as this table.
const (
	// DNS: 10 credits a result over UDP, 20 over TCP.
	costDNSUDP = 10
	costDNSTCP = 20
	// Ping: packets × (size/1500 + 1); catchmap sends the default size,
	// 48 bytes, so each packet costs one credit.
	pingDefaultPackets = 3
	// A one-off measurement's result costs twice as much.
	oneOffFactor = 2
)

// CreditsPerResult is what one result of d costs, from the documented
// table. A definition without an interval is a one-off (Spec.Requests
// gives every periodic definition one).
func (d *Definition) CreditsPerResult() int64 {
	var c int64
	switch d.Type {
	case TypeDNS:
		c = costDNSUDP
		if strings.EqualFold(d.Protocol, "TCP") {
			c = costDNSTCP
		}
	case TypePing:
		c = pingDefaultPackets
		if d.Packets > 0 {
			c = int64(d.Packets)
		}
	}
	if d.Interval == 0 {
		c *= oneOffFactor
	}
	return c
}

// Cost is an estimate of what definitions will spend. It assumes that
// every probe asked for takes part and delivers every result: Atlas may
// find fewer probes and probes miss results, so the real spending is
// usually lower.
type Cost struct {
	Over    time.Duration
	Items   []CostItem
	Credits int64
}

// CostItem is the estimate of one definition.
type CostItem struct {
	Definition Definition
	Probes     int
	// Results is per probe: one for a one-off, else one an interval.
	Results   int64
	PerResult int64
	Credits   int64
}

// Estimate is what defs, each run by probes probes, spend over d. A
// one-off's results come once, whatever d.
func Estimate(defs []Definition, probes int, d time.Duration) Cost {
	c := Cost{Over: d}
	for _, def := range defs {
		it := CostItem{Definition: def, Probes: probes, Results: 1, PerResult: def.CreditsPerResult()}
		if def.Interval > 0 {
			iv := time.Duration(def.Interval) * time.Second
			it.Results = int64((d + iv - 1) / iv)
		}
		it.Credits = int64(probes) * it.Results * it.PerResult
		c.Items = append(c.Items, it)
		c.Credits += it.Credits
	}
	return c
}

// EstimateRequests adds up the estimates of reqs over d.
func EstimateRequests(reqs []CreateRequest, d time.Duration) Cost {
	total := Cost{Over: d}
	for i := range reqs {
		c := Estimate(reqs[i].Definitions, reqs[i].ProbesRequested(), d)
		total.Items = append(total.Items, c.Items...)
		total.Credits += c.Credits
	}
	return total
}

// CheckDailyCap estimates a day of reqs (a plan entry's requests) and
// says, in an error, when that is over capCredits. A cap of zero or less
// is no cap.
func CheckDailyCap(reqs []CreateRequest, capCredits int64) (Cost, error) {
	c := EstimateRequests(reqs, 24*time.Hour)
	if capCredits > 0 && c.Credits > capCredits {
		return c, fmt.Errorf("the measurement would spend about %d RIPE Atlas credits a day (an estimate from Atlas's documented costs), over its daily cap of %d: ask for fewer probes or a longer interval, or raise the cap", c.Credits, capCredits)
	}
	return c, nil
}

// WriteTo writes the estimate for people, labelled as one.
func (c Cost) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Estimated RIPE Atlas credits over %v (Atlas has no estimate endpoint: this uses its documented cost table, assuming every probe delivers every result):\n", c.Over)
	for _, it := range c.Items {
		d := it.Definition
		kind := "periodic"
		if d.Interval == 0 {
			kind = "one-off"
		}
		fmt.Fprintf(&b, "  %s IPv%d %s (%s): %d probes × %d results × %d credits = %d credits\n",
			d.Type, d.AF, d.Target, kind, it.Probes, it.Results, it.PerResult, it.Credits)
	}
	fmt.Fprintf(&b, "  total: about %d credits\n", c.Credits)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// DryRun writes what creating reqs would send (each request body, as
// JSON) and the estimate of its spending over d, without sending anything.
func DryRun(w io.Writer, reqs []CreateRequest, d time.Duration) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	for i := range reqs {
		fmt.Fprintf(w, "POST /api/v2/measurements/ (request %d of %d):\n", i+1, len(reqs))
		if err := enc.Encode(&reqs[i]); err != nil {
			return err
		}
	}
	_, err := EstimateRequests(reqs, d).WriteTo(w)
	return err
}
