package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/prometheus/client_golang/prometheus"
)

// memEvents keeps events in memory: the fuzzer exercises decoding and
// validation, and a SQLite write per input would slow it a hundredfold.
// The handler runs against the real store in aggregator/app's tests. The
// rest of the store is not there: the handler must not touch it.
type memEvents struct {
	store.Store
	es []api.Event
}

func (m *memEvents) AddEvents(_ context.Context, es []api.Event) error {
	m.es = append(m.es, es...)
	return nil
}

func (m *memEvents) Events(context.Context, []string, time.Time, time.Time) ([]api.Event, error) {
	return m.es, nil
}

var ingestNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// eventsHandler is POST /api/v1/events of a server on st, without the
// access check.
func eventsHandler(t testing.TB, st store.Store) http.Handler {
	s, err := New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), st, WithClock(func() time.Time { return ingestNow }))
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(s.postEvents)
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/events", strings.NewReader(body)))
	return w
}

func TestPostEvents(t *testing.T) {
	st := &memEvents{}
	h := eventsHandler(t, st)
	w := post(h, `[{"time":"2026-11-25T11:00:00+01:00","prefix":"2001:db8:53::/48","kind":"withdraw","peer":"::ffff:192.0.2.1"}]`)
	if w.Code != http.StatusOK || len(st.es) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e := st.es[0]
	if e.ID == "" || e.Source != api.SourceMRT || e.Peer != "192.0.2.1" || e.Time.Location() != time.UTC {
		t.Errorf("stored %+v: want an id, source mrt, peer unmapped, UTC time", e)
	}
	for body, want := range map[string]string{
		``:                 "empty body",
		`[] []`:            "more than one JSON value",
		`[{"prefix":"x"}]`: "event 0: prefix",
		`[{"bogus":1}]`:    "unknown field",
		`[{"time":"2026-11-25T12:00:00Z","prefix":"192.0.2.0/24","kind":"announce","as_path":[` + strings.Repeat("1,", 1100) + `1]}]`: "as_path: 1101 ASNs",
		`[{"time":"2026-11-25T12:00:00Z","prefix":"192.0.2.0/24","kind":"announce","id":"` + strings.Repeat("i", 200) + `"}]`:         "id: longer than 128",
	} {
		if w := post(h, body); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%.40s: %d %s, want 400 with %q", body, w.Code, w.Body, want)
		}
	}
	if w := post(h, `[`+strings.Repeat(" ", maxPostBody)+`]`); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", w.Code)
	}
}

// FuzzPostEvents: any body gets 200 or a 4xx with a JSON error, and only
// valid events are stored.
func FuzzPostEvents(f *testing.F) {
	f.Add(`[{"time":"2026-11-25T11:00:00Z","prefix":"192.0.2.0/24","kind":"announce","as_path":[64500],"peer":"192.0.2.1","source":"bgp"}]`)
	f.Add(`[{"time":"2026-11-25T11:00:00Z","prefix":"2001:db8::/32","kind":"withdraw"}]`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		st := &memEvents{}
		w := post(eventsHandler(t, st), body)
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e api.Error
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%d without a JSON error: %s", w.Code, w.Body)
			}
			return
		default:
			t.Fatalf("status %d", w.Code)
		}
		for _, e := range st.es {
			p, err := netip.ParsePrefix(e.Prefix)
			if err != nil || p != p.Masked() || (e.Kind != api.EventAnnounce && e.Kind != api.EventWithdraw) || e.ID == "" || e.Time.After(ingestNow.Add(maxEventFuture)) {
				t.Fatalf("stored invalid event %+v", e)
			}
		}
	})
}
