package atlas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/atlas/atlastest"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// TestSpecRequests checks the bodies a plan entry becomes against
// testdata/create-k-root.json, written from the creation documentation:
// one request per address family, each selection keeping the probes of
// that family by tag, and the NSID bit and qbuf asked for.
func TestSpecRequests(t *testing.T) {
	s := kRoot()
	reqs := requests(t, s)
	got, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture(t, "create-k-root.json"), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("requests:\n%s\nwant testdata/create-k-root.json", got)
	}
	if s.Probes[0].Value != "ww" || s.Probes[1].Tags.Include != nil {
		t.Error("Requests changed the spec's selections")
	}
	if n := reqs[0].ProbesRequested(); n != 62 {
		t.Errorf("ProbesRequested = %d, want 62", n)
	}
	reqs = requests(t, Spec{Target: "192.0.2.53", AFs: []int{4}, Type: TypePing, Probes: []Selection{{Type: "country", Value: "DE", Requested: 3}}})
	d := reqs[0].Definitions[0]
	if !reqs[0].IsOneoff || d.Interval != 0 || d.Type != "ping" || d.SetNSIDBit || d.QueryArgument != "" ||
		d.Description != "catchmap: ping to 192.0.2.53 over IPv4" {
		t.Errorf("one-off ping: %+v", reqs[0])
	}
}

func TestSpecErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no target", func(s *Spec) { s.Target = " " }, "no target"},
		{"no af", func(s *Spec) { s.AFs = nil }, "no address family"},
		{"bad af", func(s *Spec) { s.AFs = []int{5} }, "only 4 and 6"},
		{"af twice", func(s *Spec) { s.AFs = []int{6, 6} }, "given twice"},
		{"no question", func(s *Spec) { s.Query.Name = "" }, "needs a question"},
		{"bad class", func(s *Spec) { s.Query.Class = "CH" }, "IN or CHAOS"},
		{"bad type", func(s *Spec) { s.Type = "traceroute" }, "creates dns or ping"},
		{"no probes", func(s *Spec) { s.Probes = nil }, "no probes"},
		{"interval", func(s *Spec) { s.Interval = 1500 * time.Millisecond }, "whole seconds"},
		{"area", func(s *Spec) { s.Probes[0].Value = "Mars" }, "no such area"},
		{"country", func(s *Spec) { s.Probes[1].Value = "NLD" }, "two-letter"},
		{"asn", func(s *Spec) { s.Probes[2].Value = "AS0" }, "AS number"},
		{"prefix", func(s *Spec) { s.Probes[3].Value = "193.0.14.0" }, "give a prefix"},
		{"probe ids", func(s *Spec) { s.Probes[4].Value = "1001,x" }, `probe id "x"`},
		{"requested", func(s *Spec) { s.Probes[0].Requested = 0 }, "requested 0"},
		{"selection type", func(s *Spec) { s.Probes[0].Type = "msm" }, "area, country, asn, prefix or probes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := kRoot()
			tc.edit(&s)
			_, err := s.Requests()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// readStatus reads measurement id and checks its status.
func readStatus(t *testing.T, c *Client, id int64, want Status) *Measurement {
	t.Helper()
	m, err := c.Measurement(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != want || m.StatusName != want.String() {
		t.Fatalf("measurement %d is %v (%q), want %v", id, m.Status, m.StatusName, want)
	}
	return m
}

// TestLifecycle follows a periodic measurement from creation to its stop,
// and a one-off to the end Atlas gives it.
func TestLifecycle(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, srv.Key)
	reqs := requests(t, kRoot())
	var ids []int64
	for _, r := range reqs {
		got, err := c.Create(ctx(t), r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	if len(ids) != 2 || ids[1] != ids[0]+1 {
		t.Fatalf("ids %v", ids)
	}
	created := srv.Measurements()
	for i, m := range created {
		d := m.Definition
		if d["af"] != float64(4+2*i) || d["set_nsid_bit"] != true || d["include_qbuf"] != true || d["query_class"] != "CHAOS" || m.OneOff {
			t.Errorf("created %+v", m)
		}
	}
	for _, r := range srv.Requests() {
		if r.Auth != "Key "+srv.Key || strings.Contains(r.Path+r.Query.Encode(), srv.Key) {
			t.Errorf("%s %s: Authorization %q; the key goes in the header only", r.Method, r.Path, r.Auth)
		}
	}

	id := ids[0]
	readStatus(t, c, id, Specified)
	readStatus(t, c, id, Scheduled)
	m := readStatus(t, c, id, Ongoing)
	if m.Interval != 5*time.Minute || m.OneOff || m.AF != 4 || m.Target != "k.root-servers.net" || m.Start.IsZero() ||
		!m.Stop.IsZero() || m.ProbesRequested != 62 || m.Participants == 0 {
		t.Errorf("ongoing measurement %+v", m)
	}
	readStatus(t, c, id, Ongoing)
	if err := c.Stop(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	m = readStatus(t, c, id, Stopped)
	if m.Stop.IsZero() || m.StoppedByAtlas() != nil {
		t.Errorf("stopped: stop time %v, StoppedByAtlas %v", m.Stop, m.StoppedByAtlas())
	}

	one := kRoot()
	one.Interval = 0
	oid := create(t, c, one)
	for _, st := range []Status{Specified, Scheduled, Ongoing, Stopped, Stopped} {
		m = readStatus(t, c, oid, st)
	}
	if !m.OneOff || m.Interval != 0 || m.StoppedByAtlas() != nil {
		t.Errorf("one-off %+v", m)
	}

	// A measurement Atlas ends by itself is told apart from a stop.
	srv.EndByAtlas(t, ids[1], int(NoSuitableProbes))
	m = readStatus(t, c, ids[1], NoSuitableProbes)
	err := m.StoppedByAtlas()
	if !errors.Is(err, ErrStoppedByAtlas) || !strings.Contains(err.Error(), `"No suitable probes" since `) ||
		!strings.Contains(err.Error(), "widen") {
		t.Errorf("StoppedByAtlas = %v", err)
	}

	if _, err := c.Measurement(ctx(t), 999); err == nil || !strings.Contains(err.Error(), "404") ||
		!strings.Contains(err.Error(), "check the measurement id") {
		t.Errorf("unknown measurement: %v", err)
	}
	if err := c.Stop(ctx(t), 0); !errors.Is(err, errNoID) {
		t.Errorf("Stop(0) = %v", err)
	}
}

// TestCreateRefused: Atlas's field errors reach the caller, untried again.
func TestCreateRefused(t *testing.T) {
	srv := fake(t)
	c, w := client(t, srv, srv.Key)
	req := CreateRequest{Definitions: []Definition{{Type: "dns", AF: 4}}, Probes: []Selection{{Type: "area", Value: "WW"}}}
	_, err := c.Create(ctx(t), req)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("error %v, want a 400", err)
	}
	for _, want := range []string{"/definitions/0/description: This field is required.",
		"/definitions/0/query_argument: This field is required.", "/probes/0/requested"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(srv.Requests()); n != 1 || len(*w) != 0 {
		t.Errorf("%d requests, waits %v: a 400 is not tried again", n, *w)
	}
}

// TestCreateCount: an answer with another number of ids than definitions
// is an error that names the ids, so that they can be stopped.
func TestCreateCount(t *testing.T) {
	srv := fake(t)
	c, _ := client(t, srv, srv.Key)
	reqs := requests(t, kRoot())
	reqs[0].Definitions = append(reqs[0].Definitions, reqs[1].Definitions[0])
	srv.Fail(atlastest.RouteCreate, atlastest.Fault{Status: 201, Body: `{"measurements": [100000001]}`})
	if _, err := c.Create(ctx(t), reqs[0]); err == nil || !strings.Contains(err.Error(), "created 1 measurements ([100000001]) for 2 definitions") {
		t.Errorf("error %v", err)
	}
}

func TestQueryFor(t *testing.T) {
	for _, tc := range []struct {
		spec spec.Spec
		want Query
	}{
		{spec.Spec{Preset: "k-root"}, HostnameBind},
		{spec.Spec{Preset: "quad9"}, IDServer},
		{spec.Spec{Preset: "opendns"}, Query{Class: "IN", Type: "TXT", Name: "debug.opendns.com"}},
		{spec.Spec{QName: "whoami.example.", QClass: "IN", QType: "TXT"}, Query{Class: "IN", Type: "TXT", Name: "whoami.example"}},
	} {
		tc.spec.Method = result.MethodDNS
		id, err := spec.NewIdentifier(&tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := QueryFor(id); err != nil || got != tc.want {
			t.Errorf("%+v: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, QName: "x.", QClass: "HS", QType: "TXT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := QueryFor(id); err == nil || !strings.Contains(err.Error(), "IN or CHAOS") {
		t.Errorf("class HS: %v", err)
	}
}
