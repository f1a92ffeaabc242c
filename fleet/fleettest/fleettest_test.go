package fleettest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if err := c.Sleep(t.Context(), time.Minute); err != nil || !c.Now().Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a sleep: %v, %v", c.Now(), err)
	}
	c.Advance(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Minute); err == nil || !c.Now().Equal(t0.Add(61*time.Minute)) {
		t.Errorf("a sleep with its context ended: %v, %v", c.Now(), err)
	}
	if s := c.Slept(); len(s) != 1 || s[0] != time.Minute {
		t.Errorf("slept %v", s)
	}
}

// TestRecorder: faults answer in the order queued, then the route does.
func TestRecorder(t *testing.T) {
	rec := &Recorder{WriteError: func(w http.ResponseWriter, status int) { w.WriteHeader(status) }}
	h := rec.Route("r", func(w http.ResponseWriter, _ *http.Request, body []byte) { w.Write(body) })
	rec.Fail("r", Fault{Status: 503, RetryAfter: "3", Header: map[string]string{"X-A": "b"}}, Fault{Status: 502}, Fault{Status: 400, Body: `{"e": 1}`})
	for i, want := range []int{503, 502, 400, 200} {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodPost, "/x?y=1", nil))
		if w.Code != want {
			t.Errorf("request %d: %d, want %d", i+1, w.Code, want)
		}
		if i == 0 && (w.Header().Get("Retry-After") != "3" || w.Header().Get("X-A") != "b") {
			t.Errorf("headers %v", w.Header())
		}
	}
	if r := rec.Requests(); len(r) != 4 || r[0].Route != "r" || r[0].Query.Get("y") != "1" || r[0].Method != http.MethodPost {
		t.Errorf("requests %+v", r)
	}
}
