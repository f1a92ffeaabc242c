package catcher

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/catchmap/catchmap/probe/agent"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/payload"
)

// maxOrderBytes bounds an order's body: a share of every /24 (4 bytes
// each), base64 in JSON, and room for the rest.
const maxOrderBytes = MaxTargets*4*4/3 + 1<<16

// NewHandler serves the control API (see package control) for a, with the
// bearer token, and /metrics from gather and /healthz without one.
func NewHandler(log *slog.Logger, a *Agent, token agent.Token, gather prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	h := &handler{log: log, a: a}
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Status()) })
	api.HandleFunc("PUT /v1/sweeps/{id}", h.order)
	api.HandleFunc("POST /v1/sweeps/{id}/start", h.withID(func(id payload.ID) (any, error) { return nil, a.Start(id) }))
	api.HandleFunc("GET /v1/sweeps/{id}", h.withID(func(id payload.ID) (any, error) { return a.Sweep(id) }))
	api.HandleFunc("DELETE /v1/sweeps/{id}", h.withID(func(id payload.ID) (any, error) { return nil, a.Forget(id) }))
	api.HandleFunc("GET /v1/sweeps/{id}/replies", h.replies)
	mux.Handle("/v1/", authorized(token, api))
	return mux
}

type handler struct {
	log *slog.Logger
	a   *Agent
}

// authorized lets through requests with the token.
func authorized(token agent.Token, next http.Handler) http.Handler {
	want := []byte("Bearer " + token.Reveal())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong token: send Authorization: Bearer with the catcher's token (CATCHMAP_CATCH_TOKEN)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) order(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var o control.Order
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOrderBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		writeError(w, http.StatusBadRequest, errors.New("bad order: "+err.Error()))
		return
	}
	if o.ID != id {
		writeError(w, http.StatusBadRequest, errors.New("the order's id is not the one in its URL"))
		return
	}
	if err := h.a.Order(o); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *handler) withID(fn func(payload.ID) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		v, err := fn(id)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		if v == nil {
			v = struct{}{}
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (h *handler) replies(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := h.a.Sweep(id); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	err := h.a.Replies(id, func(rep control.Reply) error { return enc.Encode(rep) })
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status is sent: the client sees a cut stream.
		h.log.Warn("sending replies", "sweep", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func pathID(w http.ResponseWriter, r *http.Request) (payload.ID, bool) {
	id, err := payload.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return 0, false
	}
	return id, true
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, control.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrRefused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, control.Error{Error: err.Error()})
}
