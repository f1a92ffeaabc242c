package globalping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
	"github.com/catchmap/catchmap/probe/result"
)

// Measurement and test statuses. A measurement is InProgress or Finished;
// a test is also Failed, or Offline when a probe asked for by a previous
// measurement's id was gone.
const (
	InProgress = "in-progress"
	Finished   = "finished"
	Failed     = "failed"
	Offline    = "offline"
)

// Created is Globalping's answer to a creation.
type Created struct {
	ID string
	// ProbesCount is how many probes were found for the locations: the
	// tests the measurement spent.
	ProbesCount int
}

// Create creates the measurement req asks for and returns its id. It
// refuses, before sending, a request beyond c's limits (an error wrapping
// ErrLimit), and waits, bounded by ctx, while the hourly budget has fewer
// tests left than req may spend, or while Globalping says its rate limit
// is reached (a 429 with X-RateLimit-Reset). Like every request it is
// tried again after a 5xx or a network error; when a failed try had
// reached Globalping, that makes a second measurement nobody reads.
func (c *Client) Create(ctx context.Context, req *Request) (*Created, error) {
	const op = "creating a Globalping measurement"
	if err := req.Check(c.limits); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	n := req.Tests()
	reserved := 0
	release := func() {
		c.budget.settle(reserved, 0)
		reserved = 0
	}
	take := func() error {
		release()
		if err := c.budget.take(ctx, n, c.sleep, c.log); err != nil {
			return err
		}
		reserved = n
		return nil
	}
	resp, err := c.do(ctx, op, http.MethodPost, c.endpoint("measurements"), body, take, func(resp *http.Response) {
		release()
		if resp.StatusCode == http.StatusTooManyRequests {
			c.budget.sync(resp.Header)
		}
	})
	if err != nil {
		release()
		return nil, err
	}
	b, err := fleetutil.ReadBody(op, resp, maxBody, c.base.String())
	if err != nil {
		release()
		return nil, err
	}
	created, err := decodeCreated(b)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	c.budget.settle(reserved, min(created.ProbesCount, reserved))
	c.budget.sync(resp.Header)
	c.log.Debug("created a Globalping measurement", "id", created.ID, "probes", created.ProbesCount, "budget", c.Budget())
	return created, nil
}

