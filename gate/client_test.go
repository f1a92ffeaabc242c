package gate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/gate/gatetest"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

func TestClientResultsMakeTheSameSnapshot(t *testing.T) {
	srv := (&gatetest.Aggregator{Records: gatetest.ReadRecords(t, "testdata/records.ndjson"), Token: "cm_read"}).Start(t)
	from, to := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	ctx := context.Background()

	cl, err := NewClient(srv.URL+"/", token.Parse("cm_read"), srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Take(maps.Options{Target: "ns.example", From: from, To: to}, func(fn func(*result.Record) error) error {
		return cl.Results(ctx, "ns.example", from, to, fn)
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := takeFile(t, "testdata/records.ndjson", maps.Options{Target: "ns.example", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if got.ProbeCount != want.ProbeCount || got.Results != want.Results || len(got.Probes) != len(want.Probes) || got.ErrorShare != want.ErrorShare {
		t.Errorf("over HTTP: %d probes %d results; from the file: %d, %d", got.ProbeCount, got.Results, want.ProbeCount, want.Results)
	}

	bad, _ := NewClient(srv.URL, token.Parse("cm_wrong"), srv.Client())
	err = bad.Results(ctx, "ns.example", from, to, func(*result.Record) error { return nil })
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "missing or wrong token") ||
		!strings.Contains(err.Error(), "check the token") || strings.Contains(err.Error(), "cm_wrong") {
		t.Errorf("wrong token: err = %v, want a 401 HTTPError with the server's message and no secret", err)
	}
}

func TestClientTruncatedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"a","time":"2026-11-25T10:00:00Z","probe":"p","target":"t","site":"ams"}` + "\n" + `{"id":"b","ti`))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // as the aggregator does when its store fails mid-stream
	}))
	defer srv.Close()
	cl, _ := NewClient(srv.URL, token.Token{}, srv.Client())
	n := 0
	err := cl.Results(context.Background(), "t", time.Now().Add(-time.Hour), time.Now(), func(*result.Record) error { n++; return nil })
	if err == nil || n != 1 {
		t.Errorf("truncated stream: %d records, err %v; want 1 record and an error", n, err)
	}
}

func TestClientUnreachable(t *testing.T) {
	cl, err := NewClient("http://"+gatetest.ClosedPort(t), token.Token{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = cl.Results(ctx, "t", time.Now().Add(-time.Hour), time.Now(), func(*result.Record) error { return nil })
	var he *HTTPError
	if err == nil || errors.As(err, &he) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("closed port: err = %v, want an unreachable error", err)
	}
	for _, u := range []string{"", "ftp://x", "127.0.0.1:8080", "http://"} {
		if _, err := NewClient(u, token.Token{}, nil); err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
}

func TestClientAnnotate(t *testing.T) {
	agg := &gatetest.Aggregator{Token: "cm_admin"}
	srv := agg.Start(t)
	cl, _ := NewClient(srv.URL, token.Parse("cm_admin"), srv.Client())
	at := time.Date(2026, 11, 25, 19, 30, 0, 0, time.UTC)
	got, err := cl.Annotate(context.Background(), api.Annotation{Target: "ns.example", Time: at, Text: "prepend ams x3"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "note-1" || !got.Time.Equal(at) || len(agg.Notes()) != 1 || agg.Notes()[0].Text != "prepend ams x3" || agg.Notes()[0].Target != "ns.example" {
		t.Errorf("stored %+v, answered %+v", agg.Notes(), got)
	}
	_, err = cl.Annotate(context.Background(), api.Annotation{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "text: empty") {
		t.Errorf("empty note: err = %v", err)
	}
}

func TestWaitStable(t *testing.T) {
	steady := (&gatetest.Aggregator{Records: gatetest.Steady("ns.example", time.Now(), false)}).Start(t)
	cl, _ := NewClient(steady.URL, token.Token{}, steady.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := Settling{Stable: 3 * time.Second, Step: time.Second, Poll: 50 * time.Millisecond}
	if err := cl.WaitStable(ctx, "ns.example", s); err != nil {
		t.Errorf("steady catchment: %v", err)
	}

	flappy := (&gatetest.Aggregator{Records: gatetest.Steady("ns.example", time.Now(), true)}).Start(t)
	cl, _ = NewClient(flappy.URL, token.Token{}, flappy.Client())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	err := cl.WaitStable(ctx2, "ns.example", s)
	if !errors.Is(err, ErrNotSettled) || !strings.Contains(err.Error(), "last shift at") || !strings.Contains(err.Error(), "moved 100.0% of probes") {
		t.Errorf("flapping catchment: err = %v, want ErrNotSettled naming the last shift", err)
	}

	if err := cl.WaitStable(ctx, "ns.example", Settling{Stable: time.Second, Step: time.Millisecond, Poll: time.Second}); err == nil {
		t.Error("a step of 1ms was accepted")
	}
	dead, _ := NewClient("http://"+gatetest.ClosedPort(t), token.Token{}, nil)
	if err := dead.WaitStable(ctx, "ns.example", s); err == nil || errors.Is(err, ErrNotSettled) {
		t.Errorf("unreachable aggregator: err = %v, want it at once, not a timeout", err)
	}
}

func TestSettledIn(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	step := func(i, probes int) maps.Step {
		return maps.Step{Time: t0.Add(time.Duration(i) * time.Minute), Probes: probes}
	}
	tl := &maps.Timeline{Steps: []maps.Step{step(0, 5), step(1, 5), step(2, 5)}, Shifts: []maps.Shift{{Time: t0, MovedShare: 0.5}}}
	if ok, why := settledIn(tl, t0.Add(time.Minute)); !ok {
		t.Errorf("a shift before the stable steps unsettled it: %s", why)
	}
	if ok, why := settledIn(tl, t0); ok || !strings.Contains(why, "moved 50.0%") {
		t.Errorf("a shift in the stable steps: ok %v, %s", ok, why)
	}
	tl.Steps[2].Probes = 0
	if ok, why := settledIn(tl, t0.Add(time.Minute)); ok || !strings.Contains(why, "no served probe") {
		t.Errorf("an empty step: ok %v, %s", ok, why)
	}
	if ok, _ := settledIn(&maps.Timeline{}, t0); ok {
		t.Error("an empty timeline is settled")
	}
}
