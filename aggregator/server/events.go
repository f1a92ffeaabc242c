package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// Limits of POST /api/v1/events beside api.MaxEvents.
const (
	maxPostBody    = 8 << 20
	maxASPath      = 1024
	maxEventFuture = 5 * time.Minute
)

// EventsPosted answers POST /api/v1/events.
type EventsPosted struct {
	Accepted int `json:"accepted"` // events in the request, all stored (re-sent ids are kept once)
}

// postEvents is POST /api/v1/events: a JSON array of api.Event, checked
// whole, then stored in one call. Events without an id get one derived
// from their content, so re-sending a batch stores nothing twice.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	var es []api.Event
	hint := fmt.Sprintf("send a JSON array of at most %d events", api.MaxEvents)
	if !decodeBodyUpTo(w, r, &es, maxPostBody, hint) {
		return
	}
	if len(es) > api.MaxEvents {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events: %s", len(es), hint))
		return
	}
	limit := s.now().Add(maxEventFuture)
	for i := range es {
		if err := checkEvent(&es[i], limit); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("event %d: %v", i, err))
			return
		}
	}
	if err := s.st.AddEvents(r.Context(), es); err != nil {
		httpx.StoreError(s.log, w, r, "storing events", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, EventsPosted{Accepted: len(es)})
}

// checkEvent validates e and fills its id; the error names the field.
func checkEvent(e *api.Event, limit time.Time) error {
	p, err := netip.ParsePrefix(e.Prefix)
	if err != nil || p != p.Masked() {
		return fmt.Errorf("prefix %q: give a CIDR prefix without host bits, such as 192.0.2.0/24", clip(e.Prefix))
	}
	if e.Kind != api.EventAnnounce && e.Kind != api.EventWithdraw {
		return fmt.Errorf("kind %q: use %s or %s", clip(e.Kind), api.EventAnnounce, api.EventWithdraw)
	}
	if e.Time.IsZero() || e.Time.After(limit) {
		return errors.New("time: missing, or more than 5 minutes ahead of the aggregator's clock")
	}
	e.Time = e.Time.UTC()
	if e.Peer != "" {
		a, err := netip.ParseAddr(e.Peer)
		if err != nil {
			return fmt.Errorf("peer %q: give the peer's IP address", clip(e.Peer))
		}
		e.Peer = a.Unmap().String()
	}
	if e.Source == "" {
		e.Source = api.SourceMRT
	}
	if e.Source != api.SourceMRT && e.Source != api.SourceBGP {
		return fmt.Errorf("source %q: use %s or %s", clip(e.Source), api.SourceMRT, api.SourceBGP)
	}
	if len(e.ASPath) > maxASPath {
		return fmt.Errorf("as_path: %d ASNs, more than %d", len(e.ASPath), maxASPath)
	}
	if len(e.ID) > result.MaxIDBytes || strings.IndexFunc(e.ID, unicode.IsControl) >= 0 {
		return fmt.Errorf("id: longer than %d characters or contains control characters", result.MaxIDBytes)
	}
	if e.ID == "" {
		e.ID = e.DerivedID(p)
	}
	return nil
}