// decodeCreated reads the answer to a creation: {"id": ..., "probesCount": n}.
func decodeCreated(b []byte) (*Created, error) {
	var v struct {
		ID          string `json:"id"`
		ProbesCount *int   `json:"probesCount"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("the answer is not the documented {\"id\": ..., \"probesCount\": n}: %w", err)
	}
	if err := checkID(v.ID); err != nil {
		return nil, fmt.Errorf("the answer names no usable measurement: %w", err)
	}
	if v.ProbesCount == nil || *v.ProbesCount < 0 {
		return nil, errors.New("the answer has no probesCount")
	}
	return &Created{ID: v.ID, ProbesCount: *v.ProbesCount}, nil
}

// maxIDLen bounds a measurement id: Globalping's are 16 characters or so.
const maxIDLen = 64

// checkID refuses an id that cannot be a measurement's: it goes into a
// URL path and into every record id.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("the measurement id is empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("the measurement id is %d bytes long, more than %d", len(id), maxIDLen)
	case strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0:
		return fmt.Errorf("the measurement id %q holds more than letters, digits, - and _", id)
	}
	return nil
}

// Measurement is what GET /v1/measurements/{id} says of a measurement.
type Measurement struct {
	ID     string
	Type   string
	Target string
	// Status is InProgress until every test is done, then Finished.
	Status               string
	CreatedAt, UpdatedAt time.Time
	ProbesCount          int
	// Resolver and Protocol are the options asked for: the DNS
	// measurement's resolver, UDP or TCP for DNS, HTTP or HTTPS for HTTP;
	// empty when they were Globalping's defaults.
	Resolver, Protocol string
	Results            []Result
}

// Result is one probe's test.
type Result struct {
	Probe Probe
	Test  Test
}

// Probe is what Globalping says of the probe that ran a test. Probes
// have no id: see ProbeID.
type Probe struct {
	Continent, Region, Country, State, City string
	ASN                                     uint32
	Network                                 string
	// Lat and Lon are nil when Globalping gave no valid place.
	Lat, Lon  *float64
	Tags      []string
	Resolvers []string
}

// Test is a test's result. Which fields are set depends on the
// measurement's type and the test's Status.
type Test struct {
	// Status is InProgress, Finished, Failed or Offline.
	Status string
	// FailureSource is Globalping's guess at what failed: target,
	// resolver or internal.
	FailureSource string
	// RawOutput is what the probe's tool printed: dig's output for DNS,
	// the response's status line, headers and body for HTTP, or the
	// failure.
	RawOutput string
	// StatusCode is the DNS rcode or the HTTP status; nil when absent.
	StatusCode     *int
	StatusCodeName string
	Timings        Timings

	// DNS: the server that answered, and the answer section.
	Resolver string
	Answers  []Answer

	// HTTP: the parsed response headers, the first 10 kB of the body (nil
	// when none), the address connected to and the certificate's check.
	Headers         http.Header
	RawBody         *string
	Truncated       bool
	ResolvedAddress string
	TLS             *TLS

	// unreadable says why the test's result did not read; its record
	// says malformed.
	unreadable string
}

// Timings are a test's times in milliseconds; nil when not measured.
// DNS has Total only.
type Timings struct {
	Total, DNS, TCP, TLS, FirstByte, Download *float64
}

// Answer is one record of a DNS answer section as dig printed it; Value
// is in zone-file presentation (a TXT's strings quoted).
type Answer struct {
	Name, Type, Class, Value string
	TTL                      uint32
}

// TLS is what Globalping says of an HTTPS test's certificate.
type TLS struct {
	Authorized bool
	Error      string
	Protocol   string
}

// Measurement fetches measurement id once.
func (c *Client) Measurement(ctx context.Context, id string) (*Measurement, error) {
	op := fmt.Sprintf("reading Globalping measurement %q", id)
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.do(ctx, op, http.MethodGet, c.endpoint("measurements", id), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	b, err := fleetutil.ReadBody(op, resp, maxBody, c.base.String())
	if err != nil {
		return nil, err
	}
	m, err := decodeMeasurement(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%s: Globalping answered with measurement %q", op, m.ID)
	}
	return m, nil
}

// Wait reads measurement id until it is no longer in progress, pausing
// the poll interval (at least MinPollInterval) after each answer, as
// Globalping asks, and returns it. A measurement's tests take up to 30
// seconds and Globalping some more to gather them: bound ctx accordingly.
func (c *Client) Wait(ctx context.Context, id string) (*Measurement, error) {
	for {
		m, err := c.Measurement(ctx, id)
		if err != nil {
			return nil, err
		}
		if m.Status != InProgress {
			return m, nil
		}
		c.log.Debug("the Globalping measurement is in progress", "id", id, "probes", m.ProbesCount)
		if err := c.sleep(ctx, c.poll); err != nil {
			return nil, fmt.Errorf("waiting for Globalping measurement %q to finish: %w", id, err)
		}
	}
}

type measurementJSON struct {
	ID                 string          `json:"id"`
	Type               string          `json:"type"`
	Target             string          `json:"target"`
	Status             string          `json:"status"`
	CreatedAt          time.Time       `json:"createdAt"`
	UpdatedAt          time.Time       `json:"updatedAt"`
	ProbesCount        int             `json:"probesCount"`
	MeasurementOptions json.RawMessage `json:"measurementOptions"`
	Results            []struct {
		Probe probeJSON `json:"probe"`
		// Result is decoded by decodeTest: its shape depends on the
		// measurement's type and the test's status.
		Result json.RawMessage `json:"result"`
	} `json:"results"`
}

type probeJSON struct {
	Continent string   `json:"continent"`
	Region    string   `json:"region"`
	Country   string   `json:"country"`
	State     *string  `json:"state"`
	City      string   `json:"city"`
	ASN       int64    `json:"asn"`
	Network   string   `json:"network"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Tags      []string `json:"tags"`
	Resolvers []string `json:"resolvers"`
}

type testJSON struct {
	Status          string                     `json:"status"`
	FailureSource   string                     `json:"failureSource"`
	RawOutput       string                     `json:"rawOutput"`
	StatusCode      *int                       `json:"statusCode"`
	StatusCodeName  *string                    `json:"statusCodeName"`
	Resolver        *string                    `json:"resolver"`
	Answers         []answerJSON               `json:"answers"`
	Timings         json.RawMessage            `json:"timings"`
	Headers         map[string]json.RawMessage `json:"headers"`
	RawBody         *string                    `json:"rawBody"`
	Truncated       bool                       `json:"truncated"`
	ResolvedAddress *string                    `json:"resolvedAddress"`
	TLS             *struct {
		Authorized bool   `json:"authorized"`
		Error      string `json:"error"`
		Protocol   string `json:"protocol"`
	} `json:"tls"`
}

type answerJSON struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	TTL   int64  `json:"ttl"`
	Class string `json:"class"`
	Value string `json:"value"`
}

