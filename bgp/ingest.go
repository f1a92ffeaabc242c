package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
)

// Limits of POST /api/v1/events.
const (
	// MaxPostEvents is the most events one request may carry; the import
	// command sends batches of PostBatch.
	MaxPostEvents = 10_000
	PostBatch     = 5_000
	maxPostBody   = 8 << 20
	maxASPath     = 1024
	maxIDLen      = 128
	maxFuture     = 5 * time.Minute
)

// EventsPosted answers POST /api/v1/events.
type EventsPosted struct {
	Accepted int `json:"accepted"` // events in the request, all stored (re-sent ids are kept once)
}

// PostEventsHandler is POST /api/v1/events: a JSON array of api.Event,
// checked whole, then stored in one call. Events without an id get one
// derived from their content, so re-sending a batch stores nothing twice.
// now bounds how far in the future an event may be.
func PostEventsHandler(log *slog.Logger, st store.Events, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var es []api.Event
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPostBody))
		dec.DisallowUnknownFields()
		err := dec.Decode(&es)
		if err == nil && dec.More() {
			err = errors.New("more than one JSON value")
		}
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			server.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes: send at most %d events per request", mbe.Limit, PostBatch))
			return
		case errors.Is(err, io.EOF):
			server.WriteError(w, http.StatusBadRequest, "empty body: send a JSON array of events")
			return
		case err != nil:
			server.WriteError(w, http.StatusBadRequest, "bad JSON body: "+err.Error()+": send a JSON array of events")
			return
		case len(es) > MaxPostEvents:
			server.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events: send at most %d per request", len(es), MaxPostEvents))
			return
		}
		limit := now().Add(maxFuture)
		for i := range es {
			if err := checkEvent(&es[i], limit); err != nil {
				server.WriteError(w, http.StatusBadRequest, fmt.Sprintf("event %d: %v", i, err))
				return
			}
		}
		if err := st.AddEvents(r.Context(), es); err != nil {
			switch {
			case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
				log.Warn("store unavailable", "op", "add events", "err", err)
				w.Header().Set("Retry-After", "5")
				server.WriteError(w, http.StatusServiceUnavailable, "storing events: store unavailable: retry later")
			default:
				log.Error("store failed", "op", "add events", "err", err)
				server.WriteError(w, http.StatusInternalServerError, "storing events: internal store error: see the aggregator log")
			}
			return
		}
		server.WriteJSON(w, http.StatusOK, EventsPosted{Accepted: len(es)})
	})
}

// checkEvent validates e and fills its id; the error names the field.
func checkEvent(e *api.Event, limit time.Time) error {
	p, err := netip.ParsePrefix(e.Prefix)
	if err != nil || p != p.Masked() {
		return fmt.Errorf("prefix %q: give a CIDR prefix without host bits, such as 192.0.2.0/24", clip(e.Prefix))
	}
	if e.Kind != KindAnnounce && e.Kind != KindWithdraw {
		return fmt.Errorf("kind %q: use %s or %s", clip(e.Kind), KindAnnounce, KindWithdraw)
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
		e.Source = SourceMRT
	}
	if e.Source != SourceMRT && e.Source != SourceBGP {
		return fmt.Errorf("source %q: use %s or %s", clip(e.Source), SourceMRT, SourceBGP)
	}
	if len(e.ASPath) > maxASPath {
		return fmt.Errorf("as_path: %d ASNs, more than %d", len(e.ASPath), maxASPath)
	}
	if len(e.ID) > maxIDLen || strings.IndexFunc(e.ID, unicode.IsControl) >= 0 {
		return fmt.Errorf("id: longer than %d characters or contains control characters", maxIDLen)
	}
	if e.ID == "" {
		e.ID = eventID(*e, p)
	}
	return nil
}

// clip shortens what a client sent before it goes into an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