type timingsJSON struct {
	Total     *float64 `json:"total"`
	DNS       *float64 `json:"dns"`
	TCP       *float64 `json:"tcp"`
	TLS       *float64 `json:"tls"`
	FirstByte *float64 `json:"firstByte"`
	Download  *float64 `json:"download"`
}

// decodeMeasurement reads a measurement. What one test or one probe says
// wrong does not refuse the whole: such a test becomes a test whose
// RawOutput says so and whose status is failed, so that its record says
// malformed rather than the measurement going missing.
func decodeMeasurement(b []byte) (*Measurement, error) {
	var v measurementJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("the answer is not a measurement: %w", err)
	}
	if err := checkID(v.ID); err != nil {
		return nil, fmt.Errorf("the answer is not a measurement: %w", err)
	}
	if v.Status == "" || v.Type == "" {
		return nil, errors.New("the answer is not a measurement: it has no status or no type")
	}
	if y := v.CreatedAt.Year(); y < 1970 || y > 9999 {
		return nil, errors.New("the answer is not a measurement: it has no createdAt time")
	}
	m := &Measurement{ID: v.ID, Type: v.Type, Target: v.Target, Status: v.Status,
		CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(), ProbesCount: max(v.ProbesCount, 0)}
	var opts struct {
		Resolver string `json:"resolver"`
		Protocol string `json:"protocol"`
	}
	if json.Unmarshal(v.MeasurementOptions, &opts) == nil {
		m.Resolver, m.Protocol = opts.Resolver, strings.ToUpper(opts.Protocol)
	}
	m.Results = make([]Result, len(v.Results))
	for i, r := range v.Results {
		m.Results[i] = Result{Probe: r.Probe.probe(), Test: decodeTest(r.Result)}
	}
	return m, nil
}

func (p probeJSON) probe() Probe {
	out := Probe{Continent: p.Continent, Region: p.Region, Country: p.Country, City: p.City,
		Network: p.Network, Tags: p.Tags, Resolvers: p.Resolvers}
	if p.State != nil {
		out.State = *p.State
	}
	if p.ASN > 0 && p.ASN <= math.MaxUint32 {
		out.ASN = uint32(p.ASN)
	}
	if p.Latitude != nil && p.Longitude != nil && result.ValidLatLon(*p.Latitude, *p.Longitude) == nil {
		out.Lat, out.Lon = p.Latitude, p.Longitude
	}
	return out
}

// decodeTest reads one test's result.
func decodeTest(raw json.RawMessage) Test {
	var v testJSON
	if err := json.Unmarshal(raw, &v); err != nil || v.Status == "" {
		why := "it has no status"
		if err != nil {
			why = err.Error()
		}
		return Test{Status: Failed, unreadable: why}
	}
	t := Test{Status: v.Status, FailureSource: v.FailureSource, RawOutput: v.RawOutput, StatusCode: v.StatusCode,
		RawBody: v.RawBody, Truncated: v.Truncated}
	if v.StatusCodeName != nil {
		t.StatusCodeName = *v.StatusCodeName
	}
	if v.Resolver != nil {
		t.Resolver = *v.Resolver
	}
	if v.ResolvedAddress != nil {
		t.ResolvedAddress = *v.ResolvedAddress
	}
	var tm timingsJSON
	if len(v.Timings) > 0 && v.Timings[0] == '{' && json.Unmarshal(v.Timings, &tm) == nil {
		t.Timings = Timings{Total: ms(tm.Total), DNS: ms(tm.DNS), TCP: ms(tm.TCP), TLS: ms(tm.TLS),
			FirstByte: ms(tm.FirstByte), Download: ms(tm.Download)}
	}
	for _, a := range v.Answers {
		if a.TTL < 0 || a.TTL > math.MaxUint32 {
			a.TTL = 0
		}
		t.Answers = append(t.Answers, Answer{Name: a.Name, Type: a.Type, Class: a.Class, Value: a.Value, TTL: uint32(a.TTL)})
	}
	if len(v.Headers) > 0 {
		t.Headers = http.Header{}
		for name, raw := range v.Headers {
			for _, value := range headerValues(raw) {
				t.Headers.Add(name, value)
			}
		}
	}
	if v.TLS != nil {
		t.TLS = &TLS{Authorized: v.TLS.Authorized, Error: v.TLS.Error, Protocol: v.TLS.Protocol}
	}
	return t
}

// ms keeps a time that is a time: not negative, not NaN, not infinite.
func ms(v *float64) *float64 {
	if v == nil || *v < 0 || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	return v
}

// headerValues reads a header's value: a string, or an array of strings
// for a header sent several times.
func headerValues(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}
